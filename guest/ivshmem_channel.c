/*
 * Guest side of a Channel over ivshmem-plain memory: finds the ivshmem
 * devices (PCI vendor 0x1af4, device 0x1110) in PCI address order, maps BAR2
 * of each (the host's shared memory object, byte for byte), attaches the
 * first as the channel it receives on and the second as the one it sends on
 * (include/interprocess.h; the host's pids mean nothing here: foreign), and
 * echoes N messages reversed. `ivshmem_channel N`.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "interprocess.h"

static int read_hex(const char *dir, const char *file) {
  char path[512], buf[32] = {0};
  snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/%s", dir, file);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
  fclose(f);
  return (int)strtol(buf, NULL, 16);
}

static int by_name(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

static void attach(const char *dev, struct ipx_channel *ch) {
  char path[512];
  snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/resource2", dev);
  int fd = open(path, O_RDWR | O_SYNC);
  if (fd < 0) { perror(path); exit(1); }
  struct stat st;
  if (fstat(fd, &st) != 0) { perror("fstat"); exit(1); }
  void *base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) { perror("mmap"); exit(1); }
  int r = ipx_channel_attach(ch, base, fd);
  if (r) { fprintf(stderr, "%s: not a channel (%s)\n", dev, strerror(r)); exit(1); }
  ipx_channel_set_foreign(ch, 1);
}

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: ivshmem_channel N\n"); return 2; }
  long n = atol(argv[1]);
  char devs[8][256];
  int found = 0;
  DIR *d = opendir("/sys/bus/pci/devices");
  if (!d) { perror("opendir"); return 1; }
  for (struct dirent *e; (e = readdir(d)) && found < 8;) {
    if (e->d_name[0] == '.') continue;
    if (read_hex(e->d_name, "vendor") == 0x1af4 && read_hex(e->d_name, "device") == 0x1110)
      snprintf(devs[found++], sizeof devs[0], "%s", e->d_name);
  }
  closedir(d);
  if (found < 2) { fprintf(stderr, "found %d ivshmem devices, need 2\n", found); return 1; }
  qsort(devs, (size_t)found, sizeof devs[0], by_name);
  struct ipx_channel in, out;
  attach(devs[0], &in);
  attach(devs[1], &out);
  printf("ivshmem ready: %s -> %s, max %u\n", devs[0], devs[1], in.max_message);
  fflush(stdout);
  uint8_t *buf = malloc(in.max_message);
  for (long k = 0; k < n; k++) {
    uint32_t len;
    int r = ipx_channel_receive(&in, buf, in.max_message, &len, 30000);
    if (r) { fprintf(stderr, "receive %ld: %s\n", k, strerror(r)); return 1; }
    for (uint32_t i = 0; i < len / 2; i++) { uint8_t t = buf[i]; buf[i] = buf[len - 1 - i]; buf[len - 1 - i] = t; }
    if ((r = ipx_channel_send(&out, buf, len, 30000))) { fprintf(stderr, "send %ld: %s\n", k, strerror(r)); return 1; }
  }
  printf("ivshmem echoed %ld\n", n);
  return 0;
}
