/*
 * A C program speaking interprocess's frame format (docs/framing.md): each
 * frame is a 4-byte unsigned big-endian payload length, then the payload.
 *
 *   frame_peer reverse|upper   echo every frame back, reversed or uppercased
 *   frame_peer truncate        write the frame "ok", then a frame cut short
 *
 * Frames are read from descriptor 3 when it is open (a parent's extra pipe),
 * otherwise from stdin; replies go to descriptor 4 when open, else stdout.
 * Exit status: 0 at end of input on a frame boundary, 3 when input ends
 * inside a frame, 4 for a frame larger than MAX_FRAME, 1 for other errors.
 * On exit, stderr gets "frame_peer: N frames, B bytes".
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FRAME (16u * 1024 * 1024)

/* Reads exactly n bytes unless input ends first; returns the count read, or -1. */
static ssize_t read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r == 0)
            break;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/*
 * Header and payload in one writev(), so a frame of at most PIPE_BUF - 4
 * bytes reaches a pipe in one piece even with other writers on it; larger
 * ones may be written in parts, hence the loop.
 */
static int write_frame(int fd, const void *payload, uint32_t len)
{
    unsigned char h[4] = { len >> 24, len >> 16, len >> 8, len };
    struct iovec iov[2] = { { h, 4 }, { (void *)payload, len } };
    struct iovec *v = iov;
    int cnt = 2;
    while (cnt > 0) {
        ssize_t w = writev(fd, v, cnt);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        while (cnt > 0 && (size_t)w >= v->iov_len) {
            w -= (ssize_t)v->iov_len;
            v++;
            cnt--;
        }
        if (cnt > 0) {
            v->iov_base = (char *)v->iov_base + w;
            v->iov_len -= (size_t)w;
        }
    }
    return 0;
}

static int fd_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    int in = fd_open(3) ? 3 : 0;
    int out = fd_open(4) ? 4 : 1;
    unsigned long frames = 0, bytes = 0;
    int status = 0;

    if (strcmp(mode, "truncate") == 0) {
        static const unsigned char cut[] = { 0, 0, 0, 100, 'o', 'n', 'l', 'y', ' ', 's', 'o', 'm', 'e' };
        if (write_frame(out, "ok", 2) < 0 || write(out, cut, sizeof cut) != (ssize_t)sizeof cut) {
            perror("frame_peer: write");
            return 1;
        }
        return 0;
    }
    if (strcmp(mode, "reverse") != 0 && strcmp(mode, "upper") != 0) {
        fprintf(stderr, "usage: frame_peer reverse|upper|truncate\n");
        return 1;
    }

    unsigned char *buf = malloc(MAX_FRAME);
    if (!buf) {
        perror("frame_peer: malloc");
        return 1;
    }
    for (;;) {
        unsigned char h[4];
        ssize_t r = read_full(in, h, 4);
        if (r == 0)
            break; /* end of input between frames */
        if (r < 0) {
            perror("frame_peer: read");
            status = 1;
            break;
        }
        if (r < 4) {
            fprintf(stderr, "frame_peer: truncated header (%zd of 4 bytes)\n", r);
            status = 3;
            break;
        }
        uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
        if (len > MAX_FRAME) {
            fprintf(stderr, "frame_peer: frame of %u bytes is too large\n", len);
            status = 4;
            break;
        }
        r = read_full(in, buf, len);
        if (r < 0) {
            perror("frame_peer: read");
            status = 1;
            break;
        }
        if ((size_t)r < len) {
            fprintf(stderr, "frame_peer: truncated payload (%zd of %u bytes)\n", r, len);
            status = 3;
            break;
        }
        if (mode[0] == 'r') {
            for (uint32_t i = 0; i < len / 2; i++) {
                unsigned char t = buf[i];
                buf[i] = buf[len - 1 - i];
                buf[len - 1 - i] = t;
            }
        } else {
            for (uint32_t i = 0; i < len; i++)
                buf[i] = (unsigned char)toupper(buf[i]);
        }
        if (write_frame(out, buf, len) < 0) {
            perror("frame_peer: write");
            status = 1;
            break;
        }
        frames++;
        bytes += len;
    }
    fprintf(stderr, "frame_peer: %lu frames, %lu bytes\n", frames, bytes);
    free(buf);
    return status;
}
