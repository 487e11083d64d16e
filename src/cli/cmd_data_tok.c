/* cmd_data_tok.c — `herd data train-tokenizer|encode|tokenize`: the BPE
 * tokenizer on the command line, and text documents to token shards.
 *
 * Document files (docs/data-format.md): documents separated by NUL bytes; a
 * file without a NUL is one document. Empty documents are dropped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/base/file.h"
#include "src/cli/commands.h"
#include "src/data/data.h"
#include "src/base/rng.h"
#include "src/data/tokenizer.h"

static int tok_usage(const char *why)
{
    if (why) fprintf(stderr, "herd data: %s\n", why);
    fputs("usage: herd data train-tokenizer --vocab-size N [--split-digits] --out RANKS FILE...\n"
          "       herd data encode --tokenizer RANKS [--specials S] [--special] FILE...\n"
          "       herd data tokenize --tokenizer RANKS [--specials S] --out SHARD [--val VAL [--val-fraction F]] FILE...\n"
          "(herd data help lists every data command)\n",
          stderr);
    return 2;
}

/* Every FILE concatenated, NUL between files (a document boundary). */
static unsigned char *slurp_all(int n_files, char **files, size_t *len)
{
    unsigned char *all = NULL;
    size_t n = 0;
    for (int i = 0; i < n_files; i++) {
        size_t l;
        unsigned char *s = herd_file_slurp(files[i], &l);
        if (!s) {
            free(all);
            return NULL;
        }
        unsigned char *p = realloc(all, n + l + 2);
        if (!p) {
            free(s);
            free(all);
            fprintf(stderr, "herd data: out of memory\n");
            return NULL;
        }
        all = p;
        memcpy(all + n, s, l);
        n += l;
        all[n++] = 0;
        free(s);
    }
    *len = n;
    return all;
}

static int parse_long(const char *s, long lo, long hi, long *v)
{
    char *end;
    errno = 0;
    *v = strtol(s, &end, 10);
    return errno || end == s || *end || *v < lo || *v > hi ? -1 : 0;
}

/* ---- train-tokenizer ---------------------------------------------------------- */

static int train_tokenizer(int argc, char **argv)
{
    const char *out = NULL;
    long vocab = 0;
    char **files = argv + 1;
    int n_files = 0, split_digits = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--split-digits")) split_digits = 1;
        else if (!strcmp(argv[i], "--vocab-size") && i + 1 < argc) {
            if (parse_long(argv[++i], 256, 1L << 24, &vocab))
                return tok_usage("train-tokenizer: --vocab-size: expected an integer from 256 "
                                 "(regular tokens, the special ones come on top)");
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "herd data train-tokenizer: unknown option or missing value: %s\n", argv[i]);
            return tok_usage(NULL);
        } else files[n_files++] = argv[i];
    }
    if (!out || !vocab || !n_files) return tok_usage("train-tokenizer: --vocab-size, --out and a FILE are required");
    size_t n;
    unsigned char *text = slurp_all(n_files, files, &n);
    if (!text) return 1;
    if (n == (size_t)n_files) { /* only the separators */
        fprintf(stderr, "herd data: train-tokenizer: the input files are empty\n");
        free(text);
        return 1;
    }
    herd_tokenizer *t;
    int rc = herd_tokenizer_train_opts(&t, text, n, (int)vocab, split_digits);
    free(text);
    if (rc) return 1;
    rc = herd_tokenizer_save(t, out);
    if (rc == 0)
        printf("herd data: %s: %d regular tokens + %d special = vocab_size %d\n", out,
               herd_tokenizer_n_regular(t), HERD_TOK_N_SPECIAL, herd_tokenizer_vocab_size(t));
    herd_tokenizer_free(t);
    return rc ? 1 : 0;
}

/* ---- encode: ids of one file, one line, for tests and tools -------------------- */

static int encode(int argc, char **argv)
{
    const char *rank = NULL, *specials = NULL;
    char **files = argv + 1;
    int special = 0, n_files = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) rank = argv[++i];
        else if (!strcmp(argv[i], "--specials") && i + 1 < argc) specials = argv[++i];
        else if (!strcmp(argv[i], "--special")) special = 1;
        else if (argv[i][0] == '-' && argv[i][1]) return tok_usage("encode: unknown option");
        else files[n_files++] = argv[i];
    }
    if (!rank || !n_files) return tok_usage("encode: --tokenizer RANKS and a FILE are required");
    herd_tokenizer *t;
    if (herd_tokenizer_open(&t, rank, specials)) return 1;
    int rc = 0;
    for (int f = 0; f < n_files && !rc; f++) { /* one line of ids per file */
        size_t n;
        unsigned char *s = herd_file_slurp(files[f], &n);
        herd_ids ids = {0};
        rc = !s || herd_tokenizer_encode(t, s, n, special, &ids);
        for (size_t i = 0; !rc && i < ids.n; i++) printf(i ? " %u" : "%u", ids.ids[i]);
        if (!rc) printf("\n");
        free(ids.ids);
        free(s);
    }
    herd_tokenizer_free(t);
    return rc ? 1 : 0;
}

/* ---- tokenize: documents to a train shard and a validation shard ---------------- */

typedef struct {
    herd_ids ids;
    uint64_t docs, bytes;
} split_buf;

