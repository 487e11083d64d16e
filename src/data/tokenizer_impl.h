/* tokenizer_impl.h — the tokenizer's internals, shared by tokenizer.c and
 * bpe_train.c only (not a public header). */
#ifndef HERD_TOKENIZER_IMPL_H
#define HERD_TOKENIZER_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include "src/data/tokenizer.h"

struct herd_tokenizer {
    uint32_t       n, cap;      /* regular tokens; ids 0..n-1 are ranks */
    unsigned char *bytes;       /* arena of every token's bytes */
    size_t         bytes_len, bytes_cap;
    uint64_t      *off;         /* [cap] token id -> offset in bytes */
    uint32_t      *len;         /* [cap] token id -> length */
    uint32_t      *table;       /* open addressing, token ids, UINT32_MAX empty */
    uint64_t       table_cap;   /* power of two, >= 2n */
    uint32_t       byte_rank[256];
    /* the special tokens' texts, ids n..n+255 (a family's or a JSON file's) */
    char           special[HERD_TOK_N_SPECIAL][HERD_TOK_SPECIAL_MAX];
    int            bos, eos;    /* offsets from n of the beginning / end of sequence */
    int            chat;        /* herd_chat_template */
};

uint64_t herd_tok_hash(const unsigned char *p, size_t n);
uint32_t herd_tok_rank(const struct herd_tokenizer *t, const unsigned char *p, size_t n);
/* Rebuild the table from the tokens; 0, -1 out of memory, or 1 + the id of a
 * token whose bytes repeat an earlier token's. */
int herd_tok_build_table(struct herd_tokenizer *t);
/* Add token id (bytes already in the arena) to the table; -1 if its bytes are
 * there already. The table must have room (table_cap >= 2 * final n). */
int herd_tok_insert(struct herd_tokenizer *t, uint32_t id);
/* BPE of one piece, appended to o. mode 0: the quadratic scan for short
 * pieces, the heap for long ones; 1: always the scan; 2: always the heap
 * (tests compare them). */
int herd_tok_bpe_piece(const struct herd_tokenizer *t, const unsigned char *p, size_t n, herd_ids *o,
                       int mode);
int herd_tok_alloc(struct herd_tokenizer **out, uint32_t cap, size_t byte_cap);
/* Fill t's special texts with a family's (tokenizer_specials.c); -1 if unknown. */
int herd_tok_specials_family(struct herd_tokenizer *t, const char *family);

#endif
