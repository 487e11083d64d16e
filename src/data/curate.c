/* curate.c — the cleaning steps of curate.h but MinHash (minhash.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/data/curate.h"
#include "src/base/rng.h"


static int perr(const char *field, const char *why)
{
    fprintf(stderr, "herd: curate: %s: %s\n", field, why);
    return -1;
}

int herd_curate_check(const herd_curate_params *p)
{
    if (p->shingle < 1 || p->shingle > 64) return perr("curate.shingle", "must be 1..64 words");
    if (p->minhash_perms < 1 || p->minhash_perms > 4096) return perr("curate.minhash_perms", "must be 1..4096");
    if (p->minhash_bands < 1 || p->minhash_bands > 1024 || p->minhash_perms % p->minhash_bands)
        return perr("curate.minhash_bands", "must be 1..1024 and divide curate.minhash_perms");
    if (!(p->minhash_threshold > 0 && p->minhash_threshold <= 1))
        return perr("curate.minhash_threshold", "must be in (0, 1]");
    if (p->line_bucket < 1) return perr("curate.line_bucket", "must be at least 1 document");
    if (p->line_max_repeat < 1) return perr("curate.line_max_repeat", "must be at least 1");
    if (p->min_bytes < 0 || p->max_bytes < p->min_bytes)
        return perr("curate.max_bytes", "must be at least curate.min_bytes (>= 0)");
    if (p->dup_ngram < 1 || p->dup_ngram > 64) return perr("curate.dup_ngram", "must be 1..64 words");
    if (!(p->max_dup_ngram_frac >= 0 && p->max_dup_ngram_frac <= 1))
        return perr("curate.max_dup_ngram_frac", "must be in [0, 1]");
    if (!(p->max_symbol_ratio >= 0)) return perr("curate.max_symbol_ratio", "must be >= 0");
    return 0;
}

const char *herd_curate_step_name(int step)
{
    static const char *names[HERD_CURATE_N_STEPS] = {"normalise", "exact-dedup", "minhash-dedup",
                                                     "line-dedup", "length", "dup-ngram", "symbols"};
    return step >= 0 && step < HERD_CURATE_N_STEPS ? names[step] : "?";
}

/* ---- 1. normalise ----------------------------------------------------------- */

/* Length of a valid UTF-8 sequence at s[i], 0 if invalid. */
static int utf8_len(const unsigned char *s, size_t n, size_t i)
{
    unsigned c = s[i];
    if (c < 0x80) return 1;
    int k = (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
    if (k < 0 || i + (size_t)k >= n) return 0;
    uint32_t v = k == 1 ? (c & 0x1F) : k == 2 ? (c & 0x0F) : (c & 0x07);
    for (int j = 1; j <= k; j++) {
        if ((s[i + (size_t)j] & 0xC0) != 0x80) return 0;
        v = v << 6 | (s[i + (size_t)j] & 0x3F);
    }
    static const uint32_t min[4] = {0, 0x80, 0x800, 0x10000};
    if (v < min[k] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    return k + 1;
}

static size_t normalise(unsigned char *s, size_t n)
{
    size_t w = 0, line_end = 0; /* line_end: w just after the last non-blank of the line */
    int newlines = 0;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c == '\r' || c == '\n') {
            i += c == '\r' && i + 1 < n && s[i + 1] == '\n' ? 2 : 1;
            w = line_end; /* cut the line's trailing blanks */
            if (w > 0 && newlines < 2) s[w++] = '\n', newlines++;
            line_end = w;
            continue;
        }
        int L = utf8_len(s, n, i);
        if (L == 0 || (c < 0x20 && c != '\t') || c == 0x7F) { /* invalid or control: dropped */
            i += L ? (size_t)L : 1;
            continue;
        }
        memmove(s + w, s + i, (size_t)L);
        w += (size_t)L;
        i += (size_t)L;
        if (c != ' ' && c != '\t') line_end = w, newlines = 0;
    }
    w = line_end;                           /* trailing blanks and newlines of the document */
    while (w > 0 && s[w - 1] == '\n') w--;
    size_t lead = 0;                        /* leading blanks */
    while (lead < w && (s[lead] == ' ' || s[lead] == '\t' || s[lead] == '\n')) lead++;
    memmove(s, s + lead, w - lead);
    return w - lead;
}

/* ---- hash sets ---------------------------------------------------------------- */

typedef struct { uint64_t *k; uint32_t *v; size_t cap, n; } hset; /* key 0 is empty */