/* Sidecar PATH.meta: the text bytes behind the shard's tokens (bits per byte). */
static int write_meta(const char *shard, const split_buf *b)
{
    size_t l = strlen(shard) + 8;
    char *p = malloc(l);
    if (!p) return -1;
    snprintf(p, l, "%s.meta", shard);
    FILE *f = fopen(p, "w");
    if (!f) {
        fprintf(stderr, "herd: %s: cannot create: %s\n", p, strerror(errno));
        free(p);
        return -1;
    }
    fprintf(f, "text_bytes %llu\ntokens %llu\ndocs %llu\n", (unsigned long long)b->bytes,
            (unsigned long long)b->ids.n, (unsigned long long)b->docs);
    int rc = fclose(f) ? -1 : 0;
    free(p);
    return rc;
}

static int tokenize(int argc, char **argv)
{
    const char *rank = NULL, *out = NULL, *val = NULL, *specials = NULL;
    double frac = 0.05;
    char **files = argv + 1;
    int n_files = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) rank = argv[++i];
        else if (!strcmp(argv[i], "--specials") && i + 1 < argc) specials = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--val") && i + 1 < argc) val = argv[++i];
        else if (!strcmp(argv[i], "--val-fraction") && i + 1 < argc) {
            char *end;
            frac = strtod(argv[++i], &end);
            if (*end || end == argv[i] || !(frac > 0 && frac < 1))
                return tok_usage("tokenize: --val-fraction: expected a number between 0 and 1");
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "herd data tokenize: unknown option or missing value: %s\n", argv[i]);
            return tok_usage(NULL);
        } else files[n_files++] = argv[i];
    }
    if (!rank || !out || !n_files) return tok_usage("tokenize: --tokenizer, --out and a FILE are required");
    herd_tokenizer *t;
    if (herd_tokenizer_open(&t, rank, specials)) return 1;
    uint32_t eot = (uint32_t)(herd_tokenizer_n_regular(t) + HERD_TOK_EOT);
    size_t n;
    unsigned char *text = slurp_all(n_files, files, &n);
    int rc = text ? 0 : 1;
    split_buf b[2] = {{{0}, 0, 0}, {{0}, 0, 0}}; /* train, val */
    uint64_t doc_index = 0, thresh = (uint64_t)(frac * 18446744073709551615.0);
    for (size_t d = 0; rc == 0 && d < n;) {
        const unsigned char *z = memchr(text + d, 0, n - d);
        size_t e = z ? (size_t)(z - text) : n;
        if (e > d) {
            /* a document's split is a function of its index: the same on every rerun */
            int v = val && herd_splitmix64(doc_index ^ 0x76616cull) < thresh;
            doc_index++;
            split_buf *s = &b[v];
            if (herd_tokenizer_encode(t, text + d, e - d, 0, &s->ids)) rc = 1;
            if (!rc && s->ids.n == s->ids.cap) { /* room for the document's end-of-text */
                uint32_t *p = realloc(s->ids.ids, sizeof(uint32_t) * (s->ids.cap * 2 + 1));
                if (!p) rc = 1;
                else s->ids.ids = p, s->ids.cap = s->ids.cap * 2 + 1;
            }
            if (!rc) s->ids.ids[s->ids.n++] = eot;
            s->docs++;
            s->bytes += e - d;
        }
        d = e + 1;
    }
    if (rc == 0 && doc_index == 0) {
        fprintf(stderr, "herd data: tokenize: the input files are empty: no documents\n");
        rc = 1;
    }
    if (rc == 0 && val && (b[1].docs == 0 || b[0].docs == 0)) {
        fprintf(stderr, "herd data: tokenize: %llu document(s): too few to hold out a validation "
                        "split of %g\n", (unsigned long long)doc_index, frac);
        rc = 1;
    }
    uint32_t V = (uint32_t)herd_tokenizer_vocab_size(t);
    if (rc == 0 && (herd_shard_write(out, b[0].ids.ids, b[0].ids.n, V, eot) || write_meta(out, &b[0]))) rc = 1;
    if (rc == 0 && val && (herd_shard_write(val, b[1].ids.ids, b[1].ids.n, V, eot) || write_meta(val, &b[1])))
        rc = 1;
    if (rc == 0) {
        printf("herd data: %s: %llu documents, %llu bytes -> %llu tokens (%.2f bytes/token)",
               out, (unsigned long long)b[0].docs, (unsigned long long)b[0].bytes,
               (unsigned long long)b[0].ids.n, (double)b[0].bytes / (double)b[0].ids.n);
        if (val)
            printf("; %s: %llu documents, %llu tokens", val, (unsigned long long)b[1].docs,
                   (unsigned long long)b[1].ids.n);
        printf("\n");
    }
    free(b[0].ids.ids);
    free(b[1].ids.ids);
    free(text);
    herd_tokenizer_free(t);
    return rc;
}

int herd_cmd_data_tok(int argc, char **argv)
{
    if (!strcmp(argv[0], "train-tokenizer")) return train_tokenizer(argc, argv);
    if (!strcmp(argv[0], "encode")) return encode(argc, argv);
    if (!strcmp(argv[0], "tokenize")) return tokenize(argc, argv);
    return tok_usage(NULL);
}
