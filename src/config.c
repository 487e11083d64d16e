/* config.c — the run configuration: one table of keys drives parsing,
 * validation, printing and saving (redis style). See config.h, docs/config.md. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include "src/config.h"

typedef enum { K_INT, K_I64, K_U64, K_DBL, K_STR, K_RAMP } key_type;

typedef struct {
    const char *key;     /* "section.key" */
    key_type    type;
    size_t      offset;  /* into herd_config */
    size_t      size;    /* strings: buffer size */
    double      min, max;
    const char *help;
} key_spec;

#define F(field) offsetof(herd_config, field), sizeof(((herd_config *)0)->field)
static const key_spec keys[] = {
    {"model.preset", K_STR, F(preset), 0, 0, "preset applied before the file: tiny small 100m 8b 70b 405b"},
    {"model.n_layers", K_INT, F(n_layers), 1, 1024, "transformer layers"},
    {"model.d_model", K_INT, F(d_model), 2, 65536, "model width"},
    {"model.n_heads", K_INT, F(n_heads), 1, 1024, "query heads"},
    {"model.n_kv_heads", K_INT, F(n_kv_heads), 1, 1024, "key/value heads (GQA); divides n_heads"},
    {"model.ffn_dim", K_INT, F(ffn_dim), 1, 1 << 20, "SwiGLU hidden size"},
    {"model.vocab_size", K_INT, F(vocab_size), 2, 1 << 24, "vocabulary size (128256 for Llama 3)"},
    {"model.max_seq_len", K_INT, F(max_seq_len), 2, 1 << 20, "longest sequence (RoPE table size)"},
    {"model.rope_theta", K_DBL, F(rope_theta), 1, 1e12, "RoPE base frequency"},
    {"model.norm_eps", K_DBL, F(norm_eps), 1e-12, 1, "RMSNorm epsilon"},
    {"model.init_std", K_DBL, F(init_std), 1e-6, 10, "std of the normal init of weight matrices"},
    {"optim.lr", K_DBL, F(lr), 0, 10, "peak learning rate"},
    {"optim.min_lr", K_DBL, F(min_lr), 0, 10, "learning rate at the end of the cosine"},
    {"optim.beta1", K_DBL, F(beta1), 0, 0.999999, "AdamW beta1"},
    {"optim.beta2", K_DBL, F(beta2), 0, 0.999999999, "AdamW beta2"},
    {"optim.eps", K_DBL, F(eps), 1e-30, 1, "AdamW epsilon"},
    {"optim.weight_decay", K_DBL, F(weight_decay), 0, 10, "decoupled weight decay of weight matrices"},
    {"optim.grad_clip", K_DBL, F(grad_clip), 0, 1e9, "global gradient-norm clip (0: off)"},
    {"schedule.warmup_steps", K_I64, F(warmup_steps), 0, 1e15, "linear warm-up steps"},
    {"schedule.decay_steps", K_I64, F(decay_steps), 0, 1e15, "step where the cosine reaches min_lr"},
    {"schedule.anneal_tokens", K_I64, F(anneal_tokens), 0, 1e18, "final linear decay to 0 over the last N tokens of train.max_tokens"},
    {"batch.micro_batch", K_INT, F(micro_batch), 1, 1 << 20, "sequences per micro-batch"},
    {"batch.ramp", K_RAMP, F(ramp), 0, 0, "list of {after_tokens, batch_tokens, seq_len}"},
    {"train.seed", K_U64, F(seed), 0, 1.8e19, "seed of init and sampler"},
    {"train.max_steps", K_I64, F(max_steps), 0, 1e15, "stop after N steps (0: no limit)"},
    {"train.max_tokens", K_I64, F(max_tokens), 0, 1e18, "stop after N tokens (0: no limit)"},
    {"train.log_every", K_INT, F(log_every), 0, 1 << 30, "human log line every N steps"},
    {"train.out_dir", K_STR, F(out_dir), 0, 0, "metrics.jsonl and config.yaml go here"},
    {"train.backend", K_STR, F(backend), 0, 0, "cpu or cuda"},
    {"train.threads", K_INT, F(threads), 0, 4096, "threads (0: all cores)"},
    {"data.path", K_STR, F(data_path), 0, 0, "training token shard"},
    {"monitor.peak_tflops", K_DBL, F(peak_tflops), 0, 1e6, "peak per device for MFU (0: auto)"},
};
#undef F
#define N_KEYS (sizeof keys / sizeof keys[0])

/* Line of each key in the last file loaded, for messages of validate(). */
static int key_line[N_KEYS];

