/* data.c — token shards (docs/data-format.md), packing and the seeded sampler. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "src/data.h"
#include "src/rng.h"

struct herd_data {
    char              path[1024];
    herd_shard_header h;
    uint32_t         *ids;      /* [n_tokens], whole shard in memory */
    herd_data_state   st;
    uint32_t         *perm;     /* window order of the current epoch */
    uint64_t          n_windows;
    uint64_t          perm_epoch;
    int               perm_T;
};

static int shard_err(const char *path, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int shard_err(const char *path, const char *field, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    fprintf(stderr, "herd: %s: %s: %s\n", path, field, why);
    return -1;
}

static uint32_t rd32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const unsigned char *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> 8 * i); }
static void wr64(unsigned char *p, uint64_t v) { wr32(p, (uint32_t)v); wr32(p + 4, (uint32_t)(v >> 32)); }

static int read_all(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int herd_data_open(herd_data **out, const char *path, int model_vocab, uint64_t seed)
{
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return shard_err(path, "file", "cannot open token shard: %s", strerror(errno));
    struct stat sb;
    unsigned char hb[HERD_SHARD_HEADER];
    herd_data *d = calloc(1, sizeof *d);
    int rc = -1;
    if (fstat(fd, &sb) || sb.st_size < HERD_SHARD_HEADER || read_all(fd, hb, sizeof hb)) {
        shard_err(path, "header", "file has %lld bytes, shorter than the %d-byte header",
                  (long long)sb.st_size, HERD_SHARD_HEADER);
        goto done;
    }
    if (memcmp(hb, HERD_SHARD_MAGIC, 8)) { shard_err(path, "magic", "not a herd token shard"); goto done; }
    herd_shard_header *h = &d->h;
    h->version = rd32(hb + 8);
    h->dtype_bytes = rd32(hb + 12);
    h->vocab_size = rd32(hb + 16);
    h->eot_id = rd32(hb + 20);
    h->n_tokens = rd64(hb + 24);
    h->n_docs = rd64(hb + 32);
    if (h->version != HERD_SHARD_VERSION) {
        shard_err(path, "version", "version %u is not supported (this herd reads %d)", h->version,
                  HERD_SHARD_VERSION);
        goto done;
    }
    if (h->dtype_bytes != 2 && h->dtype_bytes != 4) {
        shard_err(path, "dtype_bytes", "%u (expected 2 or 4)", h->dtype_bytes);
        goto done;
    }
    if (h->eot_id >= h->vocab_size) {
        shard_err(path, "eot_id", "%u is not below vocab_size %u", h->eot_id, h->vocab_size);
        goto done;
    }
    uint64_t want = HERD_SHARD_HEADER + h->n_tokens * h->dtype_bytes;
    if ((uint64_t)sb.st_size != want) {
        shard_err(path, "n_tokens", "truncated or padded: header says %llu tokens (%llu bytes) but "
                  "the file has %lld bytes", (unsigned long long)h->n_tokens,
                  (unsigned long long)want, (long long)sb.st_size);
        goto done;
    }
    if ((int64_t)h->vocab_size > model_vocab) {
        shard_err(path, "vocab_size", "%u is larger than the model's vocab_size %d", h->vocab_size,
                  model_vocab);
        goto done;
    }
    size_t raw_bytes = h->n_tokens * h->dtype_bytes;
    unsigned char *raw = malloc(raw_bytes ? raw_bytes : 1);
    d->ids = malloc(sizeof(uint32_t) * (h->n_tokens ? h->n_tokens : 1));
    if (!raw || !d->ids || read_all(fd, raw, raw_bytes)) {
        free(raw);
        shard_err(path, "tokens", "cannot read %llu tokens", (unsigned long long)h->n_tokens);
        goto done;
    }
    for (uint64_t i = 0; i < h->n_tokens; i++) {
        uint32_t v = h->dtype_bytes == 2 ? (uint32_t)(raw[2 * i] | raw[2 * i + 1] << 8) : rd32(raw + 4 * i);
        if (v >= h->vocab_size) {
            free(raw);
            shard_err(path, "tokens", "id %u at index %llu is not below vocab_size %u", v,
                      (unsigned long long)i, h->vocab_size);
            goto done;
        }
        d->ids[i] = v;
    }
    free(raw);
    snprintf(d->path, sizeof d->path, "%s", path);
    d->st.seed = seed;
    d->perm_T = -1;
    rc = 0;
done:
    close(fd);
    if (rc) herd_data_close(d);
    else *out = d;
    return rc;
}

void herd_data_close(herd_data *d)
{
    if (!d) return;
    free(d->ids);
    free(d->perm);
    free(d);
}

const herd_shard_header *herd_data_header(const herd_data *d) { return &d->h; }

/* The epoch's window order: Fisher-Yates driven by (seed, epoch). */
static int make_perm(herd_data *d, int T)
{
    uint64_t W = (d->h.n_tokens - 1) / (uint64_t)T;
    if (d->perm_T != T) {
        free(d->perm);
        d->perm = malloc(sizeof(uint32_t) * W);
        if (!d->perm) return -1;
    }
    d->n_windows = W;
    for (uint64_t i = 0; i < W; i++) d->perm[i] = (uint32_t)i;
    uint64_t stream = herd_splitmix64(d->st.seed ^ 0xDA7A5A3B1E5ull) + d->st.epoch;
    for (uint64_t i = W - 1; i > 0; i--) {
        uint64_t j = herd_splitmix64(herd_splitmix64(stream) + i) % (i + 1);
        uint32_t t = d->perm[i];
        d->perm[i] = d->perm[j];
        d->perm[j] = t;
    }
    d->perm_epoch = d->st.epoch;
    d->perm_T = T;
    return 0;
}

int herd_data_next(herd_data *d, int B, int T, int32_t *tokens, int32_t *targets, int32_t *doc)
{
    if (T <= 0 || d->h.n_tokens < (uint64_t)T + 1) {
        fprintf(stderr, "herd: %s: n_tokens: %llu tokens are too few for one sequence of %d\n",
                d->path, (unsigned long long)d->h.n_tokens, T);
        return -1;
    }
    if (d->st.T != T) { /* a new sequence length (batch ramp) restarts the epoch's order */
        d->st.T = T;
        d->st.index = 0;
        d->perm_T = -1;
    }
    for (int b = 0; b < B; b++) {
        if (d->perm_T != T || d->perm_epoch != d->st.epoch)
            if (make_perm(d, T)) return -1;
        if (d->st.index >= d->n_windows) {
            d->st.epoch++;
            d->st.index = 0;
            if (make_perm(d, T)) return -1;
        }
        const uint32_t *w = d->ids + (uint64_t)d->perm[d->st.index++] * T;
        int32_t dc = 0;
        for (int t = 0; t < T; t++) {
            tokens[b * T + t] = (int32_t)w[t];
            targets[b * T + t] = (int32_t)w[t + 1];
            doc[b * T + t] = dc;
            dc += w[t] == d->h.eot_id; /* the eot belongs to the document it ends */
        }
    }
    return 0;
}

void herd_data_get_state(const herd_data *d, herd_data_state *s) { *s = d->st; }

int herd_data_set_state(herd_data *d, const herd_data_state *s)
{
    d->st = *s;
    d->perm_T = -1;
    return 0;
}

int herd_shard_write(const char *path, const uint32_t *ids, uint64_t n, uint32_t vocab_size,
                     uint32_t eot_id)
{
    uint32_t dtype = vocab_size <= 65536 ? 2 : 4;
    unsigned char hb[HERD_SHARD_HEADER] = {0};
    uint64_t n_docs = 0;
    for (uint64_t i = 0; i < n; i++) n_docs += ids[i] == eot_id;
    memcpy(hb, HERD_SHARD_MAGIC, 8);
    wr32(hb + 8, HERD_SHARD_VERSION);
    wr32(hb + 12, dtype);
    wr32(hb + 16, vocab_size);
    wr32(hb + 20, eot_id);
    wr64(hb + 24, n);
    wr64(hb + 32, n_docs);
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return shard_err(tmp, "file", "cannot create: %s", strerror(errno));
    int ok = fwrite(hb, 1, sizeof hb, f) == sizeof hb;
    unsigned char buf[8192];
    size_t fill = 0;
    for (uint64_t i = 0; ok && i < n; i++) {
        if (dtype == 2) { buf[fill++] = (unsigned char)ids[i]; buf[fill++] = (unsigned char)(ids[i] >> 8); }
        else { wr32(buf + fill, ids[i]); fill += 4; }
        if (fill + 4 > sizeof buf) { ok = fwrite(buf, 1, fill, f) == fill; fill = 0; }
    }
    if (ok && fill) ok = fwrite(buf, 1, fill, f) == fill;
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path)) {
        int e = errno;
        unlink(tmp);
        return shard_err(path, "file", "write failed: %s", strerror(e));
    }
    char dir[1100];
    snprintf(dir, sizeof dir, "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) { fsync(dfd); close(dfd); }
    return 0;
}
