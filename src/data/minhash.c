/* minhash.c — near-duplicate documents by MinHash and LSH banding.
 *
 * A document is the set of its word shingles (shingle consecutive words,
 * ASCII lower-cased; a document of fewer words is one shingle). Its signature
 * is, for each of perms hash functions, the minimum hash over the set: two
 * signatures agree in a position with probability equal to the Jaccard
 * similarity of the sets. LSH: the signature is cut into bands of rows; two
 * documents that agree on a whole band become candidates (probability
 * 1 - (1 - s^rows)^bands, an S-curve around the threshold), and a candidate is
 * confirmed by the share of agreeing positions over the whole signature.
 * Documents are visited in order; the first of a group is kept.
 */
#include <stdlib.h>
#include <string.h>
#include "src/data/curate.h"
#include "src/base/rng.h"

static int word_byte(unsigned char c)
{
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Hashes of the words of s, into *w (malloc'ed); the count, -1 out of memory. */
static long word_hashes(const unsigned char *s, size_t n, uint64_t **w)
{
    size_t cap = 64, k = 0;
    uint64_t *h = malloc(sizeof *h * cap);
    if (!h) return -1;
    for (size_t i = 0; i < n;) {
        while (i < n && !word_byte(s[i])) i++;
        if (i == n) break;
        uint64_t x = 0xCBF29CE484222325ull;
        while (i < n && word_byte(s[i])) {
            unsigned char c = s[i++];
            if (c >= 'A' && c <= 'Z') c = (unsigned char)(c + 32);
            x = (x ^ c) * 0x100000001B3ull;
        }
        if (k == cap) {
            uint64_t *p = realloc(h, sizeof *h * (cap *= 2));
            if (!p) {
                free(h);
                return -1;
            }
            h = p;
        }
        h[k++] = x;
    }
    *w = h;
    return (long)k;
}

/* sig[perms]: the MinHash signature of s. -1 out of memory. */
static int signature(const herd_curate_params *p, const unsigned char *s, size_t n, uint32_t *sig)
{
    uint64_t *w;
    long nw = word_hashes(s, n, &w);
    if (nw < 0) return -1;
    for (int i = 0; i < p->minhash_perms; i++) sig[i] = UINT32_MAX;
    long k = p->shingle;
    long n_sh = nw >= k ? nw - k + 1 : (nw > 0 ? 1 : 0);
    for (long j = 0; j < n_sh; j++) {
        uint64_t sh = 0x736869ull; /* "shi" */
        for (long t = j; t < j + k && t < nw; t++) sh = herd_splitmix64(sh ^ w[t]);
        for (int i = 0; i < p->minhash_perms; i++) {
            uint32_t v = (uint32_t)(herd_splitmix64(sh ^ herd_splitmix64(p->seed + (uint64_t)i)) >> 32);
            if (v < sig[i]) sig[i] = v;
        }
    }
    free(w);
    return 0;
}

static double agree(const uint32_t *a, const uint32_t *b, int perms)
{
    int k = 0;
    for (int i = 0; i < perms; i++) k += a[i] == b[i];
    return (double)k / perms;
}

double herd_minhash_similarity(const herd_curate_params *p, const unsigned char *a, size_t na,
                               const unsigned char *b, size_t nb)
{
    uint32_t *sa = malloc(sizeof(uint32_t) * 2 * (size_t)p->minhash_perms);
    if (!sa) return -1;
    uint32_t *sb = sa + p->minhash_perms;
    double s = -1;
    if (signature(p, a, na, sa) == 0 && signature(p, b, nb, sb) == 0) s = agree(sa, sb, p->minhash_perms);
    free(sa);
    return s;
}

typedef struct { uint64_t key; uint32_t doc; uint32_t used; } slot;

long herd_minhash_dedup(const herd_curate_params *p, herd_doc *docs, size_t n)
{
    int perms = p->minhash_perms, bands = p->minhash_bands, rows = perms / bands;
    size_t cap = 64;
    while (cap < 2 * n * (size_t)bands + 1) cap *= 2;
    slot *tab = calloc(cap, sizeof *tab);
    uint32_t *sig = malloc(sizeof(uint32_t) * (size_t)perms * (n ? n : 1));
    if (!tab || !sig) {
        free(tab);
        free(sig);
        return -1;
    }
    long marked = 0;
    for (size_t j = 0; j < n; j++) {
        if (!docs[j].keep) continue;
        uint32_t *sj = sig + j * (size_t)perms;
        if (signature(p, docs[j].p, docs[j].n, sj)) {
            marked = -1;
            break;
        }
        uint64_t keys[1024];
        int dup = 0;
        for (int b = 0; b < bands && !dup; b++) {
            uint64_t k = herd_splitmix64(0x6c7368ull + (uint64_t)b); /* "lsh", per band */
            for (int r = 0; r < rows; r++) k = herd_splitmix64(k ^ sj[b * rows + r]);
            keys[b] = k;
            for (size_t s = k & (cap - 1); tab[s].used; s = (s + 1) & (cap - 1))
                if (tab[s].key == k && agree(sig + (size_t)tab[s].doc * (size_t)perms, sj, perms) >=
                                           p->minhash_threshold) {
                    dup = 1;
                    break;
                }
        }
        if (dup) {
            docs[j].keep = 0;
            marked++;
            continue;
        }
        for (int b = 0; b < bands; b++) {
            size_t s = keys[b] & (cap - 1);
            while (tab[s].used) s = (s + 1) & (cap - 1);
            tab[s] = (slot){keys[b], (uint32_t)j, 1};
        }
    }
    free(tab);
    free(sig);
    return marked;
}
