/* cmd_ckpt_export.c — `herd ckpt export CKPT OUT_DIR --format hf ...`: a
 * checkpoint as a Hugging Face Llama directory (checkpoint/hf_export.h), its
 * dimensions from the config the trainer saved in it, and with --tokenizer the
 * tokenizer files (src/data/tokenizer_hf.h). docs/checkpoint-format.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "checkpoint/hf_export.h"
#include "src/cli/cmd_ckpt_export.h"
#include "src/data/data.h"
#include "src/data/tokenizer_hf.h"
#include "src/train/train_ckpt.h"

/* The end-of-text id in the header of the run's (first) token shard, -1 when
 * it cannot be read: herd's tokenizers put <|begin_of_text|> just before it
 * (byte-level 256, 257; Llama 3 128000, 128001). Only the 64-byte header is
 * read; the shard may be huge. */
static int shard_eot(const herd_config *c)
{
    const char *path = c->data.n_sources > 0 ? c->data.sources[0].path : c->data.path;
    unsigned char h[HERD_SHARD_HEADER];
    FILE *f = path[0] ? fopen(path, "rb") : NULL;
    size_t n = f ? fread(h, 1, sizeof h, f) : 0;
    if (f) fclose(f);
    if (n != sizeof h || memcmp(h, HERD_SHARD_MAGIC, 8)) return -1;
    uint32_t eot = (uint32_t)h[20] | (uint32_t)h[21] << 8 | (uint32_t)h[22] << 16 | (uint32_t)h[23] << 24;
    return eot >= 1 && eot < (uint32_t)c->model.vocab_size ? (int)eot : -1;
}

/* the model section of the checkpoint's saved config, as hf_export reads it */
static int hf_model_of(const char *step_dir, herd_hf_model *m)
{
    herd_config *c = malloc(sizeof *c);
    if (!c || herd_train_ckpt_read_config(step_dir, c)) { free(c); return -1; }
    const herd_config_model *cm = &c->model;
    *m = (herd_hf_model){.n_layers = cm->n_layers, .d_model = cm->d_model, .n_heads = cm->n_heads,
                         .n_kv_heads = cm->n_kv_heads, .ffn_dim = cm->ffn_dim,
                         .vocab_size = cm->vocab_size, .max_seq_len = cm->max_seq_len,
                         .rope_theta = cm->rope_theta, .norm_eps = cm->norm_eps,
                         .rope_factor = cm->rope_scale_factor,
                         .rope_low_freq_factor = cm->rope_low_freq_factor,
                         .rope_high_freq_factor = cm->rope_high_freq_factor,
                         .rope_original_max_pos = cm->rope_original_max_pos,
                         .bos_id = -1, .eos_id = -1};
    int eot = shard_eot(c);
    if (eot > 0) {
        m->bos_id = eot - 1;
        m->eos_id = eot;
    }
    free(c);
    return 0;
}

static int write_tokenizer(const char *dir, void *tok)
{
    return herd_tokenizer_write_hf(tok, dir);
}

/* The run's tokenizer (a tiktoken rank file) as the export's tokenizer files:
 * its ids must fit the model's vocabulary; bos/eos become its special ids. */
static int hf_tokenizer(const char *path, herd_hf_model *m, herd_tokenizer **tok)
{
    if (herd_tokenizer_load(tok, path)) return -1;
    int v = herd_tokenizer_vocab_size(*tok);
    if (v > m->vocab_size) {
        fprintf(stderr, "herd ckpt export: --tokenizer %s: %d ids, but the model's vocab_size is %d\n",
                path, v, m->vocab_size);
        herd_tokenizer_free(*tok);
        *tok = NULL;
        return -1;
    }
    m->bos_id = herd_tokenizer_n_regular(*tok) + HERD_TOK_BOS;
    m->eos_id = herd_tokenizer_n_regular(*tok) + HERD_TOK_EOT;
    return 0;
}

static const char *const hf_opts[5] = {"--format", "--dtype", "--max-shard-size", "--tie", "--tokenizer"};

int herd_ckpt_export_wants_hf(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        for (int k = 0; k < 5; k++)
            if (!strcmp(argv[i], hf_opts[k])) return 1;
    return 0;
}

/* hf[]: the values of hf_opts (NULL: default) */
static int export_hf(const char *ckpt, const char *out, const char *const *hf)
{
    herd_hf_options o = {0};
    if (hf[0] && strcmp(hf[0], "hf")) {
        fprintf(stderr, "herd ckpt export: --format %s: expected hf (or no --format: one file)\n", hf[0]);
        return 2;
    }
    if (hf[1] && strcmp(hf[1], "bf16") && strcmp(hf[1], "f32")) {
        fprintf(stderr, "herd ckpt export: --dtype %s: expected bf16 or f32\n", hf[1]);
        return 2;
    }
    o.bf16 = hf[1] && !strcmp(hf[1], "bf16");
    if (hf[2] && (o.max_shard_bytes = herd_hf_parse_size(hf[2])) < 0) {
        fprintf(stderr, "herd ckpt export: --max-shard-size %s: expected a size (5GB, 500MB, 2GiB, bytes)\n",
                hf[2]);
        return 2;
    }
    const char *ties[3] = {"auto", "no", "yes"};
    int t = 0;
    while (hf[3] && t < 3 && strcmp(hf[3], ties[t])) t++;
    if (t == 3) {
        fprintf(stderr, "herd ckpt export: --tie %s: expected auto, yes or no\n", hf[3]);
        return 2;
    }
    o.tie = (herd_hf_tie)t;
    char p[4096];
    herd_hf_model m;
    herd_tokenizer *tok = NULL;
    if (herd_cmd_ckpt_resolve(ckpt, p, sizeof p) || hf_model_of(p, &m)) return 1;
    if (hf[4] && hf_tokenizer(hf[4], &m, &tok)) return 1;
    o.extra = tok ? write_tokenizer : NULL;
    o.extra_arg = tok;
    int rc = herd_ckpt_export_hf(p, out, &m, &o);
    if (tok) herd_tokenizer_free(tok);
    if (rc) return 1;
    printf("exported %s to %s (Hugging Face Llama, %s%s)\n", p, out, o.bf16 ? "bf16" : "f32",
           tok ? ", tokenizer" : "");
    return 0;
}

int herd_cmd_ckpt_export_hf(int argc, char **argv, const char *kind)
{
    const char *hf[5] = {0}, *pos[2] = {0};
    int npos = 0;
    for (int i = 0; i < argc; i++) {
        int k = 0;
        while (k < 5 && strcmp(argv[i], hf_opts[k])) k++;
        if (k < 5 && i + 1 < argc) hf[k] = argv[++i];
        else if (argv[i][0] == '-' || npos == 2) {
            fprintf(stderr, "herd ckpt export: unexpected argument '%s'\n", argv[i]);
            return 2;
        } else pos[npos++] = argv[i];
    }
    if (kind) {
        fprintf(stderr, "herd ckpt export: --kind %s: a Hugging Face export holds the parameters only\n",
                kind);
        return 2;
    }
    if (npos != 2) {
        fprintf(stderr, "usage: herd ckpt export CKPT OUT_DIR --format hf [--dtype bf16|f32] "
                "[--max-shard-size SIZE] [--tie auto|yes|no] [--tokenizer RANKS]\n");
        return 2;
    }
    return export_hf(pos[0], pos[1], hf);
}
