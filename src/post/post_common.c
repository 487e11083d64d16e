/* post_common.c — see post_common.h. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "src/post/post_common.h"
#include "src/model/hf.h"
#include "src/model/weights.h"

int herd_post_env_open(herd_post_env *e, const char *config, int n_sets, char *const *sets,
                       const char *tokenizer)
{
    memset(e, 0, sizeof *e);
    if (!tokenizer) {
        fprintf(stderr, "herd: --tokenizer RANKS is required\n");
        return -1;
    }
    if (herd_config_resolve(&e->cfg, config, n_sets, sets)) return -1;
    const char *specials = e->cfg.post.specials[0] ? e->cfg.post.specials : NULL;
    if (herd_tokenizer_open(&e->tok, tokenizer, specials)) return -1;
    e->n_regular = herd_tokenizer_n_regular(e->tok);
    e->eot_id = e->n_regular + HERD_TOK_EOT_ID;
    if (herd_tokenizer_vocab_size(e->tok) != e->cfg.model.vocab_size) {
        fprintf(stderr, "herd: %s: model.vocab_size is %d but the tokenizer %s has %d tokens\n",
                config ? config : "config", e->cfg.model.vocab_size, tokenizer,
                herd_tokenizer_vocab_size(e->tok));
        herd_post_env_close(e);
        return -1;
    }
    return 0;
}

void herd_post_env_close(herd_post_env *e)
{
    if (e->tok) herd_tokenizer_free(e->tok);
    e->tok = NULL;
}

int herd_post_model_open(herd_model *m, const herd_post_env *e, const char *weights)
{
    herd_model_dims d;
    herd_model_dims_from_config(&d, &e->cfg.model);
    if (herd_model_create(m, &d, herd_backend_cpu(), e->cfg.train.seed)) return -1;
    /* a directory is a Hugging Face Llama checkpoint (src/model/hf.h) */
    struct stat st;
    int hf = weights && stat(weights, &st) == 0 && S_ISDIR(st.st_mode);
    if (weights && (hf ? herd_hf_load_checked(m, weights, &e->cfg.model) : herd_weights_load(m, weights))) {
        herd_model_destroy(m);
        return -1;
    }
    return 0;
}

/* Bytes of the valid UTF-8 sequence at s[0..n), 0 if it is not one (a model's
 * sample may stop inside a character or emit stray continuation bytes). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 && s[0] < 0xE0 ? 2 : 0;
    if (!len || len > n) return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (len == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0))) return 0;
    if (len == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90))) return 0;
    return len;
}

void herd_post_json_str(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) { /* JSON is UTF-8: a byte that is not part of a character becomes U+FFFD */
            size_t len = utf8_len((const unsigned char *)s + i, n - i);
            if (len) fwrite(s + i, 1, len, f), i += len - 1;
            else fputs("\\ufffd", f);
        } else if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\r') fputs("\\r", f);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

char *herd_post_decode(const herd_post_env *e, const uint32_t *ids, int n)
{
    int k = 0;
    while (k < n && ids[k] != (uint32_t)e->eot_id) k++;
    size_t len = 0;
    /* specials other than eot (a model may emit them) decode to their names */
    unsigned char *b = herd_tokenizer_decode(e->tok, ids, (size_t)k, &len);
    char *s = malloc(len + 1);
    if (b) memcpy(s, b, len);
    s[b ? len : 0] = 0;
    free(b);
    return s;
}
