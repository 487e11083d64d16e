/* hf_export.c — see hf_export.h. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "checkpoint/hf_export.h"
#include "checkpoint/hf_names.h"
#include "checkpoint/internal.h"
#include "checkpoint/safe_file.h"
#include "checkpoint/safetensors.h"

int64_t herd_hf_parse_size(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v <= 0) return -1;
    static const struct { const char *suf; double mul; } u[] = {
        {"", 1}, {"B", 1}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
        {"KIB", 1024.0}, {"MIB", 1048576.0}, {"GIB", 1073741824.0}};
    char suf[8];
    size_t k = 0;
    for (; end[k] && k < sizeof suf - 1; k++) suf[k] = (char)toupper((unsigned char)end[k]);
    suf[k] = '\0';
    if (end[k]) return -1;
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
        if (!strcmp(suf, u[i].suf)) return v * u[i].mul >= 1 ? (int64_t)(v * u[i].mul) : -1;
    return -1;
}

static const herd_st_tensor *find(const herd_st_tensor *t, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(t[i].name, name)) return &t[i];
    return NULL;
}

/* one tensor's shape against the config's dimensions */
static int expect(const char *dir, const herd_st_tensor *t, int n, const char *name, int64_t r,
                  int64_t c)
{
    const herd_st_tensor *e = find(t, n, name);
    if (!e) {
        fprintf(stderr, "checkpoint: export hf: %s: tensor %s: missing\n", dir, name);
        return -1;
    }
    if (e->shape[0] != r || e->shape[1] != c) {
        fprintf(stderr, "checkpoint: export hf: %s: tensor %s: shape [%" PRId64 ", %" PRId64
                "] but the config's model section gives [%" PRId64 ", %" PRId64 "]\n", dir, name,
                e->shape[0], e->shape[1], r, c);
        return -1;
    }
    return 0;
}

static int check_shapes(const char *dir, const herd_st_tensor *t, int n, const herd_hf_model *m)
{
    if (m->n_heads <= 0 || m->n_kv_heads <= 0 || m->d_model % m->n_heads) {
        fprintf(stderr, "checkpoint: export hf: %s: model.n_heads %d, n_kv_heads %d: not a Llama "
                "head layout for d_model %d\n", dir, m->n_heads, m->n_kv_heads, m->d_model);
        return -1;
    }
    int64_t d = m->d_model, hd = d / m->n_heads, kv = (int64_t)m->n_kv_heads * hd, f = m->ffn_dim;
    int rc = expect(dir, t, n, "model.embed_tokens.weight", m->vocab_size, d);
    rc |= expect(dir, t, n, "lm_head.weight", m->vocab_size, d);
    rc |= expect(dir, t, n, "model.norm.weight", d, 0);
    for (int l = 0; l < m->n_layers && !rc; l++) {
        static const char *sfx[9] = {"input_layernorm", "self_attn.q_proj", "self_attn.k_proj",
                                     "self_attn.v_proj", "self_attn.o_proj",
                                     "post_attention_layernorm", "mlp.gate_proj", "mlp.up_proj",
                                     "mlp.down_proj"};
        const int64_t shp[9][2] = {{d, 0}, {d, d}, {kv, d}, {kv, d}, {d, d}, {d, 0}, {f, d},
                                   {f, d}, {d, f}};
        for (int s = 0; s < 9; s++) {
            char name[96];
            snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, sfx[s]);
            rc |= expect(dir, t, n, name, shp[s][0], shp[s][1]);
        }
    }
    if (!rc && n != 3 + 9 * m->n_layers) {
        fprintf(stderr, "checkpoint: export hf: %s: %d tensors but model.n_layers %d gives %d\n",
                dir, n, m->n_layers, 3 + 9 * m->n_layers);
        rc = -1;
    }
    return rc ? -1 : 0;
}

static int64_t numel(const herd_st_tensor *t) { return t->shape[0] * (t->ndim > 1 ? t->shape[1] : 1); }

/* round to nearest even; NaN stays a (quiet) NaN */
static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

/* the F32 buffers replaced by BF16 ones, in place */
static int convert_bf16(herd_st_tensor *t, int n)
{
    for (int i = 0; i < n; i++) {
        int64_t k = numel(&t[i]);
        uint16_t *b = malloc((size_t)(k ? k : 1) * 2);
        if (!b) return -1;
        const float *f = t[i].data;
        for (int64_t j = 0; j < k; j++) b[j] = to_bf16(f[j]);
        free((void *)t[i].data);
        t[i].data = b;
        t[i].dtype = "BF16";
    }
    return 0;
}

/* "%.15g" when it reads back as the same double, else "%.17g" */
static void fmt_double(char *buf, size_t n, double v)
{
    snprintf(buf, n, "%.15g", v);
    if (strtod(buf, NULL) != v) snprintf(buf, n, "%.17g", v);
    if (!strpbrk(buf, ".eEn")) strncat(buf, ".0", n - strlen(buf) - 1);
}

