/* memstat.c — a backend's allocation ledger: pointer -> bytes in an
 * open-addressing table (linear probing, tombstones), a mutex around it since
 * the checkpoint writer thread may free while the trainer allocates. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include "kernels/memstat.h"

#define TOMBSTONE ((const void *)1)

struct herd_memstat {
    pthread_mutex_t lock;
    const void **keys;   /* [cap]; NULL empty, TOMBSTONE removed */
    size_t *bytes;       /* [cap] */
    size_t cap, used;    /* used: live + tombstones (the probe length bound) */
    size_t current, peak;
};

herd_memstat *herd_memstat_create(void)
{
    herd_memstat *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    pthread_mutex_init(&s->lock, NULL);
    return s;
}

void herd_memstat_free(herd_memstat *s)
{
    if (!s) return;
    pthread_mutex_destroy(&s->lock);
    free(s->keys);
    free(s->bytes);
    free(s);
}

static size_t slot_of(const void *p, size_t cap)
{
    uintptr_t h = (uintptr_t)p;
    h ^= h >> 17; /* allocations are aligned: mix the high bits down */
    h *= (uintptr_t)0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 7) & (cap - 1);
}

static int grow(herd_memstat *s)
{
    /* sized for the live entries: tombstones go, so churn does not grow it */
    size_t live = 0;
    for (size_t i = 0; i < s->cap; i++) live += s->keys[i] && s->keys[i] != TOMBSTONE;
    size_t cap = 256;
    while (cap < 4 * (live + 1)) cap *= 2;
    const void **keys = calloc(cap, sizeof *keys);
    size_t *bytes = calloc(cap, sizeof *bytes);
    if (!keys || !bytes) {
        free(keys);
        free(bytes);
        return -1;
    }
    size_t used = 0;
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->keys[i] || s->keys[i] == TOMBSTONE) continue;
        size_t j = slot_of(s->keys[i], cap);
        while (keys[j]) j = (j + 1) & (cap - 1);
        keys[j] = s->keys[i];
        bytes[j] = s->bytes[i];
        used++;
    }
    free(s->keys);
    free(s->bytes);
    s->keys = keys;
    s->bytes = bytes;
    s->cap = cap;
    s->used = used;
    return 0;
}

int herd_memstat_add(herd_memstat *s, const void *p, size_t bytes)
{
    pthread_mutex_lock(&s->lock);
    int rc = 0;
    if (2 * (s->used + 1) > s->cap && grow(s)) {
        rc = -1;
    } else {
        size_t j = slot_of(p, s->cap);
        while (s->keys[j] && s->keys[j] != TOMBSTONE) j = (j + 1) & (s->cap - 1);
        if (!s->keys[j]) s->used++;
        s->keys[j] = p;
        s->bytes[j] = bytes;
        s->current += bytes;
        if (s->current > s->peak) s->peak = s->current;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

size_t herd_memstat_remove(herd_memstat *s, const void *p)
{
    size_t b = 0;
    if (!p) return 0;
    pthread_mutex_lock(&s->lock);
    for (size_t j = s->cap ? slot_of(p, s->cap) : 0, n = 0; s->cap && s->keys[j] && n < s->cap;
         j = (j + 1) & (s->cap - 1), n++) {
        if (s->keys[j] != p) continue;
        b = s->bytes[j];
        s->keys[j] = TOMBSTONE;
        s->current -= b;
        break;
    }
    pthread_mutex_unlock(&s->lock);
    return b;
}

size_t herd_memstat_current(const herd_memstat *s) { return s->current; }

size_t herd_memstat_peak(herd_memstat *s, int reset)
{
    pthread_mutex_lock(&s->lock);
    size_t p = s->peak;
    if (reset) s->peak = s->current;
    pthread_mutex_unlock(&s->lock);
    return p;
}
