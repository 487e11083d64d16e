/* tokenizer.c — byte-level BPE over tiktoken rank files: pre-split, encode,
 * decode, load and save (training is in bpe_train.c).
 *
 * The pre-split is Llama 3's regular expression written out by hand as a
 * scanner (no regex engine: the scanner is the tokenizer's hot loop, and the
 * pattern's backtracking reduces to a few look-aheads, noted at each branch).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "src/data/tokenizer.h"
#include "src/data/tokenizer_impl.h"
#include "checkpoint/safe_file.h"
#include "src/data/unicode_tab.h"

/* ---- special tokens -------------------------------------------------------- */

static char special_names[HERD_TOK_N_SPECIAL][40];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;
static void init_ascii(void);

/* The special names and the ASCII classes, built once (threads may encode). */
static void init_tables(void)
{
    static const char *fixed[10] = {
        "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
        "<|reserved_special_token_1|>", "<|reserved_special_token_2|>",
        "<|reserved_special_token_3|>", "<|start_header_id|>", "<|end_header_id|>",
        "<|reserved_special_token_4|>", "<|eot_id|>"};
    for (int i = 0; i < HERD_TOK_N_SPECIAL; i++) {
        if (i < 10) snprintf(special_names[i], sizeof special_names[i], "%s", fixed[i]);
        else snprintf(special_names[i], sizeof special_names[i], "<|reserved_special_token_%d|>", i - 5);
    }
    init_ascii();
}

const char *herd_tokenizer_special_name(int i)
{
    if (i < 0 || i >= HERD_TOK_N_SPECIAL) return NULL;
    pthread_once(&tables_once, init_tables);
    return special_names[i];
}

const char *herd_tokenizer_special_text(const herd_tokenizer *t, int i)
{
    return i < 0 || i >= HERD_TOK_N_SPECIAL ? NULL : t->special[i];
}

int herd_tokenizer_special_id(const herd_tokenizer *t, const char *name)
{
    for (int i = 0; i < HERD_TOK_N_SPECIAL; i++)
        if (!strcmp(name, t->special[i])) return t->n + i;
    return -1;
}

int herd_tokenizer_bos(const herd_tokenizer *t) { return (int)t->n + t->bos; }
int herd_tokenizer_eos(const herd_tokenizer *t) { return (int)t->n + t->eos; }

herd_chat_template herd_tokenizer_chat_template(const herd_tokenizer *t)
{
    return (herd_chat_template)t->chat;
}
void herd_tokenizer_set_chat_template(herd_tokenizer *t, herd_chat_template c) { t->chat = (int)c; }

int herd_tokenizer_n_regular(const herd_tokenizer *t) { return (int)t->n; }
int herd_tokenizer_vocab_size(const herd_tokenizer *t) { return (int)t->n + HERD_TOK_N_SPECIAL; }

/* ---- the byte-string -> rank table ------------------------------------------ */

uint64_t herd_tok_hash(const unsigned char *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xFF51AFD7ED558CCDull);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << 8 * i;
    h = (h ^ v) * 0x94D049BB133111EBull;
    return h ^ h >> 31;
}

/* Rank of bytes p[0..n), or UINT32_MAX. */
uint32_t herd_tok_rank(const herd_tokenizer *t, const unsigned char *p, size_t n)
{
    if (n == 1) return t->byte_rank[p[0]];
    uint64_t mask = t->table_cap - 1;
    for (uint64_t s = herd_tok_hash(p, n) & mask;; s = (s + 1) & mask) {
        uint32_t id = t->table[s];
        if (id == UINT32_MAX) return UINT32_MAX;
        if (t->len[id] == n && !memcmp(t->bytes + t->off[id], p, n)) return id;
    }
}

/* Add token id (its bytes already in the arena) to the table; -1 if a token
 * with the same bytes is there. */
int herd_tok_insert(herd_tokenizer *t, uint32_t id)
{
    const unsigned char *p = t->bytes + t->off[id];
    size_t n = t->len[id];
    uint64_t mask = t->table_cap - 1;
    for (uint64_t s = herd_tok_hash(p, n) & mask;; s = (s + 1) & mask) {
        uint32_t o = t->table[s];
        if (o == UINT32_MAX) {
            t->table[s] = id;
            if (n == 1) t->byte_rank[p[0]] = id;
            return 0;
        }
        if (t->len[o] == n && !memcmp(t->bytes + t->off[o], p, n)) return -1;
    }
}