static int hset_init(hset *h, size_t want)
{
    h->cap = 64;
    while (h->cap < 2 * want + 1) h->cap *= 2;
    h->k = calloc(h->cap, sizeof *h->k);
    h->v = calloc(h->cap, sizeof *h->v);
    h->n = 0;
    return h->k && h->v ? 0 : -1;
}
static void hset_free(hset *h)
{
    free(h->k);
    free(h->v);
}
/* The counter of key (inserted at 0 if new); keys are never 0. */
static uint32_t *hset_at(hset *h, uint64_t key)
{
    key |= 1;
    size_t s = herd_splitmix64(key) & (h->cap - 1);
    while (h->k[s] && h->k[s] != key) s = (s + 1) & (h->cap - 1);
    if (!h->k[s]) h->k[s] = key, h->n++;
    return &h->v[s];
}

static uint64_t text_hash(const unsigned char *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001B3ull;
    return herd_splitmix64(h);
}

/* ---- 4. line de-duplication ----------------------------------------------------- */

/* Calls f(line, len, ctx) for each line of d (without its newline). */
#define FOR_LINES(d, line, len, body)                                                   \
    for (size_t i_ = 0; i_ < (d)->n;) {                                                  \
        const unsigned char *nl_ = memchr((d)->p + i_, '\n', (d)->n - i_);               \
        size_t e_ = nl_ ? (size_t)(nl_ - (d)->p) : (d)->n;                              \
        const unsigned char *line = (d)->p + i_;                                         \
        size_t len = e_ - i_;                                                            \
        body;                                                                            \
        i_ = e_ + 1;                                                                     \
    }

static int line_dedup(const herd_curate_params *p, herd_doc *docs, size_t n, herd_curate_report *r)
{
    for (size_t b0 = 0; b0 < n; b0 += (size_t)p->line_bucket) {
        size_t b1 = n - b0 < (size_t)p->line_bucket ? n : b0 + (size_t)p->line_bucket;
        hset h;
        size_t lines = 0;
        for (size_t j = b0; j < b1; j++)
            if (docs[j].keep) FOR_LINES(&docs[j], line, len, (void)line; (void)len; lines++);
        if (hset_init(&h, lines)) return -1;
        for (size_t j = b0; j < b1; j++)
            if (docs[j].keep)
                FOR_LINES(&docs[j], line, len, if (len >= HERD_CURATE_MIN_LINE)(*hset_at(&h, text_hash(line, len)))++);
        for (size_t j = b0; j < b1; j++) {
            herd_doc *d = &docs[j];
            if (!d->keep) continue;
            size_t w = 0, before = d->n;
            for (size_t i = 0; i < before;) {
                const unsigned char *nl = memchr(d->p + i, '\n', before - i);
                size_t e = nl ? (size_t)(nl - d->p) : before, len = e - i;
                int gone = len >= HERD_CURATE_MIN_LINE &&
                           *hset_at(&h, text_hash(d->p + i, len)) > (uint32_t)p->line_max_repeat;
                if (!gone) {
                    if (w) d->p[w++] = '\n';
                    memmove(d->p + w, d->p + i, len); /* w <= i: moves only left */
                    w += len;
                }
                i = e + 1;
            }
            d->n = w;
            r->bytes[HERD_CURATE_LINES] += before - w;
            if (w == 0) {
                d->keep = 0;
                r->docs[HERD_CURATE_LINES]++;
            }
        }
        hset_free(&h);
    }
    return 0;
}

/* ---- 5. filters ----------------------------------------------------------------- */

