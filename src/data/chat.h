/* chat.h — the Llama 3 chat format, its JSON-lines data files and their
 * tokenisation with a per-token loss mask.
 *
 *   <|begin_of_text|>
 *   <|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|>   (each message)
 *
 * Loss mask per token: 1 on the content tokens of assistant messages, 2 on
 * the <|eot_id|> that ends an assistant message (a formatting token: SFT
 * trains it so that the model learns to stop; DPO leaves it out), 0 on
 * everything else (begin-of-text, headers, other roles' messages).
 *
 * Data files (one JSON object per line; blank lines ignored):
 *   SFT:        {"messages": [{"role": "user", "content": "..."}, ...]}
 *   preference: {"prompt": [messages...], "chosen": "...", "rejected": "...",
 *                "edited": "..."}          (edited optional; edited > chosen > rejected)
 *            or {"prompt": [messages...], "responses": ["best", ..., "worst"]}
 */
#ifndef HERD_CHAT_H
#define HERD_CHAT_H

#include <stddef.h>
#include <stdint.h>
#include "src/base/json.h"
#include "src/data/tokenizer.h"

typedef enum { HERD_ROLE_SYSTEM, HERD_ROLE_USER, HERD_ROLE_ASSISTANT, HERD_ROLE_IPYTHON,
               HERD_N_ROLES } herd_chat_role;

enum { HERD_MASK_NONE = 0, HERD_MASK_CONTENT = 1, HERD_MASK_EOT = 2 };

typedef struct {
    herd_chat_role role;
    char  *content;
    size_t len;
} herd_chat_msg;

typedef struct {
    herd_chat_msg *msgs;
    int n;
} herd_chat;

/* Token ids with their loss mask (mask[i] in HERD_MASK_*). */
typedef struct {
    uint32_t *ids;
    uint8_t  *mask;
    size_t    n, cap;
} herd_chat_tokens;

/* "user" -> HERD_ROLE_USER; -1 if not a role. */
int herd_chat_role_parse(const char *name);
const char *herd_chat_role_name(herd_chat_role r);

/* Build a conversation from a JSON array of {"role", "content"} objects.
 * -1 with "herd: WHERE: FIELD[i].role: unknown role 'x' (...)" and the like. */
int herd_chat_from_json(herd_chat *c, const herd_json *msgs, const char *where,
                        const char *field);
void herd_chat_free(herd_chat *c);

/* Append the tokens of c: <|begin_of_text|> when bos, every message, and with
 * gen_prompt the header of an assistant turn (what a model continues). */
int herd_chat_encode(const herd_tokenizer *t, const herd_chat *c, int bos, int gen_prompt,
                     herd_chat_tokens *out);
/* Append an assistant response body: content (mask 1) then <|eot_id|> (mask 2). */
int herd_chat_encode_response(const herd_tokenizer *t, const char *text, size_t len,
                              herd_chat_tokens *out);
int  herd_chat_tokens_push(herd_chat_tokens *o, uint32_t id, uint8_t mask);
void herd_chat_tokens_free(herd_chat_tokens *o);

/* ---- data sets ----------------------------------------------------------- */

typedef struct {
    int64_t lines;          /* non-blank lines read */
    int64_t kept;
    int64_t skipped_long;   /* longer than the context */
    int64_t skipped_same;   /* preference: identical responses */
} herd_chat_stats;

/* SFT: every conversation tokenised (with bos). Conversations of more than
 * max_len tokens are skipped and counted. Bad JSON, a missing field or an
 * unknown role: -1 with a message naming the file, the line and the field. */
typedef struct {
    herd_chat_tokens *convs;
    int n;
    herd_chat_stats stats;
} herd_sft_data;

int  herd_sft_data_load(herd_sft_data *d, const char *path, const herd_tokenizer *t, int max_len);
void herd_sft_data_free(herd_sft_data *d);

/* Preferences: the prompt (bos, messages, assistant header; mask 0) and the
 * responses best first (each content + <|eot_id|>). A record whose responses
 * are all identical is skipped and counted; a duplicate among more than two
 * is dropped. A prompt + response longer than max_len: skipped and counted. */
typedef struct {
    herd_chat_tokens prompt;
    herd_chat_tokens *resp;   /* [n_resp], best first */
    int n_resp;
} herd_pref;

typedef struct {
    herd_pref *items;
    int n;
    herd_chat_stats stats;
} herd_pref_data;

int  herd_pref_data_load(herd_pref_data *d, const char *path, const herd_tokenizer *t, int max_len);
void herd_pref_data_free(herd_pref_data *d);

/* Every conversation of an SFT-format file, parsed (not tokenised): for
 * prompts of generation and rejection sampling. -1 as herd_sft_data_load. */
int herd_chat_load_jsonl(const char *path, herd_chat **out, int *n);

/* ---- batches -------------------------------------------------------------- */

/* Pack conversations convs[*next ..] into B rows of T tokens, several per row
 * (each its own document: the document mask keeps them apart), in order,
 * advancing *next (wrapping to 0 at the end). Targets: the next token where
 * 1 <= its mask <= max_mask (SFT: HERD_MASK_EOT; DPO: HERD_MASK_CONTENT), else -1; padding has target -1 and its own document.
 * Returns the number of conversations placed. */
int herd_chat_pack(const herd_chat_tokens *convs, int n, int *next, int B, int T, int max_mask,
                   int32_t *tokens, int32_t *targets, int32_t *doc);

/* One row: prompt + response, padded to T. Targets are the next token where
 * 1 <= its mask <= max_mask (within the response), else -1. Returns the index of
 * the last real token (the response's <|eot_id|>), -1 if it does not fit. */
int herd_chat_row(const herd_chat_tokens *prompt, const herd_chat_tokens *resp, int T,
                  int max_mask, int32_t *tokens, int32_t *targets, int32_t *doc);

#endif
