/*
 * Guest side of ivshmem doorbells, in userspace through VFIO: finds the
 * ivshmem-doorbell device (PCI vendor 0x1af4, device 0x1110), binds it to
 * vfio-pci, opens the VFIO container, group and device, maps BAR0 (the
 * registers) and BAR2 (the shared memory) through the VFIO regions, turns on
 * bus mastering in the config region (VFIO leaves it off, and without it no
 * MSI-X message reaches the CPU), and wires every MSI-X vector to an eventfd.
 * Then it runs a script, one command per argument (or per stdin line when
 * there are none), printing a line per step on stdout:
 *
 *   id                 print this peer's id (BAR0 IVPosition)
 *   wait V [MS]        block until vector V's eventfd fires (default 20000 ms; exit 1 on time-out)
 *   ring P V           ring peer P's vector V (BAR0 Doorbell = P << 16 | V)
 *   read OFF LEN       print BAR2[OFF, OFF+LEN) up to the first NUL
 *   write OFF TEXT     copy TEXT and a NUL to BAR2 at OFF
 *   pong N V P         N times: wait for vector V, then ring peer P's vector V
 *   sleep MS | echo TEXT
 *
 * Needs a guest kernel with an IOMMU (`-M q35 -device intel-iommu`,
 * `intel_iommu=on`) and the vfio, vfio_iommu_type1, vfio-pci modules.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

enum { REG_IVPOSITION = 8, REG_DOORBELL = 12 }; /* BAR0; 0 and 4 are INTx mask and status */
enum { MAX_VECTORS = 64 };

static struct {
  char bdf[256];
  int container, group, device;
  struct vfio_region_info bar0, bar2, config;
  volatile uint32_t *regs; /* BAR0 mapped, or NULL: then pread/pwrite on the region */
  uint8_t *mem;            /* BAR2 */
  size_t mem_size;
  int vectors;
  int eventfds[MAX_VECTORS];
} dev;

#define say(...) (printf("doorbell: " __VA_ARGS__), putchar('\n'))

static void die(const char *what) {
  printf("doorbell: FAILED %s: %s\n", what, strerror(errno));
  exit(1);
}

static void fail(const char *fmt, const char *arg) {
  printf("doorbell: FAILED ");
  printf(fmt, arg);
  putchar('\n');
  exit(1);
}

static long read_sysfs_hex(const char *bdf, const char *file) {
  char path[1024], buf[32] = {0};
  snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/%s", bdf, file);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
  fclose(f);
  return strtol(buf, NULL, 16);
}

static void write_sysfs(const char *path, const char *value) {
  int fd = open(path, O_WRONLY);
  if (fd < 0) die(path);
  if (write(fd, value, strlen(value)) < 0) die(path);
  close(fd);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- Finding the device and handing it to vfio-pci ---------------------------------------- */

static void find_device(void) {
  DIR *d = opendir("/sys/bus/pci/devices");
  if (!d) die("opendir /sys/bus/pci/devices");
  dev.bdf[0] = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    if (read_sysfs_hex(e->d_name, "vendor") == 0x1af4 && read_sysfs_hex(e->d_name, "device") == 0x1110) {
      snprintf(dev.bdf, sizeof dev.bdf, "%s", e->d_name);
      break;
    }
  }
  closedir(d);
  if (!dev.bdf[0]) fail("%s", "no ivshmem device (1af4:1110) on the PCI bus");
  say("found ivshmem device %s", dev.bdf);
}

static void bind_vfio(void) {
  char path[1024], link[512];
  snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/driver", dev.bdf);
  ssize_t n = readlink(path, link, sizeof link - 1);
  if (n > 0) {
    link[n] = 0;
    if (strcmp(basename(link), "vfio-pci") == 0) return;
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/driver/unbind", dev.bdf);
    write_sysfs(path, dev.bdf);
  }
  snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/driver_override", dev.bdf);
  write_sysfs(path, "vfio-pci");
  write_sysfs("/sys/bus/pci/drivers_probe", dev.bdf);
  snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/driver", dev.bdf);
  n = readlink(path, link, sizeof link - 1);
  if (n <= 0) fail("%s: vfio-pci did not bind it (is the IOMMU on? intel_iommu=on, -device intel-iommu)", dev.bdf);
  link[n] = 0;
  say("bound %s to %s", dev.bdf, basename(link));
}

/* ---- VFIO ---------------------------------------------------------------------------------- */

static void region_info(int index, struct vfio_region_info *info) {
  memset(info, 0, sizeof *info);
  info->argsz = sizeof *info;
  info->index = (uint32_t)index;
  if (ioctl(dev.device, VFIO_DEVICE_GET_REGION_INFO, info) != 0) die("VFIO_DEVICE_GET_REGION_INFO");
}

static void *map_region(const struct vfio_region_info *info) {
  if (!(info->flags & VFIO_REGION_INFO_FLAG_MMAP)) return NULL;
  void *p = mmap(NULL, info->size, PROT_READ | PROT_WRITE, MAP_SHARED, dev.device, (off_t)info->offset);
  return p == MAP_FAILED ? NULL : p;
}

