/* tokenizer_hf.c — see tokenizer_hf.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "checkpoint/safe_file.h"
#include "src/data/tokenizer_hf.h"

/* GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others
 * for 256 + n in byte order */
static void byte_map(unsigned cp[256])
{
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        cp[b] = keep ? (unsigned)b : 256u + (unsigned)n++;
    }
}

/* a token's bytes as a JSON string body (mapped code points, UTF-8) */
static void put_token(FILE *f, const unsigned cp[256], const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned c = cp[s[i]];
        if (c == '"' || c == '\\') fprintf(f, "\\%c", (char)c);
        else if (c < 0x80) fputc((int)c, f);
        else if (c < 0x800) fprintf(f, "%c%c", (char)(0xC0 | (c >> 6)), (char)(0x80 | (c & 0x3F)));
        else fprintf(f, "%c%c%c", (char)(0xE0 | (c >> 12)), (char)(0x80 | ((c >> 6) & 0x3F)),
                     (char)(0x80 | (c & 0x3F)));
    }
}

/* bytes -> rank, open addressing */
typedef struct { const unsigned char *s; size_t n; int rank; } slot;
typedef struct { slot *t; size_t cap; } rank_map;

static uint64_t hash_bytes(const unsigned char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}

static slot *map_at(rank_map *m, const unsigned char *s, size_t n)
{
    for (size_t i = hash_bytes(s, n) & (m->cap - 1);; i = (i + 1) & (m->cap - 1))
        if (!m->t[i].s || (m->t[i].n == n && !memcmp(m->t[i].s, s, n))) return &m->t[i];
}

static int rank_of(rank_map *m, const unsigned char *s, size_t n)
{
    slot *e = map_at(m, s, n);
    return e->s ? e->rank : -1;
}

typedef struct { int l, r; } pair;

static int by_ranks(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    return x->l != y->l ? (x->l > y->l) - (x->l < y->l) : (x->r > y->r) - (x->r < y->r);
}

/* "merges": every split of every token, by the token's rank, then (left, right) */
static void put_merges(FILE *f, const herd_tokenizer *t, rank_map *m, const unsigned cp[256])
{
    int nr = herd_tokenizer_n_regular(t), first = 1;
    pair *p = malloc(sizeof *p * 1024);
    for (int id = 0; id < nr && p; id++) {
        size_t n;
        const unsigned char *s = herd_tokenizer_token(t, (uint32_t)id, &n);
        int k = 0;
        for (size_t i = 1; i < n && k < 1024; i++) {
            int l = rank_of(m, s, i), r = rank_of(m, s + i, n - i);
            if (l >= 0 && r >= 0) p[k++] = (pair){l, r};
        }
        qsort(p, (size_t)k, sizeof *p, by_ranks);
        for (int j = 0; j < k; j++) {
            size_t ln, rn;
            const unsigned char *ls = herd_tokenizer_token(t, (uint32_t)p[j].l, &ln),
                                *rs = herd_tokenizer_token(t, (uint32_t)p[j].r, &rn);
            fputs(first ? "\n    \"" : ",\n    \"", f);
            put_token(f, cp, ls, ln);
            fputc(' ', f);
            put_token(f, cp, rs, rn);
            fputc('"', f);
            first = 0;
        }
    }
    free(p);
}

static void put_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void put_added_tokens(FILE *f, const herd_tokenizer *t)
{
    int nr = herd_tokenizer_n_regular(t);
    fprintf(f, "  \"added_tokens\": [");
    for (int i = 0; i < HERD_TOK_N_SPECIAL; i++) {
        fprintf(f, "%s\n    {\"id\": %d, \"content\": ", i ? "," : "", nr + i);
        put_json_str(f, herd_tokenizer_special_name(i));
        fprintf(f, ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, "
                "\"normalized\": false, \"special\": true}");
    }
    fprintf(f, "\n  ],\n");
}

