/* data.c — token shards (docs/data-format.md), packing and the seeded sampler.
 *
 * A shard is memory-mapped read-only, not copied: a pretraining shard can be
 * tens of GB, and uint16 ids would double in size as uint32. The ids are
 * validated once at open, so herd_data_next only copies. The shard file must
 * not be truncated in place while it is open (herd_shard_write never does: it
 * renames a new file over the old one, and the mapping keeps the old inode).
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "src/data/data.h"
#include "src/base/rng.h"
#include "checkpoint/safe_file.h"

struct herd_data {
    char              *path;
    herd_shard_header  h;
    unsigned char     *map;       /* the whole file, read-only */
    size_t             map_len;
    const void        *ids;       /* map + HERD_SHARD_HEADER, uint16 or uint32 LE */
    herd_data_state    st;
    uint64_t          *perm;      /* window order of (perm_epoch, perm_T) */
    uint64_t           n_windows; /* of perm_T */
    uint64_t           perm_epoch;
    int                perm_T;    /* 0: no permutation built */
};

/* ---- messages: "herd: PATH: FIELD: PROBLEM" ------------------------------ */

int herd_data_err(const char *path, const char *field, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    fprintf(stderr, "herd: %s: %s: %s\n", path, field, why);
    return -1;
}

/* ---- little-endian fields ------------------------------------------------ */

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const unsigned char *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> 8 * i);
}
static void wr64(unsigned char *p, uint64_t v)
{
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}

static void header_decode(herd_shard_header *h, const unsigned char *b)
{
    h->version = rd32(b + 8);
    h->dtype_bytes = rd32(b + 12);
    h->vocab_size = rd32(b + 16);
    h->eot_id = rd32(b + 20);
    h->n_tokens = rd64(b + 24);
    h->n_docs = rd64(b + 32);
}

static void header_encode(unsigned char *b, const herd_shard_header *h)
{
    memset(b, 0, HERD_SHARD_HEADER); /* bytes 40..63 are reserved, zero */
    memcpy(b, HERD_SHARD_MAGIC, 8);
    wr32(b + 8, h->version);
    wr32(b + 12, h->dtype_bytes);
    wr32(b + 16, h->vocab_size);
    wr32(b + 20, h->eot_id);
    wr64(b + 24, h->n_tokens);
    wr64(b + 32, h->n_docs);
}

/* The id at index i of the mapped stream (validation already done). */
static inline uint32_t id_at(const herd_data *d, uint64_t i)
{
    if (d->h.dtype_bytes == 2) return le16toh(((const uint16_t *)d->ids)[i]);
    return le32toh(((const uint32_t *)d->ids)[i]);
}

/* ---- open: every check names the field it is about ----------------------- */

/* Fields that need only the header. */
static int check_header(const char *path, const herd_shard_header *h, uint64_t file_bytes,
                        int model_vocab)
{
    if (h->version != HERD_SHARD_VERSION)
        return herd_data_err(path, "version", "version %u is not supported (this herd reads version %d)",
                             h->version, HERD_SHARD_VERSION);
    if (h->dtype_bytes != 2 && h->dtype_bytes != 4)
        return herd_data_err(path, "dtype_bytes", "%u is not 2 (uint16) or 4 (uint32)", h->dtype_bytes);
    if (h->vocab_size == 0)
        return herd_data_err(path, "vocab_size", "is 0");
    if (h->eot_id >= h->vocab_size)
        return herd_data_err(path, "eot_id", "%u is not below vocab_size %u", h->eot_id, h->vocab_size);
    /* n_tokens comes from the file: compare without overflowing */
    uint64_t data_bytes = file_bytes - HERD_SHARD_HEADER;
    if (h->n_tokens > data_bytes / h->dtype_bytes || data_bytes != h->n_tokens * h->dtype_bytes) {
        const char *what = h->n_tokens > data_bytes / h->dtype_bytes ? "truncated" : "trailing bytes";
        long double want = (long double)HERD_SHARD_HEADER + (long double)h->n_tokens * h->dtype_bytes;
        return herd_data_err(path, "n_tokens", "%s: header says %llu tokens (%.0Lf bytes) but the file "
                             "has %llu bytes", what, (unsigned long long)h->n_tokens, want,
                             (unsigned long long)file_bytes);
    }
    if ((int64_t)h->vocab_size > (int64_t)model_vocab)
        return herd_data_err(path, "vocab_size", "%u is larger than the model's vocab_size %d",
                             h->vocab_size, model_vocab);
    return 0;
}