static void open_vfio(void) {
  char path[1024], link[512];
  snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/iommu_group", dev.bdf);
  ssize_t n = readlink(path, link, sizeof link - 1);
  if (n <= 0) die("iommu_group (no IOMMU: boot with intel_iommu=on and -device intel-iommu)");
  link[n] = 0;
  snprintf(path, sizeof path, "/dev/vfio/%s", basename(link));

  if ((dev.container = open("/dev/vfio/vfio", O_RDWR)) < 0) die("/dev/vfio/vfio");
  if (ioctl(dev.container, VFIO_GET_API_VERSION) != VFIO_API_VERSION) fail("%s", "unexpected VFIO API version");
  if (!ioctl(dev.container, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU)) fail("%s", "no VFIO type 1 IOMMU");
  for (int i = 0; (dev.group = open(path, O_RDWR)) < 0; i++) { /* devtmpfs makes the node right after the bind */
    if (i == 100) die(path);
    usleep(10000);
  }
  struct vfio_group_status status = {.argsz = sizeof status};
  if (ioctl(dev.group, VFIO_GROUP_GET_STATUS, &status) != 0) die("VFIO_GROUP_GET_STATUS");
  if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE)) fail("%s: group not viable (other devices in it are bound to host drivers)", path);
  if (ioctl(dev.group, VFIO_GROUP_SET_CONTAINER, &dev.container) != 0) die("VFIO_GROUP_SET_CONTAINER");
  if (ioctl(dev.container, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU) != 0) die("VFIO_SET_IOMMU");
  if ((dev.device = ioctl(dev.group, VFIO_GROUP_GET_DEVICE_FD, dev.bdf)) < 0) die("VFIO_GROUP_GET_DEVICE_FD");

  region_info(VFIO_PCI_BAR0_REGION_INDEX, &dev.bar0);
  region_info(VFIO_PCI_BAR2_REGION_INDEX, &dev.bar2);
  region_info(VFIO_PCI_CONFIG_REGION_INDEX, &dev.config);
  dev.regs = map_region(&dev.bar0);
  if (!(dev.mem = map_region(&dev.bar2))) die("mmap BAR2");
  dev.mem_size = dev.bar2.size;
  say("vfio group %s: BAR0 %llu bytes (%s), BAR2 %zu bytes mapped", path, (unsigned long long)dev.bar0.size,
      dev.regs ? "mapped" : "pread/pwrite", dev.mem_size);
}

static uint32_t reg_read(unsigned offset) {
  if (dev.regs) return dev.regs[offset / 4];
  uint32_t v;
  if (pread(dev.device, &v, 4, (off_t)(dev.bar0.offset + offset)) != 4) die("pread BAR0");
  return v;
}

static void reg_write(unsigned offset, uint32_t v) {
  if (dev.regs) {
    dev.regs[offset / 4] = v;
    return;
  }
  if (pwrite(dev.device, &v, 4, (off_t)(dev.bar0.offset + offset)) != 4) die("pwrite BAR0");
}

static void enable_bus_master(void) {
  uint16_t cmd;
  off_t at = (off_t)(dev.config.offset + PCI_COMMAND);
  if (pread(dev.device, &cmd, 2, at) != 2) die("pread PCI_COMMAND");
  cmd |= PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
  if (pwrite(dev.device, &cmd, 2, at) != 2) die("pwrite PCI_COMMAND");
}

