// The C side of examples/channel-c.mjs: a sender on the Channel /NAME that a
// Node process created and receives from (include/interprocess.h).
//   channel_sender /NAME N   sends N messages, then detaches
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interprocess.h"

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  struct ipx_channel ch;
  int r = ipx_channel_open(&ch, argv[1]);  // shm_open + mmap + checks the layout
  if (r != 0) {
    fprintf(stderr, "ipx_channel_open: %s\n", strerror(r));
    return 1;
  }
  for (int i = 1, n = atoi(argv[2]); i <= n && r == 0; i++) {
    char text[64];
    int len = snprintf(text, sizeof text, "message %d from C", i);
    r = ipx_channel_send(&ch, text, (uint32_t)len, 5000);  // waits up to 5 s while the ring is full
  }
  if (r != 0) fprintf(stderr, "ipx_channel_send: %s\n", strerror(r));
  ipx_channel_close(&ch);  // gives the sender slot back; the channel stays
  return r != 0;
}
