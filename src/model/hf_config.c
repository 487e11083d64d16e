/* hf_config.c — config.json of a Hugging Face Llama checkpoint (see hf.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/base/file.h"
#include "src/base/json.h"
#include "src/model/hf.h"

/* The number under key (required: -1 with a message when absent). */
static int num(const herd_json *j, const char *path, const char *key, int required, double *out)
{
    const herd_json *v = herd_json_get(j, key);
    if (!v || v->type == HERD_JSON_NULL) {
        if (!required) return 0;
        fprintf(stderr, "herd: %s: %s: missing\n", path, key);
        return -1;
    }
    if (v->type != HERD_JSON_NUM && v->type != HERD_JSON_BOOL) {
        fprintf(stderr, "herd: %s: %s: expected a number\n", path, key);
        return -1;
    }
    *out = v->num;
    return 0;
}

static int int_key(const herd_json *j, const char *path, const char *key, int required, int *out)
{
    double v = *out;
    if (num(j, path, key, required, &v)) return -1;
    if (v != floor(v) || v < 0 || v > 1 << 30) {
        fprintf(stderr, "herd: %s: %s: %g is not a whole number in [0, 2^30]\n", path, key, v);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* rope_scaling: absent/null, or {"rope_type": "llama3", factor, ...}. */
static int rope_scaling(const herd_json *j, const char *path, herd_config_model *m)
{
    const herd_json *s = herd_json_get(j, "rope_scaling");
    m->rope_scale_factor = 0;
    if (!s || s->type == HERD_JSON_NULL) return 0;
    const herd_json *t = herd_json_get(s, "rope_type");
    if (!t) t = herd_json_get(s, "type");
    if (!t || t->type != HERD_JSON_STR || strcmp(t->str, "llama3")) {
        fprintf(stderr, "herd: %s: rope_scaling.rope_type: only \"llama3\" (Llama 3.1) is supported\n",
                path);
        return -1;
    }
    if (num(s, path, "factor", 1, &m->rope_scale_factor) ||
        num(s, path, "low_freq_factor", 1, &m->rope_low_freq_factor) ||
        num(s, path, "high_freq_factor", 1, &m->rope_high_freq_factor) ||
        int_key(s, path, "original_max_position_embeddings", 1, &m->rope_original_max_pos))
        return -1;
    return 0;
}

static int model_type(const herd_json *j, const char *path)
{
    const herd_json *t = herd_json_get(j, "model_type");
    if (t && (t->type != HERD_JSON_STR || strcmp(t->str, "llama"))) {
        fprintf(stderr, "herd: %s: model_type: \"%s\" is not \"llama\"\n", path,
                t->type == HERD_JSON_STR ? t->str : "?");
        return -1;
    }
    const herd_json *h = herd_json_get(j, "hidden_act");
    if (h && (h->type != HERD_JSON_STR || strcmp(h->str, "silu"))) {
        fprintf(stderr, "herd: %s: hidden_act: only \"silu\" (SwiGLU) is supported\n", path);
        return -1;
    }
    const herd_json *b = herd_json_get(j, "attention_bias");
    const herd_json *mb = herd_json_get(j, "mlp_bias");
    if ((b && b->num != 0) || (mb && mb->num != 0)) {
        fprintf(stderr, "herd: %s: %s: biases are not part of the Llama architecture herd trains\n",
                path, b && b->num != 0 ? "attention_bias" : "mlp_bias");
        return -1;
    }
    return 0;
}

/* A model herd can build: every size positive, heads that divide the width
 * and KV heads that divide the heads, a positive finite theta and epsilon. */
static int check_dims(const char *path, const herd_config_model *m, int tied)
{
    const struct { const char *key; int v; } size[] = {
        {"num_hidden_layers", m->n_layers}, {"hidden_size", m->d_model}, {"num_attention_heads", m->n_heads},
        {"num_key_value_heads", m->n_kv_heads}, {"intermediate_size", m->ffn_dim},
        {"vocab_size", m->vocab_size}, {"max_position_embeddings", m->max_seq_len}};
    for (size_t i = 0; i < sizeof size / sizeof size[0]; i++)
        if (size[i].v < 1) {
            fprintf(stderr, "herd: %s: %s: %d, must be at least 1\n", path, size[i].key, size[i].v);
            return -1;
        }
    if (m->d_model % m->n_heads) {
        fprintf(stderr, "herd: %s: num_attention_heads: %d does not divide hidden_size %d\n", path, m->n_heads,
                m->d_model);
        return -1;
    }
    if (m->n_heads % m->n_kv_heads) {
        fprintf(stderr, "herd: %s: num_key_value_heads: %d does not divide num_attention_heads %d\n", path,
                m->n_kv_heads, m->n_heads);
        return -1;
    }
    if (!(m->rope_theta > 0 && isfinite(m->rope_theta)) || !(m->norm_eps > 0 && isfinite(m->norm_eps))) {
        fprintf(stderr, "herd: %s: rope_theta %g and rms_norm_eps %g must be positive\n", path, m->rope_theta,
                m->norm_eps);
        return -1;
    }
    if (tied != 0 && tied != 1) {
        fprintf(stderr, "herd: %s: tie_word_embeddings: %d, expected true or false\n", path, tied);
        return -1;
    }
    return 0;
}

int herd_hf_config_read(const char *dir, herd_config_model *m, int *tied)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t len = 0;
    unsigned char *text = herd_file_slurp(path, &len);
    if (!text) return -1;
    herd_json j;
    char err[160];
    int rc = herd_json_parse(&j, (const char *)text, len, err, sizeof err);
    free(text);
    if (rc) {
        fprintf(stderr, "herd: %s: not JSON: %s\n", path, err);
        return -1;
    }
    int head_dim = 0, t = 0;
    m->rope_theta = 10000.0; /* transformers' LlamaConfig default */
    rc = model_type(&j, path) || int_key(&j, path, "num_hidden_layers", 1, &m->n_layers) ||
         int_key(&j, path, "hidden_size", 1, &m->d_model) ||
         int_key(&j, path, "num_attention_heads", 1, &m->n_heads) ||
         int_key(&j, path, "intermediate_size", 1, &m->ffn_dim) ||
         int_key(&j, path, "vocab_size", 1, &m->vocab_size) ||
         int_key(&j, path, "max_position_embeddings", 1, &m->max_seq_len) ||
         num(&j, path, "rope_theta", 0, &m->rope_theta) ||
         num(&j, path, "rms_norm_eps", 1, &m->norm_eps) || rope_scaling(&j, path, m) ||
         int_key(&j, path, "head_dim", 0, &head_dim) ||
         int_key(&j, path, "tie_word_embeddings", 0, &t);
    m->n_kv_heads = m->n_heads;
    if (!rc) rc = int_key(&j, path, "num_key_value_heads", 0, &m->n_kv_heads);
    if (!rc) rc = check_dims(path, m, t);
    if (!rc && head_dim && head_dim != m->d_model / m->n_heads) {
        fprintf(stderr, "herd: %s: head_dim: %d, herd needs hidden_size / num_attention_heads = %d\n",
                path, head_dim, m->d_model / m->n_heads);
        rc = -1;
    }
    *tied = t;
    herd_json_free(&j);
    return rc ? -1 : 0;
}

int herd_hf_config_check(const char *dir, const herd_config_model *run, const herd_config_model *hf)
{
    int bad = 0;
#define SAME_INT(k, hfk)                                                                             \
    if (run->k != hf->k)                                                                             \
        bad = 1, fprintf(stderr, "herd: model.%s is %d but %s/config.json has %s %d\n", #k, run->k, \
                         dir, hfk, hf->k);
#define SAME_DBL(k, hfk)                                                                             \
    if (fabs(run->k - hf->k) > 1e-9 * fabs(hf->k))                                                   \
        bad = 1, fprintf(stderr, "herd: model.%s is %g but %s/config.json has %s %g\n", #k, run->k, \
                         dir, hfk, hf->k);
    SAME_INT(n_layers, "num_hidden_layers") SAME_INT(d_model, "hidden_size")
    SAME_INT(n_heads, "num_attention_heads") SAME_INT(n_kv_heads, "num_key_value_heads")
    SAME_INT(ffn_dim, "intermediate_size") SAME_INT(vocab_size, "vocab_size")
    SAME_DBL(rope_theta, "rope_theta") SAME_DBL(norm_eps, "rms_norm_eps")
    SAME_DBL(rope_scale_factor, "rope_scaling.factor")
    if (hf->rope_scale_factor > 0) {
        SAME_DBL(rope_low_freq_factor, "rope_scaling.low_freq_factor")
        SAME_DBL(rope_high_freq_factor, "rope_scaling.high_freq_factor")
        SAME_INT(rope_original_max_pos, "rope_scaling.original_max_position_embeddings")
    }
#undef SAME_INT
#undef SAME_DBL
    if (run->max_seq_len > hf->max_seq_len)
        bad = 1, fprintf(stderr, "herd: model.max_seq_len is %d but %s/config.json has "
                         "max_position_embeddings %d\n", run->max_seq_len, dir, hf->max_seq_len);
    return bad ? -1 : 0;
}
