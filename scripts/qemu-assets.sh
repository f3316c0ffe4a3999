#!/usr/bin/env bash
# Everything the QEMU tests need to boot a real guest, made once into
# build/qemu/:
#   qemu-system-x86_64 and /bin/busybox   Debian's qemu-system-x86 and busybox-static
#   build/qemu/vmlinuz                     the cloud kernel, extracted from its package
#   build/qemu/modules/*.ko                the modules the guests load (virtio, vfio)
#   build/qemu/manifest                    kernel version and the modules in load order
# The cloud kernel package is downloaded and unpacked, never installed: installing
# it pulls initramfs-tools, udev and a systemd upgrade.
#
# Idempotent and quick once done (a few file checks). When it cannot install
# (not root, no apt-get, no network) it says why, leaves the reason in
# build/qemu/unavailable for the tests' skip message, and exits 0: the QEMU
# tests are then skipped with that reason; every other test still runs.
# INTERPROCESS_QEMU=skip makes it do nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

out=build/qemu
manifest=$out/manifest
# Dependency order: the package has no modules.dep, so /init insmods in this order.
modules=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_console
  irqbypass vfio vfio_iommu_type1 vfio_virqfd vfio-pci-core vfio-pci)

say() { echo "qemu-assets: $*"; }

have_tools() { command -v qemu-system-x86_64 >/dev/null && [ -x /bin/busybox ]; }

have_kernel() {
  [ -f "$manifest" ] && [ -f "$out/vmlinuz" ] || return 1
  local m
  for m in "${modules[@]}"; do [ -f "$out/modules/$m.ko" ] || return 1; done
}

if [ "${INTERPROCESS_QEMU:-}" = skip ]; then
  say "INTERPROCESS_QEMU=skip: not checking or installing QEMU"
  exit 0
fi
# The quick path: nothing to do.
if have_tools && have_kernel; then
  rm -f "$out/unavailable"
  exit 0
fi

mkdir -p "$out" 2>/dev/null || true
# Cannot install: record why (the tests print it when they skip) and succeed.
unavailable() {
  say "$1; the QEMU tests will be skipped"
  echo "$1" 2>/dev/null >"$out/unavailable" || true
  exit 0
}

[ "$(id -u)" = 0 ] || unavailable "not root: cannot install QEMU, busybox-static or the guest kernel (run scripts/qemu-assets.sh as root)"
command -v apt-get >/dev/null || unavailable "no apt-get: install qemu-system-x86_64, a static /bin/busybox and build/qemu/vmlinuz by hand"

# One run at a time (apt's own lock would make a second one fail).
exec 9>"$out/.lock"
flock 9
if have_tools && have_kernel; then rm -f "$out/unavailable"; exit 0; fi

export DEBIAN_FRONTEND=noninteractive
updated=
apt_update() {
  [ -n "$updated" ] && return 0
  updated=1
  apt-get update -qq || unavailable "apt-get update failed"
}

if ! have_tools; then
  # A package list that does not know a package yet needs an update first.
  apt-cache show qemu-system-x86 busybox-static >/dev/null 2>&1 || apt_update
  say "installing qemu-system-x86 busybox-static"
  apt-get install -y -qq --no-install-recommends qemu-system-x86 busybox-static >/dev/null ||
    { apt_update; apt-get install -y -qq --no-install-recommends qemu-system-x86 busybox-static >/dev/null; } ||
    unavailable "apt-get install qemu-system-x86 busybox-static failed"
  have_tools || unavailable "qemu-system-x86_64 or /bin/busybox still missing after apt-get install"
fi

if ! have_kernel; then
  pkg_of() { apt-cache depends linux-image-cloud-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*-cloud-amd64\)$/\1/p' | head -n1; }
  pkg=$(pkg_of)
  [ -n "$pkg" ] || { apt_update; pkg=$(pkg_of); }
  [ -n "$pkg" ] || unavailable "apt-cache depends linux-image-cloud-amd64 names no kernel package"
  work=$(mktemp -d "$out/.work.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  say "downloading $pkg (unpacked into $out, not installed)"
  # apt-get download writes into the current directory; as root it warns that
  # the _apt user cannot write there and downloads unsandboxed, which is fine.
  (cd "$work" && apt-get download -qq "$pkg" 2>&1 | grep -v 'unsandboxed as root' >&2 || true)
  deb=$(ls "$work"/*.deb 2>/dev/null | head -n1)
  [ -n "$deb" ] || unavailable "apt-get download $pkg failed"
  patterns=('./boot/vmlinuz-*')
  for m in "${modules[@]}"; do patterns+=("./lib/modules/*/$m.ko"); done
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" --wildcards "${patterns[@]}"
  rm -rf "$out/modules" "$out/vmlinuz"
  mkdir -p "$out/modules"
  version=
  for m in "${modules[@]}"; do
    f=$(find "$work/lib/modules" -name "$m.ko" | head -n1)
    [ -n "$f" ] || unavailable "$pkg has no $m.ko"
    cp "$f" "$out/modules/$m.ko"
    version=$(basename "${f%%/kernel/*}")
  done
  mv "$work"/boot/vmlinuz-* "$out/vmlinuz"
  # Written last: its presence means the kernel and modules are complete.
  {
    echo "package=$pkg"
    echo "version=$version"
    echo "modules=${modules[*]}"
  } >"$manifest.tmp"
  mv "$manifest.tmp" "$manifest"
fi

rm -f "$out/unavailable"
say "ready: $(qemu-system-x86_64 --version | head -n1), kernel $(sed -n 's/^version=//p' "$manifest")"