static int word_byte(unsigned char c)
{
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Share of word characters inside word n-grams that occur twice or more. */
static double dup_ngram_frac(const herd_doc *d, int ng)
{
    size_t nw = 0;
    for (size_t i = 0; i < d->n;) {
        while (i < d->n && !word_byte(d->p[i])) i++;
        if (i < d->n) nw++;
        while (i < d->n && word_byte(d->p[i])) i++;
    }
    if (nw < (size_t)ng + 1) return 0;
    uint64_t *wh = malloc(sizeof *wh * nw);
    uint32_t *wl = malloc(sizeof *wl * nw);
    unsigned char *cov = calloc(nw, 1);
    hset h;
    double frac = 0;
    if (!wh || !wl || !cov || hset_init(&h, nw)) goto out;
    size_t k = 0;
    for (size_t i = 0; i < d->n;) {
        while (i < d->n && !word_byte(d->p[i])) i++;
        if (i == d->n) break;
        size_t s = i;
        while (i < d->n && word_byte(d->p[i])) i++;
        wh[k] = text_hash(d->p + s, i - s);
        wl[k++] = (uint32_t)(i - s);
    }
    size_t n_ng = nw - (size_t)ng + 1;
    for (int pass = 0; pass < 2; pass++)
        for (size_t j = 0; j < n_ng; j++) {
            uint64_t g = 0x6e6772ull;
            for (int t = 0; t < ng; t++) g = herd_splitmix64(g ^ wh[j + (size_t)t]);
            uint32_t *c = hset_at(&h, g);
            if (pass == 0) (*c)++;
            else if (*c >= 2) memset(cov + j, 1, (size_t)ng);
        }
    uint64_t all = 0, dup = 0;
    for (size_t j = 0; j < nw; j++) {
        all += wl[j];
        if (cov[j]) dup += wl[j];
    }
    frac = all ? (double)dup / (double)all : 0;
    hset_free(&h);
out:
    free(wh);
    free(wl);
    free(cov);
    return frac;
}

/* '#' characters and ellipses ("..." or U+2026) per word. */
static double symbol_ratio(const herd_doc *d)
{
    size_t words = 0, sym = 0;
    for (size_t i = 0; i < d->n; i++) {
        if (word_byte(d->p[i]) && (i == 0 || !word_byte(d->p[i - 1]))) words++;
        if (d->p[i] == '#') sym++;
        else if (d->p[i] == '.' && i + 2 < d->n && d->p[i + 1] == '.' && d->p[i + 2] == '.') sym++, i += 2;
        else if (d->p[i] == 0xE2 && i + 2 < d->n && d->p[i + 1] == 0x80 && d->p[i + 2] == 0xA6) sym++, i += 2;
    }
    return words ? (double)sym / (double)words : (sym ? 1e9 : 0);
}

static void drop(herd_doc *d, herd_curate_report *r, int step)
{
    d->keep = 0;
    r->docs[step]++;
    r->bytes[step] += d->n;
}

int herd_curate_run(const herd_curate_params *p, herd_doc *docs, size_t n, herd_curate_report *r)
{
    if (herd_curate_check(p)) return -1;
    memset(r, 0, sizeof *r);
    for (size_t j = 0; j < n; j++) {
        docs[j].keep = 1;
        r->in_docs++;
        r->in_bytes += docs[j].n;
    }
    /* 1 */
    for (size_t j = 0; j < n && p->normalize; j++) {
        size_t before = docs[j].n;
        docs[j].n = normalise(docs[j].p, docs[j].n);
        r->bytes[HERD_CURATE_NORMALIZE] += before - docs[j].n;
        if (docs[j].n == 0) {
            docs[j].keep = 0;
            r->docs[HERD_CURATE_NORMALIZE]++;
        }
    }
    /* 2 */
    hset h;
    if (hset_init(&h, n)) return perr("curate", "out of memory");
    for (size_t j = 0; j < n; j++) {
        if (!docs[j].keep) continue;
        uint32_t *c = hset_at(&h, text_hash(docs[j].p, docs[j].n));
        if ((*c)++) drop(&docs[j], r, HERD_CURATE_EXACT);
    }
    hset_free(&h);
    /* 3 */
    uint8_t *was = malloc(n ? n : 1);
    if (!was) return perr("curate", "out of memory");
    for (size_t j = 0; j < n; j++) was[j] = (uint8_t)docs[j].keep;
    if (herd_minhash_dedup(p, docs, n) < 0) {
        free(was);
        return perr("curate", "out of memory");
    }
    for (size_t j = 0; j < n; j++)
        if (was[j] && !docs[j].keep) {
            r->docs[HERD_CURATE_NEAR]++;
            r->bytes[HERD_CURATE_NEAR] += docs[j].n;
        }
    free(was);
    /* 4 */
    if (line_dedup(p, docs, n, r)) return perr("curate", "out of memory");
    /* 5 */
    for (size_t j = 0; j < n; j++) {
        herd_doc *d = &docs[j];
        if (!d->keep) continue;
        if ((int64_t)d->n < p->min_bytes || (int64_t)d->n > p->max_bytes) drop(d, r, HERD_CURATE_LENGTH);
        else if (dup_ngram_frac(d, p->dup_ngram) > p->max_dup_ngram_frac) drop(d, r, HERD_CURATE_DUP_NGRAM);
        else if (symbol_ratio(d) > p->max_symbol_ratio) drop(d, r, HERD_CURATE_SYMBOLS);
    }
    for (size_t j = 0; j < n; j++)
        if (docs[j].keep) {
            r->out_docs++;
            r->out_bytes += docs[j].n;
        }
    return 0;
}