static void wire_msix(void) {
  struct vfio_irq_info irq = {.argsz = sizeof irq, .index = VFIO_PCI_MSIX_IRQ_INDEX};
  if (ioctl(dev.device, VFIO_DEVICE_GET_IRQ_INFO, &irq) != 0) die("VFIO_DEVICE_GET_IRQ_INFO");
  if (irq.count == 0) fail("%s", "the device has no MSI-X vectors (ivshmem-doorbell with vectors=N)");
  dev.vectors = irq.count > MAX_VECTORS ? MAX_VECTORS : (int)irq.count;

  size_t size = sizeof(struct vfio_irq_set) + sizeof(int32_t) * (size_t)dev.vectors;
  struct vfio_irq_set *set = calloc(1, size);
  if (!set) die("calloc");
  set->argsz = (uint32_t)size;
  set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
  set->index = VFIO_PCI_MSIX_IRQ_INDEX;
  set->start = 0;
  set->count = (uint32_t)dev.vectors;
  for (int v = 0; v < dev.vectors; v++) {
    if ((dev.eventfds[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) die("eventfd");
    ((int32_t *)set->data)[v] = dev.eventfds[v];
  }
  if (ioctl(dev.device, VFIO_DEVICE_SET_IRQS, set) != 0) die("VFIO_DEVICE_SET_IRQS");
  free(set);
  enable_bus_master(); /* after MSI-X is on: no interrupt arrives without it */
  say("%d MSI-X vector(s) wired to eventfds, bus master on", dev.vectors);
}

/* ---- The script ---------------------------------------------------------------------------- */

/* Blocks until vector v fires; returns how many interrupts the eventfd counted, 0 on time-out. */
static uint64_t wait_vector(int v, int timeout_ms) {
  struct pollfd p = {.fd = dev.eventfds[v], .events = POLLIN};
  for (;;) {
    uint64_t count;
    if (read(dev.eventfds[v], &count, sizeof count) == sizeof count) return count;
    if (errno != EAGAIN) die("read eventfd");
    int r = poll(&p, 1, timeout_ms);
    if (r == 0) return 0;
    if (r < 0 && errno != EINTR) die("poll");
  }
}

static void ring(unsigned peer, unsigned v) {
  __atomic_thread_fence(__ATOMIC_SEQ_CST); /* memory written before the ring is seen before it */
  reg_write(REG_DOORBELL, (peer & 0xffff) << 16 | (v & 0xffff));
}

static int check_vector(long v) {
  if (v < 0 || v >= dev.vectors) {
    printf("doorbell: FAILED no vector %ld (the device has %d)\n", v, dev.vectors);
    exit(1);
  }
  return (int)v;
}

static void check_range(long off, long len) {
  if (off < 0 || len < 0 || (size_t)(off + len) > dev.mem_size) {
    printf("doorbell: FAILED range %ld+%ld outside BAR2 (%zu bytes)\n", off, len, dev.mem_size);
    exit(1);
  }
}

/* The next space-separated word of *p (NULL at the end of the line); *p moves past it. */
static char *word(char **p) {
  char *s = *p + strspn(*p, " \t\r\n");
  if (!*s) return NULL;
  char *e = s + strcspn(s, " \t\r\n");
  *p = *e ? e + 1 : e;
  *e = 0;
  return s;
}

static long number(char **p, const char *cmd) {
  char *w = word(p), *end;
  if (!w) fail("%s: missing a number", cmd);
  long n = strtol(w, &end, 0);
  if (*end) fail("%s: not a number", cmd);
  return n;
}

/* The rest of the line, without leading blanks and the newline. */
static char *rest_of_line(char **p) {
  char *s = *p + strspn(*p, " \t");
  s[strcspn(s, "\r\n")] = 0;
  return s;
}

static void run_command(char *line) {
  char *p = line;
  const char *cmd = word(&p);
  if (!cmd) return;
  if (strcmp(cmd, "id") == 0) {
    say("id %u", reg_read(REG_IVPOSITION));
  } else if (strcmp(cmd, "wait") == 0) {
    int v = check_vector(number(&p, cmd));
    char *t = word(&p);
    int timeout = t ? atoi(t) : 20000;
    double t0 = now_ms();
    uint64_t n = wait_vector(v, timeout);
    if (!n) {
      printf("doorbell: FAILED no ring on vector %d within %d ms\n", v, timeout);
      exit(1);
    }
    say("vector %d fired (count %llu) after %.1f ms", v, (unsigned long long)n, now_ms() - t0);
  } else if (strcmp(cmd, "ring") == 0) {
    long peer = number(&p, cmd), v = number(&p, cmd);
    ring((unsigned)peer, (unsigned)v);
    say("rang peer %ld vector %ld", peer, v);
  } else if (strcmp(cmd, "read") == 0) {
    long off = number(&p, cmd), len = number(&p, cmd);
    check_range(off, len);
    const char *at = (const char *)dev.mem + off;
    say("read %ld: %.*s", off, (int)strnlen(at, (size_t)len), at);
  } else if (strcmp(cmd, "write") == 0) {
    long off = number(&p, cmd);
    const char *text = rest_of_line(&p);
    size_t len = strlen(text);
    check_range(off, (long)len + 1);
    memcpy(dev.mem + off, text, len + 1);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    say("wrote %zu bytes at %ld", len, off);
  } else if (strcmp(cmd, "pong") == 0) {
    long n = number(&p, cmd);
    int v = check_vector(number(&p, cmd));
    long peer = number(&p, cmd);
    for (long i = 0; i < n; i++) {
      if (!wait_vector(v, 20000)) {
        printf("doorbell: FAILED pong %ld of %ld: no ring within 20000 ms\n", i, n);
        exit(1);
      }
      ring((unsigned)peer, (unsigned)v);
    }
    say("ponged %ld rings on vector %d to peer %ld", n, v, peer);
  } else if (strcmp(cmd, "sleep") == 0) {
    usleep((useconds_t)number(&p, cmd) * 1000);
  } else if (strcmp(cmd, "echo") == 0) {
    say("%s", rest_of_line(&p));
  } else {
    fail("unknown command '%s'", cmd);
  }
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  find_device();
  bind_vfio();
  open_vfio();
  wire_msix();
  say("ready: id %u, %d vector(s), BAR2 %zu bytes", reg_read(REG_IVPOSITION), dev.vectors, dev.mem_size);
  if (argc > 1) {
    for (int i = 1; i < argc; i++) run_command(argv[i]);
  } else {
    char line[4096];
    while (fgets(line, sizeof line, stdin)) run_command(line);
  }
  say("done");
  return 0;
}