static const key_spec *find_key(const char *name)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (!strcmp(keys[i].key, name)) return &keys[i];
    return NULL;
}

static void *field(herd_config *c, const key_spec *k) { return (char *)c + k->offset; }

/* ---- presets ------------------------------------------------------------- */

typedef struct {
    const char *name;
    int n_layers, d_model, n_heads, n_kv_heads, ffn_dim, vocab_size, max_seq_len;
    double lr, min_lr;
    int64_t warmup, decay;
    int paper_ramp;   /* 1: the 405B batch ramp; 0: one stage of 32 sequences */
} preset_spec;

static const preset_spec presets[] = {
    {"tiny", 2, 64, 4, 2, 192, 512, 128, 1e-3, 1e-4, 20, 1000, 0},
    {"small", 4, 128, 8, 2, 384, 512, 256, 1e-3, 1e-4, 50, 2000, 0},
    {"100m", 8, 768, 12, 4, 2048, 32768, 512, 6e-4, 6e-5, 200, 10000, 0},
    {"8b", 32, 4096, 32, 8, 14336, 128256, 8192, 3e-4, 3e-6, 8000, 1200000, 1},
    {"70b", 80, 8192, 64, 8, 28672, 128256, 8192, 1.5e-4, 1.5e-6, 8000, 1200000, 1},
    {"405b", 126, 16384, 128, 8, 53248, 128256, 8192, 8e-5, 8e-7, 8000, 1200000, 1},
};

int herd_config_apply_preset(herd_config *c, const char *name)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        const preset_spec *p = &presets[i];
        if (strcmp(p->name, name)) continue;
        snprintf(c->preset, sizeof c->preset, "%s", p->name);
        c->n_layers = p->n_layers;
        c->d_model = p->d_model;
        c->n_heads = p->n_heads;
        c->n_kv_heads = p->n_kv_heads;
        c->ffn_dim = p->ffn_dim;
        c->vocab_size = p->vocab_size;
        c->max_seq_len = p->max_seq_len;
        c->rope_theta = 500000.0;
        c->lr = p->lr;
        c->min_lr = p->min_lr;
        c->warmup_steps = p->warmup;
        c->decay_steps = p->decay;
        if (p->paper_ramp) {
            /* 4M tokens at 4,096 -> 8M at 8,192 after 252M -> 16M after 2.87T */
            c->n_ramp = 3;
            c->ramp[0] = (herd_ramp_stage){0, 4194304, 4096};
            c->ramp[1] = (herd_ramp_stage){252000000LL, 8388608, 8192};
            c->ramp[2] = (herd_ramp_stage){2870000000000LL, 16777216, 8192};
            c->micro_batch = 1;
        } else {
            c->n_ramp = 1;
            c->ramp[0] = (herd_ramp_stage){0, (int64_t)32 * p->max_seq_len, p->max_seq_len};
            c->micro_batch = 8;
        }
        return 0;
    }
    fprintf(stderr, "herd: unknown preset '%s' (valid: tiny small 100m 8b 70b 405b)\n", name);
    return -1;
}

void herd_config_defaults(herd_config *c)
{
    memset(c, 0, sizeof *c);
    memset(key_line, 0, sizeof key_line);
    herd_config_apply_preset(c, "tiny");
    c->norm_eps = 1e-5;
    c->init_std = 0.02;
    c->beta1 = 0.9;
    c->beta2 = 0.95;
    c->eps = 1e-8;
    c->weight_decay = 0.1;
    c->grad_clip = 1.0;
    c->ramp[0] = (herd_ramp_stage){0, 4096, 128};
    c->seed = 1234;
    c->max_steps = 100;
    c->log_every = 10;
    snprintf(c->out_dir, sizeof c->out_dir, "runs/default");
    snprintf(c->backend, sizeof c->backend, "cpu");
}

/* ---- scalar parsing ------------------------------------------------------ */

/* Integers take decimal suffixes: 4K, 252M, 2.87T (= 2,870,000,000,000). */
static int parse_integer(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno) return -1;
    double mult = 1;
    switch (*end) {
    case 'K': case 'k': mult = 1e3; end++; break;
    case 'M': mult = 1e6; end++; break;
    case 'G': case 'B': mult = 1e9; end++; break;
    case 'T': mult = 1e12; end++; break;
    }
    if (*end) return -1;
    v = v * mult;
    if (v != floor(v)) return -1;
    *out = v;
    return 0;
}

