/* test_config.c — the run configuration: defaults, presets, YAML loading,
 * --set, the resolution order, validation messages and the write/load round
 * trip. Files are written to a fresh temporary directory. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "src/config/config.h"
#include "tests/unit/test.h"

static char tmp_dir[] = "/tmp/herd_test_config_XXXXXX";
static char last_err[8192]; /* stderr of the last call made through CAPTURE */

/* Write `text` to tmp_dir/name and return the path (a static buffer per slot). */
static const char *write_file(const char *name, const char *text)
{
    static char paths[4][512];
    static int slot;
    char *p = paths[slot++ % 4];
    snprintf(p, 512, "%s/%s", tmp_dir, name);
    FILE *f = fopen(p, "w");
    if (!f) { perror(p); exit(1); }
    fputs(text, f);
    fclose(f);
    return p;
}

/* Run `call` with stderr redirected into last_err, so that messages can be checked. */
static int err_fd_saved = -1;
static void capture_begin(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/stderr.txt", tmp_dir);
    fflush(stderr);
    err_fd_saved = dup(2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
}
static void capture_end(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/stderr.txt", tmp_dir);
    fflush(stderr);
    dup2(err_fd_saved, 2);
    close(err_fd_saved);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(last_err, 1, sizeof last_err - 1, f) : 0;
    last_err[n] = '\0';
    if (f) fclose(f);
}
#define CAPTURE(expr) (capture_begin(), _capture_rc = (expr), capture_end(), _capture_rc)
static int _capture_rc;

static int has(const char *needle)
{
    if (strstr(last_err, needle)) return 1;
    fprintf(stderr, "  message lacks '%s': %s", needle, last_err);
    return 0;
}

/* Resolve a file given as text; messages go to last_err. */
static int resolve_text(herd_config *c, const char *yaml, int n_sets, char *const *sets)
{
    const char *p = write_file("cfg.yaml", yaml);
    return CAPTURE(herd_config_resolve(c, p, n_sets, sets));
}

/* Field-by-field equality, written out here (not from the table) so that a
 * key missing from the table shows up as a failed round trip. */
static int config_equal(const herd_config *a, const herd_config *b)
{
    int eq = !strcmp(a->model.preset, b->model.preset) && a->model.n_layers == b->model.n_layers && a->model.d_model == b->model.d_model &&
             a->model.n_heads == b->model.n_heads && a->model.n_kv_heads == b->model.n_kv_heads && a->model.ffn_dim == b->model.ffn_dim &&
             a->model.vocab_size == b->model.vocab_size && a->model.max_seq_len == b->model.max_seq_len &&
             a->model.rope_theta == b->model.rope_theta && a->model.norm_eps == b->model.norm_eps && a->model.init_std == b->model.init_std &&
             a->optim.lr == b->optim.lr && a->optim.min_lr == b->optim.min_lr && a->optim.beta1 == b->optim.beta1 && a->optim.beta2 == b->optim.beta2 &&
             a->optim.eps == b->optim.eps && a->optim.weight_decay == b->optim.weight_decay && a->optim.grad_clip == b->optim.grad_clip &&
             a->schedule.warmup_steps == b->schedule.warmup_steps && a->schedule.decay_steps == b->schedule.decay_steps &&
             a->schedule.anneal_tokens == b->schedule.anneal_tokens && a->batch.n_ramp == b->batch.n_ramp &&
             a->batch.micro_batch == b->batch.micro_batch && a->train.seed == b->train.seed && a->train.max_steps == b->train.max_steps &&
             a->train.max_tokens == b->train.max_tokens && a->train.log_every == b->train.log_every &&
             !strcmp(a->train.out_dir, b->train.out_dir) && a->train.backend == b->train.backend &&
             a->train.recompute == b->train.recompute && a->train.precision == b->train.precision && a->train.threads == b->train.threads &&
             !strcmp(a->data.path, b->data.path) && a->monitor.peak_tflops == b->monitor.peak_tflops;
    for (int i = 0; eq && i < a->batch.n_ramp; i++)
        eq = a->batch.ramp[i].after_tokens == b->batch.ramp[i].after_tokens &&
             a->batch.ramp[i].batch_tokens == b->batch.ramp[i].batch_tokens && a->batch.ramp[i].seq_len == b->batch.ramp[i].seq_len;
    return eq;
}

/* ---- defaults and presets ----------------------------------------------- */

TEST(defaults_are_the_tiny_preset_and_valid)
{
    herd_config c;
    herd_config_defaults(&c);
    CHECK(!strcmp(c.model.preset, "tiny"));
    CHECK(c.model.n_layers == 2 && c.model.d_model == 64 && c.model.n_heads == 4 && c.model.n_kv_heads == 2);
    CHECK(c.model.ffn_dim == 192 && c.model.vocab_size == 512 && c.model.max_seq_len == 128);
    CHECK(c.model.rope_theta == 500000 && c.model.norm_eps == 1e-5 && c.model.init_std == 0.02);
    CHECK(c.optim.lr == 1e-3 && c.optim.min_lr == 1e-4 && c.optim.beta1 == 0.9 && c.optim.beta2 == 0.95 && c.optim.eps == 1e-8);
    CHECK(c.optim.weight_decay == 0.1 && c.optim.grad_clip == 1.0);
    CHECK(c.schedule.warmup_steps == 20 && c.schedule.decay_steps == 1000 && c.schedule.anneal_tokens == 0);
    CHECK(c.batch.n_ramp == 1 && c.batch.ramp[0].after_tokens == 0 && c.batch.ramp[0].batch_tokens == 4096 &&
          c.batch.ramp[0].seq_len == 128);
    CHECK(c.batch.micro_batch == 8 && c.train.seed == 1234 && c.train.max_steps == 100 && c.train.max_tokens == 0);
    CHECK(c.train.log_every == 10 && !strcmp(c.train.out_dir, "runs/default") && c.train.backend == HERD_BACKEND_CPU);
    CHECK(c.train.threads == 0 && c.data.path[0] == '\0' && c.monitor.peak_tflops == 0);
    CHECK(herd_config_validate(&c, "defaults") == 0);
}

typedef struct {
    const char *name;
    int layers, d, ffn, heads, kv, vocab, seq;
    double lr;
} shape;

TEST(presets_have_the_design_numbers_and_are_valid)
{
    /* DESIGN.md's table for 8B/70B/405B; the small ones from the brief */
    static const shape want[] = {
        {"tiny", 2, 64, 192, 4, 2, 512, 128, 1e-3},
        {"small", 4, 128, 384, 8, 2, 512, 256, 1e-3},
        {"100m", 8, 768, 2048, 12, 4, 32768, 512, 6e-4},
        {"8b", 32, 4096, 14336, 32, 8, 128256, 8192, 3e-4},
        {"70b", 80, 8192, 28672, 64, 8, 128256, 8192, 1.5e-4},
        {"405b", 126, 16384, 53248, 128, 8, 128256, 8192, 8e-5},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const shape *w = &want[i];
        herd_config c;
        herd_config_defaults(&c);
        CHECK(herd_config_preset_exists(w->name));
        CHECK(herd_config_apply_preset(&c, w->name) == 0);
        CHECK(!strcmp(c.model.preset, w->name));
        CHECK(c.model.n_layers == w->layers && c.model.d_model == w->d && c.model.ffn_dim == w->ffn);
        CHECK(c.model.n_heads == w->heads && c.model.n_kv_heads == w->kv && c.model.vocab_size == w->vocab);
        CHECK(c.model.max_seq_len == w->seq && c.optim.lr == w->lr && c.model.rope_theta == 500000);
        CHECK(herd_config_validate(&c, w->name) == 0);
    }
}

TEST(big_presets_follow_the_405b_recipe)
{
    const char *names[] = {"8b", "70b", "405b"};
    for (int i = 0; i < 3; i++) {
        herd_config c;
        herd_config_defaults(&c);
        CHECK(herd_config_apply_preset(&c, names[i]) == 0);
        CHECK_NEAR(c.optim.min_lr, c.optim.lr / 100, 1e-20);
        CHECK(c.schedule.warmup_steps == 8000 && c.schedule.decay_steps == 1200000);
        CHECK(c.batch.n_ramp == 3);
        CHECK(c.batch.ramp[0].after_tokens == 0 && c.batch.ramp[0].batch_tokens == 4194304 && c.batch.ramp[0].seq_len == 4096);
        CHECK(c.batch.ramp[1].after_tokens == 252000000 && c.batch.ramp[1].batch_tokens == 8388608 &&
              c.batch.ramp[1].seq_len == 8192);
        CHECK(c.batch.ramp[2].after_tokens == 2870000000000LL && c.batch.ramp[2].batch_tokens == 16777216 &&
              c.batch.ramp[2].seq_len == 8192);
    }
    herd_config c;
    herd_config_defaults(&c);
    herd_config_apply_preset(&c, "405b");
    CHECK(c.optim.lr == 8e-5 && c.optim.min_lr == 8e-7);
}

TEST(unknown_preset_is_refused_with_the_valid_names)
{
    herd_config c;
    herd_config_defaults(&c);
    CHECK(CAPTURE(herd_config_apply_preset(&c, "7b")) == -1);
    CHECK(has("7b") && has("405b"));
    CHECK(!herd_config_preset_exists("7b"));
    CHECK(!strcmp(c.model.preset, "tiny")); /* untouched */
}

/* ---- loading and overrides ---------------------------------------------- */

TEST(file_overrides_its_preset_wherever_the_preset_key_is)
{
    herd_config c;
    /* model.preset comes last in the file, yet applies first */
    const char *yaml = "optim:\n  lr: 2.5e-4\nmodel:\n  n_layers: 3\n  preset: 100m\n";
    CHECK(resolve_text(&c, yaml, 0, NULL) == 0);
    CHECK(!strcmp(c.model.preset, "100m") && c.model.n_layers == 3 && c.model.d_model == 768 && c.optim.lr == 2.5e-4);
    CHECK(c.optim.min_lr == 6e-5);
}

TEST(resolution_order_defaults_preset_file_set)
{
    herd_config c;
    const char *yaml = "model:\n  preset: 100m\n  n_layers: 3\noptim:\n  lr: 2.5e-4\ntrain:\n  seed: 9\n";
    /* --set model.preset wins over the file's preset and still applies first:
     * the file's n_layers and the later --set of lr override it */
    char *sets[] = {"optim.lr=1e-4", "model.preset=small", "train.seed=11"};
    CHECK(resolve_text(&c, yaml, 3, sets) == 0);
    CHECK(!strcmp(c.model.preset, "small"));
    CHECK(c.model.d_model == 128 && c.model.n_layers == 3); /* preset small, file's n_layers */
    CHECK(c.optim.lr == 1e-4 && c.train.seed == 11);        /* --set beats the file */
    CHECK(c.optim.min_lr == 1e-4);                    /* small's */

    /* no file at all */
    char *sets2[] = {"train.max_steps=7", "data.path="};
    CHECK(CAPTURE(herd_config_resolve(&c, NULL, 2, sets2)) == 0);
    CHECK(c.train.max_steps == 7 && c.data.path[0] == '\0' && !strcmp(c.model.preset, "tiny"));

    /* the later of two --set wins */
    char *sets3[] = {"optim.lr=1e-4", "optim.lr=2e-4"};
    CHECK(CAPTURE(herd_config_resolve(&c, NULL, 2, sets3)) == 0);
    CHECK(c.optim.lr == 2e-4);
}

TEST(set_parses_like_the_file)
{
    herd_config c;
    herd_config_defaults(&c);
    CHECK(herd_config_set(&c, "optim.lr=3e-4", "--set") == 0 && c.optim.lr == 3e-4);
    CHECK(herd_config_set(&c, "train.max_tokens=2.87T", "--set") == 0 && c.train.max_tokens == 2870000000000LL);
    CHECK(herd_config_set(&c, "train.out_dir=runs/a b: c", "--set") == 0 && !strcmp(c.train.out_dir, "runs/a b: c"));
    CHECK(herd_config_set(&c, "model.preset=8b", "--set") == 0 && c.model.n_layers == 32 && c.batch.n_ramp == 3);
    CHECK(herd_config_set(&c, "batch.ramp=[{after_tokens: 0, batch_tokens: 1M, seq_len: 1000}]", "--set") == 0);
    CHECK(c.batch.n_ramp == 1 && c.batch.ramp[0].batch_tokens == 1000000 && c.batch.ramp[0].seq_len == 1000);

    CHECK(CAPTURE(herd_config_set(&c, "optim.lr=abc", "--set")) == -1);
    CHECK(has("herd: --set optim.lr: expected a number, got 'abc'"));
    CHECK(CAPTURE(herd_config_set(&c, "optim.lrr=1", "--set")) == -1);
    CHECK(has("herd: --set optim.lrr: unknown key") && has("min_lr"));
    CHECK(CAPTURE(herd_config_set(&c, "model.n_layers=0", "--set")) == -1);
    CHECK(has("model.n_layers") && has("out of range"));
    CHECK(CAPTURE(herd_config_set(&c, "optim.lr", "--set")) == -1);
    CHECK(has("section.key=value"));
    CHECK(CAPTURE(herd_config_set(&c, "model.preset=huge", "--set")) == -1);
    CHECK(has("model.preset") && has("huge"));
    CHECK(CAPTURE(herd_config_set(&c, "batch.ramp=4096", "--set")) == -1);
    CHECK(has("batch.ramp"));
}

TEST(empty_file_and_empty_sections_change_nothing)
{
    herd_config c, d;
    herd_config_defaults(&d);
    CHECK(resolve_text(&c, "", 0, NULL) == 0 && config_equal(&c, &d));
    CHECK(resolve_text(&c, "# only a comment\n", 0, NULL) == 0 && config_equal(&c, &d));
    CHECK(resolve_text(&c, "model:\n  # n_layers: 3\noptim:\n", 0, NULL) == 0 && config_equal(&c, &d));
}

/* ---- bad input: every one is -1 with file, line and key ----------------- */

TEST(missing_file)
{
    herd_config c;
    herd_config_defaults(&c);
    CHECK(CAPTURE(herd_config_load_file(&c, "/nonexistent/cfg.yaml")) == -1);
    CHECK(has("herd: /nonexistent/cfg.yaml: cannot open config: No such file"));
}

TEST(unknown_key_and_section)
{
    herd_config c;
    CHECK(resolve_text(&c, "model:\n  n_layers: 2\n  n_layer: 3\n", 0, NULL) == -1);
    CHECK(has("cfg.yaml:3: key 'model.n_layer': unknown key") && has("n_layers"));
    CHECK(resolve_text(&c, "optim:\n  lr: 1e-3\nmodle:\n  n_layers: 3\n", 0, NULL) == -1);
    CHECK(has("cfg.yaml:4: key 'modle.n_layers': unknown section 'modle'") && has("model, optim"));
    CHECK(resolve_text(&c, "modle:\n", 0, NULL) == -1);
    CHECK(has("cfg.yaml:1: key 'modle': unknown section"));
    CHECK(resolve_text(&c, "- a\n- b\n", 0, NULL) == -1);
    CHECK(has("cfg.yaml:1:") && has("mapping of sections"));
}

TEST(wrong_types)
{
    herd_config c;
    CHECK(resolve_text(&c, "model:\n  n_layers: abc\n", 0, NULL) == -1);
    CHECK(has("cfg.yaml:2: key 'model.n_layers': expected an integer") && has("abc"));
    CHECK(resolve_text(&c, "model:\n  n_layers: 2.5\n", 0, NULL) == -1);
    CHECK(has("model.n_layers"));
    CHECK(resolve_text(&c, "optim:\n  lr: {a: 1}\n", 0, NULL) == -1);
    CHECK(has("cfg.yaml:2: key 'optim.lr': expected a number, got a mapping"));
    CHECK(resolve_text(&c, "optim:\n  lr: [1, 2]\n", 0, NULL) == -1);
    CHECK(has("key 'optim.lr': expected a number, got a list"));
    CHECK(resolve_text(&c, "optim:\n  lr:\n", 0, NULL) == -1);
    CHECK(has("optim.lr"));
    CHECK(resolve_text(&c, "optim: 3\n", 0, NULL) == -1);
    CHECK(has("cfg.yaml:1: key 'optim': expected a mapping"));
    CHECK(resolve_text(&c, "batch:\n  ramp: 4096\n", 0, NULL) == -1);
    CHECK(has("cfg.yaml:2: key 'batch.ramp': expected a list"));
    CHECK(resolve_text(&c, "train:\n  seed: -1\n", 0, NULL) == -1);
    CHECK(has("train.seed"));
    CHECK(resolve_text(&c, "train:\n  seed: 18446744073709551616\n", 0, NULL) == -1); /* 2^64 */
    CHECK(has("train.seed"));
    CHECK(resolve_text(&c, "train:\n  max_tokens: 9223372036854775808\n", 0, NULL) == -1); /* 2^63 */
    CHECK(has("train.max_tokens"));
}

TEST(out_of_bounds)
{
    herd_config c;
    CHECK(resolve_text(&c, "model:\n  n_heads: 0\n", 0, NULL) == -1);
    CHECK(has("cfg.yaml:2: key 'model.n_heads': 0 is out of range [1, 4096]"));
    CHECK(resolve_text(&c, "train:\n  xent_chunk: -1\n", 0, NULL) == -1);
    CHECK(has("cfg.yaml:2: key 'train.xent_chunk': -1 is out of range"));
    CHECK(resolve_text(&c, "optim:\n  beta2: 1.0\n", 0, NULL) == -1);
    CHECK(has("key 'optim.beta2'") && has("[0, 1)"));
    CHECK(resolve_text(&c, "optim:\n  eps: 0\n", 0, NULL) == -1);
    CHECK(has("key 'optim.eps'"));
    CHECK(resolve_text(&c, "model:\n  d_model: 99999999999999999999999\n", 0, NULL) == -1);
    CHECK(has("key 'model.d_model'"));
    CHECK(resolve_text(&c, "optim:\n  lr: 1e999\n", 0, NULL) == -1);
    CHECK(has("key 'optim.lr'"));
    char long_path[HERD_PATH_MAX + 16];
    memset(long_path, 'x', sizeof long_path - 1);
    long_path[sizeof long_path - 1] = '\0';
    char yaml[HERD_PATH_MAX + 64];
    snprintf(yaml, sizeof yaml, "data:\n  path: %s\n", long_path);
    CHECK(resolve_text(&c, yaml, 0, NULL) == -1);
    CHECK(has("key 'data.path'") && has("longer than"));
}

TEST(duplicates_and_syntax_errors)
{
    herd_config c;
    CHECK(resolve_text(&c, "optim:\n  lr: 1e-3\n  lr: 2e-3\n", 0, NULL) == -1);
    CHECK(has("cfg.yaml:3: key 'optim.lr': given twice (first on line 2)"));
    CHECK(resolve_text(&c, "optim:\n  lr: 1e-3\noptim:\n  eps: 1e-8\n", 0, NULL) == -1);
    CHECK(has("cfg.yaml:3: key 'optim'"));
    CHECK(resolve_text(&c, "model:\n  n_layers: 2\n   d_model: 64\n", 0, NULL) == -1);
    CHECK(has("cfg.yaml:3: YAML syntax error"));
    CHECK(resolve_text(&c, "model:\n  n_layers: [2\n", 0, NULL) == -1);
    CHECK(has("cfg.yaml:") && has("YAML syntax error"));
    CHECK(resolve_text(&c, "model:\n  n_layers: 2\n---\nmodel:\n  n_layers: 3\n", 0, NULL) == -1);
    CHECK(has("cfg.yaml:3:") && has("second YAML document"));
}

TEST(impossible_shapes)
{
    herd_config c;
    CHECK(resolve_text(&c, "model:\n  n_heads: 6\n  n_kv_heads: 4\n  d_model: 96\n", 0, NULL) == -1);
    CHECK(has("herd: ") && has("cfg.yaml:3: key 'model.n_kv_heads': n_heads (6) is not divisible by n_kv_heads (4)"));
    /* only n_heads given: the message points at the line the user wrote */
    CHECK(resolve_text(&c, "\nmodel:\n  n_heads: 3\n", 0, NULL) == -1);
    CHECK(has("cfg.yaml:3: key 'model.n_heads'") && has("not divisible"));
    CHECK(resolve_text(&c, "model:\n  d_model: 100\n  n_heads: 8\n", 0, NULL) == -1);
    CHECK(has("key 'model.n_heads': d_model (100) is not divisible by n_heads (8)"));
    CHECK(resolve_text(&c, "model:\n  d_model: 72\n  n_heads: 8\n  n_kv_heads: 2\n", 0, NULL) == -1);
    CHECK(has("key 'model.n_heads'") && has("even"));
    CHECK(resolve_text(&c, "batch:\n  ramp:\n    - {after_tokens: 0, batch_tokens: 4096, seq_len: 256}\n",
                       0, NULL) == -1);
    CHECK(has("cfg.yaml:2: key 'batch.ramp'") && has("max_seq_len"));
    CHECK(resolve_text(&c, "batch:\n  ramp:\n    - {after_tokens: 0, batch_tokens: 4000, seq_len: 128}\n",
                       0, NULL) == -1);
    CHECK(has("key 'batch.ramp'") && has("multiple of seq_len"));
    CHECK(resolve_text(&c, "batch:\n  micro_batch: 3\n", 0, NULL) == -1);
    CHECK(has("cfg.yaml:2: key 'batch.micro_batch'") && has("32 sequences"));
    CHECK(resolve_text(&c, "batch:\n  ramp:\n    - {after_tokens: 5, batch_tokens: 4096, seq_len: 128}\n",
                       0, NULL) == -1);
    CHECK(has("key 'batch.ramp'") && has("starts at 0"));
    CHECK(resolve_text(&c,
                       "batch:\n  ramp:\n    - {after_tokens: 0, batch_tokens: 4096, seq_len: 128}\n"
                       "    - {after_tokens: 0, batch_tokens: 8192, seq_len: 128}\n",
                       0, NULL) == -1);
    CHECK(has("key 'batch.ramp'") && has("sort"));
    CHECK(resolve_text(&c, "optim:\n  min_lr: 1e-2\n", 0, NULL) == -1);
    CHECK(has("cfg.yaml:2: key 'optim.min_lr'"));
    CHECK(resolve_text(&c, "train:\n  backend: tpu\n", 0, NULL) == -1);
    CHECK(has("cfg.yaml:2: key 'train.backend'") && has("'tpu' is not one of cpu, cuda"));
    /* an enum key is an int after loading; one set in code is checked too */
    CHECK(resolve_text(&c, "train:\n  recompute: selective\n  precision: bf16\n", 0, NULL) == 0);
    CHECK(c.train.recompute == HERD_RECOMPUTE_SELECTIVE && c.train.precision == HERD_PRECISION_BF16);
    c.train.recompute = 7;
    CHECK(CAPTURE(herd_config_validate(&c, "code")) == -1);
    CHECK(has("key 'train.recompute'") && has("7 is not one of its choices"));
    CHECK(resolve_text(&c, "schedule:\n  anneal_tokens: 40M\ntrain:\n  max_tokens: 40M\n", 0, NULL) == -1);
    CHECK(has("key 'schedule.anneal_tokens'"));
    CHECK(resolve_text(&c, "schedule:\n  anneal_tokens: 40M\ntrain:\n  max_tokens: 1G\n", 0, NULL) == 0);

    /* a value from --set is blamed on --set */
    char *sets[] = {"model.n_kv_heads=3"};
    CHECK(resolve_text(&c, "model:\n  n_layers: 2\n", 1, sets) == -1);
    CHECK(has("herd: --set model.n_kv_heads: n_heads (4) is not divisible by n_kv_heads (3)"));

    /* a struct built in code gets the same checks */
    herd_config_defaults(&c);
    c.model.n_kv_heads = 3;
    CHECK(CAPTURE(herd_config_validate(&c, "code")) == -1);
    CHECK(has("herd: code: key 'model.n_kv_heads'"));
    herd_config_defaults(&c);
    c.model.n_layers = 0;
    CHECK(CAPTURE(herd_config_validate(&c, "code")) == -1);
    CHECK(has("model.n_layers"));
}

/* ---- the ramp ----------------------------------------------------------- */

TEST(ramp_block_and_flow_styles_with_suffixes)
{
    herd_config c;
    const char *flow = "model:\n  preset: 405b\n"
                       "batch:\n  ramp:\n"
                       "    - {after_tokens: 0, batch_tokens: 4194304, seq_len: 4096}\n"
                       "    - {after_tokens: 252M, batch_tokens: 8388608, seq_len: 8192}\n"
                       "    - {after_tokens: 2.87T, batch_tokens: 16M, seq_len: 8000}\n";
    CHECK(resolve_text(&c, flow, 0, NULL) == 0);
    CHECK(c.batch.n_ramp == 3 && c.batch.ramp[0].batch_tokens == 4194304 && c.batch.ramp[1].after_tokens == 252000000);
    CHECK(c.batch.ramp[2].after_tokens == 2870000000000LL && c.batch.ramp[2].batch_tokens == 16000000);

    const char *block = "batch:\n  micro_batch: 4\n  ramp:\n"
                        "    - after_tokens: 0\n      batch_tokens: 2.56K\n      seq_len: 64\n"
                        "    - after_tokens: 1.5K\n      batch_tokens: 4096\n      seq_len: 128\n";
    CHECK(resolve_text(&c, block, 0, NULL) == 0);
    CHECK(c.batch.n_ramp == 2 && c.batch.ramp[0].batch_tokens == 2560 && c.batch.ramp[0].seq_len == 64);
    CHECK(c.batch.ramp[1].after_tokens == 1500 && c.batch.ramp[1].batch_tokens == 4096);

    /* plain integers and every suffix */
    char *sets[] = {"train.max_tokens=4096", "schedule.decay_steps=2K", "train.seed=3G",
                    "schedule.anneal_tokens=0.5K", "train.max_steps=1.000001M"};
    CHECK(CAPTURE(herd_config_resolve(&c, NULL, 5, sets)) == 0);
    CHECK(c.train.max_tokens == 4096 && c.schedule.decay_steps == 2000 && c.train.seed == 3000000000ULL);
    CHECK(c.schedule.anneal_tokens == 500 && c.train.max_steps == 1000001);
}

TEST(ramp_errors)
{
    herd_config c;
    CHECK(resolve_text(&c, "batch:\n  ramp:\n    - {after_tokens: 0, batch_tokens: 4096}\n", 0, NULL) == -1);
    CHECK(has("cfg.yaml:3: key 'batch.ramp': stage 1: 'seq_len' is missing"));
    CHECK(resolve_text(&c, "batch:\n  ramp:\n    - {after_tokens: 0, batch_tokens: 4096, seq_len: 128, x: 1}\n",
                       0, NULL) == -1);
    CHECK(has("key 'batch.ramp': stage 1: unknown field 'x'"));
    CHECK(resolve_text(&c, "batch:\n  ramp:\n    - {after_tokens: 0, batch_tokens: 1.5, seq_len: 128}\n", 0,
                       NULL) == -1);
    CHECK(has("batch_tokens") && has("1.5"));
    CHECK(resolve_text(&c, "batch:\n  ramp:\n    - {after_tokens: -1, batch_tokens: 4096, seq_len: 128}\n", 0,
                       NULL) == -1);
    CHECK(has("after_tokens") && has("out of range"));
    CHECK(resolve_text(&c, "batch:\n  ramp: []\n", 0, NULL) == -1);
    CHECK(has("key 'batch.ramp'") && has("0 stages"));
    CHECK(resolve_text(&c, "batch:\n  ramp:\n    - 4096\n", 0, NULL) == -1);
    CHECK(has("stage 1: expected a mapping"));
    /* suffix forms that are not whole numbers, or not suffixes */
    const char *bad[] = {"1.0005K", "4m", "4MB", "1e6", "", "0x10", "4 M", "2.T"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char set[64];
        snprintf(set, sizeof set, "train.max_tokens=%s", bad[i]);
        herd_config_defaults(&c);
        CHECK(CAPTURE(herd_config_set(&c, set, "--set")) == -1);
    }
}

/* ---- write and load back ------------------------------------------------ */

static int round_trip(const herd_config *c, herd_config *back)
{
    const char *p = write_file("written.yaml", "");
    FILE *f = fopen(p, "w");
    if (!f || herd_config_write(c, f)) return -1;
    fclose(f);
    herd_config_defaults(back);
    return herd_config_load_file(back, p);
}

TEST(write_then_load_is_identical)
{
    herd_config c, d;
    herd_config_defaults(&c);
    CHECK(round_trip(&c, &d) == 0 && config_equal(&c, &d));

    /* awkward values: inexact doubles, the largest seed, quotes in paths */
    herd_config_defaults(&c);
    CHECK(herd_config_apply_preset(&c, "405b") == 0);
    c.model.n_layers = 7;
    c.optim.lr = 1.0 / 3.0;
    c.optim.min_lr = 0.1 * 0.2;
    c.model.norm_eps = 1e-300;
    c.optim.beta2 = 0.999;
    c.optim.grad_clip = 0;
    c.train.seed = UINT64_MAX;
    c.train.max_tokens = 3000000000000LL;
    c.schedule.anneal_tokens = 40000000;
    c.monitor.peak_tflops = 989.4;
    snprintf(c.train.out_dir, sizeof c.train.out_dir, "runs/a \"b\" \\c: #d\te");
    snprintf(c.data.path, sizeof c.data.path, "données/train.bin");
    c.train.backend = HERD_BACKEND_CUDA;
    c.train.recompute = HERD_RECOMPUTE_SELECTIVE;
    c.train.precision = HERD_PRECISION_BF16;
    CHECK(herd_config_validate(&c, "code") == 0);
    CHECK(round_trip(&c, &d) == 0);
    CHECK(config_equal(&c, &d));

    /* no preset: the written "" must not apply one */
    c.model.preset[0] = '\0';
    c.model.d_model = 512;
    CHECK(round_trip(&c, &d) == 0 && config_equal(&c, &d));
    CHECK(d.model.preset[0] == '\0' && d.model.d_model == 512);

    /* and the output resolves again to the same config */
    const char *p = write_file("written.yaml", "");
    FILE *f = fopen(p, "w");
    herd_config_write(&c, f);
    fclose(f);
    CHECK(CAPTURE(herd_config_resolve(&d, p, 0, NULL)) == 0 && config_equal(&c, &d));
}

TEST(keys_listing_names_every_key)
{
    char path[512];
    snprintf(path, sizeof path, "%s/keys.txt", tmp_dir);
    FILE *f = fopen(path, "w+");
    herd_config_print_keys(f);
    rewind(f);
    static char text[16384];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    const char *names[] = {"model.preset", "model.n_layers", "model.d_model", "model.n_heads",
                           "model.n_kv_heads", "model.ffn_dim", "model.vocab_size", "model.max_seq_len",
                           "model.rope_theta", "model.norm_eps", "model.init_std", "optim.lr",
                           "optim.min_lr", "optim.beta1", "optim.beta2", "optim.eps", "optim.weight_decay",
                           "optim.grad_clip", "schedule.warmup_steps", "schedule.decay_steps",
                           "schedule.anneal_tokens", "batch.micro_batch", "batch.ramp", "train.seed",
                           "train.max_steps", "train.max_tokens", "train.log_every", "train.out_dir",
                           "train.backend", "train.threads", "data.path", "monitor.peak_tflops"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!strstr(text, names[i])) fprintf(stderr, "  --keys lacks %s\n", names[i]);
        CHECK(strstr(text, names[i]) != NULL);
    }
}

int main(void)
{
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(defaults_are_the_tiny_preset_and_valid);
    RUN(presets_have_the_design_numbers_and_are_valid);
    RUN(big_presets_follow_the_405b_recipe);
    RUN(unknown_preset_is_refused_with_the_valid_names);
    RUN(file_overrides_its_preset_wherever_the_preset_key_is);
    RUN(resolution_order_defaults_preset_file_set);
    RUN(set_parses_like_the_file);
    RUN(empty_file_and_empty_sections_change_nothing);
    RUN(missing_file);
    RUN(unknown_key_and_section);
    RUN(wrong_types);
    RUN(out_of_bounds);
    RUN(duplicates_and_syntax_errors);
    RUN(impossible_shapes);
    RUN(ramp_block_and_flow_styles_with_suffixes);
    RUN(ramp_errors);
    RUN(write_then_load_is_identical);
    RUN(keys_listing_names_every_key);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_dir);
    return test_summary();
}
