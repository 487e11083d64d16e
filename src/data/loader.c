/* loader.c — the mixed-source, resumable, prefetching loader (src/data/loader.h).
 *
 * Every batch is a pure function of the position (struct pos) and the
 * arguments: fill() reads from a copy of the position and returns the advanced
 * one. That is what makes prefetch safe (the thread works on a copy, and its
 * result is taken only if the next call asks for the same batch) and resume
 * exact (the position is the whole state).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/data/data.h"
#include "src/data/loader.h"
#include "src/base/rng.h"

#define STATE_MAGIC "HERDLDR1"
#define STATE_HEAD  48  /* magic, n_sources, T, seed, block, seq, reserved */
#define STATE_PER   40  /* name hash, epoch, offset, credit, weight */
#define UNITS       (1ll << 30) /* weights in fixed point: exact, identical on every rank */

typedef struct {
    char       name[64];
    char       path[HERD_PATH_MAX];
    herd_data *train, *val;
    uint64_t   n;          /* tokens of train */
    uint64_t   n_full;     /* whole blocks */
    uint32_t   eot;
    int64_t    w;          /* weight in UNITS */
    double     val_bpt;    /* bytes per token of val */
    uint64_t   name_hash;
} source;

/* The whole position. */
typedef struct {
    uint64_t seq;                      /* sequences read, all ranks */
    int32_t  T;                        /* of the last batch */
    uint64_t epoch[HERD_MAX_SOURCES];
    uint64_t off[HERD_MAX_SOURCES];    /* token offset in the epoch's block order */
    int64_t  credit[HERD_MAX_SOURCES];
    uint64_t count[HERD_MAX_SOURCES];  /* sequences taken (not saved: a statistic) */
} pos;

typedef struct {
    int       T;
    int64_t   n_global, first, count;
    int32_t  *tok, *tgt, *doc;         /* [count*T] */
    size_t    cap;
    pos       after;
    int       rc;
} batch;

struct herd_loader {
    int        n_src;
    source     src[HERD_MAX_SOURCES];
    uint64_t   seed;
    pos        at;
    int        prefetch;
    pthread_t  thread;
    int        running;   /* a prefetch thread to join */
    batch      ahead;     /* its job and result */
    uint32_t  *win;       /* scratch window [T+1], for the synchronous path */
    size_t     win_cap;
    uint32_t  *val_win;
    size_t     val_win_cap;
};

/* ---- the block order: a seeded bijection of [0, n) (Feistel + cycle walk) ---- */

static uint64_t block_perm(uint64_t x, uint64_t n, uint64_t key)
{
    if (n <= 1) return x;
    int bits = 64 - __builtin_clzll(n - 1);
    int half = (bits + 1) / 2;
    uint64_t mask = (1ull << half) - 1;
    do { /* a permutation of [0, 4^half) restricted to [0, n): walk until inside */
        uint64_t L = x >> half, R = x & mask;
        for (int r = 0; r < 4; r++) {
            uint64_t F = herd_splitmix64(key + (uint64_t)r * 0x632BE59BD9B4E019ull + R) & mask;
            uint64_t t = R;
            R = L ^ F;
            L = t;
        }
        x = L << half | R;
    } while (x >= n);
    return x;
}

static uint64_t epoch_key(const herd_loader *l, int s, uint64_t epoch)
{
    return herd_splitmix64(l->seed ^ herd_splitmix64(l->src[s].name_hash ^ herd_splitmix64(epoch)));
}

/* Physical token index of virtual offset o in the block order of (s, epoch). */
static uint64_t phys(const herd_loader *l, int s, uint64_t key, uint64_t o)
{
    const source *S = &l->src[s];
    uint64_t b = o / HERD_LOADER_BLOCK, r = o % HERD_LOADER_BLOCK;
    if (b < S->n_full) b = block_perm(b, S->n_full, key); /* the tail block stays last */
    return b * HERD_LOADER_BLOCK + r;
}

