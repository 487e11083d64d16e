/* passkey.c — synthetic retrieval documents of an exact token length (passkey.h). */
#include "src/data/passkey.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/base/rng.h"
#include "src/data/data.h"

/* The filler of slurm/recipe_passkey.sh, a sentence at a time; each is encoded
 * with its leading space, as it appears inside the haystack. */
static const char *const filler[] = {" The grass is green.", " The sky is blue.", " The sun is yellow.",
                                     " Here we go.", " There and back again."};
#define N_FILLER ((int)(sizeof filler / sizeof filler[0]))
static const char question[] = " What is the pass key? The pass key is";

typedef struct {
    herd_ids s[N_FILLER], q, fact, ans;
} pieces;

static int enc(const herd_tokenizer *t, const char *text, herd_ids *out)
{
    out->n = 0;
    return herd_tokenizer_encode(t, (const unsigned char *)text, strlen(text), 0, out);
}

static int push(herd_ids *o, uint32_t id)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 4096;
        uint32_t *p = realloc(o->ids, sizeof(uint32_t) * cap);
        if (!p) return herd_data_err("passkey", "memory", "out of memory");
        o->ids = p;
        o->cap = cap;
    }
    o->ids[o->n++] = id;
    return 0;
}

static int push_ids(herd_ids *o, const herd_ids *a, size_t from)
{
    for (size_t i = from; i < a->n; i++)
        if (push(o, a->ids[i])) return -1;
    return 0;
}

/* The i-th (i mod 27216) five-digit key whose digits all differ, in mixed
 * radix 9·9·8·7·6: the first digit 1-9, each next one from those unused, in
 * ascending order. Distinct digits make the answer a copy by content: after
 * the key's first digit, each next one follows the only earlier occurrence of
 * the digit before it (a key like 12131 needs positions as well, which a
 * 2-layer model does not learn in the tiny recipe's steps). slurm/recipe_passkey.sh
 * makes its keys the same way. */
unsigned herd_passkey_key(uint64_t i)
{
    static const int radix[5] = {9, 9, 8, 7, 6};
    int used[10] = {0};
    unsigned key = 0;
    i %= 27216u;
    for (int pos = 0; pos < 5; pos++) {
        int pick = (int)(i % (uint64_t)radix[pos]);
        i /= (uint64_t)radix[pos];
        int d = pos == 0 ? 1 : 0;
        for (;; d++)
            if (!used[d] && pick-- == 0) break;
        used[d] = 1;
        key = key * 10u + (unsigned)d;
    }
    return key;
}

/* One document: the key, the first filler sentence and the fact's depth come
 * from r; the haystack's first sentence loses its head to fit len exactly. */
static int one_doc(const herd_tokenizer *t, pieces *p, int len, uint64_t r, herd_ids *out)
{
    char text[64];
    unsigned key = herd_passkey_key(r);
    snprintf(text, sizeof text, " The pass key is %u. Remember it.", key);
    if (enc(t, text, &p->fact)) return -1;
    snprintf(text, sizeof text, " %u.", key);
    if (enc(t, text, &p->ans)) return -1;
    int n_reg = herd_tokenizer_n_regular(t);
    long need = (long)len - 2 - (long)(p->q.n + p->ans.n + p->fact.n); /* filler tokens */
    if (need < 1) return herd_data_err("passkey", "len", "%d tokens are too few for a document", len);
    int first = (int)(herd_splitmix64(r ^ 0x66696cull) % N_FILLER), k = 0;
    long have = 0;
    while (have < need) have += (long)p->s[(first + k++) % N_FILLER].n;
    size_t cut = (size_t)(have - need);
    while (cut >= p->s[first % N_FILLER].n) { /* whole sentences too many: drop them */
        cut -= p->s[first % N_FILLER].n;
        first++;
        k--;
    }
    int depth = (int)(herd_splitmix64(r ^ 0x646570ull) % (uint64_t)(k + 1));
    if (push(out, (uint32_t)(n_reg + HERD_TOK_BOS))) return -1;
    for (int i = 0; i <= k; i++) {
        if (i == depth && push_ids(out, &p->fact, 0)) return -1;
        if (i < k && push_ids(out, &p->s[(first + i) % N_FILLER], i == 0 ? cut : 0)) return -1;
    }
    if (push_ids(out, &p->q, 0) || push_ids(out, &p->ans, 0)) return -1;
    return push(out, (uint32_t)(n_reg + HERD_TOK_EOT));
}

int herd_passkey_docs(const herd_tokenizer *t, int len, int64_t n_docs, uint64_t seed, herd_ids *out)
{
    if (len < HERD_PASSKEY_MIN_LEN || len > (1 << 20))
        return herd_data_err("passkey", "len", "%d is out of range [%d, %d]", len, HERD_PASSKEY_MIN_LEN, 1 << 20);
    pieces p;
    memset(&p, 0, sizeof p);
    int rc = enc(t, question, &p.q);
    for (int i = 0; i < N_FILLER && !rc; i++) rc = enc(t, filler[i], &p.s[i]);
    for (int64_t d = 0; d < n_docs && !rc; d++) {
        size_t at = out->n;
        rc = one_doc(t, &p, len, herd_splitmix64(seed ^ herd_splitmix64((uint64_t)d)), out);
        if (!rc && out->n - at != (size_t)len) /* a tokenizer whose pieces do not add up */
            rc = herd_data_err("passkey", "len", "document %lld has %zu tokens, not %d", (long long)d,
                               out->n - at, len);
    }
    for (int i = 0; i < N_FILLER; i++) free(p.s[i].ids);
    free(p.q.ids);
    free(p.fact.ids);
    free(p.ans.ids);
    return rc ? -1 : 0;
}