int herd_tok_build_table(herd_tokenizer *t)
{
    free(t->table);
    t->table_cap = 64;
    while (t->table_cap < 2 * (uint64_t)t->n) t->table_cap *= 2;
    t->table = malloc(sizeof(uint32_t) * t->table_cap);
    if (!t->table) return -1;
    memset(t->table, 0xFF, sizeof(uint32_t) * t->table_cap);
    for (int b = 0; b < 256; b++) t->byte_rank[b] = UINT32_MAX;
    for (uint32_t i = 0; i < t->n; i++)
        if (herd_tok_insert(t, i)) return (int)i + 1; /* the duplicate, 1-based */
    return 0;
}

void herd_tokenizer_free(herd_tokenizer *t)
{
    if (!t) return;
    free(t->bytes);
    free(t->off);
    free(t->len);
    free(t->table);
    free(t);
}

const unsigned char *herd_tokenizer_token(const herd_tokenizer *t, uint32_t id, size_t *len)
{
    if (id >= t->n) return NULL;
    *len = t->len[id];
    return t->bytes + t->off[id];
}

/* ---- pre-split --------------------------------------------------------------- */

enum { C_OTHER, C_LETTER, C_NUMBER, C_SPACE, C_NL }; /* C_NL: \r or \n (also a space) */

static signed char ascii_class[128];

static int in_ranges(const herd_uc_range *r, int n, uint32_t c)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < r[mid].lo) hi = mid - 1;
        else if (c > r[mid].hi) lo = mid + 1;
        else return 1;
    }
    return 0;
}

/* Unicode White_Space (what \s means in tiktoken's regex engine). */
static int is_space_cp(uint32_t c)
{
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

static int class_of(uint32_t c)
{
    if (c < 128) return ascii_class[c];
    if (is_space_cp(c)) return C_SPACE;
    if (in_ranges(herd_uc_letters, herd_uc_n_letters, c)) return C_LETTER;
    if (in_ranges(herd_uc_numbers, herd_uc_n_numbers, c)) return C_NUMBER;
    return C_OTHER;
}

static void init_ascii(void)
{
    for (int c = 0; c < 128; c++) {
        int k = C_OTHER;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) k = C_LETTER;
        else if (c >= '0' && c <= '9') k = C_NUMBER;
        else if (c == '\r' || c == '\n') k = C_NL;
        else if (is_space_cp((uint32_t)c)) k = C_SPACE;
        ascii_class[c] = (signed char)k;
    }
}

/* Decode the code point at s[i]: its value and byte length. An invalid,
 * overlong, surrogate or truncated sequence is one byte of class C_OTHER
 * (value 0xFFFFFFFF): the piece boundaries of invalid text are ours to choose,
 * and the bytes survive because BPE works on bytes. */
