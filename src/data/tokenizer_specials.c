/* tokenizer_specials.c — the special tokens' texts: a named Llama 3.x family,
 * or a Hugging Face tokenizer.json / tokenizer_config.json (see tokenizer.h).
 *
 * The ids stay n_regular..n_regular+255 (every Llama 3.x tokenizer has 256
 * specials right after the regular vocabulary); only their texts differ, so a
 * file naming any other id is refused rather than silently renumbered. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/base/file.h"
#include "src/base/json.h"
#include "src/data/tokenizer.h"
#include "src/data/tokenizer_impl.h"

/* Llama 3's named slots (Meta's llama3 tokenizer.py); the rest are reserved. */
static const char *const llama3_named[] = {
    "<|begin_of_text|>", "<|end_of_text|>", NULL, NULL, NULL, NULL,
    "<|start_header_id|>", "<|end_header_id|>", NULL, "<|eot_id|>"};
/* Llama 3.1's (also 3.2 and 3.3 text models): four reserved slots named. */
static const char *const llama31_named[] = {
    "<|begin_of_text|>", "<|end_of_text|>", NULL, NULL, "<|finetune_right_pad_id|>",
    "<|step_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>",
    "<|python_tag|>"};

int herd_tok_specials_family(herd_tokenizer *t, const char *family)
{
    const char *const *named;
    int n_named;
    if (!strcmp(family, "llama3")) named = llama3_named, n_named = 10;
    else if (!strcmp(family, "llama3.1") || !strcmp(family, "llama3.2") || !strcmp(family, "llama3.3"))
        named = llama31_named, n_named = 11;
    else return -1;
    int reserved = 0; /* reserved tokens are numbered in id order over the unnamed slots */
    for (int i = 0; i < HERD_TOK_N_SPECIAL; i++) {
        if (i < n_named && named[i]) snprintf(t->special[i], HERD_TOK_SPECIAL_MAX, "%s", named[i]);
        else snprintf(t->special[i], HERD_TOK_SPECIAL_MAX, "<|reserved_special_token_%d|>", reserved++);
    }
    t->bos = HERD_TOK_BOS;
    t->eos = HERD_TOK_EOT;
    t->chat = named == llama3_named ? HERD_CHAT_LLAMA3 : HERD_CHAT_LLAMA31;
    return 0;
}

/* Put text at id into names (seen marks the slots filled); -1 with a message. */
static int put_special(const herd_tokenizer *t, const char *path, const char *field,
                       double id, const herd_json *text, char (*names)[HERD_TOK_SPECIAL_MAX],
                       unsigned char *seen)
{
    double lo = t->n, hi = (double)t->n + HERD_TOK_N_SPECIAL - 1;
    if (!text || text->type != HERD_JSON_STR) {
        fprintf(stderr, "herd: %s: %s: no \"content\" string\n", path, field);
        return -1;
    }
    if (!(id >= lo && id <= hi) || id != (double)(long long)id) {
        fprintf(stderr, "herd: %s: %s: id %g is not a special-token id of this vocabulary "
                        "(%u..%u: %u regular tokens + %d special)\n",
                path, field, id, t->n, t->n + HERD_TOK_N_SPECIAL - 1, t->n, HERD_TOK_N_SPECIAL);
        return -1;
    }
    int k = (int)(id - lo);
    if (text->len == 0 || text->len >= HERD_TOK_SPECIAL_MAX || memchr(text->str, 0, text->len)) {
        fprintf(stderr, "herd: %s: %s: content must be 1..%d bytes without NUL\n", path, field,
                HERD_TOK_SPECIAL_MAX - 1);
        return -1;
    }
    if (seen[k]) {
        fprintf(stderr, "herd: %s: %s: id %g is given twice\n", path, field, id);
        return -1;
    }
    for (int j = 0; j < HERD_TOK_N_SPECIAL; j++)
        if (seen[j] && !strcmp(names[j], text->str)) {
            fprintf(stderr, "herd: %s: %s: content \"%s\" is also id %u\n", path, field, text->str,
                    t->n + j);
            return -1;
        }
    memcpy(names[k], text->str, text->len + 1);
    seen[k] = 1;
    return 0;
}

/* tokenizer.json: "added_tokens": [{"id": N, "content": "...", ...}, ...] */
static int from_added_tokens(const herd_tokenizer *t, const char *path, const herd_json *a,
                             char (*names)[HERD_TOK_SPECIAL_MAX], unsigned char *seen)
{
    if (a->type != HERD_JSON_ARR) {
        fprintf(stderr, "herd: %s: added_tokens: not an array\n", path);
        return -1;
    }
    for (size_t i = 0; i < a->len; i++) {
        char field[64];
        snprintf(field, sizeof field, "added_tokens[%zu]", i);
        const herd_json *id = herd_json_get(&a->items[i], "id");
        if (!id || id->type != HERD_JSON_NUM) {
            fprintf(stderr, "herd: %s: %s: no numeric \"id\"\n", path, field);
            return -1;
        }
        if (put_special(t, path, field, id->num, herd_json_get(&a->items[i], "content"), names, seen))
            return -1;
    }
    return 0;
}