/* Window of T+1 ids of source s from the position's offset; advances by T. */
static int read_window(const herd_loader *l, int s, pos *p, int T, uint32_t *w, int32_t *tok,
                       int32_t *tgt, int32_t *doc)
{
    const source *S = &l->src[s];
    if (S->n < (uint64_t)T + 1)
        return herd_data_err(S->path, "n_tokens", "%llu tokens are too few for one sequence of %d (source "
                             "\"%s\")", (unsigned long long)S->n, T, S->name);
    if (p->off[s] + (uint64_t)T + 1 > S->n) { /* the epoch's stream is used up */
        p->epoch[s]++;
        p->off[s] = 0;
    }
    uint64_t key = epoch_key(l, s, p->epoch[s]);
    uint64_t o = p->off[s];
    for (int t = 0; t <= T;) { /* block by block */
        uint64_t ph = phys(l, s, key, o + (uint64_t)t);
        int room = HERD_LOADER_BLOCK - (int)((o + (uint64_t)t) % HERD_LOADER_BLOCK);
        int k = room < T + 1 - t ? room : T + 1 - t;
        if (herd_data_read(S->train, ph, (uint64_t)k, w + t)) return herd_data_err(S->path, "tokens", "read failed");
        t += k;
    }
    int32_t dc = 0;
    for (int t = 0; t < T; t++) {
        if (t > 0 && (o + (uint64_t)t) % HERD_LOADER_BLOCK == 0) dc++; /* blocks are not adjacent */
        tok[t] = (int32_t)w[t];
        tgt[t] = (int32_t)w[t + 1];
        doc[t] = dc;
        dc += w[t] == S->eot;
    }
    p->off[s] = o + (uint64_t)T;
    return 0;
}

/* The source of the next sequence: smooth weighted round-robin. */
static int pick(const herd_loader *l, pos *p)
{
    int best = -1;
    int64_t total = 0;
    for (int s = 0; s < l->n_src; s++) {
        if (l->src[s].w <= 0) continue;
        p->credit[s] += l->src[s].w;
        total += l->src[s].w;
        if (best < 0 || p->credit[s] > p->credit[best]) best = s;
    }
    p->credit[best] -= total;
    p->count[best]++;
    return best;
}

/* Fill b from position b->after (in) and leave the advanced position there. */
static void fill(const herd_loader *l, batch *b, uint32_t *w)
{
    pos *p = &b->after;
    b->rc = 0;
    for (int64_t k = 0; k < b->n_global && b->rc == 0; k++) {
        int s = pick(l, p);
        if (k >= b->first && k < b->first + b->count) {
            size_t o = (size_t)(k - b->first) * (size_t)b->T;
            b->rc = read_window(l, s, p, b->T, w, b->tok + o, b->tgt + o, b->doc + o);
        } else { /* another rank's sequence: only the cursor moves (and the epoch rolls) */
            const source *S = &l->src[s];
            if (S->n < (uint64_t)b->T + 1) {
                b->rc = herd_data_err(S->path, "n_tokens", "%llu tokens are too few for one sequence of %d",
                                      (unsigned long long)S->n, b->T);
                break;
            }
            if (p->off[s] + (uint64_t)b->T + 1 > S->n) {
                p->epoch[s]++;
                p->off[s] = 0;
            }
            p->off[s] += (uint64_t)b->T;
        }
    }
    p->seq += (uint64_t)b->n_global;
    p->T = b->T;
}

static void *prefetch_main(void *arg)
{
    herd_loader *l = arg;
    uint32_t *w = malloc(sizeof(uint32_t) * ((size_t)l->ahead.T + 1));
    if (!w) l->ahead.rc = -1;
    else fill(l, &l->ahead, w);
    free(w);
    return NULL;
}

static void join_prefetch(herd_loader *l)
{
    if (!l->running) return;
    pthread_join(l->thread, NULL);
    l->running = 0;
}