static inline uint32_t utf8_at(const unsigned char *s, size_t n, size_t i, int *len)
{
    unsigned c = s[i];
    *len = 1;
    if (c < 0x80) return c;
    int k;
    uint32_t v, min;
    if ((c & 0xE0) == 0xC0) k = 1, v = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) k = 2, v = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) k = 3, v = c & 0x07, min = 0x10000;
    else return 0xFFFFFFFFu;
    if (i + (size_t)k >= n) return 0xFFFFFFFFu; /* truncated at the end */
    for (int j = 1; j <= k; j++) {
        unsigned d = s[i + (size_t)j];
        if ((d & 0xC0) != 0x80) return 0xFFFFFFFFu;
        v = v << 6 | (d & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0xFFFFFFFFu;
    *len = k + 1;
    return v;
}

static inline int cls_at(const unsigned char *s, size_t n, size_t i, int *len)
{
    if (s[i] < 0x80) {
        *len = 1;
        return ascii_class[s[i]];
    }
    uint32_t c = utf8_at(s, n, i, len);
    return c == 0xFFFFFFFFu ? C_OTHER : class_of(c);
}

#define IS_WS(k) ((k) == C_SPACE || (k) == C_NL)

/* (?i:'s|'t|'re|'ve|'m|'ll|'d) at i (s[i] == '\''): the match length or 0.
 * Case-insensitive as tiktoken's engine is, with simple case folding:
 * U+017F (long s) folds to s. */
static size_t contraction(const unsigned char *s, size_t n, size_t i)
{
    if (i + 1 >= n) return 0;
    unsigned a = s[i + 1] | 0x20, b = i + 2 < n ? s[i + 2] | 0x20 : 0;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if ((a == 'r' || a == 'v') && b == 'e') return 3;
    if (a == 'l' && b == 'l') return 3;
    if (s[i + 1] == 0xC5 && i + 2 < n && s[i + 2] == 0xBF) return 3; /* 'ſ */
    return 0;
}

static size_t run_of(const unsigned char *s, size_t n, size_t i, int want_letter)
{
    int len;
    while (i < n) {
        int k = cls_at(s, n, i, &len);
        if (want_letter ? k != C_LETTER : !(k == C_OTHER)) break;
        i += (size_t)len;
    }
    return i;
}

size_t herd_pretok_next(const unsigned char *s, size_t n, size_t i)
{
    pthread_once(&tables_once, init_tables);
    int l0, l1;
    if (s[i] == '\'') {
        size_t m = contraction(s, n, i);
        if (m) return i + m;
    }
    int k0 = cls_at(s, n, i, &l0);
    size_t i1 = i + (size_t)l0;
    int k1 = i1 < n ? cls_at(s, n, i1, &l1) : -1;
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (k0 == C_LETTER) return run_of(s, n, i1, 1);
    if (k0 != C_NL && k0 != C_NUMBER && k1 == C_LETTER) return run_of(s, n, i1, 1);
    /* \p{N}{1,3} */
    if (k0 == C_NUMBER) {
        size_t j = i1;
        for (int c = 1; c < 3 && j < n; c++) {
            int lj, kj = cls_at(s, n, j, &lj);
            if (kj != C_NUMBER) break;
            j += (size_t)lj;
        }
        return j;
    }
    /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
    size_t j = 0;
    if (s[i] == ' ' && k1 == C_OTHER) j = run_of(s, n, i1, 0);
    else if (k0 == C_OTHER) j = run_of(s, n, i, 0);
    if (j) {
        while (j < n && (s[j] == '\r' || s[j] == '\n')) j++;
        return j;
    }
    /* k0 is white space: the run s[i..e) */
    size_t e = i, last_nl = 0;
    int has_nl = 0;
    while (e < n) {
        int le, ke = cls_at(s, n, e, &le);
        if (!IS_WS(ke)) break;
        if (ke == C_NL) has_nl = 1, last_nl = e;
        e += (size_t)le;
    }
    /* \s*[\r\n]+ : greedy \s* backs off to the last newline of the run */
    if (has_nl) return last_nl + 1;
    /* \s+(?!\S) : the whole run at the end of the text, else all but its last
     * code point (which then starts the next piece, e.g. " word") */
    if (e == n) return e;
    size_t p = e - 1;
    while (p > i && (s[p] & 0xC0) == 0x80) p--; /* start of the last code point */
    if (p > i) return p;
    return e; /* \s+ */
}

/* ---- encode ------------------------------------------------------------------ */

#define HERD_BPE_LONG 256 /* pieces longer than this use the heap */

static int ids_push(herd_ids *o, uint32_t id)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 1024;
        uint32_t *p = realloc(o->ids, sizeof(uint32_t) * cap);
        if (!p) return -1;
        o->ids = p;
        o->cap = cap;
    }
    o->ids[o->n++] = id;
    return 0;
}

/* The same merges for a long piece (a run of thousands of blanks or
 * symbols), in O(n log n) rather than O(n^2): parts in a linked list, pairs in
 * a min-heap keyed (rank, start) so that the pop is the lowest rank, leftmost
 * on ties, exactly the choice of the quadratic scan; an entry whose rank is no
 * longer its part's current pair rank is stale and skipped. */
