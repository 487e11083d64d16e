/* test_hf.c — reading Hugging Face Llama checkpoints (src/model/hf.h): BF16
 * and F16 widened exactly (F16 subnormals included), a sharded index, and the
 * bad inputs refused: an unsupported rope_scaling, a missing key, a shard
 * outside the directory, a missing tensor, a wrong shape, a run whose model
 * disagrees with config.json. The logits against transformers are
 * tests/golden/hf_import.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "src/model/hf.h"
#include "tests/unit/test.h"

static const char *CONFIG =
    "{\"model_type\": \"llama\", \"hidden_size\": 8, \"intermediate_size\": 12, \"num_hidden_layers\": 1,"
    " \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"vocab_size\": 10,"
    " \"max_position_embeddings\": 16, \"rope_theta\": 10000.0, \"rms_norm_eps\": 1e-5,"
    " \"tie_word_embeddings\": %s, \"rope_scaling\": %s}";

static char dir[64];

static void put(const char *name, const char *text)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
}

static void put_config(const char *tied, const char *scaling)
{
    char buf[1024];
    snprintf(buf, sizeof buf, CONFIG, tied, scaling);
    put("config.json", buf);
}

/* Write m's tensors (skipping `skip`) as dtype (F32, BF16 or F16) into file;
 * BF16 truncates, F16 rounds (_Float16). */
static void write_st(const herd_model *m, const char *file, const char *dtype, const char *skip)
{
    int es = strcmp(dtype, "F32") ? 2 : 4;
    char hdr[8192] = "{", p[128];
    size_t off = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const herd_tensor *t = &m->tensors[i];
        if (skip && !strcmp(t->name, skip)) continue;
        size_t n = strlen(hdr), bytes = (size_t)t->numel * es;
        char shape[64];
        if (t->ndim == 2) snprintf(shape, sizeof shape, "%lld,%lld", (long long)t->shape[0], (long long)t->shape[1]);
        else snprintf(shape, sizeof shape, "%lld", (long long)t->shape[0]);
        snprintf(hdr + n, sizeof hdr - n, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%s],"
                 "\"data_offsets\":[%zu,%zu]}", n > 1 ? "," : "", t->name, dtype, shape, off, off + bytes);
        off += bytes;
    }
    strcat(hdr, "}");
    snprintf(p, sizeof p, "%s/%s", dir, file);
    FILE *f = fopen(p, "wb");
    uint64_t hl = strlen(hdr);
    fwrite(&hl, 8, 1, f);
    fwrite(hdr, 1, hl, f);
    for (int i = 0; i < m->n_tensors; i++) {
        const herd_tensor *t = &m->tensors[i];
        if (skip && !strcmp(t->name, skip)) continue;
        for (int64_t j = 0; j < t->numel; j++) {
            float v = m->params[t->offset + j];
            uint32_t u;
            memcpy(&u, &v, 4);
            uint16_t b = (uint16_t)(u >> 16);
            _Float16 h = (_Float16)v;
            fwrite(es == 4 ? (void *)&v : !strcmp(dtype, "BF16") ? (void *)&b : (void *)&h, es, 1, f);
        }
    }
    fclose(f);
}

static int make_model(herd_model *m, uint64_t seed)
{
    herd_config_model c = {0};
    int tied;
    c.init_std = 0.5;
    if (herd_hf_config_read(dir, &c, &tied)) return -1;
    herd_model_dims d;
    herd_model_dims_from_config(&d, &c);
    return herd_model_create(m, &d, herd_backend_cpu(), seed);
}

TEST(bf16_and_f16_widen_exactly)
{
    put_config("false", "null");
    herd_model a, b;
    CHECK(make_model(&a, 1) == 0 && make_model(&b, 2) == 0);
    a.params[0] = 3.0f / 16777216.0f; /* an F16 subnormal */
    a.params[1] = -65504.0f;          /* F16's largest */
    const char *types[] = {"BF16", "F16", "F32"};
    for (int k = 0; k < 3; k++) {
        write_st(&a, "model.safetensors", types[k], NULL);
        CHECK(herd_hf_load(&b, dir, 0) == 0);
        int bad = 0;
        for (int64_t j = 0; j < a.n_params; j++) {
            float v = a.params[j], want = v;
            uint32_t u;
            memcpy(&u, &v, 4);
            u &= 0xffff0000u;
            if (k == 0) memcpy(&want, &u, 4);
            if (k == 1) want = (float)(_Float16)v;
            bad += b.params[j] != want;
        }
        CHECK(bad == 0);
        if (bad) fprintf(stderr, "  %s: %d elements differ\n", types[k], bad);
    }
    CHECK(b.params[0] == 3.0f / 16777216.0f && b.params[1] == -65504.0f);
    herd_model_destroy(&a);
    herd_model_destroy(&b);
}

