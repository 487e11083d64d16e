/* demo_data.h — the post-training demo's data: arithmetic and short algebra
 * with exact answers, in disjoint question sets (SFT, preference pairs,
 * questions to annotate, rejection-sampling prompts, held-out test), and the
 * text corpus to train a tokenizer on. */
#ifndef HERD_DEMO_DATA_H
#define HERD_DEMO_DATA_H

#include <stdint.h>

typedef struct {
    const char *dir;
    long n_train, n_test, n_pref, n_rs, digits; /* digits: operand size, 1..4 */
    uint64_t seed;
} herd_demo_data_args;

/* Write DIR/{sft,test,pref,pref_questions,prompts}.jsonl and DIR/corpus.txt;
 * prints the counts. 0, or 1 with a message naming the file. */
int herd_post_demo_data_write(const herd_demo_data_args *a);

#endif