static int write_config(const char *dir, const herd_hf_model *m, int tied, int bf16)
{
    char path[8300], theta[40], eps[40];
    snprintf(path, sizeof path, "%s/config.json", dir);
    fmt_double(theta, sizeof theta, m->rope_theta);
    fmt_double(eps, sizeof eps, m->norm_eps);
    herd_safe_file sf;
    FILE *f = herd_safe_file_begin_stream(&sf, path, 0644);
    if (!f) return -1;
    fprintf(f, "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n");
    fprintf(f, "  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n  \"num_hidden_layers\": %d,\n",
            m->d_model, m->ffn_dim, m->n_layers);
    fprintf(f, "  \"num_attention_heads\": %d,\n  \"num_key_value_heads\": %d,\n  \"head_dim\": %d,\n",
            m->n_heads, m->n_kv_heads, m->d_model / m->n_heads);
    fprintf(f, "  \"hidden_act\": \"silu\",\n  \"rope_theta\": %s,\n  \"rms_norm_eps\": %s,\n", theta, eps);
    fprintf(f, "  \"vocab_size\": %d,\n  \"max_position_embeddings\": %d,\n", m->vocab_size,
            m->max_seq_len);
    fprintf(f, "  \"tie_word_embeddings\": %s,\n  \"torch_dtype\": \"%s\",\n", tied ? "true" : "false",
            bf16 ? "bfloat16" : "float32");
    fprintf(f, "  \"attention_bias\": false,\n  \"mlp_bias\": false,\n  \"attention_dropout\": 0.0,\n"
            "  \"pretraining_tp\": 1,\n  \"initializer_range\": 0.02,\n  \"use_cache\": true,\n");
    if (m->bos_id >= 0) fprintf(f, "  \"bos_token_id\": %d,\n", m->bos_id);
    if (m->eos_id >= 0) fprintf(f, "  \"eos_token_id\": %d,\n", m->eos_id);
    if (m->rope_factor > 0) {
        char a[40], b[40], c[40];
        fmt_double(a, sizeof a, m->rope_factor);
        fmt_double(b, sizeof b, m->rope_low_freq_factor);
        fmt_double(c, sizeof c, m->rope_high_freq_factor);
        fprintf(f, "  \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": %s, "
                "\"low_freq_factor\": %s, \"high_freq_factor\": %s, "
                "\"original_max_position_embeddings\": %d}\n}\n", a, b, c, m->rope_original_max_pos);
    } else {
        fprintf(f, "  \"rope_scaling\": null\n}\n");
    }
    return herd_safe_file_stream_commit(&sf, f);
}

static int write_generation_config(const char *dir, const herd_hf_model *m)
{
    char path[8300];
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    herd_safe_file sf;
    FILE *f = herd_safe_file_begin_stream(&sf, path, 0644);
    if (!f) return -1;
    fprintf(f, "{\n  \"_from_model_config\": true");
    if (m->bos_id >= 0) fprintf(f, ",\n  \"bos_token_id\": %d", m->bos_id);
    if (m->eos_id >= 0) fprintf(f, ",\n  \"eos_token_id\": %d", m->eos_id);
    fprintf(f, "\n}\n");
    return herd_safe_file_stream_commit(&sf, f);
}

/* Greedy in the checkpoint's order: a shard takes tensors while its bytes stay
 * <= max; a tensor larger than max alone fills one shard (as transformers'
 * save_pretrained does). shard[i]: the 0-based shard of tensor i. */
static int plan_shards(const herd_st_tensor *t, int n, int64_t max, int *shard)
{
    int s = 0;
    int64_t used = 0;
    for (int i = 0; i < n; i++) {
        int64_t b = numel(&t[i]) * (t[i].dtype[0] == 'B' ? 2 : 4);
        if (used > 0 && used + b > max) { s++; used = 0; }
        shard[i] = s;
        used += b;
    }
    return s + 1;
}

static int write_shards(const char *dir, herd_st_tensor *t, int n, const int *shard, int ns,
                        int64_t step)
{
    char step_s[32];
    snprintf(step_s, sizeof step_s, "%" PRId64, step);
    const char *meta[4] = {"format", "pt", "herd_step", step_s};
    herd_st_tensor *sel = malloc((size_t)n * sizeof *sel);
    int rc = sel ? 0 : -1;
    for (int s = 0; s < ns && !rc; s++) {
        int k = 0;
        for (int i = 0; i < n; i++)
            if (shard[i] == s) sel[k++] = t[i];
        char path[8300];
        snprintf(path, sizeof path, "%s/model-%05d-of-%05d.safetensors", dir, s + 1, ns);
        rc = herd_safetensors_write(path, sel, k, meta, 2);
    }
    free(sel);
    if (rc) return -1;
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += numel(&t[i]) * (t[i].dtype[0] == 'B' ? 2 : 4);
    char path[8300];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    herd_safe_file sf;
    FILE *f = herd_safe_file_begin_stream(&sf, path, 0644);
    if (!f) return -1;
    fprintf(f, "{\n  \"metadata\": {\"total_size\": %" PRId64 ", \"herd_step\": %" PRId64 "},\n"
            "  \"weight_map\": {", total, step);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s\n    \"%s\": \"model-%05d-of-%05d.safetensors\"", i ? "," : "", t[i].name,
                shard[i] + 1, ns);
    fprintf(f, "\n  }\n}\n");
    return herd_safe_file_stream_commit(&sf, f);
}