static int ensure(int32_t **p, size_t need)
{
    int32_t *q = realloc(*p, sizeof(int32_t) * (need ? need : 1));
    if (!q) return -1;
    *p = q;
    return 0;
}

static int batch_reserve(batch *b, size_t need)
{
    if (need <= b->cap) return 0;
    if (ensure(&b->tok, need) || ensure(&b->tgt, need) || ensure(&b->doc, need))
        return -1;
    b->cap = need;
    return 0;
}

int herd_loader_next(herd_loader *l, int T, int64_t n_global, int64_t first, int64_t count,
                     int32_t *tokens, int32_t *targets, int32_t *doc)
{
    if (T < 1 || n_global < 1 || first < 0 || count < 0 || first + count > n_global)
        return herd_data_err("loader", "batch", "T %d, n_global %lld, first %lld, count %lld: not a slice "
                             "of the global batch", T, (long long)n_global, (long long)first, (long long)count);
    size_t n = (size_t)count * (size_t)T;
    join_prefetch(l);
    batch *a = &l->ahead;
    int hit = a->T == T && a->n_global == n_global && a->first == first && a->count == count;
    if (hit && a->rc == 0) {
        memcpy(tokens, a->tok, sizeof(int32_t) * n);
        memcpy(targets, a->tgt, sizeof(int32_t) * n);
        memcpy(doc, a->doc, sizeof(int32_t) * n);
        l->at = a->after;
    } else {
        if ((size_t)T + 1 > l->win_cap) {
            uint32_t *w = realloc(l->win, sizeof(uint32_t) * ((size_t)T + 1));
            if (!w) return herd_data_err("loader", "window", "out of memory");
            l->win = w;
            l->win_cap = (size_t)T + 1;
        }
        batch b = {T, n_global, first, count, tokens, targets, doc, n, l->at, 0};
        fill(l, &b, l->win);
        if (b.rc) {
            a->T = 0;
            return -1;
        }
        l->at = b.after;
    }
    a->T = 0; /* consumed */
    if (l->prefetch && batch_reserve(a, n) == 0) {
        a->T = T;
        a->n_global = n_global;
        a->first = first;
        a->count = count;
        a->after = l->at;
        a->rc = 0;
        if (pthread_create(&l->thread, NULL, prefetch_main, l) == 0) l->running = 1;
        else a->T = 0;
    }
    return 0;
}

void herd_loader_set_prefetch(herd_loader *l, int on)
{
    join_prefetch(l);
    l->ahead.T = 0;
    l->prefetch = on;
}

/* ---- weights -------------------------------------------------------------- */

static int set_weights(herd_loader *l, const double *w, int n, const char *origin)
{
    if (n != l->n_src)
        return herd_data_err(origin, "weight", "%d weights for %d sources", n, l->n_src);
    double sum = 0;
    for (int s = 0; s < n; s++) {
        if (!(w[s] >= 0) || !isfinite(w[s]))
            return herd_data_err(origin, "weight", "source \"%s\": weight %g is negative or not a number",
                                 l->src[s].name, w[s]);
        sum += w[s];
    }
    if (!(sum > 0)) return herd_data_err(origin, "weight", "every weight is 0: nothing to sample");
    join_prefetch(l);
    l->ahead.T = 0;
    for (int s = 0; s < n; s++) l->src[s].w = (int64_t)llround(w[s] / sum * (double)UNITS);
    int any = 0;
    for (int s = 0; s < n; s++) any |= l->src[s].w > 0;
    if (!any) return herd_data_err(origin, "weight", "the weights are too unequal (ratio beyond 2^30)");
    return 0;
}

int herd_loader_set_weights(herd_loader *l, const double *w, int n)
{
    return set_weights(l, w, n, "loader");
}

/* ---- open / close ------------------------------------------------------------ */

