/* chat_batch.h — the training data of herd train's post-training objectives
 * (post.objective, docs/post-training.md): chat JSON lines encoded once with
 * the run's tokenizer, cut into the trainer's global batches.
 *
 *   sft: conversations packed in order into rows of T tokens (herd_chat_pack,
 *        targets on chat mask 1 and 2), wrapping around at the end;
 *   dpo: preference pairs, two rows each: row 2i the chosen, 2i+1 the
 *        rejected response after the same prompt (targets on mask 1 only), so
 *        a pair never splits over micro-batches of even size; the best
 *        response of a record against each worse one;
 *   rm:  the same rows for every ordered pair of a record's responses, with
 *        no targets but HERD_TARGET_SCORE (kernels/backend.h) on the last
 *        token (the response's <|eot_id|>), which the reward head scores.
 *
 * The position is a function of the batches taken (the batch shape follows the
 * ramp), so a resumed run goes to its step by replaying the cuts (the
 * trainer): the checkpoint needs no extra state.
 *
 * Status convention: 0, or -1 with a message naming the file and the field.
 */
#ifndef HERD_CHAT_BATCH_H
#define HERD_CHAT_BATCH_H

#include <stdint.h>
#include "src/config/config.h"

typedef struct herd_chat_batch herd_chat_batch;

/* post.data encoded with post.tokenizer (post.specials), for the objective
 * of c; records longer than the shortest seq_len of batch.ramp are skipped and
 * counted. print: say what was read (rank 0). */
int  herd_chat_batch_open(herd_chat_batch **out, const herd_config *c, int print);
void herd_chat_batch_close(herd_chat_batch *b);

/* The next global batch of n_global rows of T tokens; this rank fills rows
 * [first, first+count) into host arrays [count*T] (tokens NULL: only advance,
 * to replay the batches of a resumed run). Every rank advances alike. */
int  herd_chat_batch_next(herd_chat_batch *b, int T, int64_t n_global, int64_t first,
                          int64_t count, int32_t *tokens, int32_t *targets, int32_t *doc);

/* rm: the reward head's vocabulary id (<|reserved_special_token_0|>). */
int  herd_chat_batch_score_col(const herd_chat_batch *b);

/* dpo, rm: the pairs read (0 for sft). Pair k of the data is row 2k / 2k+1
 * of the reference pass (herd_chat_batch_set_cursor 0). */
int  herd_chat_batch_n_pairs(const herd_chat_batch *b);

/* dpo, rm: the pair the next batch starts with (the next batch's row r holds
 * pair (cursor + r / 2) % n_pairs); set: start there. */
int  herd_chat_batch_cursor(const herd_chat_batch *b);
void herd_chat_batch_set_cursor(herd_chat_batch *b, int cursor);

#endif
