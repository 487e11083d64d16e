/* tokenizer.h — byte-level BPE compatible with tiktoken rank files (Llama 3).
 *
 * Ids: the regular vocabulary 0..n_regular-1 (the ranks of the rank file,
 * which must be dense), then HERD_TOK_N_SPECIAL special tokens: Llama 3's
 * 128,000 + 256 = 128,256. The special tokens' texts come from the tokenizer's
 * definition (herd_tokenizer_set_specials): a family, by default "llama3":
 *   +0 <|begin_of_text|>  +1 <|end_of_text|>  +2..+5 <|reserved_special_token_0..3|>
 *   +6 <|start_header_id|>  +7 <|end_header_id|>  +8 <|reserved_special_token_4|>
 *   +9 <|eot_id|>  +10..+255 <|reserved_special_token_5..250|>
 * "llama3.1" (= "llama3.2", "llama3.3"; Meta's 3.1+ tokenizer) renames
 *   +2,+3 <|reserved_special_token_0..1|>  +4 <|finetune_right_pad_id|>  +5 <|step_id|>
 *   +8 <|eom_id|>  +10 <|python_tag|>  +11..+255 <|reserved_special_token_2..246|>
 * or a Hugging Face tokenizer.json (added_tokens) / tokenizer_config.json
 * (added_tokens_decoder, bos_token, eos_token). The offsets below are the same
 * in every Llama 3.x tokenizer.
 *
 * Encoding = tiktoken's: the text is cut into pieces by the Llama 3 pre-split
 * pattern (HERD_TOK_PATTERN), each piece is one token if the rank file has it,
 * else its bytes are merged pairwise, always the adjacent pair whose joined
 * bytes have the lowest rank (leftmost on a tie). Every single byte is a
 * token, so any byte string encodes, invalid UTF-8 included (an invalid byte
 * pre-splits as a lone symbol), and decode(encode(s)) == s.
 *
 * Rank file: one "base64(token bytes) rank" per line (tiktoken's format, the
 * `tokenizer.model` of Llama 3 unchanged).
 */
#ifndef HERD_TOKENIZER_H
#define HERD_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#define HERD_TOK_N_SPECIAL 256
#define HERD_TOK_SPECIAL_MAX 64 /* bytes of a special token's text, NUL included */

/* The pre-split pattern, as a regular expression (for tiktoken in the tests). */
#define HERD_TOK_PATTERN                                                              \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}" \
    "\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* Offsets of named special tokens from n_regular. */
enum {
    HERD_TOK_BOS = 0,          /* <|begin_of_text|> */
    HERD_TOK_EOT = 1,          /* <|end_of_text|>, the document separator of shards */
    HERD_TOK_START_HEADER = 6, /* <|start_header_id|> */
    HERD_TOK_END_HEADER = 7,   /* <|end_header_id|> */
    HERD_TOK_EOT_ID = 9        /* <|eot_id|> */
};

typedef struct herd_tokenizer herd_tokenizer;

/* A growable id array; encode appends to it. Free ids with free(). */
typedef struct {
    uint32_t *ids;
    size_t    n, cap;
} herd_ids;

/* Load a tiktoken rank file. -1 with "herd: PATH: line N: ..." on an empty
 * file, bad base64, a missing/duplicate/out-of-order rank, a duplicate token,
 * or a missing single byte. */
int  herd_tokenizer_load(herd_tokenizer **out, const char *path);
/* The same from the file's text in memory; `origin` names it in messages. */
int  herd_tokenizer_load_text(herd_tokenizer **out, const char *origin, const char *text, size_t n);
/* Write the rank file (temp file, fsync, rename). */
int  herd_tokenizer_save(const herd_tokenizer *t, const char *path);
void herd_tokenizer_free(herd_tokenizer *t);

/* Learn a vocabulary of n_regular tokens (>= 256: the 256 bytes, then merges
 * in order of pair frequency over the pre-split pieces of text). Deterministic. */
int  herd_tokenizer_train(herd_tokenizer **out, const unsigned char *text, size_t n,
                          int n_regular);
/* The same; split_digits != 0 learns no merge inside a number, so numbers
 * encode one digit per token (what arithmetic needs from a small model). */
int  herd_tokenizer_train_opts(herd_tokenizer **out, const unsigned char *text, size_t n,
                               int n_regular, int split_digits);

int  herd_tokenizer_n_regular(const herd_tokenizer *t);
int  herd_tokenizer_vocab_size(const herd_tokenizer *t); /* n_regular + 256 */
/* Name of special token i (0..255) in the "llama3" family, e.g. "<|eot_id|>". */
const char *herd_tokenizer_special_name(int i);
/* Text of t's special token i (0..255); NULL out of range. */
const char *herd_tokenizer_special_text(const herd_tokenizer *t, int i);
/* Id of a special token of t by its text, -1 if it is not one. */
int  herd_tokenizer_special_id(const herd_tokenizer *t, const char *name);
/* Ids of the beginning- and end-of-sequence tokens (<|begin_of_text|>,
 * <|end_of_text|> unless a tokenizer_config.json names others). */
int  herd_tokenizer_bos(const herd_tokenizer *t);
int  herd_tokenizer_eos(const herd_tokenizer *t);

/* The chat template that goes with the tokenizer (src/data/chat.c): Llama 3's
 * (the default and the "llama3" family) or Llama 3.1's, whose system turn
 * always starts "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul
 * 2024\n\n" (the families llama3.1/3.2/3.3, and a tokenizer_config.json whose
 * chat_template has that line). */
typedef enum { HERD_CHAT_LLAMA3 = 0, HERD_CHAT_LLAMA31 = 1 } herd_chat_template;
herd_chat_template herd_tokenizer_chat_template(const herd_tokenizer *t);
void herd_tokenizer_set_chat_template(herd_tokenizer *t, herd_chat_template c);

/* Set the special tokens' texts (and the chat template) from spec: a family ("llama3", "llama3.1",
 * "llama3.2", "llama3.3") or the path of a Hugging Face tokenizer.json or
 * tokenizer_config.json (a name ending in ".json"). The file must give a
 * distinct text to each of the 256 ids n_regular..n_regular+255 and to no
 * other id. -1 with "herd: PATH: FIELD: problem" (or the unknown family). */
int  herd_tokenizer_set_specials(herd_tokenizer *t, const char *spec);
/* Load a rank file and set its specials (spec NULL: "llama3"). */
int  herd_tokenizer_open(herd_tokenizer **out, const char *rank_path, const char *spec);

/* Append the ids of s[0..n) to out. With allow_special, the special tokens'
 * texts in s become their ids; otherwise they are ordinary text. -1 only when
 * out of memory. */
int  herd_tokenizer_encode(const herd_tokenizer *t, const unsigned char *s, size_t n,
                           int allow_special, herd_ids *out);
/* The bytes of ids (malloc'ed, *len set). NULL with a message if an id is not
 * below vocab_size. */
unsigned char *herd_tokenizer_decode(const herd_tokenizer *t, const uint32_t *ids, size_t n,
                                     size_t *len);
/* Bytes of regular token id (NULL if special or out of range). */
const unsigned char *herd_tokenizer_token(const herd_tokenizer *t, uint32_t id, size_t *len);

/* End of the pre-split piece that starts at s[i] (i < n). */
size_t herd_pretok_next(const unsigned char *s, size_t n, size_t i);

#endif
