/* cmd_data_decode.c — `herd data decode`: token ids back to text, from a list
 * of ids (as `herd data encode` prints them) or a range of a token shard.
 * The bytes go to stdout unchanged (no newline added), so encode then decode
 * gives back the input file byte for byte.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/base/file.h"
#include "src/cli/commands.h"
#include "src/data/data.h"
#include "src/data/tokenizer.h"

static int decode_usage(const char *why)
{
    if (why) fprintf(stderr, "herd data decode: %s\n", why);
    fputs("usage: herd data decode --tokenizer RANKS [--specials S] ID...\n"
          "       herd data decode --tokenizer RANKS [--specials S] --ids FILE\n"
          "       herd data decode --tokenizer RANKS [--specials S] --shard SHARD [--start I] [--count N]\n",
          stderr);
    return 2;
}

/* One decimal id below 2^32 from s[0..n); -1 if it is not one. */
static int parse_id(const char *s, size_t n, uint32_t *out)
{
    unsigned long long v = 0;
    if (n == 0 || n > 10) return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > UINT32_MAX) return -1;
    *out = (uint32_t)v;
    return 0;
}

/* The whitespace-separated ids of text (origin names it in messages). */
static int ids_of_text(const char *origin, const char *s, size_t n, herd_ids *o)
{
    size_t i = 0, k = 0;
    while (i < n) {
        while (i < n && strchr(" \t\r\n", s[i])) i++;
        size_t j = i;
        while (j < n && !strchr(" \t\r\n", s[j])) j++;
        if (j == i) break;
        uint32_t id;
        if (parse_id(s + i, j - i, &id)) {
            fprintf(stderr, "herd: %s: id %zu: \"%.*s\" is not a token id\n", origin, k,
                    (int)(j - i < 40 ? j - i : 40), s + i);
            return -1;
        }
        if (o->n == o->cap) {
            size_t cap = o->cap ? o->cap * 2 : 1024;
            uint32_t *p = realloc(o->ids, cap * sizeof *p);
            if (!p) return -1;
            o->ids = p, o->cap = cap;
        }
        o->ids[o->n++] = id;
        i = j, k++;
    }
    return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || end == s || s[0] == '-') return -1;
    *out = v;
    return 0;
}

/* Ids [start, start+count) of the shard (count 0: to its end). */
static int ids_of_shard(const char *path, uint64_t start, uint64_t count, const herd_tokenizer *t,
                        herd_ids *o)
{
    herd_data *d;
    if (herd_data_open(&d, path, INT_MAX, 0)) return -1;
    const herd_shard_header *h = herd_data_header(d);
    int rc = 0;
    if (h->vocab_size > (uint32_t)herd_tokenizer_vocab_size(t)) {
        fprintf(stderr, "herd: %s: vocab_size: %u, but the tokenizer has %d tokens\n", path,
                h->vocab_size, herd_tokenizer_vocab_size(t));
        rc = -1;
    } else if (start > h->n_tokens || (count && count > h->n_tokens - start)) {
        fprintf(stderr, "herd: %s: n_tokens: %llu; --start %llu --count %llu is outside the shard\n",
                path, (unsigned long long)h->n_tokens, (unsigned long long)start,
                (unsigned long long)count);
        rc = -1;
    }
    if (!rc) {
        if (!count) count = h->n_tokens - start;
        o->ids = malloc((count ? count : 1) * sizeof *o->ids);
        rc = !o->ids || herd_data_read(d, start, count, o->ids) ? -1 : 0;
        if (!rc) o->n = o->cap = count;
    }
    herd_data_close(d);
    return rc;
}

typedef struct {
    const char *rank, *specials, *ids_file, *shard;
    uint64_t    start, count;
    int         first_id; /* argv index of the first ID argument, 0 if none */
} decode_args;

static int decode_parse(int argc, char **argv, decode_args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(k, "--tokenizer") && has) a->rank = argv[++i];
        else if (!strcmp(k, "--specials") && has) a->specials = argv[++i];
        else if (!strcmp(k, "--ids") && has) a->ids_file = argv[++i];
        else if (!strcmp(k, "--shard") && has) a->shard = argv[++i];
        else if (!strcmp(k, "--start") && has) {
            if (parse_u64(argv[++i], &a->start)) return decode_usage("--start expects a token index");
        } else if (!strcmp(k, "--count") && has) {
            if (parse_u64(argv[++i], &a->count) || !a->count)
                return decode_usage("--count expects a positive number of tokens");
        } else if (k[0] == '-' && k[1]) {
            fprintf(stderr, "herd data decode: unknown option or missing value: %s\n", k);
            return decode_usage(NULL);
        } else {
            a->first_id = i;
            break;
        }
    }
    if (!a->rank) return decode_usage("--tokenizer RANKS is required");
    if ((a->first_id > 0) + (a->ids_file != NULL) + (a->shard != NULL) != 1)
        return decode_usage("give the ids one way: ID..., --ids FILE or --shard SHARD");
    if (!a->shard && (a->start || a->count)) return decode_usage("--start and --count go with --shard");
    return 0;
}

int herd_cmd_data_decode(int argc, char **argv)
{
    decode_args a;
    int rc = decode_parse(argc, argv, &a);
    if (rc) return rc;
    herd_tokenizer *t;
    if (herd_tokenizer_open(&t, a.rank, a.specials)) return 1;
    herd_ids ids = {0};
    if (a.shard) rc = ids_of_shard(a.shard, a.start, a.count, t, &ids);
    else if (a.ids_file) {
        size_t n;
        unsigned char *s = herd_file_slurp(a.ids_file, &n);
        rc = !s || ids_of_text(a.ids_file, (const char *)s, n, &ids) ? -1 : 0;
        free(s);
    } else
        for (int i = a.first_id; i < argc && !rc; i++)
            rc = ids_of_text("argument", argv[i], strlen(argv[i]), &ids);
    size_t len = 0;
    unsigned char *text = rc ? NULL : herd_tokenizer_decode(t, ids.ids, ids.n, &len);
    if (text && fwrite(text, 1, len, stdout) != len) text = (free(text), NULL);
    if (!text) rc = -1;
    free(text);
    free(ids.ids);
    herd_tokenizer_free(t);
    return rc ? 1 : 0;
}
