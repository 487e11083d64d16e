/* cmd_data.c — `herd data prepare|inspect`: text to byte-level token shards.
 *
 * The byte-level tokenizer (ids 0..255 are bytes, 256 <|begin_of_text|>,
 * 257 <|end_of_text|>) needs no rank file (`herd data tokenize` is the BPE
 * path, cmd_data_tok.c). Each input
 * file is one document; files over 64 KiB are cut at blank lines into
 * documents of about 16 KiB, so that packed sequences hold several documents
 * and the document mask has work to do. Every document ends with <|end_of_text|>.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/base/file.h"
#include "src/cli/commands.h"
#include "src/data/data.h"

#define SPLIT_ABOVE  (64 << 10) /* files larger than this are cut into documents */
#define DOC_TARGET   (16 << 10) /* ... of about this many bytes, at a blank line */
#define PREVIEW      160        /* tokens of each document that inspect shows */

static const char usage_text[] =
    "usage: herd data prepare --out SHARD [--val VAL_SHARD [--val-fraction F]] FILE...\n"
    "       herd data inspect [--docs N] SHARD\n"
    "\n"
    "  prepare  byte-level tokens of the text FILEs (one document per file; files over\n"
    "           64 KiB are cut at blank lines into ~16 KiB documents) into SHARD; with\n"
    "           --val, the last documents, about F of the tokens (default 0.1), go to\n"
    "           VAL_SHARD instead\n"
    "  inspect  print the header of SHARD and its first N documents (default 5)\n"
    "\n"
    "       herd data train-tokenizer --vocab-size N [--split-digits] --out RANKS FILE...\n"
    "       herd data encode --tokenizer RANKS [--specials S] [--special] FILE...\n"
    "       herd data decode --tokenizer RANKS [--specials S] (ID... | --ids FILE | --shard SHARD\n"
    "                        [--start I] [--count N])\n"
    "       herd data tokenize --tokenizer RANKS [--specials S] --out SHARD [--val VAL [--val-fraction F]] FILE...\n"
    "       herd data clean --out DOCS [options] FILE...   (herd data clean --help)\n"
    "       herd data sample [--set KEY=VALUE]... [--batches N] CONFIG\n"
    "       herd data passkey --tokenizer RANKS --len T --docs N [--seed S] --out SHARD\n"
    "\n"
    "  train-tokenizer  learn a byte-level BPE vocabulary of N regular tokens (256 special\n"
    "           tokens come after them) and write it as a tiktoken rank file\n"
    "  encode   print the token ids of each FILE, a line each (--special: special-token\n"
    "           texts are ids)\n"
    "  decode   the text of token ids (raw bytes to stdout, no newline added)\n"
    "  --specials S  the special tokens' texts: a family (llama3, the default; llama3.1,\n"
    "           llama3.2, llama3.3) or a Hugging Face tokenizer.json / tokenizer_config.json\n"
    "  tokenize BPE-encode the documents of FILEs (separated by NUL bytes) into SHARD,\n"
    "           with about F of the documents (default 0.05) held out in VAL\n"
    "  clean    normalise, de-duplicate (exact, MinHash, lines) and filter documents\n"
    "  sample   read batches through the training loader of CONFIG (data.sources) and\n"
    "           print each source's share of the tokens\n"
    "  passkey  synthetic retrieval documents of exactly T tokens (a pass key early, the\n"
    "           question at the end): the long-context stages' retrieval source\n"
    "\n"
    "The shard format is described in docs/data-format.md.\n";

static int usage_error(const char *why)
{
    if (why) fprintf(stderr, "herd data: %s\n", why);
    fputs(usage_text, stderr);
    return 2;
}

/* ---- prepare --------------------------------------------------------------- */

typedef struct {
    uint32_t *ids;
    uint64_t  n, cap;
    uint64_t  n_docs;
    uint64_t  bytes; /* of input text */
} id_buf;

static int reserve(id_buf *b, uint64_t extra)
{
    if (b->n + extra <= b->cap) return 0;
    uint64_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->n + extra) cap *= 2;
    uint32_t *p = realloc(b->ids, sizeof(uint32_t) * cap);
    if (!p) {
        fprintf(stderr, "herd data: out of memory for %llu tokens\n", (unsigned long long)cap);
        return -1;
    }
    b->ids = p;
    b->cap = cap;
    return 0;
}

/* One document: its bytes as ids, then the end-of-text id. */
static int push_doc(id_buf *b, const unsigned char *s, size_t n)
{
    if (n == 0) return 0; /* an empty document would be a lone EOT: nothing to learn */
    if (reserve(b, n + 1)) return -1;
    for (size_t i = 0; i < n; i++) b->ids[b->n++] = s[i];
    b->ids[b->n++] = HERD_BYTE_EOT;
    b->n_docs++;
    b->bytes += n;
    return 0;
}

/* Where the document starting at start ends: after the first blank line
 * (and any further newlines) at or past start + DOC_TARGET, else at n. */
