/* loader.h — the training data loader: a weighted mix of token-shard sources,
 * deterministic from the seed, resumable from a small state blob, split over
 * data-parallel ranks, filled ahead of the step on its own thread.
 *
 * Global batch: n_global sequences of T tokens. Sequence k of the run (counted
 * over the whole run, all ranks) comes from the source chosen by smooth
 * weighted round-robin (each source earns its weight in credit per sequence;
 * the source with the most credit gives the sequence and pays 1), so the mix
 * matches the weights to within n_sources sequences at any point, not only on
 * average. A source is read as a stream: its shard is cut into blocks of
 * HERD_LOADER_BLOCK tokens visited in a seeded order (a fresh order each
 * epoch), and a window of T+1 tokens starts where the previous one ended
 * minus one (windows overlap by the one shifted target). Each source's
 * position is therefore a token offset, independent of T and of the weights:
 * a stage that changes either goes on from the same offsets and neither
 * repeats nor skips data (docs/data-format.md).
 *
 * Per sequence, as herd_data_next: tokens[t] = w[t], targets[t] = w[t+1] and
 * doc[t] counts the document boundaries before t inside the window (an
 * end-of-text token and a block boundary are both boundaries).
 *
 * Status convention: 0, or -1 with a message naming the file and the field.
 */
#ifndef HERD_LOADER_H
#define HERD_LOADER_H

#include <stddef.h>
#include <stdint.h>
#include "src/config/config.h"

#define HERD_LOADER_BLOCK 2048 /* tokens; the unit of shuffling inside a source */

typedef struct herd_loader herd_loader;

/* Sources from the config: data.sources, or data.path (+ data.val_path) as a
 * one-source mix. Shards are checked against model_vocab. */
int  herd_loader_open(herd_loader **out, const herd_config *c, int model_vocab);
/* The same from an explicit list (tests, tools). */
int  herd_loader_open_sources(herd_loader **out, const herd_data_source *src, int n_src,
                              uint64_t seed, int model_vocab);
void herd_loader_close(herd_loader *l);

/* The next global batch: n_global sequences of length T. This rank fills
 * sequences [first, first+count) of it into host arrays [count*T]; the state
 * advances over the whole global batch, so every rank's state is identical
 * and the union over ranks is exactly what one process reads. */
int  herd_loader_next(herd_loader *l, int T, int64_t n_global, int64_t first, int64_t count,
                      int32_t *tokens, int32_t *targets, int32_t *doc);

/* Prefetch (default on): after each next, the following batch with the same
 * (T, n_global, first, count) is read on a thread; a call with other
 * arguments reads synchronously. Results are identical either way. */
void herd_loader_set_prefetch(herd_loader *l, int on);

/* New weights (a stage, e.g. annealing): >= 0, not all 0, one per source.
 * Cursors and credit carry over. */
int  herd_loader_set_weights(herd_loader *l, const double *w, int n);

/* The position as a flat blob (magic, seed, sequences read, last T, and per
 * source: name hash, epoch, token offset, credit, current weight): checkpoints
 * store it. set_state restores the weights too (the stage the run was in); to
 * start a new stage, call herd_loader_set_weights after it. */
size_t herd_loader_state_size(const herd_loader *l);
int    herd_loader_get_state(const herd_loader *l, void *buf, size_t size);
/* -1 + message if the blob is not a loader state, or is for other sources. */
int    herd_loader_set_state(herd_loader *l, const void *buf, size_t size);

int         herd_loader_n_sources(const herd_loader *l);
const char *herd_loader_source_name(const herd_loader *l, int i);
/* Sequences taken from source i so far (for logs and the mix test). */
uint64_t    herd_loader_source_count(const herd_loader *l, int i);

/* Validation, per source that has a val_path: batch i is always the same B
 * windows (consecutive, non-overlapping, wrapping around the shard). */
int         herd_loader_n_val_sources(const herd_loader *l);
const char *herd_loader_val_name(const herd_loader *l, int v);
int         herd_loader_val_batch(herd_loader *l, int v, int i, int B, int T, int32_t *tokens,
                                  int32_t *targets, int32_t *doc);
/* Text bytes per token of validation source v (from VAL.meta written by
 * `herd data tokenize`; byte-level shards: bytes are tokens); 0 if unknown.
 * bits per byte = loss_nats / ln 2 / bytes_per_token. */
double      herd_loader_val_bytes_per_token(const herd_loader *l, int v);

#endif
