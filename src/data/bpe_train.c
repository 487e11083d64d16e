/* bpe_train.c — learn a byte-level BPE vocabulary from text.
 *
 * The text is pre-split exactly as encode does (documents separated by NUL
 * bytes are split there too), identical pieces are counted once with their
 * frequency, and the most frequent adjacent pair of symbols is merged into a
 * new token until the vocabulary has n_regular tokens. Token k's rank is k, so
 * tiktoken's rank-driven merge replays the learned merges in order.
 *
 * Cost: pair counts are kept incrementally (a lazy max-heap of (count, pair)
 * and, per pair, the words that contain it), so a merge touches only the words
 * that hold its pair: seconds for thousands of merges over megabytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/data/tokenizer.h"
#include "src/data/tokenizer_impl.h"

typedef struct {
    const unsigned char *p;  /* the piece in the input text */
    uint32_t  len;           /* bytes */
    uint32_t  n_sym;         /* current symbols */
    uint64_t  sym;           /* offset of its symbols in the pool */
    int64_t   freq;
    uint32_t  stamp;         /* last merge that rewrote it */
} word;

typedef struct {
    uint64_t  key;           /* a << 32 | b */
    int64_t   count;
    uint32_t *words, n_words, cap_words;
} pair;

typedef struct { int64_t count; uint64_t key; } heap_ent;

typedef struct {
    word     *w;    size_t n_w, cap_w;
    uint32_t *wtab; size_t wtab_cap;     /* piece -> word index + 1 */
    uint32_t *pool; size_t pool_n;
    pair     *pr;   size_t n_pr, cap_pr;
    uint32_t *ptab; size_t ptab_cap;     /* pair key -> pair index + 1 */
    heap_ent *hp;   size_t n_hp, cap_hp;
    int       oom;
} trainer;

static void *grow(void *p, size_t *cap, size_t need, size_t elem, int *oom)
{
    if (need <= *cap) return p;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(p, c * elem);
    if (!q) {
        *oom = 1;
        return p;
    }
    *cap = c;
    return q;
}

/* ---- words ---------------------------------------------------------------- */

static int rehash_words(trainer *T)
{
    size_t cap = T->wtab_cap ? 2 * T->wtab_cap : 1 << 16;
    uint32_t *tab = calloc(cap, sizeof *tab);
    if (!tab) return -1;
    for (size_t i = 0; i < T->n_w; i++) {
        size_t s = herd_tok_hash(T->w[i].p, T->w[i].len) & (cap - 1);
        while (tab[s]) s = (s + 1) & (cap - 1);
        tab[s] = (uint32_t)i + 1;
    }
    free(T->wtab);
    T->wtab = tab;
    T->wtab_cap = cap;
    return 0;
}

static int add_piece(trainer *T, const unsigned char *p, size_t n)
{
    if (2 * (T->n_w + 1) > T->wtab_cap && rehash_words(T)) return -1;
    size_t s = herd_tok_hash(p, n) & (T->wtab_cap - 1);
    for (; T->wtab[s]; s = (s + 1) & (T->wtab_cap - 1)) {
        word *w = &T->w[T->wtab[s] - 1];
        if (w->len == n && !memcmp(w->p, p, n)) {
            w->freq++;
            return 0;
        }
    }
    T->w = grow(T->w, &T->cap_w, T->n_w + 1, sizeof *T->w, &T->oom);
    if (T->oom) return -1;
    T->w[T->n_w] = (word){p, (uint32_t)n, (uint32_t)n, 0, 1, 0};
    T->wtab[s] = (uint32_t)++T->n_w;
    return 0;
}

/* ---- pairs and the heap ------------------------------------------------------ */

static void heap_push(trainer *T, int64_t count, uint64_t key)
{
    T->hp = grow(T->hp, &T->cap_hp, T->n_hp + 1, sizeof *T->hp, &T->oom);
    if (T->oom) return;
    size_t i = T->n_hp++;
    heap_ent e = {count, key};
    while (i > 0) {
        size_t up = (i - 1) / 2;
        heap_ent u = T->hp[up];
        if (u.count > e.count || (u.count == e.count && u.key < e.key)) break;
        T->hp[i] = u;
        i = up;
    }
    T->hp[i] = e;
}

static heap_ent heap_pop(trainer *T)
{
    heap_ent top = T->hp[0], e = T->hp[--T->n_hp];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= T->n_hp) break;
        if (c + 1 < T->n_hp && (T->hp[c + 1].count > T->hp[c].count ||
                                (T->hp[c + 1].count == T->hp[c].count && T->hp[c + 1].key < T->hp[c].key)))
            c++;
        if (e.count > T->hp[c].count || (e.count == T->hp[c].count && e.key <= T->hp[c].key)) break;
        T->hp[i] = T->hp[c];
        i = c;
    }
    T->hp[i] = e;
    return top;
}