static size_t doc_end(const unsigned char *s, size_t n, size_t start)
{
    if (n - start <= DOC_TARGET) return n;
    const unsigned char *cut = memmem(s + start + DOC_TARGET, n - start - DOC_TARGET, "\n\n", 2);
    if (!cut) return n;
    size_t end = (size_t)(cut - s) + 2;
    while (end < n && s[end] == '\n') end++; /* the next document starts with text */
    return end;
}

static int push_text(id_buf *b, const unsigned char *s, size_t n)
{
    if (n <= SPLIT_ABOVE) return push_doc(b, s, n);
    for (size_t start = 0; start < n;) {
        size_t end = doc_end(s, n, start);
        if (push_doc(b, s + start, end - start)) return -1;
        start = end;
    }
    return 0;
}

/* The document boundary (an index just after an EOT) nearest to the point
 * that leaves val_fraction of the tokens after it; 0 if there is none inside. */
static uint64_t val_split(const id_buf *b, double val_fraction)
{
    uint64_t target = b->n - (uint64_t)(val_fraction * (double)b->n + 0.5);
    uint64_t best = 0, best_dist = UINT64_MAX;
    for (uint64_t i = 1; i < b->n; i++) { /* i == n would leave no validation data */
        if (b->ids[i - 1] != HERD_BYTE_EOT) continue;
        uint64_t dist = i > target ? i - target : target - i;
        if (dist < best_dist) best = i, best_dist = dist;
    }
    return best;
}

static uint64_t count_docs(const uint32_t *ids, uint64_t n)
{
    uint64_t k = 0;
    for (uint64_t i = 0; i < n; i++) k += ids[i] == HERD_BYTE_EOT;
    return k;
}

typedef struct {
    const char  *out, *val;
    double       val_fraction;
    int          val_fraction_given;
    int          n_files;
    char       **files;
} prepare_args;

static int parse_fraction(const char *s, double *f)
{
    char *end;
    errno = 0;
    *f = strtod(s, &end);
    return errno || end == s || *end || !(*f > 0 && *f < 1) ? -1 : 0;
}

/* 0, or 2 after a usage message. Options and files may come in any order;
 * "--" ends the options. */
static int parse_prepare(int argc, char **argv, prepare_args *a)
{
    *a = (prepare_args){NULL, NULL, 0.1, 0, 0, NULL};
    a->files = malloc(sizeof(char *) * (size_t)argc);
    if (!a->files) return usage_error("out of memory");
    int opts = 1;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int has_value = i + 1 < argc;
        if (opts && !strcmp(s, "--")) opts = 0;
        else if (opts && !strcmp(s, "--out") && has_value) a->out = argv[++i];
        else if (opts && !strcmp(s, "--val") && has_value) a->val = argv[++i];
        else if (opts && !strcmp(s, "--val-fraction") && has_value) {
            a->val_fraction_given = 1;
            if (parse_fraction(argv[++i], &a->val_fraction))
                return usage_error("--val-fraction: expected a number between 0 and 1");
        } else if (opts && s[0] == '-' && s[1]) {
            fprintf(stderr, "herd data prepare: unknown option or missing value: %s\n", s);
            return usage_error(NULL);
        } else a->files[a->n_files++] = argv[i];
    }
    if (!a->out) return usage_error("prepare: --out SHARD is required");
    if (!a->n_files) return usage_error("prepare: no input FILE given");
    if (a->val_fraction_given && !a->val) return usage_error("prepare: --val-fraction needs --val");
    if (a->val && !strcmp(a->val, a->out)) return usage_error("prepare: --val and --out are the same file");
    return 0;
}

static int prepare(int argc, char **argv)
{
    prepare_args a;
    int rc = parse_prepare(argc, argv, &a);
    if (rc) {
        free(a.files);
        return rc;
    }
    id_buf b = {0};
    for (int i = 0; i < a.n_files && rc == 0; i++) {
        size_t len;
        unsigned char *s = herd_file_slurp(a.files[i], &len);
        rc = !s || push_text(&b, s, len) ? 1 : 0;
        free(s);
    }
    uint64_t split = b.n;
    if (rc == 0 && b.n == 0) {
        fprintf(stderr, "herd data: the input files are empty: no documents\n");
        rc = 1;
    }
    if (rc == 0 && a.val && (split = val_split(&b, a.val_fraction)) == 0) {
        fprintf(stderr, "herd data: %llu document(s): too few to hold out a validation shard\n",
                (unsigned long long)b.n_docs);
        rc = 1;
    }
    if (rc == 0 && herd_shard_write(a.out, b.ids, split, HERD_BYTE_VOCAB, HERD_BYTE_EOT)) rc = 1;
    if (rc == 0 && a.val &&
        herd_shard_write(a.val, b.ids + split, b.n - split, HERD_BYTE_VOCAB, HERD_BYTE_EOT))
        rc = 1;
    if (rc == 0) {
        printf("herd data: %d file(s), %llu bytes -> %llu documents, %llu tokens; %s: %llu "
               "documents, %llu tokens",
               a.n_files, (unsigned long long)b.bytes, (unsigned long long)b.n_docs,
               (unsigned long long)b.n, a.out, (unsigned long long)count_docs(b.ids, split),
               (unsigned long long)split);
        if (a.val)
            printf("; %s: %llu documents, %llu tokens", a.val,
                   (unsigned long long)count_docs(b.ids + split, b.n - split),
                   (unsigned long long)(b.n - split));
        printf("\n");
    }
    free(b.ids);
    free(a.files);
    return rc;
}