/* Bytes per token of a validation shard: PATH.meta's text_bytes / tokens. */
static double bytes_per_token(herd_data *d, const char *path)
{
    const herd_shard_header *h = herd_data_header(d);
    char meta[HERD_PATH_MAX + 8];
    snprintf(meta, sizeof meta, "%s.meta", path);
    FILE *f = fopen(meta, "r");
    if (f) {
        unsigned long long bytes = 0, toks = 0;
        char key[32];
        unsigned long long v;
        while (fscanf(f, "%31s %llu", key, &v) == 2) {
            if (!strcmp(key, "text_bytes")) bytes = v;
            if (!strcmp(key, "tokens")) toks = v;
        }
        fclose(f);
        if (toks) return (double)bytes / (double)toks;
    }
    if (h->vocab_size == HERD_BYTE_VOCAB && h->n_tokens) /* byte-level: every non-EOT is a byte */
        return (double)(h->n_tokens - h->n_docs) / (double)h->n_tokens;
    return 0;
}

int herd_loader_open_sources(herd_loader **out, const herd_data_source *src, int n_src,
                             uint64_t seed, int model_vocab)
{
    *out = NULL;
    if (n_src < 1 || n_src > HERD_MAX_SOURCES)
        return herd_data_err("data.sources", "sources", "%d sources (1 to %d)", n_src, HERD_MAX_SOURCES);
    herd_loader *l = calloc(1, sizeof *l);
    if (!l) return herd_data_err("loader", "memory", "out of memory");
    l->n_src = n_src;
    l->seed = seed;
    l->prefetch = 1;
    double w[HERD_MAX_SOURCES];
    for (int s = 0; s < n_src; s++) {
        source *S = &l->src[s];
        snprintf(S->name, sizeof S->name, "%s", src[s].name[0] ? src[s].name : "data");
        snprintf(S->path, sizeof S->path, "%s", src[s].path);
        for (int r = 0; r < s; r++)
            if (!strcmp(l->src[r].name, S->name)) {
                herd_loader_close(l);
                return herd_data_err("data.sources", "name", "\"%s\" names two sources", S->name);
            }
        S->name_hash = herd_hash_str(S->name);
        w[s] = src[s].weight;
        if (!src[s].path[0]) {
            herd_loader_close(l);
            return herd_data_err("data.sources", "path", "source \"%s\" has no path", S->name);
        }
        if (herd_data_open(&S->train, src[s].path, model_vocab, seed)) {
            herd_loader_close(l);
            return -1;
        }
        const herd_shard_header *h = herd_data_header(S->train);
        S->n = h->n_tokens;
        S->n_full = S->n / HERD_LOADER_BLOCK;
        S->eot = h->eot_id;
        if (src[s].val_path[0]) {
            if (herd_data_open(&S->val, src[s].val_path, model_vocab, seed)) {
                herd_loader_close(l);
                return -1;
            }
            S->val_bpt = bytes_per_token(S->val, src[s].val_path);
        }
        /* a seeded start of the round-robin, so that the seed decides the interleaving */
        l->at.credit[s] = (int64_t)(herd_splitmix64(seed ^ S->name_hash) % UNITS);
    }
    if (set_weights(l, w, n_src, "data.sources")) {
        herd_loader_close(l);
        return -1;
    }
    *out = l;
    return 0;
}

int herd_loader_open(herd_loader **out, const herd_config *c, int model_vocab)
{
    if (c->data.n_sources > 0) return herd_loader_open_sources(out, c->data.sources, c->data.n_sources, c->train.seed, model_vocab);
    herd_data_source one;
    memset(&one, 0, sizeof one);
    snprintf(one.name, sizeof one.name, "data");
    snprintf(one.path, sizeof one.path, "%s", c->data.path);
    snprintf(one.val_path, sizeof one.val_path, "%s", c->data.val_path);
    one.weight = 1;
    if (!one.path[0]) return herd_data_err("config", "data.path", "no training data: set data.path or data.sources");
    return herd_loader_open_sources(out, &one, 1, c->train.seed, model_vocab);
}

