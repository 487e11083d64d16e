/* curate.h — document cleaning after Llama 3 §3.1.1, in order:
 *   1. normalise   CRLF/CR -> LF, control characters and invalid UTF-8 bytes
 *                  dropped, trailing blanks of lines cut, runs of blank lines
 *                  cut to one, the document trimmed
 *   2. exact       drop a document whose normalised text was seen before
 *   3. near        MinHash over word shingles with LSH banding: drop a document
 *                  whose estimated Jaccard similarity with a kept one is at or
 *                  above the threshold (minhash.c)
 *   4. lines       per bucket of documents, drop the lines (of at least
 *                  HERD_CURATE_MIN_LINE bytes) seen more than line_max_repeat
 *                  times in the bucket (boilerplate, navigation, cookie notes)
 *   5. filters     too short / too long; duplicated n-gram coverage (share of
 *                  word characters inside word n-grams that occur twice or more
 *                  in the document); symbol-to-word ratio ('#' and ellipses per
 *                  word)
 * A document emptied by a step is dropped by that step. Each step's removed
 * documents and bytes are counted in the report.
 */
#ifndef HERD_CURATE_H
#define HERD_CURATE_H

#include <stddef.h>
#include <stdint.h>
#include "src/config/config.h" /* herd_curate_params, herd_curate_defaults */

#define HERD_CURATE_MIN_LINE 16 /* shorter lines (braces, blank) are never line-deduplicated */


/* -1 + message naming the parameter if one is out of range. */
int  herd_curate_check(const herd_curate_params *p);

enum { HERD_CURATE_NORMALIZE, HERD_CURATE_EXACT, HERD_CURATE_NEAR, HERD_CURATE_LINES,
       HERD_CURATE_LENGTH, HERD_CURATE_DUP_NGRAM, HERD_CURATE_SYMBOLS, HERD_CURATE_N_STEPS };

typedef struct {
    uint64_t in_docs, in_bytes, out_docs, out_bytes;
    uint64_t docs[HERD_CURATE_N_STEPS];   /* removed by each step */
    uint64_t bytes[HERD_CURATE_N_STEPS];  /* removed by each step (normalise: bytes cut) */
} herd_curate_report;

const char *herd_curate_step_name(int step);

/* A document: text bytes (owned by the caller; steps edit in place and only
 * shorten it) and whether it is kept. */
typedef struct {
    unsigned char *p;
    size_t         n;
    int            keep;
} herd_doc;

/* Run every step over docs[0..n) (keep is set by this call). */
int herd_curate_run(const herd_curate_params *p, herd_doc *docs, size_t n, herd_curate_report *r);

/* Step 3 alone (minhash.c): marks near-duplicates of earlier kept documents
 * (keep = 0); returns how many it marked, or -1 when out of memory. */
long herd_minhash_dedup(const herd_curate_params *p, herd_doc *docs, size_t n);

/* Estimated Jaccard similarity of two texts by MinHash signatures (tests). */
double herd_minhash_similarity(const herd_curate_params *p, const unsigned char *a, size_t na,
                               const unsigned char *b, size_t nb);

#endif