/* tied: lm_head equals the embedding bit for bit (herd trains them apart; an
 * imported tied model keeps them equal until trained) */
static int decide_tie(const char *dir, const herd_st_tensor *t, int n, herd_hf_tie tie)
{
    if (tie == HERD_HF_TIE_NO) return 0;
    const herd_st_tensor *h = find(t, n, "lm_head.weight"), *e = find(t, n, herd_hf_tied_source(h->name));
    int same = !memcmp(e->data, h->data, (size_t)numel(e) * 4);
    if (tie == HERD_HF_TIE_YES && !same) {
        fprintf(stderr, "checkpoint: export hf: %s: --tie yes: lm_head.weight differs from "
                "model.embed_tokens.weight (the model is untied; export it with --tie auto or no)\n", dir);
        return -1;
    }
    return same;
}

/* remove the temporary directory this export created (mkdir: no one else's)
 * and what it wrote there */
static void remove_tmp_dir(const char *tmp)
{
    DIR *d = opendir(tmp);
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            unlinkat(dirfd(d), de->d_name, 0);
    if (d) closedir(d);
    if (rmdir(tmp)) fprintf(stderr, "checkpoint: export hf: %s: left behind: %s\n", tmp, strerror(errno));
}

/* herd's names as transformers spells them (checkpoint/hf_names.h), into names[n] */
static int hf_rename(const char *dir, herd_st_tensor *t, int n, char (*names)[96])
{
    for (int i = 0; i < n; i++) {
        if (herd_hf_name(t[i].name, names[i], sizeof names[i])) {
            fprintf(stderr, "checkpoint: export hf: %s: tensor %s: not a Llama tensor\n", dir, t[i].name);
            return -1;
        }
        t[i].name = names[i];
    }
    return 0;
}

static int write_dir(const char *tmp, herd_st_tensor *t, int n, const herd_hf_model *m,
                     const herd_hf_options *o, int tied, int64_t step)
{
    int64_t max = o->max_shard_bytes > 0 ? o->max_shard_bytes : (int64_t)5000000000LL;
    int *shard = malloc((size_t)n * sizeof *shard);
    if (!shard) return -1;
    int ns = plan_shards(t, n, max, shard);
    int rc = write_config(tmp, m, tied, o->bf16);
    if (!rc) rc = write_generation_config(tmp, m);
    if (!rc) rc = write_shards(tmp, t, n, shard, ns, step);
    if (!rc && o->extra) rc = o->extra(tmp, o->extra_arg);
    free(shard);
    return rc;
}

int herd_ckpt_export_hf(const char *step_dir, const char *out_dir, const herd_hf_model *m,
                        const herd_hf_options *o)
{
    struct stat st;
    if (strlen(out_dir) > 4000) {
        fprintf(stderr, "checkpoint: export hf: %.60s...: path too long\n", out_dir);
        return -1;
    }
    if (lstat(out_dir, &st) == 0) {
        fprintf(stderr, "checkpoint: export hf: %s: exists; not overwritten (name a new directory)\n",
                out_dir);
        return -1;
    }
    herd_ckpt *c;
    if (herd_ckpt_open(&c, step_dir)) return -1;
    herd_st_tensor *t = NULL;
    int n = 0, tied = 0;
    int rc = ckpt_export_gather(c, step_dir, "param", &t, &n);
    if (!rc) rc = check_shapes(step_dir, t, n, m);
    if (!rc) rc = (tied = decide_tie(step_dir, t, n, o->tie)) < 0 ? -1 : 0;
    if (!rc && tied) { /* lm_head is the embedding: not stored (HF ties them on load) */
        herd_st_tensor *h = (herd_st_tensor *)find(t, n, "lm_head.weight");
        free((void *)h->data);
        *h = t[--n];
    }
    char (*names)[96] = rc ? NULL : calloc((size_t)n, sizeof *names);
    if (!rc && (!names || hf_rename(step_dir, t, n, names))) rc = -1;
    if (!rc && o->bf16 && convert_bf16(t, n)) {
        fprintf(stderr, "checkpoint: export hf: %s: out of memory for the BF16 copy\n", step_dir);
        rc = -1;
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out_dir, (long)getpid());
    if (!rc && mkdir(tmp, 0755)) {
        fprintf(stderr, "checkpoint: export hf: %s: cannot create: %s\n", tmp, strerror(errno));
        rc = -1;
    } else if (!rc) {
        rc = write_dir(tmp, t, n, m, o, tied, herd_ckpt_step(c));
        if (!rc && rename(tmp, out_dir)) {
            fprintf(stderr, "checkpoint: export hf: %s: cannot rename into place: %s\n", out_dir,
                    strerror(errno));
            rc = -1;
        }
        if (rc) remove_tmp_dir(tmp);
    }
    ckpt_export_free(t, n);
    free(names);
    herd_ckpt_close(c);
    return rc;
}