typedef struct { uint32_t rank; uint32_t i; } bpe_ent;

static int ent_less(bpe_ent a, bpe_ent b) { return a.rank < b.rank || (a.rank == b.rank && a.i < b.i); }

static void ent_push(bpe_ent *h, size_t *n, bpe_ent e)
{
    size_t i = (*n)++;
    while (i > 0 && ent_less(e, h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = e;
}

static bpe_ent ent_pop(bpe_ent *h, size_t *n)
{
    bpe_ent top = h[0], e = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && ent_less(h[c + 1], h[c])) c++;
        if (!ent_less(h[c], e)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = e;
    return top;
}

/* Rank of part i joined with its successor (parts start at their index). */
static uint32_t pair_rank(const herd_tokenizer *t, const unsigned char *p, size_t n,
                          const uint32_t *next, uint32_t i)
{
    const uint32_t END = UINT32_MAX;
    uint32_t j = next[i];
    if (j == END) return UINT32_MAX;
    size_t e = next[j] == END ? n : next[j];
    return herd_tok_rank(t, p + i, e - i);
}

static int bpe_piece_long(const herd_tokenizer *t, const unsigned char *p, size_t n, herd_ids *o)
{
    const uint32_t END = UINT32_MAX;
    uint32_t *next = malloc(sizeof(uint32_t) * n), *prev = malloc(sizeof(uint32_t) * n),
             *cur = malloc(sizeof(uint32_t) * n);
    size_t cap = 4 * n + 16, hn = 0;
    bpe_ent *h = malloc(sizeof(bpe_ent) * cap);
    int rc = next && prev && cur && h ? 0 : -1;
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        next[i] = i + 1 < n ? i + 1 : END;
        prev[i] = i ? i - 1 : END;
    }
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        cur[i] = next[i] == END ? UINT32_MAX : herd_tok_rank(t, p + i, 2);
        if (cur[i] != UINT32_MAX) ent_push(h, &hn, (bpe_ent){cur[i], i});
    }
    while (rc == 0 && hn) {
        bpe_ent e = ent_pop(h, &hn);
        uint32_t i = e.i;
        if (cur[i] != e.rank || e.rank == UINT32_MAX) continue; /* stale (or merged away: cur = MAX) */
        uint32_t j = next[i];
        next[i] = next[j];
        if (next[j] != END) prev[next[j]] = i;
        cur[j] = UINT32_MAX;
        if (hn + 2 > cap) {
            bpe_ent *q = realloc(h, sizeof(bpe_ent) * (cap *= 2));
            if (!q) { rc = -1; break; }
            h = q;
        }
        cur[i] = pair_rank(t, p, n, next, i);
        if (cur[i] != UINT32_MAX) ent_push(h, &hn, (bpe_ent){cur[i], i});
        if (prev[i] != END) {
            uint32_t k = prev[i];
            cur[k] = pair_rank(t, p, n, next, k);
            if (cur[k] != UINT32_MAX) ent_push(h, &hn, (bpe_ent){cur[k], k});
        }
    }
    for (uint32_t i = 0; rc == 0 && i != END; i = next[i]) {
        size_t e = next[i] == END ? n : next[i];
        rc = ids_push(o, herd_tok_rank(t, p + i, e - i));
    }
    free(next);
    free(prev);
    free(cur);
    free(h);
    return rc;
}

/* tiktoken's byte_pair_merge: parts[k] = (start of part k, rank of part k
 * joined with part k+1); merge the lowest-ranked adjacent pair until none of
 * the joined pairs is a token. */