static void put_pipeline(FILE *f, const herd_tokenizer *t)
{
    const char *bos = herd_tokenizer_special_name(HERD_TOK_BOS);
    int bos_id = herd_tokenizer_n_regular(t) + HERD_TOK_BOS;
    fprintf(f, "  \"normalizer\": null,\n  \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [\n"
            "    {\"type\": \"Split\", \"pattern\": {\"Regex\": ");
    put_json_str(f, HERD_TOK_PATTERN);
    fprintf(f, "}, \"behavior\": \"Isolated\", \"invert\": false},\n"
            "    {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, "
            "\"use_regex\": false}]},\n");
    fprintf(f, "  \"post_processor\": {\"type\": \"Sequence\", \"processors\": [\n"
            "    {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": false, "
            "\"use_regex\": true},\n"
            "    {\"type\": \"TemplateProcessing\",\n"
            "     \"single\": [{\"SpecialToken\": {\"id\": \"%s\", \"type_id\": 0}}, "
            "{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}],\n"
            "     \"pair\": [{\"SpecialToken\": {\"id\": \"%s\", \"type_id\": 0}}, "
            "{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, {\"SpecialToken\": {\"id\": \"%s\", "
            "\"type_id\": 1}}, {\"Sequence\": {\"id\": \"B\", \"type_id\": 1}}],\n"
            "     \"special_tokens\": {\"%s\": {\"id\": \"%s\", \"ids\": [%d], \"tokens\": [\"%s\"]}}}]},\n",
            bos, bos, bos, bos, bos, bos_id, bos);
    fprintf(f, "  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, "
            "\"trim_offsets\": true, \"use_regex\": true},\n");
}

static int write_tokenizer_json(const herd_tokenizer *t, const char *dir)
{
    int nr = herd_tokenizer_n_regular(t);
    rank_map m = {0};
    for (m.cap = 1; m.cap < 2 * (size_t)nr + 2; m.cap <<= 1) {}
    m.t = calloc(m.cap, sizeof *m.t);
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (!m.t) {
        fprintf(stderr, "herd: %s: out of memory\n", path);
        return -1;
    }
    for (int id = 0; id < nr; id++) {
        size_t n;
        const unsigned char *s = herd_tokenizer_token(t, (uint32_t)id, &n);
        *map_at(&m, s, n) = (slot){s, n, id};
    }
    unsigned cp[256];
    byte_map(cp);
    herd_safe_file sf;
    FILE *f = herd_safe_file_begin_stream(&sf, path, 0644);
    if (!f) { free(m.t); return -1; }
    fprintf(f, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n");
    put_added_tokens(f, t);
    put_pipeline(f, t);
    fprintf(f, "  \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, "
            "\"continuing_subword_prefix\": null, \"end_of_word_suffix\": null, \"fuse_unk\": false, "
            "\"byte_fallback\": false, \"ignore_merges\": true,\n  \"vocab\": {");
    for (int id = 0; id < nr; id++) {
        size_t n;
        const unsigned char *s = herd_tokenizer_token(t, (uint32_t)id, &n);
        fputs(id ? ",\n    \"" : "\n    \"", f);
        put_token(f, cp, s, n);
        fprintf(f, "\": %d", id);
    }
    fprintf(f, "\n  },\n  \"merges\": [");
    put_merges(f, t, &m, cp);
    fprintf(f, "\n  ]}\n}\n");
    free(m.t);
    return herd_safe_file_stream_commit(&sf, f);
}

static int write_tokenizer_config(const herd_tokenizer *t, const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    herd_safe_file sf;
    FILE *f = herd_safe_file_begin_stream(&sf, path, 0644);
    if (!f) return -1;
    fprintf(f, "{\n  \"tokenizer_class\": \"PreTrainedTokenizerFast\",\n  \"bos_token\": ");
    put_json_str(f, herd_tokenizer_special_name(HERD_TOK_BOS));
    fprintf(f, ",\n  \"eos_token\": ");
    put_json_str(f, herd_tokenizer_special_name(HERD_TOK_EOT));
    fprintf(f, ",\n  \"clean_up_tokenization_spaces\": false,\n"
            "  \"model_input_names\": [\"input_ids\", \"attention_mask\"]\n}\n");
    return herd_safe_file_stream_commit(&sf, f);
}

int herd_tokenizer_write_hf(const herd_tokenizer *t, const char *dir)
{
    if (write_tokenizer_json(t, dir)) return -1;
    return write_tokenizer_config(t, dir);
}