/* tokenizer_config.json: "added_tokens_decoder": {"128000": {"content": "..."}, ...} */
static int from_decoder(const herd_tokenizer *t, const char *path, const herd_json *d,
                        char (*names)[HERD_TOK_SPECIAL_MAX], unsigned char *seen)
{
    if (d->type != HERD_JSON_OBJ) {
        fprintf(stderr, "herd: %s: added_tokens_decoder: not an object\n", path);
        return -1;
    }
    for (size_t i = 0; i < d->len; i++) {
        char field[96], *end;
        snprintf(field, sizeof field, "added_tokens_decoder.\"%.40s\"", d->keys[i]);
        double id = strtod(d->keys[i], &end);
        if (end == d->keys[i] || *end) {
            fprintf(stderr, "herd: %s: %s: the key is not an id\n", path, field);
            return -1;
        }
        if (put_special(t, path, field, id, herd_json_get(&d->items[i], "content"), names, seen))
            return -1;
    }
    return 0;
}

/* bos_token / eos_token: a string or {"content": "..."}; absent keeps the default. */
static int named_offset(const herd_tokenizer *t, const char *path, const herd_json *root,
                        const char *key, char (*names)[HERD_TOK_SPECIAL_MAX], int *off)
{
    const herd_json *v = herd_json_get(root, key);
    if (v && v->type == HERD_JSON_OBJ) v = herd_json_get(v, "content");
    if (!v || v->type == HERD_JSON_NULL) return 0;
    if (v->type != HERD_JSON_STR) {
        fprintf(stderr, "herd: %s: %s: not a string\n", path, key);
        return -1;
    }
    for (int k = 0; k < HERD_TOK_N_SPECIAL; k++)
        if (!strcmp(names[k], v->str)) {
            *off = k;
            return 0;
        }
    fprintf(stderr, "herd: %s: %s: \"%s\" is not one of the special tokens %u..%u\n", path, key,
            v->str, t->n, t->n + HERD_TOK_N_SPECIAL - 1);
    return -1;
}

static int from_json(herd_tokenizer *t, const char *path, const herd_json *root)
{
    char names[HERD_TOK_N_SPECIAL][HERD_TOK_SPECIAL_MAX]; /* 16 KB: a whole set or nothing */
    unsigned char seen[HERD_TOK_N_SPECIAL] = {0};
    const herd_json *a = herd_json_get(root, "added_tokens");
    const herd_json *d = herd_json_get(root, "added_tokens_decoder");
    int rc;
    if (a) rc = from_added_tokens(t, path, a, names, seen);
    else if (d) rc = from_decoder(t, path, d, names, seen);
    else {
        fprintf(stderr, "herd: %s: neither added_tokens (tokenizer.json) nor added_tokens_decoder "
                        "(tokenizer_config.json)\n", path);
        return -1;
    }
    for (int k = 0; !rc && k < HERD_TOK_N_SPECIAL; k++)
        if (!seen[k]) {
            fprintf(stderr, "herd: %s: %s: no token with id %u (all of %u..%u are needed)\n", path,
                    a ? "added_tokens" : "added_tokens_decoder", t->n + k, t->n,
                    t->n + HERD_TOK_N_SPECIAL - 1);
            rc = -1;
        }
    int bos = HERD_TOK_BOS, eos = HERD_TOK_EOT;
    if (!rc) rc = named_offset(t, path, root, "bos_token", names, &bos);
    if (!rc) rc = named_offset(t, path, root, "eos_token", names, &eos);
    if (rc) return -1;
    /* tokenizer_config.json: Llama 3.1's template is the one with the date lines */
    const herd_json *tpl = herd_json_get(root, "chat_template");
    t->chat = tpl && tpl->type == HERD_JSON_STR && strstr(tpl->str, "Cutting Knowledge Date")
                  ? HERD_CHAT_LLAMA31 : HERD_CHAT_LLAMA3;
    memcpy(t->special, names, sizeof names);
    t->bos = bos;
    t->eos = eos;
    return 0;
}

int herd_tokenizer_set_specials(herd_tokenizer *t, const char *spec)
{
    size_t l = strlen(spec);
    if (l < 5 || strcmp(spec + l - 5, ".json")) {
        if (herd_tok_specials_family(t, spec) == 0) return 0;
        fprintf(stderr, "herd: specials \"%s\": not a tokenizer family (llama3, llama3.1, llama3.2, "
                        "llama3.3) nor a tokenizer.json / tokenizer_config.json\n", spec);
        return -1;
    }
    size_t n;
    unsigned char *text = herd_file_slurp(spec, &n);
    if (!text) return -1;
    herd_json root;
    char err[160];
    if (herd_json_parse(&root, (const char *)text, n, err, sizeof err)) {
        fprintf(stderr, "herd: %s: not JSON: %s\n", spec, err);
        free(text);
        return -1;
    }
    free(text);
    int rc = root.type == HERD_JSON_OBJ ? from_json(t, spec, &root) : -1;
    if (root.type != HERD_JSON_OBJ) fprintf(stderr, "herd: %s: not a JSON object\n", spec);
    herd_json_free(&root);
    return rc;
}

int herd_tokenizer_open(herd_tokenizer **out, const char *rank_path, const char *spec)
{
    if (herd_tokenizer_load(out, rank_path)) return -1;
    if (spec && herd_tokenizer_set_specials(*out, spec)) {
        herd_tokenizer_free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}