void herd_loader_close(herd_loader *l)
{
    if (!l) return;
    join_prefetch(l);
    for (int s = 0; s < l->n_src; s++) {
        herd_data_close(l->src[s].train);
        herd_data_close(l->src[s].val);
    }
    free(l->ahead.tok);
    free(l->ahead.tgt);
    free(l->ahead.doc);
    free(l->win);
    free(l->val_win);
    free(l);
}

/* ---- state ---------------------------------------------------------------- */

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> 8 * i);
}
static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << 8 * i;
    return v;
}

size_t herd_loader_state_size(const herd_loader *l)
{
    return STATE_HEAD + STATE_PER * (size_t)l->n_src;
}

int herd_loader_get_state(const herd_loader *l, void *buf, size_t size)
{
    if (size < herd_loader_state_size(l))
        return herd_data_err("loader", "state", "buffer of %zu bytes, the state needs %zu", size,
                             herd_loader_state_size(l));
    unsigned char *b = buf;
    memset(b, 0, herd_loader_state_size(l));
    memcpy(b, STATE_MAGIC, 8);
    put64(b + 8, (uint64_t)l->n_src | (uint64_t)(uint32_t)l->at.T << 32);
    put64(b + 16, l->seed);
    put64(b + 24, HERD_LOADER_BLOCK);
    put64(b + 32, l->at.seq);
    for (int s = 0; s < l->n_src; s++) {
        unsigned char *q = b + STATE_HEAD + STATE_PER * (size_t)s;
        put64(q, l->src[s].name_hash);
        put64(q + 8, l->at.epoch[s]);
        put64(q + 16, l->at.off[s]);
        put64(q + 24, (uint64_t)l->at.credit[s]);
        put64(q + 32, (uint64_t)l->src[s].w);
    }
    return 0;
}

int herd_loader_set_state(herd_loader *l, const void *buf, size_t size)
{
    const unsigned char *b = buf;
    if (size < STATE_HEAD || memcmp(b, STATE_MAGIC, 8))
        return herd_data_err("loader state", "magic", "not a loader state (%zu bytes)", size);
    uint64_t w = get64(b + 8);
    int n = (int)(uint32_t)w, T = (int)(uint32_t)(w >> 32);
    if (n != l->n_src || size != herd_loader_state_size(l))
        return herd_data_err("loader state", "n_sources", "the state is for %d sources (%zu bytes), this run "
                             "has %d", n, size, l->n_src);
    if (get64(b + 24) != HERD_LOADER_BLOCK)
        return herd_data_err("loader state", "block", "saved with blocks of %llu tokens, this herd uses %d",
                             (unsigned long long)get64(b + 24), HERD_LOADER_BLOCK);
    if (get64(b + 16) != l->seed)
        return herd_data_err("loader state", "seed", "saved with seed %llu, this run has train.seed %llu",
                             (unsigned long long)get64(b + 16), (unsigned long long)l->seed);
    pos p;
    int64_t w_units[HERD_MAX_SOURCES];
    memset(&p, 0, sizeof p);
    for (int s = 0; s < n; s++) {
        const unsigned char *q = b + STATE_HEAD + STATE_PER * (size_t)s;
        if (get64(q) != l->src[s].name_hash)
            return herd_data_err("loader state", "sources", "source %d of the state is not \"%s\" (the "
                                 "sources were renamed or reordered)", s, l->src[s].name);
        p.epoch[s] = get64(q + 8);
        p.off[s] = get64(q + 16);
        p.credit[s] = (int64_t)get64(q + 24);
        w_units[s] = (int64_t)get64(q + 32);
        if (w_units[s] < 0 || w_units[s] > UNITS)
            return herd_data_err("loader state", "weight", "source \"%s\": weight %lld units is out of range",
                                 l->src[s].name, (long long)w_units[s]);
        /* the round-robin keeps every credit within the sum of the weights
         * of its start: more is a damaged state (and would overflow) */
        if (p.credit[s] < -(int64_t)(n + 1) * UNITS || p.credit[s] > (int64_t)(n + 1) * UNITS)
            return herd_data_err("loader state", "credit", "source \"%s\": credit %lld is out of range",
                                 l->src[s].name, (long long)p.credit[s]);
        if (p.off[s] > l->src[s].n)
            return herd_data_err(l->src[s].path, "loader state", "offset %llu is beyond the %llu tokens of "
                                 "source \"%s\" (another shard?)", (unsigned long long)p.off[s],
                                 (unsigned long long)l->src[s].n, l->src[s].name);
    }
    int64_t total = 0;
    for (int s = 0; s < n; s++) total += w_units[s];
    if (total == 0) return herd_data_err("loader state", "weight", "every source has weight 0");
    p.seq = get64(b + 32);
    p.T = T;
    join_prefetch(l);
    l->ahead.T = 0;
    l->at = p;
    /* the weights of the stage the state was saved in; a new stage calls
     * herd_loader_set_weights after this */
    for (int s = 0; s < n; s++) l->src[s].w = w_units[s];
    return 0;
}