static uint64_t key_hash(uint64_t k)
{
    k = (k ^ (k >> 31)) * 0x9E3779B97F4A7C15ull;
    return k ^ (k >> 29);
}

static int rehash_pairs(trainer *T)
{
    size_t cap = T->ptab_cap ? 2 * T->ptab_cap : 1 << 16;
    uint32_t *tab = calloc(cap, sizeof *tab);
    if (!tab) return -1;
    for (size_t i = 0; i < T->n_pr; i++) {
        size_t s = key_hash(T->pr[i].key) & (cap - 1);
        while (tab[s]) s = (s + 1) & (cap - 1);
        tab[s] = (uint32_t)i + 1;
    }
    free(T->ptab);
    T->ptab = tab;
    T->ptab_cap = cap;
    return 0;
}

/* The pair of key, created with count 0 if new (NULL when out of memory). */
static pair *pair_get(trainer *T, uint64_t key, int create)
{
    if (create && 2 * (T->n_pr + 1) > T->ptab_cap && rehash_pairs(T)) {
        T->oom = 1;
        return NULL;
    }
    if (!T->ptab_cap) return NULL;
    size_t s = key_hash(key) & (T->ptab_cap - 1);
    for (; T->ptab[s]; s = (s + 1) & (T->ptab_cap - 1))
        if (T->pr[T->ptab[s] - 1].key == key) return &T->pr[T->ptab[s] - 1];
    if (!create) return NULL;
    T->pr = grow(T->pr, &T->cap_pr, T->n_pr + 1, sizeof *T->pr, &T->oom);
    if (T->oom) return NULL;
    T->pr[T->n_pr] = (pair){key, 0, NULL, 0, 0};
    T->ptab[s] = (uint32_t)++T->n_pr;
    return &T->pr[T->n_pr - 1];
}

/* count += delta for pair (a, b); with wi != UINT32_MAX, note that word wi holds it. */
static void pair_add(trainer *T, uint32_t a, uint32_t b, int64_t delta, uint32_t wi)
{
    uint64_t key = (uint64_t)a << 32 | b;
    pair *p = pair_get(T, key, 1);
    if (!p) return;
    p->count += delta;
    if (wi != UINT32_MAX) {
        size_t cap = p->cap_words;
        p->words = grow(p->words, &cap, (size_t)p->n_words + 1, sizeof *p->words, &T->oom);
        if (T->oom) return;
        p->cap_words = (uint32_t)cap;
        p->words[p->n_words++] = wi;
    }
    if (p->count > 0) heap_push(T, p->count, key);
}

/* ---- tokens -------------------------------------------------------------------- */

/* The id of the bytes of a followed by b: an existing token, or a new one. */
static uint32_t new_token(herd_tokenizer *t, uint32_t a, uint32_t b, int *oom)
{
    size_t la = t->len[a], lb = t->len[b];
    if (t->bytes_len + la + lb > t->bytes_cap) {
        size_t cap = 2 * t->bytes_cap + la + lb;
        unsigned char *p = realloc(t->bytes, cap);
        if (!p) {
            *oom = 1;
            return 0;
        }
        t->bytes = p;
        t->bytes_cap = cap;
    }
    unsigned char *dst = t->bytes + t->bytes_len;
    memmove(dst, t->bytes + t->off[a], la);
    memmove(dst + la, t->bytes + t->off[b], lb);
    uint32_t have = herd_tok_rank(t, dst, la + lb);
    if (have != UINT32_MAX) return have; /* another merge order made these bytes already */
    uint32_t id = t->n++;
    t->off[id] = t->bytes_len;
    t->len[id] = (uint32_t)(la + lb);
    t->bytes_len += la + lb;
    herd_tok_insert(t, id);
    return id;
}

static void trainer_free(trainer *T)
{
    for (size_t i = 0; i < T->n_pr; i++) free(T->pr[i].words);
    free(T->pr);
    free(T->ptab);
    free(T->w);
    free(T->wtab);
    free(T->pool);
    free(T->hp);
}

int herd_tokenizer_train(herd_tokenizer **out, const unsigned char *text, size_t n, int n_regular)
{
    return herd_tokenizer_train_opts(out, text, n, n_regular, 0);
}

/* A piece of ASCII digits only (the pre-split keeps numbers in pieces of their own). */
static int all_digits(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9') return 0;
    return n > 0;
}

