/* names.c — a hash index from names to array indices, so that matching the
 * nodes and switches of a topology.conf (tens of thousands of names) against
 * each other costs one probe a name instead of a scan of all of them.
 *
 * Open addressing with linear probing over (hash, index + 1) pairs, 0 marking
 * an empty slot; the names themselves stay in the caller's arrays. Several
 * entries may share a hash (or a key): herd_names_find() asks the caller's
 * match() about each and returns the smallest index that matches, so that a
 * lookup finds what a scan in array order would find first.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "topology/topo_internal.h"

/* FNV-1a, 32 bits: short host names; a collision costs a longer probe only */
static unsigned hash_name(const char *s, size_t len)
{
    unsigned h = 2166136261u;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static void put(herd_names_slot *slot, size_t cap, herd_names_slot e)
{
    size_t k = e.hash & (cap - 1);
    while (slot[k].idx1) k = (k + 1) & (cap - 1);
    slot[k] = e;
}

static int grow(herd_names *x)
{
    size_t cap = x->cap ? 2 * x->cap : 64;
    herd_names_slot *slot = calloc(cap, sizeof *slot);
    if (!slot) return -1;
    for (size_t i = 0; i < x->cap; i++)
        if (x->slot[i].idx1) put(slot, cap, x->slot[i]);
    free(x->slot);
    x->slot = slot;
    x->cap = cap;
    return 0;
}

int herd_names_add(herd_names *x, const char *key, size_t len, int idx)
{
    /* at most half full: probes stay short */
    if (2 * (x->n + 1) > x->cap && grow(x)) return -1;
    herd_names_slot e = {hash_name(key, len), idx + 1};
    put(x->slot, x->cap, e);
    x->n++;
    return 0;
}

int herd_names_find(const herd_names *x, const char *key, size_t len, herd_names_match match, const void *ctx)
{
    if (!x->cap) return -1;
    unsigned h = hash_name(key, len);
    int best = -1;
    /* every entry of this hash lies between its home slot and the next empty one */
    for (size_t k = h & (x->cap - 1); x->slot[k].idx1; k = (k + 1) & (x->cap - 1)) {
        int idx = x->slot[k].idx1 - 1;
        if (x->slot[k].hash == h && (best < 0 || idx < best) && match(idx, ctx)) best = idx;
    }
    return best;
}

void herd_names_free(herd_names *x)
{
    free(x->slot);
    memset(x, 0, sizeof *x);
}