TEST(sharded_index_and_tied_output)
{
    put_config("true", "null");
    herd_model a, b;
    CHECK(make_model(&a, 3) == 0 && make_model(&b, 4) == 0);
    write_st(&a, "model-00001-of-00001.safetensors", "F32", "lm_head.weight");
    char idx[4096] = "{\"metadata\": {}, \"weight_map\": {";
    for (int i = 0; i < a.n_tensors; i++)
        if (strcmp(a.tensors[i].name, "lm_head.weight"))
            snprintf(idx + strlen(idx), sizeof idx - strlen(idx), "%s\"%s\": \"model-00001-of-00001.safetensors\"",
                     i ? ", " : "", a.tensors[i].name);
    strcat(idx, "}}");
    put("model.safetensors.index.json", idx);
    CHECK(herd_hf_load(&b, dir, 1) == 0);
    const herd_tensor *e = herd_model_find(&a, "model.embed_tokens.weight"),
                      *h = herd_model_find(&b, "lm_head.weight");
    CHECK(e && h && !memcmp(a.params + e->offset, b.params + h->offset, sizeof(float) * e->numel));
    CHECK(herd_hf_load(&b, dir, 0) != 0); /* untied: lm_head.weight is missing */
    /* a shard outside the directory is refused */
    char *at = strstr(idx, "\"model-00001");
    memcpy(at, "\"../el-00001", 12);
    put("model.safetensors.index.json", idx);
    CHECK(herd_hf_load(&b, dir, 1) != 0);
    char p[128];
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/model-00001-of-00001.safetensors", dir);
    unlink(p);
    herd_model_destroy(&a);
    herd_model_destroy(&b);
}

TEST(wrong_shape_is_refused)
{
    put_config("false", "null");
    herd_model a, b;
    CHECK(make_model(&a, 5) == 0);
    write_st(&a, "model.safetensors", "F32", NULL);
    put_config("false", "null");
    char buf[1024];
    snprintf(buf, sizeof buf, CONFIG, "false", "null");
    char *v = strstr(buf, "\"intermediate_size\": 12");
    memcpy(v, "\"intermediate_size\": 16", 23);
    put("config.json", buf);
    CHECK(make_model(&b, 6) == 0);
    CHECK(herd_hf_load(&b, dir, 0) != 0);
    /* the checked load refuses before reading: ffn_dim 12 against intermediate_size 16 */
    herd_config_model run = {0};
    int tied;
    CHECK(herd_hf_config_read(dir, &run, &tied) == 0);
    run.ffn_dim = 12;
    CHECK(herd_hf_load_checked(&a, dir, &run) != 0);
    put_config("false", "null");
    run.ffn_dim = 12;
    CHECK(herd_hf_load_checked(&a, dir, &run) == 0);
    herd_model_destroy(&a);
    herd_model_destroy(&b);
}

TEST(config_json_is_read_and_checked)
{
    herd_config_model c = {0}, run;
    int tied = 0;
    put_config("true", "{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0,"
                       " \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8}");
    CHECK(herd_hf_config_read(dir, &c, &tied) == 0);
    CHECK(tied == 1 && c.d_model == 8 && c.n_kv_heads == 1 && c.ffn_dim == 12 && c.max_seq_len == 16);
    CHECK(c.rope_scale_factor == 8.0 && c.rope_high_freq_factor == 4.0 && c.rope_original_max_pos == 8);
    run = c;
    CHECK(herd_hf_config_check(dir, &run, &c) == 0);
    run.max_seq_len = 8; /* less context than the model supports: fine */
    CHECK(herd_hf_config_check(dir, &run, &c) == 0);
    run.n_kv_heads = 2;
    CHECK(herd_hf_config_check(dir, &run, &c) != 0);
    run = c;
    run.rope_scale_factor = 0;
    CHECK(herd_hf_config_check(dir, &run, &c) != 0);
    put_config("false", "{\"rope_type\": \"dynamic\", \"factor\": 2.0}");
    CHECK(herd_hf_config_read(dir, &c, &tied) != 0);
    put("config.json", "{\"model_type\": \"llama\", \"num_hidden_layers\": 1}");
    CHECK(herd_hf_config_read(dir, &c, &tied) != 0);
    put("config.json", "{\"model_type\": \"mistral\"}");
    CHECK(herd_hf_config_read(dir, &c, &tied) != 0);
    /* heads that do not divide the width, KV heads that do not divide the heads, a zero size
     * (fuzz_hf_config's first finding: such a file was read as a model) */
    const char *bad[] = {"\"num_attention_heads\": 3, \"num_key_value_heads\": 1",
                         "\"num_attention_heads\": 4, \"num_key_value_heads\": 3",
                         "\"num_attention_heads\": 4, \"num_key_value_heads\": 0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[512];
        snprintf(text, sizeof text,
                 "{\"model_type\": \"llama\", \"num_hidden_layers\": 1, \"hidden_size\": 32, %s, "
                 "\"intermediate_size\": 64, \"vocab_size\": 96, \"max_position_embeddings\": 64, "
                 "\"rms_norm_eps\": 1e-5}", bad[i]);
        put("config.json", text);
        CHECK(herd_hf_config_read(dir, &c, &tied) != 0);
    }
    put("config.json", "{\"model_type\": \"llama\", \"num_hidden_layers\": 1, \"hidden_size\": 32, "
                       "\"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"intermediate_size\": 64, "
                       "\"vocab_size\": 96, \"max_position_embeddings\": 64, \"rms_norm_eps\": 1e-5}");
    CHECK(herd_hf_config_read(dir, &c, &tied) == 0 && c.n_heads == 4 && c.n_kv_heads == 2);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/herd_test_hf.XXXXXX");
    if (!mkdtemp(dir)) return 1;
    RUN(bf16_and_f16_widen_exactly);
    RUN(sharded_index_and_tied_output);
    RUN(wrong_shape_is_refused);
    RUN(config_json_is_read_and_checked);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) return 1;
    return test_summary();
}