/* Set one scalar key from text. Returns 0, or -1 with *why set. */
static int set_scalar(herd_config *c, const key_spec *k, const char *text, const char **why)
{
    double v;
    char *end;
    switch (k->type) {
    case K_INT: case K_I64: case K_U64:
        if (parse_integer(text, &v)) { *why = "expected an integer (suffixes K M G T allowed)"; return -1; }
        break;
    case K_DBL:
        errno = 0;
        v = strtod(text, &end);
        if (end == text || *end || errno || !isfinite(v)) { *why = "expected a number"; return -1; }
        break;
    case K_STR:
        if (strlen(text) >= k->size) { *why = "string too long"; return -1; }
        if (!strcmp(k->key, "model.preset") && text[0]) {
            if (herd_config_apply_preset(c, text)) { *why = "unknown preset"; return -1; }
        }
        snprintf(field(c, k), k->size, "%s", text);
        return 0;
    default:
        *why = "expected a list of {after_tokens, batch_tokens, seq_len}";
        return -1;
    }
    if (v < k->min || v > k->max) {
        static char buf[128];
        snprintf(buf, sizeof buf, "value %s out of range [%g, %g]", text, k->min, k->max);
        *why = buf;
        return -1;
    }
    switch (k->type) {
    case K_INT: *(int *)field(c, k) = (int)v; break;
    case K_I64: *(int64_t *)field(c, k) = (int64_t)v; break;
    case K_U64: *(uint64_t *)field(c, k) = (uint64_t)v; break;
    default: *(double *)field(c, k) = v; break;
    }
    return 0;
}

/* ---- YAML ---------------------------------------------------------------- */

static int err_at(const char *file, int line, const char *key, const char *why)
{
    if (line > 0) fprintf(stderr, "herd: %s:%d: key '%s': %s\n", file, line, key, why);
    else fprintf(stderr, "herd: %s: key '%s': %s\n", file, key, why);
    return -1;
}

static int parse_ramp(herd_config *c, yaml_document_t *doc, yaml_node_t *seq, const char *file)
{
    int line = (int)seq->start_mark.line + 1;
    if (seq->type != YAML_SEQUENCE_NODE)
        return err_at(file, line, "batch.ramp", "expected a list of {after_tokens, batch_tokens, seq_len}");
    int n = 0;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
        yaml_node_t *m = yaml_document_get_node(doc, *it);
        line = (int)m->start_mark.line + 1;
        if (n == HERD_MAX_RAMP) return err_at(file, line, "batch.ramp", "too many stages (at most 8)");
        if (m->type != YAML_MAPPING_NODE)
            return err_at(file, line, "batch.ramp", "each stage is a mapping {after_tokens, batch_tokens, seq_len}");
        herd_ramp_stage st = {-1, -1, -1};
        for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
            yaml_node_t *kn = yaml_document_get_node(doc, p->key), *vn = yaml_document_get_node(doc, p->value);
            const char *kname = (const char *)kn->data.scalar.value;
            double v;
            char key[64];
            snprintf(key, sizeof key, "batch.ramp[%d].%s", n, kname);
            if (kn->type != YAML_SCALAR_NODE || vn->type != YAML_SCALAR_NODE ||
                parse_integer((const char *)vn->data.scalar.value, &v) || v < 0)
                return err_at(file, (int)vn->start_mark.line + 1, key, "expected a non-negative integer");
            if (!strcmp(kname, "after_tokens")) st.after_tokens = (int64_t)v;
            else if (!strcmp(kname, "batch_tokens")) st.batch_tokens = (int64_t)v;
            else if (!strcmp(kname, "seq_len")) st.seq_len = (int)v;
            else return err_at(file, (int)kn->start_mark.line + 1, key,
                               "unknown key (expected after_tokens, batch_tokens, seq_len)");
        }
        if (st.after_tokens < 0 || st.batch_tokens <= 0 || st.seq_len <= 0)
            return err_at(file, line, "batch.ramp",
                          "each stage needs after_tokens, batch_tokens > 0 and seq_len > 0");
        c->ramp[n++] = st;
    }
    if (n == 0) return err_at(file, line, "batch.ramp", "needs at least one stage");
    c->n_ramp = n;
    return 0;
}