int herd_tokenizer_train_opts(herd_tokenizer **out, const unsigned char *text, size_t n, int n_regular,
                              int split_digits)
{
    *out = NULL;
    if (n_regular < 256) {
        fprintf(stderr, "herd: train-tokenizer: vocab_size %d: must be at least 256 (the bytes)\n",
                n_regular);
        return -1;
    }
    herd_tokenizer *t;
    if (herd_tok_alloc(&t, (uint32_t)n_regular, 4096)) return -1;
    t->table_cap = 64;
    while (t->table_cap < 2 * (uint64_t)n_regular) t->table_cap *= 2;
    t->table = malloc(sizeof(uint32_t) * t->table_cap);
    if (!t->table) {
        herd_tokenizer_free(t);
        return -1;
    }
    memset(t->table, 0xFF, sizeof(uint32_t) * t->table_cap);
    for (int b = 0; b < 256; b++) {
        t->bytes[b] = (unsigned char)b;
        t->off[b] = (uint64_t)b;
        t->len[b] = 1;
        t->n++;
        herd_tok_insert(t, (uint32_t)b);
    }
    t->bytes_len = 256;

    trainer T = {0};
    int rc = 0;
    /* pieces of each NUL-separated document */
    for (size_t d = 0; d < n && rc == 0;) {
        const unsigned char *z = memchr(text + d, 0, n - d);
        size_t e = z ? (size_t)(z - text) : n;
        for (size_t i = d; i < e && rc == 0;) {
            size_t j = herd_pretok_next(text, e, i);
            /* split_digits: numbers never enter the statistics, so no merge joins two
             * digits and every number encodes digit by digit (LLaMA 1/2's choice;
             * Llama 3 merges up to 3 digits) */
            if (!(split_digits && all_digits(text + i, j - i))) rc = add_piece(&T, text + i, j - i);
            i = j;
        }
        d = e + 1;
    }
    size_t total = 0;
    for (size_t i = 0; i < T.n_w; i++) total += T.w[i].len;
    T.pool = malloc(sizeof(uint32_t) * (total ? total : 1));
    if (!T.pool) rc = -1;
    for (size_t i = 0; i < T.n_w && rc == 0; i++) {
        word *w = &T.w[i];
        w->sym = T.pool_n;
        for (uint32_t k = 0; k < w->len; k++) T.pool[T.pool_n++] = w->p[k];
        for (uint32_t k = 0; k + 1 < w->len; k++)
            pair_add(&T, w->p[k], w->p[k + 1], w->freq, (uint32_t)i);
    }
    uint32_t merge = 0;
    while (rc == 0 && !T.oom && t->n < (uint32_t)n_regular && T.n_hp) {
        heap_ent top = heap_pop(&T);
        pair *p = pair_get(&T, top.key, 0);
        if (!p || p->count != top.count || top.count < 1) continue; /* stale */
        uint32_t a = (uint32_t)(top.key >> 32), b = (uint32_t)top.key;
        uint32_t c = new_token(t, a, b, &T.oom);
        if (T.oom) break;
        merge++;
        /* the list may grow while we walk it (new pairs never equal (a, b)) */
        uint32_t n_list = p->n_words;
        uint32_t *list = p->words;
        p->words = NULL;
        p->n_words = p->cap_words = 0;
        for (uint32_t li = 0; li < n_list && !T.oom; li++) {
            uint32_t wi = list[li];
            word *w = &T.w[wi];
            if (w->stamp == merge) continue;
            w->stamp = merge;
            uint32_t *s = T.pool + w->sym;
            uint32_t L = w->n_sym, j = 0;
            int found = 0;
            for (uint32_t k = 0; k + 1 < L; k++) found |= s[k] == a && s[k + 1] == b;
            if (!found) continue;
            for (uint32_t k = 0; k + 1 < L; k++) pair_add(&T, s[k], s[k + 1], -w->freq, UINT32_MAX);
            for (uint32_t k = 0; k < L;) {
                if (k + 1 < L && s[k] == a && s[k + 1] == b) s[j++] = c, k += 2;
                else s[j++] = s[k++];
            }
            w->n_sym = j;
            for (uint32_t k = 0; k + 1 < j; k++)
                pair_add(&T, s[k], s[k + 1], w->freq, s[k] == c || s[k + 1] == c ? wi : UINT32_MAX);
        }
        free(list);
    }
    if (T.oom) rc = -1;
    trainer_free(&T);
    if (rc) {
        fprintf(stderr, "herd: train-tokenizer: out of memory\n");
        herd_tokenizer_free(t);
        return -1;
    }
    if (t->n < (uint32_t)n_regular)
        fprintf(stderr, "herd: train-tokenizer: the text has no more pairs to merge: %u tokens, "
                        "not %d\n", t->n, n_regular);
    *out = t;
    return 0;
}
