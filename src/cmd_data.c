/* cmd_data.c — `herd data prepare|inspect`: text to byte-level token shards.
 *
 * The byte-level tokenizer (ids 0..255 are bytes, 256 <|begin_of_text|>,
 * 257 <|end_of_text|>) stands in until the BPE tokenizer (issue 4). Each input
 * file is one document; files over 64 KiB are cut at paragraph breaks into
 * documents of about 16 KiB, so that packed sequences hold several documents
 * and the document mask has work to do. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/commands.h"
#include "src/data.h"

typedef struct {
    uint32_t *ids;
    uint64_t  n, cap;
    uint64_t  n_docs;
} id_buf;

static int push(id_buf *b, uint32_t v)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 1 << 16;
        uint32_t *p = realloc(b->ids, sizeof(uint32_t) * b->cap);
        if (!p) return -1;
        b->ids = p;
    }
    b->ids[b->n++] = v;
    return 0;
}

static int push_doc(id_buf *b, const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (push(b, s[i])) return -1;
    b->n_docs++;
    return push(b, HERD_BYTE_EOT);
}

static int add_file(id_buf *b, const char *path, uint64_t *bytes)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "herd data: %s: cannot open: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, n = 0, r;
    unsigned char *s = malloc(cap);
    while (s && (r = fread(s + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) s = realloc(s, cap *= 2);
    }
    fclose(f);
    if (!s) return -1;
    *bytes += n;
    int rc = 0;
    if (n <= 65536) {
        rc = push_doc(b, s, n);
    } else { /* cut at the first blank line after every ~16 KiB */
        size_t start = 0;
        while (start < n && rc == 0) {
            size_t end = start + 16384;
            if (end >= n) end = n;
            else {
                char *cut = memmem(s + end, n - end, "\n\n", 2);
                end = cut ? (size_t)((unsigned char *)cut - s) + 2 : n;
            }
            rc = push_doc(b, s + start, end - start);
            start = end;
        }
    }
    free(s);
    return rc;
}

static int prepare(int argc, char **argv)
{
    const char *out = NULL, *val = NULL;
    double val_fraction = 0.1;
    int first = argc;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--val") && i + 1 < argc) val = argv[++i];
        else if (!strcmp(argv[i], "--val-fraction") && i + 1 < argc) val_fraction = atof(argv[++i]);
        else if (argv[i][0] == '-') break;
        else { first = i; break; }
    }
    if (!out || first >= argc || val_fraction <= 0 || val_fraction >= 1) {
        fprintf(stderr, "usage: herd data prepare --out SHARD [--val VAL_SHARD [--val-fraction 0.1]] FILE...\n");
        return 2;
    }
    id_buf b = {0};
    uint64_t bytes = 0;
    for (int i = first; i < argc; i++)
        if (add_file(&b, argv[i], &bytes)) { free(b.ids); return 1; }
    uint64_t split = b.n;
    if (val) { /* the last whole documents, about val_fraction of the tokens */
        uint64_t target = (uint64_t)(b.n * (1 - val_fraction));
        split = target; /* back to the nearest document boundary */
        while (split > 0 && b.ids[split - 1] != HERD_BYTE_EOT) split--;
        if (split >= b.n || split == 0) {
            fprintf(stderr, "herd data: too few documents to split off a validation shard\n");
            free(b.ids);
            return 1;
        }
    }
    int rc = herd_shard_write(out, b.ids, split, HERD_BYTE_VOCAB, HERD_BYTE_EOT);
    if (!rc && val) rc = herd_shard_write(val, b.ids + split, b.n - split, HERD_BYTE_VOCAB, HERD_BYTE_EOT);
    if (!rc)
        printf("herd data: %d files, %llu bytes, %llu documents, %llu tokens -> %s (%llu)%s%s\n",
               argc - first, (unsigned long long)bytes, (unsigned long long)b.n_docs,
               (unsigned long long)b.n, out, (unsigned long long)split, val ? ", " : "",
               val ? val : "");
    free(b.ids);
    return rc ? 1 : 0;
}

static int inspect(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: herd data inspect SHARD\n");
        return 2;
    }
    herd_data *d;
    if (herd_data_open(&d, argv[1], 1 << 30, 0)) return 1;
    const herd_shard_header *h = herd_data_header(d);
    printf("%s: version %u, dtype %u bytes, vocab_size %u, eot_id %u, %llu tokens, %llu documents\n",
           argv[1], h->version, h->dtype_bytes, h->vocab_size, h->eot_id,
           (unsigned long long)h->n_tokens, (unsigned long long)h->n_docs);
    enum { T = 240 };
    int32_t tok[T], tgt[T], doc[T];
    herd_data_state st = {0, 0, 0, 0};
    herd_data_set_state(d, &st);
    if (h->n_tokens > T && herd_data_next(d, 1, T, tok, tgt, doc) == 0) {
        printf("a sampled window of %d tokens (documents separated by |eot|):\n  ", T);
        for (int t = 0; t < T; t++) {
            if (tok[t] == (int32_t)h->eot_id) printf("|eot|");
            else if (tok[t] >= 32 && tok[t] < 127) putchar(tok[t]);
            else if (tok[t] == '\n') printf("\\n");
            else printf("<%d>", tok[t]);
        }
        printf("\n");
    }
    herd_data_close(d);
    return 0;
}

int herd_cmd_data(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "prepare")) return prepare(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "inspect")) return inspect(argc - 1, argv + 1);
    fprintf(stderr, "usage: herd data prepare|inspect ...\n");
    return 2;
}