/* Walk the document; pass 0 applies only model.preset, pass 1 everything else. */
static int apply_document(herd_config *c, yaml_document_t *doc, const char *file, int pass)
{
    yaml_node_t *root = yaml_document_get_root_node(doc);
    if (!root) return 0; /* empty file */
    if (root->type != YAML_MAPPING_NODE) {
        fprintf(stderr, "herd: %s:%d: expected a mapping of sections (model:, optim:, ...)\n", file,
                (int)root->start_mark.line + 1);
        return -1;
    }
    for (yaml_node_pair_t *s = root->data.mapping.pairs.start; s < root->data.mapping.pairs.top; s++) {
        yaml_node_t *sk = yaml_document_get_node(doc, s->key), *sv = yaml_document_get_node(doc, s->value);
        const char *section = sk->type == YAML_SCALAR_NODE ? (const char *)sk->data.scalar.value : "?";
        if (sv->type != YAML_MAPPING_NODE) {
            if (pass == 1) return err_at(file, (int)sk->start_mark.line + 1, section,
                                         "expected a section (a mapping of keys)");
            continue;
        }
        for (yaml_node_pair_t *p = sv->data.mapping.pairs.start; p < sv->data.mapping.pairs.top; p++) {
            yaml_node_t *kn = yaml_document_get_node(doc, p->key), *vn = yaml_document_get_node(doc, p->value);
            char name[96];
            snprintf(name, sizeof name, "%s.%s", section,
                     kn->type == YAML_SCALAR_NODE ? (const char *)kn->data.scalar.value : "?");
            int line = (int)kn->start_mark.line + 1;
            const key_spec *k = find_key(name);
            int is_preset = k && !strcmp(k->key, "model.preset");
            if (pass == 0 && !is_preset) continue;
            if (pass == 1 && is_preset) continue;
            if (!k) return err_at(file, line, name, "unknown key (see `herd config --keys`)");
            key_line[k - keys] = line;
            if (k->type == K_RAMP) {
                if (parse_ramp(c, doc, vn, file)) return -1;
                continue;
            }
            if (vn->type != YAML_SCALAR_NODE)
                return err_at(file, line, name, "expected a single value, not a list or a mapping");
            const char *why;
            if (set_scalar(c, k, (const char *)vn->data.scalar.value, &why))
                return err_at(file, line, name, why);
        }
    }
    return 0;
}

static int load(herd_config *c, const char *path, int with_preset)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "herd: %s: cannot open config: %s\n", path, strerror(errno));
        return -1;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    int rc = -1;
    if (!yaml_parser_load(&parser, &doc)) {
        fprintf(stderr, "herd: %s:%d: YAML syntax error: %s\n", path,
                (int)parser.problem_mark.line + 1, parser.problem ? parser.problem : "unknown");
    } else {
        rc = (with_preset ? apply_document(c, &doc, path, 0) : 0) ||
             apply_document(c, &doc, path, 1) ? -1 : 0;
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}

int herd_config_load_file(herd_config *c, const char *path) { return load(c, path, 1); }

int herd_config_set(herd_config *c, const char *assignment, const char *origin)
{
    const char *eq = strchr(assignment, '=');
    char name[96];
    if (!eq || eq == assignment || (size_t)(eq - assignment) >= sizeof name) {
        fprintf(stderr, "herd: %s '%s': expected section.key=value\n", origin, assignment);
        return -1;
    }
    snprintf(name, sizeof name, "%.*s", (int)(eq - assignment), assignment);
    const key_spec *k = find_key(name);
    const char *why = NULL;
    if (!k) why = "unknown key (see `herd config --keys`)";
    else if (k->type == K_RAMP) why = "set the ramp in the config file";
    else if (set_scalar(c, k, eq + 1, &why) == 0) {
        key_line[k - keys] = 0;
        return 0;
    }
    fprintf(stderr, "herd: %s %s: %s\n", origin, name, why);
    return -1;
}

int herd_config_resolve(herd_config *c, const char *path, int n_sets, char *const *sets)
{
    herd_config_defaults(c);
    int preset_from_set = 0;
    for (int i = 0; i < n_sets; i++)
        if (!strncmp(sets[i], "model.preset=", 13)) preset_from_set = 1;
    /* the preset first, so that every other key of the file and --set wins */
    for (int i = 0; i < n_sets; i++)
        if (!strncmp(sets[i], "model.preset=", 13) && herd_config_set(c, sets[i], "--set")) return -1;
    if (path && load(c, path, !preset_from_set)) return -1;
    for (int i = 0; i < n_sets; i++)
        if (strncmp(sets[i], "model.preset=", 13) && herd_config_set(c, sets[i], "--set")) return -1;
    return herd_config_validate(c, path ? path : "--set");
}

/* ---- validation ---------------------------------------------------------- */

