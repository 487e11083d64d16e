/* xxh64.c — XXH64 (Yann Collet's xxHash, 64-bit), the shard checksum: fast
 * enough (several GB/s) that checksumming a shard costs little next to the
 * disk, and specified publicly, so that any tool can check a shard. */
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <errno.h>
#include <stdlib.h>
#include "checkpoint/internal.h"
#include "checkpoint/safe_file.h"

#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL
#define P4 0x85EBCA77C2B2AE63ULL
#define P5 0x27D4EB2F165667C5ULL

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t rd64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline uint32_t rd32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t round64(uint64_t acc, uint64_t in)
{
    acc += in * P2;
    acc = rotl(acc, 31);
    return acc * P1;
}
static inline uint64_t merge64(uint64_t acc, uint64_t v)
{
    acc ^= round64(0, v);
    return acc * P1 + P4;
}

void ckpt_xxh64_init(ckpt_xxh64_state *s, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->seed = seed;
    s->v[0] = seed + P1 + P2;
    s->v[1] = seed + P2;
    s->v[2] = seed;
    s->v[3] = seed - P1;
}

/* 32-byte stripes, four independent lanes (little-endian host assumed: x86-64, aarch64). */
static const unsigned char *stripes(uint64_t v[4], const unsigned char *p, const unsigned char *end)
{
    uint64_t a = v[0], b = v[1], c = v[2], d = v[3];
    while (p + 32 <= end) {
        a = round64(a, rd64(p));
        b = round64(b, rd64(p + 8));
        c = round64(c, rd64(p + 16));
        d = round64(d, rd64(p + 24));
        p += 32;
    }
    v[0] = a; v[1] = b; v[2] = c; v[3] = d;
    return p;
}

void ckpt_xxh64_update(ckpt_xxh64_state *s, const void *in, size_t len)
{
    const unsigned char *p = in, *end = p + len;
    s->total += len;
    if (s->buflen) {
        size_t k = 32 - s->buflen < len ? 32 - s->buflen : len;
        memcpy(s->buf + s->buflen, p, k);
        s->buflen += k; p += k;
        if (s->buflen < 32) return;
        stripes(s->v, s->buf, s->buf + 32);
        s->buflen = 0;
    }
    p = stripes(s->v, p, end);
    s->buflen = (size_t)(end - p);
    memcpy(s->buf, p, s->buflen);
}

uint64_t ckpt_xxh64_digest(const ckpt_xxh64_state *s)
{
    uint64_t h;
    if (s->total >= 32) {
        h = rotl(s->v[0], 1) + rotl(s->v[1], 7) + rotl(s->v[2], 12) + rotl(s->v[3], 18);
        for (int i = 0; i < 4; i++) h = merge64(h, s->v[i]);
    } else {
        h = s->seed + P5;
    }
    h += s->total;
    const unsigned char *p = s->buf, *end = s->buf + s->buflen;
    while (p + 8 <= end) {
        h ^= round64(0, rd64(p));
        h = rotl(h, 27) * P1 + P4;
        p += 8;
    }
    if (p + 4 <= end) {
        h ^= (uint64_t)rd32(p) * P1;
        h = rotl(h, 23) * P2 + P3;
        p += 4;
    }
    while (p < end) {
        h ^= (uint64_t)(*p) * P5;
        h = rotl(h, 11) * P1;
        p++;
    }
    h ^= h >> 33; h *= P2;
    h ^= h >> 29; h *= P3;
    h ^= h >> 32;
    return h;
}

uint64_t herd_xxh64(const void *p, size_t len, uint64_t seed)
{
    ckpt_xxh64_state s;
    ckpt_xxh64_init(&s, seed);
    ckpt_xxh64_update(&s, p, len);
    return ckpt_xxh64_digest(&s);
}

int ckpt_xxh64_fd(int fd, const char *path, uint64_t *hash, int64_t *size)
{
    size_t cap = 4u << 20;
    unsigned char *buf = malloc(cap);
    if (!buf) {
        fprintf(stderr, "checkpoint: %s: out of memory for the checksum\n", path);
        return -1;
    }
    ckpt_xxh64_state s;
    ckpt_xxh64_init(&s, 0);
    int64_t total = 0;
    for (;;) {
        ssize_t k = pread(fd, buf, cap, (off_t)total);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            fprintf(stderr, "checkpoint: %s: read failed: %s\n", path, strerror(errno));
            free(buf);
            return -1;
        }
        if (k == 0) break;
        ckpt_xxh64_update(&s, buf, (size_t)k);
        total += k;
    }
    free(buf);
    *hash = ckpt_xxh64_digest(&s);
    if (size) *size = total;
    return 0;
}

int herd_xxh64_file(const char *path, uint64_t *hash, int64_t *size)
{
    int fd = herd_safe_open_read(path);   /* a regular file, never through a link */
    if (fd < 0) return -1;
    int rc = ckpt_xxh64_fd(fd, path, hash, size);
    close(fd);
    return rc;
}