/* ---- inspect --------------------------------------------------------------- */

/* One id as text: bytes printable as themselves, the rest escaped, so that a
 * line of output is a line of terminal. Only a byte-level shard is decoded. */
static void put_token(uint32_t id, int byte_level)
{
    if (!byte_level) printf("<%u>", id);
    else if (id == HERD_BYTE_BOS) printf("<|begin_of_text|>");
    else if (id == HERD_BYTE_EOT) printf("<|end_of_text|>");
    else if (id == '\n') printf("\\n");
    else if (id == '\t') printf("\\t");
    else if (id == '\\') printf("\\\\");
    else if (id == '"') printf("\\\"");
    else if (id >= 32 && id < 127) putchar((int)id);
    else printf("\\x%02x", id);
}

/* Print the documents of the shard, from the first, until n_show are shown.
 * A document's length needs a scan to its end-of-text: read in chunks. */
static int show_docs(const herd_data *d, int n_show)
{
    const herd_shard_header *h = herd_data_header(d);
    int byte_level = h->vocab_size == HERD_BYTE_VOCAB && h->eot_id == HERD_BYTE_EOT;
    enum { CHUNK = 4096 };
    uint32_t buf[CHUNK];
    uint64_t pos = 0, doc_start = 0;
    int shown = 0;
    while (shown < n_show && pos < h->n_tokens) {
        uint64_t n = h->n_tokens - pos < CHUNK ? h->n_tokens - pos : CHUNK;
        if (herd_data_read(d, pos, n, buf)) return -1;
        for (uint64_t i = 0; i < n && shown < n_show; i++) {
            uint64_t k = pos + i - doc_start; /* position inside the document */
            if (k == 0) printf("  doc %d: \"", shown);
            int end = buf[i] == h->eot_id;
            if (!end && k < PREVIEW) put_token(buf[i], byte_level);
            if (end || pos + i + 1 == h->n_tokens) {
                uint64_t len = k + 1, text = end ? k : k + 1; /* len: its eot included */
                printf("%s\" (%llu tokens%s)\n", text > PREVIEW ? "..." : "", (unsigned long long)len,
                       end ? "" : ", no end-of-text");
                shown++;
                doc_start = pos + i + 1;
            }
        }
        pos += n;
    }
    if (shown == 0) printf("  (no documents)\n");
    return 0;
}

static int inspect(int argc, char **argv)
{
    int n_show = 5;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--docs") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || v < 0 || v > INT_MAX)
                return usage_error("inspect: --docs expects a count");
            n_show = (int)v;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "herd data inspect: unknown option or missing value: %s\n", argv[i]);
            return usage_error(NULL);
        } else if (path) return usage_error("inspect: one SHARD at a time");
        else path = argv[i];
    }
    if (!path) return usage_error("inspect: no SHARD given");
    herd_data *d;
    if (herd_data_open(&d, path, INT_MAX, 0)) return 1; /* no model: any vocab_size */
    const herd_shard_header *h = herd_data_header(d);
    printf("%s: herd token shard, version %u\n", path, h->version);
    printf("  dtype_bytes %u (uint%u), vocab_size %u, eot_id %u\n", h->dtype_bytes,
           8 * h->dtype_bytes, h->vocab_size, h->eot_id);
    printf("  n_tokens %llu, n_docs %llu", (unsigned long long)h->n_tokens,
           (unsigned long long)h->n_docs);
    if (h->n_docs) printf(" (%.0f tokens per document)", (double)h->n_tokens / (double)h->n_docs);
    printf("\n");
    if (n_show > 0) {
        printf("first documents (at most %d tokens of each shown):\n", PREVIEW);
        show_docs(d, n_show);
    }
    herd_data_close(d);
    return 0;
}

int herd_cmd_data(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "prepare")) return prepare(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "inspect")) return inspect(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "train-tokenizer") || !strcmp(argv[1], "encode") ||
                      !strcmp(argv[1], "tokenize")))
        return herd_cmd_data_tok(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "decode")) return herd_cmd_data_decode(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "clean")) return herd_cmd_data_clean(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "sample")) return herd_cmd_data_sample(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "passkey")) return herd_cmd_data_passkey(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help"))) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (argc >= 2) fprintf(stderr, "herd data: '%s' is not a data command\n", argv[1]);
    return usage_error(NULL);
}
