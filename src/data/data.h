/* data.h — token shards, packing into sequences, and the seeded sampler.
 *
 * A shard is a flat stream of token ids in which the end-of-text id separates
 * documents (format: docs/data-format.md). A micro-batch is B windows of T+1
 * consecutive tokens; tokens = window[0..T-1], targets = window[1..T], and
 * doc[t] counts the end-of-text tokens before position t inside the window, so
 * that attention never crosses a document boundary (the end-of-text token
 * belongs to the document it ends).
 *
 * The sampler visits non-overlapping windows in a seeded random order, epoch
 * after epoch; its whole state is (seed, epoch, index) so a resumed run picks
 * up exactly where it stopped.
 */
#ifndef HERD_DATA_H
#define HERD_DATA_H

#include <stdint.h>

/* The message of every shard and loader check, "herd: PATH: FIELD: PROBLEM"
 * on stderr (FIELD a header field, "file", "sampler", ...). Returns -1. */
int herd_data_err(const char *path, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define HERD_SHARD_MAGIC   "HERDTOK\0"   /* 8 bytes */
#define HERD_SHARD_VERSION 1
#define HERD_SHARD_HEADER  64            /* bytes */

typedef struct {
    uint32_t version;
    uint32_t dtype_bytes;   /* 2 (uint16) or 4 (uint32) */
    uint32_t vocab_size;    /* every id < vocab_size */
    uint32_t eot_id;        /* end-of-text id, the document separator */
    uint64_t n_tokens;
    uint64_t n_docs;
} herd_shard_header;

typedef struct herd_data herd_data;

/* Sampler position, saved in checkpoints. */
typedef struct {
    uint64_t seed;
    uint64_t epoch;
    uint64_t index;    /* next window within the epoch's permutation */
    int      T;        /* window length the position refers to */
} herd_data_state;

/* Open and validate a shard (magic, version, dtype, size against n_tokens, ids
 * < vocab_size, vocab_size <= model_vocab). -1 with a message naming the file
 * and the field on any problem. */
int herd_data_open(herd_data **out, const char *path, int model_vocab,
                   uint64_t seed);
void herd_data_close(herd_data *d);

const herd_shard_header *herd_data_header(const herd_data *d);

/* Fill host arrays [B*T]: the next B windows of the sampler for length T.
 * -1 if the shard has fewer than T+1 tokens. */
int herd_data_next(herd_data *d, int B, int T, int32_t *tokens,
                   int32_t *targets, int32_t *doc);

void herd_data_get_state(const herd_data *d, herd_data_state *s);
int  herd_data_set_state(herd_data *d, const herd_data_state *s);

/* Windows per epoch for length T: (n_tokens - 1) / T (0 if T < 1). */
uint64_t herd_data_n_windows(const herd_data *d, int T);

/* Copy ids [start, start+n) of the shard into out (for tools such as
 * `herd data inspect`). -1 if the range is outside the shard. */
int herd_data_read(const herd_data *d, uint64_t start, uint64_t n, uint32_t *out);

/* Write a shard from an in-memory token array (documents already separated by
 * eot_id). Crash-safe: temp file, fsync, rename. */
int herd_shard_write(const char *path, const uint32_t *ids, uint64_t n,
                     uint32_t vocab_size, uint32_t eot_id);

/* The byte-level tokenizer of `herd data prepare` (no rank file): ids 0..255
 * are bytes, then the special tokens below. */
#define HERD_BYTE_BOS 256   /* <|begin_of_text|> */
#define HERD_BYTE_EOT 257   /* <|end_of_text|> */
#define HERD_BYTE_VOCAB 258

#endif