int herd_tok_bpe_piece(const herd_tokenizer *t, const unsigned char *p, size_t n, herd_ids *o, int mode)
{
    uint32_t r = herd_tok_rank(t, p, n);
    if (r != UINT32_MAX) return ids_push(o, r);
    if (mode == 2 || (mode == 0 && n > HERD_BPE_LONG)) return bpe_piece_long(t, p, n, o);
    enum { STACK = 128 };
    size_t st_start[STACK + 1];
    uint32_t st_rank[STACK + 1];
    size_t *start = st_start;
    uint32_t *rank = st_rank;
    if (n > STACK) {
        start = malloc(sizeof(size_t) * (n + 1));
        rank = malloc(sizeof(uint32_t) * (n + 1));
        if (!start || !rank) {
            free(start == st_start ? NULL : start);
            free(rank == st_rank ? NULL : rank);
            return -1;
        }
    }
    size_t m = n + 1; /* parts, the last one a sentinel at n */
    uint32_t min_r = UINT32_MAX;
    size_t min_i = 0;
    for (size_t i = 0; i < n; i++) {
        start[i] = i;
        rank[i] = i + 1 < n ? herd_tok_rank(t, p + i, 2) : UINT32_MAX;
        if (rank[i] < min_r) min_r = rank[i], min_i = i;
    }
    start[n] = n;
    rank[n] = UINT32_MAX;
    while (min_r != UINT32_MAX) {
        size_t i = min_i;
        /* remove part i+1: part i now spans to start[i+2] */
        memmove(start + i + 1, start + i + 2, sizeof(size_t) * (m - i - 2));
        memmove(rank + i + 1, rank + i + 2, sizeof(uint32_t) * (m - i - 2));
        m--;
        rank[i] = i + 2 < m ? herd_tok_rank(t, p + start[i], start[i + 2] - start[i]) : UINT32_MAX;
        if (i > 0)
            rank[i - 1] = i + 1 < m ? herd_tok_rank(t, p + start[i - 1], start[i + 1] - start[i - 1])
                                    : UINT32_MAX;
        min_r = UINT32_MAX;
        for (size_t k = 0; k + 1 < m; k++)
            if (rank[k] < min_r) min_r = rank[k], min_i = k;
    }
    int rc = 0;
    for (size_t k = 0; k + 1 < m && rc == 0; k++)
        rc = ids_push(o, herd_tok_rank(t, p + start[k], start[k + 1] - start[k]));
    if (start != st_start) {
        free(start);
        free(rank);
    }
    return rc;
}

static int encode_ordinary(const herd_tokenizer *t, const unsigned char *s, size_t n, herd_ids *o)
{
    for (size_t i = 0; i < n;) {
        size_t e = herd_pretok_next(s, n, i);
        if (herd_tok_bpe_piece(t, s + i, e - i, o, 0)) return -1;
        i = e;
    }
    return 0;
}

/* The special token whose text starts at s (s[0..1] == "<|"), or -1. */
static int special_at(const herd_tokenizer *t, const unsigned char *s, size_t n, size_t *len)
{
    for (int k = 0; k < HERD_TOK_N_SPECIAL; k++) {
        const char *name = t->special[k];
        size_t l = strlen(name);
        if (l <= n && !memcmp(s, name, l)) {
            *len = l;
            return k;
        }
    }
    return -1;
}

int herd_tokenizer_encode(const herd_tokenizer *t, const unsigned char *s, size_t n,
                          int allow_special, herd_ids *out)
{
    if (!allow_special) return encode_ordinary(t, s, n, out);
    size_t from = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] != '<' || s[i + 1] != '|') continue;
        size_t l;
        int k = special_at(t, s + i, n - i, &l);
        if (k < 0) continue;
        if (encode_ordinary(t, s + from, i - from, out) || ids_push(out, t->n + (uint32_t)k)) return -1;
        from = i + l;
        i = from - 1;
    }
    return encode_ordinary(t, s + from, n - from, out);
}

unsigned char *herd_tokenizer_decode(const herd_tokenizer *t, const uint32_t *ids, size_t n,
                                     size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < t->n) total += t->len[ids[i]];
        else if (ids[i] < t->n + HERD_TOK_N_SPECIAL)
            total += strlen(t->special[ids[i] - t->n]);
        else {
            fprintf(stderr, "herd: decode: id %u at index %zu is not below vocab_size %u\n", ids[i],
                    i, t->n + HERD_TOK_N_SPECIAL);
            return NULL;
        }
    }
    unsigned char *b = malloc(total ? total : 1);
    if (!b) return NULL;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < t->n) {
            memcpy(b + w, t->bytes + t->off[ids[i]], t->len[ids[i]]);
            w += t->len[ids[i]];
        } else {
            const char *name = t->special[ids[i] - t->n];
            memcpy(b + w, name, strlen(name));
            w += strlen(name);
        }
    }
    *len = w;
    return b;
}