static int bad(const char *origin, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(const char *origin, const char *key, const char *fmt, ...)
{
    const key_spec *k = find_key(key);
    int line = k ? key_line[k - keys] : 0;
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return err_at(origin, line, key, why);
}

int herd_config_validate(const herd_config *c, const char *origin)
{
    if (c->n_heads % c->n_kv_heads)
        return bad(origin, "model.n_kv_heads", "n_heads (%d) is not divisible by n_kv_heads (%d)",
                   c->n_heads, c->n_kv_heads);
    if (c->d_model % c->n_heads)
        return bad(origin, "model.n_heads", "d_model (%d) is not divisible by n_heads (%d)",
                   c->d_model, c->n_heads);
    if ((c->d_model / c->n_heads) % 2)
        return bad(origin, "model.n_heads", "head_dim d_model/n_heads = %d must be even for RoPE",
                   c->d_model / c->n_heads);
    if (c->min_lr > c->lr)
        return bad(origin, "optim.min_lr", "min_lr (%g) is larger than lr (%g)", c->min_lr, c->lr);
    if (strcmp(c->backend, "cpu") && strcmp(c->backend, "cuda"))
        return bad(origin, "train.backend", "'%s' is not a backend (cpu, cuda)", c->backend);
    if (c->anneal_tokens > 0 && c->max_tokens <= c->anneal_tokens)
        return bad(origin, "schedule.anneal_tokens",
                   "annealing over the last %lld tokens needs train.max_tokens larger than that (%lld)",
                   (long long)c->anneal_tokens, (long long)c->max_tokens);
    for (int i = 0; i < c->n_ramp; i++) {
        const herd_ramp_stage *s = &c->ramp[i];
        if (i == 0 && s->after_tokens != 0)
            return bad(origin, "batch.ramp", "the first stage must start at after_tokens 0");
        if (i > 0 && s->after_tokens <= c->ramp[i - 1].after_tokens)
            return bad(origin, "batch.ramp", "stage %d: after_tokens must increase", i);
        if (s->seq_len > c->max_seq_len)
            return bad(origin, "batch.ramp", "stage %d: seq_len %d exceeds model.max_seq_len %d", i,
                       s->seq_len, c->max_seq_len);
        if (s->batch_tokens % s->seq_len)
            return bad(origin, "batch.ramp", "stage %d: batch_tokens %lld is not a multiple of seq_len %d",
                       i, (long long)s->batch_tokens, s->seq_len);
        if ((s->batch_tokens / s->seq_len) % c->micro_batch)
            return bad(origin, "batch.micro_batch",
                       "stage %d: %lld sequences per batch are not a multiple of micro_batch %d", i,
                       (long long)(s->batch_tokens / s->seq_len), c->micro_batch);
    }
    return 0;
}

/* ---- writing ------------------------------------------------------------- */

static void write_value(const herd_config *c, const key_spec *k, FILE *f)
{
    const void *p = (const char *)c + k->offset;
    switch (k->type) {
    case K_INT: fprintf(f, "%d", *(const int *)p); break;
    case K_I64: fprintf(f, "%lld", (long long)*(const int64_t *)p); break;
    case K_U64: fprintf(f, "%llu", (unsigned long long)*(const uint64_t *)p); break;
    case K_DBL: fprintf(f, "%.17g", *(const double *)p); break;
    case K_STR: fprintf(f, "\"%s\"", (const char *)p); break;
    case K_RAMP:
        for (int i = 0; i < c->n_ramp; i++)
            fprintf(f, "\n    - {after_tokens: %lld, batch_tokens: %lld, seq_len: %d}",
                    (long long)c->ramp[i].after_tokens, (long long)c->ramp[i].batch_tokens,
                    c->ramp[i].seq_len);
        break;
    }
}

int herd_config_write(const herd_config *c, FILE *f)
{
    char section[32] = "";
    for (size_t i = 0; i < N_KEYS; i++) {
        const key_spec *k = &keys[i];
        const char *dot = strchr(k->key, '.');
        if (strncmp(section, k->key, dot - k->key) || section[dot - k->key]) {
            snprintf(section, sizeof section, "%.*s", (int)(dot - k->key), k->key);
            fprintf(f, "%s:\n", section);
        }
        /* the preset was already applied: the keys below say everything */
        if (!strcmp(k->key, "model.preset")) {
            fprintf(f, "  # preset: \"%s\"\n", c->preset);
            continue;
        }
        fprintf(f, "  %s: ", dot + 1);
        write_value(c, k, f);
        fprintf(f, "\n");
    }
    return ferror(f) ? -1 : 0;
}

void herd_config_print_keys(FILE *f)
{
    herd_config d;
    herd_config_defaults(&d);
    for (size_t i = 0; i < N_KEYS; i++) {
        const char *t[] = {"int", "int64", "uint64", "float", "string", "list"};
        fprintf(f, "%-24s %-7s default ", keys[i].key, t[keys[i].type]);
        write_value(&d, &keys[i], f);
        fprintf(f, "\n    %s\n", keys[i].help);
    }
}