/* Index of the first id >= vocab, or n if there is none. Scans in blocks whose
 * maximum the compiler vectorizes, and looks inside a block only on a hit. */
#define SCAN_FIRST_BAD(type, conv)                                              \
    static uint64_t first_bad_##type(const type *p, uint64_t n, uint32_t vocab) \
    {                                                                           \
        enum { BLOCK = 1 << 14 };                                               \
        for (uint64_t s = 0; s < n; s += BLOCK) {                               \
            uint64_t e = n - s < BLOCK ? n : s + BLOCK;                         \
            uint32_t mx = 0;                                                    \
            for (uint64_t i = s; i < e; i++) {                                  \
                uint32_t v = conv(p[i]);                                        \
                mx = v > mx ? v : mx;                                           \
            }                                                                   \
            if (mx < vocab) continue;                                           \
            for (uint64_t i = s; i < e; i++)                                    \
                if (conv(p[i]) >= vocab) return i;                              \
        }                                                                       \
        return n;                                                               \
    }
SCAN_FIRST_BAD(uint16_t, le16toh)
SCAN_FIRST_BAD(uint32_t, le32toh)

static int check_ids(const herd_data *d)
{
    uint64_t n = d->h.n_tokens;
    uint64_t bad = d->h.dtype_bytes == 2 ? first_bad_uint16_t(d->ids, n, d->h.vocab_size)
                                         : first_bad_uint32_t(d->ids, n, d->h.vocab_size);
    if (bad == n) return 0;
    return herd_data_err(d->path, "tokens", "id %u at index %llu is not below vocab_size %u",
                         id_at(d, bad), (unsigned long long)bad, d->h.vocab_size);
}

/* Map the file and check everything; on failure d keeps what must be freed. */
static int open_checked(herd_data *d, int fd, int model_vocab)
{
    struct stat sb;
    if (fstat(fd, &sb)) return herd_data_err(d->path, "file", "%s", strerror(errno));
    if (!S_ISREG(sb.st_mode)) return herd_data_err(d->path, "file", "not a regular file");
    if (sb.st_size < HERD_SHARD_HEADER)
        return herd_data_err(d->path, "header", "the file has %lld bytes, shorter than the %d-byte header",
                             (long long)sb.st_size, HERD_SHARD_HEADER);
    d->map_len = (size_t)sb.st_size;
    void *m = mmap(NULL, d->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) return herd_data_err(d->path, "file", "cannot map: %s", strerror(errno));
    d->map = m;
    if (memcmp(d->map, HERD_SHARD_MAGIC, 8))
        return herd_data_err(d->path, "magic", "not a herd token shard (no \"HERDTOK\" magic)");
    header_decode(&d->h, d->map);
    if (check_header(d->path, &d->h, (uint64_t)sb.st_size, model_vocab)) return -1;
    d->ids = d->map + HERD_SHARD_HEADER; /* page-aligned + 64: aligned for uint32 */
    return check_ids(d);
}

int herd_data_open(herd_data **out, const char *path, int model_vocab, uint64_t seed)
{
    *out = NULL;
    herd_data *d = calloc(1, sizeof *d);
    if (d) d->path = strdup(path);
    if (!d || !d->path) {
        free(d);
        return herd_data_err(path, "file", "out of memory");
    }
    d->st.seed = seed;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        herd_data_err(path, "file", "cannot open token shard: %s", strerror(errno));
        herd_data_close(d);
        return -1;
    }
    int rc = open_checked(d, fd, model_vocab);
    close(fd); /* the mapping outlives the descriptor */
    if (rc) {
        herd_data_close(d);
        return -1;
    }
    *out = d;
    return 0;
}

void herd_data_close(herd_data *d)
{
    if (!d) return;
    if (d->map) munmap(d->map, d->map_len);
    free(d->perm);
    free(d->path);
    free(d);
}

const herd_shard_header *herd_data_header(const herd_data *d) { return &d->h; }