/* ---- rank files ---------------------------------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_val(int c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

/* Decode base64 text[0..n) into out (room for n bytes); -1 if malformed. */
static long b64_decode(const char *text, size_t n, unsigned char *out)
{
    if (n == 0 || n % 4) return -1;
    long w = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int j = 0; j < 4; j++) {
            char c = text[i + (size_t)j];
            if (c == '=' && i + 4 == n && j >= 2) {
                v[j] = 0;
                pad++;
            } else if (pad || (v[j] = b64_val((unsigned char)c)) < 0) return -1;
        }
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[w++] = (unsigned char)(x >> 16);
        if (pad < 2) out[w++] = (unsigned char)(x >> 8);
        if (pad < 1) out[w++] = (unsigned char)x;
    }
    return w;
}

static int load_err(const char *path, long line, const char *why)
{
    if (line > 0) fprintf(stderr, "herd: %s: line %ld: %s\n", path, line, why);
    else fprintf(stderr, "herd: %s: %s\n", path, why);
    return -1;
}

int herd_tok_alloc(herd_tokenizer **out, uint32_t cap, size_t byte_cap)
{
    herd_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return -1;
    t->cap = cap;
    herd_tok_specials_family(t, "llama3");
    t->off = malloc(sizeof(uint64_t) * cap);
    t->len = malloc(sizeof(uint32_t) * cap);
    t->bytes = malloc(byte_cap ? byte_cap : 1);
    t->bytes_cap = byte_cap ? byte_cap : 1;
    if (!t->off || !t->len || !t->bytes) {
        herd_tokenizer_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

/* A rank file larger than this is not a tokenizer (Llama 3's is 2.2 MB). */
#define RANK_FILE_MAX ((size_t)256 << 20)

/* The rank of one line: decimal digits only, below 2^32. */
static int parse_rank(const char *p, size_t n, uint32_t *out)
{
    if (n == 0 || n > 10) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    if (v > UINT32_MAX) return -1;
    *out = (uint32_t)v;
    return 0;
}

/* One line "base64(token) rank" as token t->n; -1 with the message. lines[]
 * keeps each token's line so that a repeated token names both. */
static int load_line(herd_tokenizer *t, const char *origin, long line, const char *p, size_t n,
                     uint32_t *lines)
{
    const char *sp = memchr(p, ' ', n);
    if (!sp) return load_err(origin, line, "expected \"base64(token) rank\"");
    uint32_t r;
    if (parse_rank(sp + 1, (size_t)(p + n - sp - 1), &r))
        return load_err(origin, line, "rank: not a non-negative integer");
    if (r != t->n) {
        char why[128];
        snprintf(why, sizeof why, "rank: %u where %u was expected (ranks must be 0, 1, 2, ... in order)",
                 r, t->n);
        return load_err(origin, line, why);
    }
    long w = b64_decode(p, (size_t)(sp - p), t->bytes + t->bytes_len);
    if (w <= 0) return load_err(origin, line, "token: not valid base64");
    t->off[t->n] = t->bytes_len;
    t->len[t->n] = (uint32_t)w;
    if (herd_tok_insert(t, t->n)) {
        uint32_t first = herd_tok_rank(t, t->bytes + t->bytes_len, (size_t)w);
        char why[128];
        snprintf(why, sizeof why, "token: rank %u repeats the bytes of rank %u (line %u)", t->n, first,
                 lines[first]);
        return load_err(origin, line, why);
    }
    lines[t->n] = (uint32_t)line;
    t->bytes_len += (size_t)w;
    t->n++;
    return 0;
}

int herd_tokenizer_load_text(herd_tokenizer **out, const char *origin, const char *text, size_t size)
{
    *out = NULL;
    if (size == 0) return load_err(origin, 0, "empty rank file (expected lines \"base64(token) rank\")");
    if (size > RANK_FILE_MAX) {
        char why[96];
        snprintf(why, sizeof why, "larger than %zu MiB: not a rank file", RANK_FILE_MAX >> 20);
        return load_err(origin, 0, why);
    }
    /* a token per line at most; bytes of tokens <= bytes of the file */
    uint32_t n_lines = 1;
    for (const char *p = text; (p = memchr(p, '\n', size - (size_t)(p - text))); p++) n_lines++;
    herd_tokenizer *t;
    uint32_t *lines = malloc(sizeof *lines * n_lines);
    if (!lines || herd_tok_alloc(&t, n_lines, size)) {
        free(lines);
        return load_err(origin, 0, "out of memory");
    }
    t->table_cap = 64;
    while (t->table_cap < 2 * (uint64_t)n_lines) t->table_cap *= 2;
    t->table = malloc(sizeof(uint32_t) * t->table_cap);
    int rc = t->table ? 0 : load_err(origin, 0, "out of memory");
    if (t->table) memset(t->table, 0xFF, sizeof(uint32_t) * t->table_cap);
    for (int b = 0; b < 256; b++) t->byte_rank[b] = UINT32_MAX;
    long line = 0;
    for (size_t at = 0; rc == 0 && at < size;) {
        const char *p = text + at, *nl = memchr(p, '\n', size - at);
        size_t n = nl ? (size_t)(nl - p) : size - at;
        at += n + 1;
        line++;
        if (n && p[n - 1] == '\r') n--; /* CRLF, as tiktoken's splitlines() */
        if (n == 0) continue;           /* tiktoken skips empty lines too */
        rc = load_line(t, origin, line, p, n, lines);
    }
    free(lines);
    if (rc == 0 && t->n == 0) rc = load_err(origin, 0, "empty rank file (no tokens)");
    for (int b = 0; rc == 0 && b < 256; b++)
        if (t->byte_rank[b] == UINT32_MAX) {
            char why[96];
            snprintf(why, sizeof why, "token: the single byte 0x%02x is missing (every byte must be a token)", b);
            rc = load_err(origin, 0, why);
        }
    if (rc) {
        herd_tokenizer_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

/* All of fd, up to RANK_FILE_MAX + 1 bytes (one more says it is too large). */
static char *read_all(int fd, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf && n <= RANK_FILE_MAX) {
        if (n == cap) {
            char *more = realloc(buf, 2 * cap);
            if (!more) break;
            buf = more;
            cap *= 2;
        }
        ssize_t k = read(fd, buf + n, cap - n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            free(buf);
            return NULL;
        }
        if (k == 0) {
            *len = n;
            return buf;
        }
        n += (size_t)k;
    }
    if (buf) *len = n;
    return buf;
}

int herd_tokenizer_load(herd_tokenizer **out, const char *path)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "herd: %s: cannot open rank file: %s\n", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        close(fd);
        return load_err(path, 0, "is a directory; give the rank file itself (tiktoken format, lines "
                                 "\"base64(token) rank\"; Llama 3's is original/tokenizer.model)");
    }
    size_t size = 0;
    char *text = read_all(fd, &size);
    int err = errno;
    close(fd);
    if (!text) {
        fprintf(stderr, "herd: %s: cannot read rank file: %s\n", path, strerror(err));
        return -1;
    }
    int rc = herd_tokenizer_load_text(out, path, text, size);
    free(text);
    return rc;
}

int herd_tokenizer_save(const herd_tokenizer *t, const char *path)
{
    herd_safe_file sf;
    FILE *f = herd_safe_file_begin_stream(&sf, path, 0666); /* fopen's mode */
    if (!f) return -1;
    for (uint32_t id = 0; id < t->n; id++) {
        const unsigned char *p = t->bytes + t->off[id];
        size_t n = t->len[id];
        for (size_t i = 0; i < n; i += 3) {
            uint32_t x = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                         (i + 2 < n ? p[i + 2] : 0);
            char q[4] = {b64[x >> 18], b64[(x >> 12) & 63], i + 1 < n ? b64[(x >> 6) & 63] : '=',
                         i + 2 < n ? b64[x & 63] : '='};
            fwrite(q, 1, 4, f);
        }
        fprintf(f, " %u\n", id);
    }
    return herd_safe_file_stream_commit(&sf, f);
}