/* ---- sources and validation ------------------------------------------------------- */

int herd_loader_n_sources(const herd_loader *l) { return l->n_src; }
const char *herd_loader_source_name(const herd_loader *l, int i)
{
    return i >= 0 && i < l->n_src ? l->src[i].name : NULL;
}
uint64_t herd_loader_source_count(const herd_loader *l, int i)
{
    return i >= 0 && i < l->n_src ? l->at.count[i] : 0;
}

static int val_src(const herd_loader *l, int v)
{
    for (int s = 0; s < l->n_src; s++)
        if (l->src[s].val && v-- == 0) return s;
    return -1;
}

int herd_loader_n_val_sources(const herd_loader *l)
{
    int k = 0;
    for (int s = 0; s < l->n_src; s++) k += l->src[s].val != NULL;
    return k;
}

const char *herd_loader_val_name(const herd_loader *l, int v)
{
    int s = val_src(l, v);
    return s < 0 ? NULL : l->src[s].name;
}

double herd_loader_val_bytes_per_token(const herd_loader *l, int v)
{
    int s = val_src(l, v);
    return s < 0 ? 0 : l->src[s].val_bpt;
}

int herd_loader_val_batch(herd_loader *l, int v, int i, int B, int T, int32_t *tokens,
                          int32_t *targets, int32_t *doc)
{
    int s = val_src(l, v);
    if (s < 0) return herd_data_err("loader", "validation", "no validation source %d", v);
    herd_data *d = l->src[s].val;
    const herd_shard_header *h = herd_data_header(d);
    uint64_t W = herd_data_n_windows(d, T);
    if (W == 0)
        return herd_data_err(l->src[s].name, "val_path", "the validation shard has %llu tokens, too few for "
                             "one sequence of %d", (unsigned long long)h->n_tokens, T);
    if ((size_t)T + 1 > l->val_win_cap) {
        uint32_t *w = realloc(l->val_win, sizeof(uint32_t) * ((size_t)T + 1));
        if (!w) return herd_data_err("loader", "validation", "out of memory");
        l->val_win = w;
        l->val_win_cap = (size_t)T + 1;
    }
    uint32_t *w = l->val_win;
    for (int b = 0; b < B; b++) {
        uint64_t start = (((uint64_t)i * (uint64_t)B + (uint64_t)b) % W) * (uint64_t)T;
        if (herd_data_read(d, start, (uint64_t)T + 1, w))
            return herd_data_err(l->src[s].name, "val_path", "read failed");
        int32_t dc = 0;
        size_t o = (size_t)b * (size_t)T;
        for (int t = 0; t < T; t++) {
            tokens[o + t] = (int32_t)w[t];
            targets[o + t] = (int32_t)w[t + 1];
            doc[o + t] = dc;
            dc += w[t] == h->eot_id;
        }
    }
    return 0;
}