uint64_t herd_data_n_windows(const herd_data *d, int T)
{
    if (T < 1 || d->h.n_tokens < 1) return 0;
    return (d->h.n_tokens - 1) / (uint64_t)T;
}

int herd_data_read(const herd_data *d, uint64_t start, uint64_t n, uint32_t *out)
{
    if (start > d->h.n_tokens || n > d->h.n_tokens - start) return -1;
    for (uint64_t i = 0; i < n; i++) out[i] = id_at(d, start + i);
    return 0;
}

/* ---- the sampler ---------------------------------------------------------- */

/* splitmix64 as a sequential generator (Steele, Lea, Flood 2014). */
typedef struct { uint64_t s; } prng;

static uint64_t prng_next(prng *r)
{
    uint64_t x = herd_splitmix64(r->s); /* herd_splitmix64 adds the golden gamma itself */
    r->s += 0x9E3779B97F4A7C15ull;
    return x;
}

/* Uniform in [0, n) without modulo bias (Lemire 2019). */
static uint64_t prng_below(prng *r, uint64_t n)
{
    __uint128_t m = (__uint128_t)prng_next(r) * n;
    uint64_t lo = (uint64_t)m;
    if (lo < n) {
        uint64_t threshold = -n % n;
        while (lo < threshold) {
            m = (__uint128_t)prng_next(r) * n;
            lo = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

/* The epoch's generator depends on (seed, epoch) only: a resumed run rebuilds
 * the same permutation from its saved state, and each epoch gets a new order. */
static prng epoch_prng(uint64_t seed, uint64_t epoch)
{
    uint64_t k = herd_splitmix64(seed ^ 0x68657264646174ull); /* "herddat": a stream of its own */
    prng r = {herd_splitmix64(k ^ herd_splitmix64(epoch))};
    return r;
}

/* Build the window order of (st.epoch, T): Fisher-Yates over 0..W-1. */
static int build_perm(herd_data *d, int T)
{
    uint64_t W = herd_data_n_windows(d, T);
    if (d->perm_T != T || !d->perm) {
        free(d->perm);
        d->perm = malloc(sizeof(uint64_t) * (W ? W : 1));
        d->perm_T = 0;
        if (!d->perm) return herd_data_err(d->path, "sampler", "out of memory for %llu windows",
                                           (unsigned long long)W);
    }
    for (uint64_t i = 0; i < W; i++) d->perm[i] = i;
    prng r = epoch_prng(d->st.seed, d->st.epoch);
    for (uint64_t i = W; i > 1; i--) {
        uint64_t j = prng_below(&r, i);
        uint64_t t = d->perm[i - 1];
        d->perm[i - 1] = d->perm[j];
        d->perm[j] = t;
    }
    d->n_windows = W;
    d->perm_epoch = d->st.epoch;
    d->perm_T = T;
    return 0;
}

/* Position of the next window; moves to the next epoch at the end of one. */
static int next_window(herd_data *d, int T, uint64_t *start)
{
    if (d->st.index >= herd_data_n_windows(d, T)) {
        d->st.epoch++;
        d->st.index = 0;
    }
    if (d->perm_T != T || d->perm_epoch != d->st.epoch)
        if (build_perm(d, T)) return -1;
    *start = d->perm[d->st.index++] * (uint64_t)T;
    return 0;
}

/* One window of T+1 ids from start: tokens, shifted targets, document ids. */
#define PACK_WINDOW(type, conv)                                                  \
    static void pack_##type(const type *w, int T, uint32_t eot, int32_t *tokens, \
                            int32_t *targets, int32_t *doc)                      \
    {                                                                            \
        int32_t dc = 0;                                                          \
        uint32_t cur = conv(w[0]);                                               \
        for (int t = 0; t < T; t++) {                                            \
            uint32_t nxt = conv(w[t + 1]);                                       \
            tokens[t] = (int32_t)cur;                                            \
            targets[t] = (int32_t)nxt;                                           \
            doc[t] = dc;                                                         \
            dc += cur == eot; /* the eot belongs to the document it ends */      \
            cur = nxt;                                                           \
        }                                                                        \
    }
PACK_WINDOW(uint16_t, le16toh)
PACK_WINDOW(uint32_t, le32toh)

int herd_data_next(herd_data *d, int B, int T, int32_t *tokens, int32_t *targets, int32_t *doc)
{
    if (B < 1 || T < 1)
        return herd_data_err(d->path, "sampler", "batch %d x sequence %d is not a positive size", B, T);
    if (d->h.n_tokens < (uint64_t)T + 1)
        return herd_data_err(d->path, "n_tokens", "%llu tokens are too few for one sequence of %d "
                             "(it needs %d: inputs and the shifted targets)",
                             (unsigned long long)d->h.n_tokens, T, T + 1);
    if (d->st.T != T) { /* a new sequence length (batch ramp) restarts the epoch's order */
        d->st.T = T;
        d->st.index = 0;
    }
    for (int b = 0; b < B; b++) {
        uint64_t start;
        if (next_window(d, T, &start)) return -1;
        size_t o = (size_t)b * (size_t)T;
        if (d->h.dtype_bytes == 2)
            pack_uint16_t((const uint16_t *)d->ids + start, T, d->h.eot_id, tokens + o,
                          targets + o, doc + o);
        else
            pack_uint32_t((const uint32_t *)d->ids + start, T, d->h.eot_id, tokens + o,
                          targets + o, doc + o);
    }
    return 0;
}

void herd_data_get_state(const herd_data *d, herd_data_state *s) { *s = d->st; }

int herd_data_set_state(herd_data *d, const herd_data_state *s)
{
    if (s->T < 0)
        return herd_data_err(d->path, "sampler", "state has a negative sequence length %d", s->T);
    /* index == W is a finished epoch (the next window starts the next one);
     * beyond it the state belongs to another shard */
    uint64_t W = herd_data_n_windows(d, s->T);
    if (s->T > 0 && W > 0 && s->index > W)
        return herd_data_err(d->path, "sampler", "state index %llu is beyond the %llu windows of "
                             "length %d in this shard (a state saved for another shard?)",
                             (unsigned long long)s->index, (unsigned long long)W, s->T);
    d->st = *s;
    d->perm_T = 0; /* the seed may have changed: rebuild */
    return 0;
}

/* ---- writing -------------------------------------------------------------- */

/* Header and ids, in 64 KiB pieces. */
static int write_body(int fd, const herd_shard_header *h, const uint32_t *ids)
{
    unsigned char buf[1 << 16];
    header_encode(buf, h);
    size_t fill = HERD_SHARD_HEADER;
    for (uint64_t i = 0; i < h->n_tokens; i++) {
        if (fill + 4 > sizeof buf) {
            if (herd_write_all(fd, buf, fill)) return -1;
            fill = 0;
        }
        if (h->dtype_bytes == 2) {
            buf[fill++] = (unsigned char)ids[i];
            buf[fill++] = (unsigned char)(ids[i] >> 8);
        } else {
            wr32(buf + fill, ids[i]);
            fill += 4;
        }
    }
    return herd_write_all(fd, buf, fill);
}

int herd_shard_write(const char *path, const uint32_t *ids, uint64_t n, uint32_t vocab_size,
                     uint32_t eot_id)
{
    if (eot_id >= vocab_size)
        return herd_data_err(path, "eot_id", "%u is not below vocab_size %u", eot_id, vocab_size);
    herd_shard_header h = {HERD_SHARD_VERSION, vocab_size <= 65536 ? 2 : 4, vocab_size, eot_id, n, 0};
    for (uint64_t i = 0; i < n; i++) {
        if (ids[i] >= vocab_size)
            return herd_data_err(path, "tokens", "id %u at index %llu is not below vocab_size %u",
                                 ids[i], (unsigned long long)i, vocab_size);
        h.n_docs += ids[i] == eot_id;
    }
    /* a crash before the rename leaves only the temporary; the old shard
     * stays whole (and a reader's mapping keeps the old inode) */
    herd_safe_file sf;
    if (herd_safe_file_begin_mode(&sf, path, 0644)) return -1;
    if (write_body(sf.fd, &h, ids)) {
        int e = errno;
        herd_safe_file_abort(&sf);
        return herd_data_err(path, "file", "write failed: %s", strerror(e));
    }
    return herd_safe_file_commit(&sf);
}
