/* model.c — the Llama 3 model, forward and backward, over a herd_backend. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/model.h"
#include "src/rng.h"

void herd_model_dims_from_config(herd_model_dims *d, const herd_config *c)
{
    d->n_layers = c->n_layers;
    d->d_model = c->d_model;
    d->n_heads = c->n_heads;
    d->n_kv_heads = c->n_kv_heads;
    d->head_dim = c->d_model / c->n_heads;
    d->ffn_dim = c->ffn_dim;
    d->vocab_size = c->vocab_size;
    d->max_seq_len = c->max_seq_len;
    d->rope_theta = c->rope_theta;
    d->norm_eps = c->norm_eps;
    d->init_std = c->init_std;
}

int64_t herd_model_dims_matmul_params(const herd_model_dims *d)
{
    int64_t dm = d->d_model, q = (int64_t)d->n_heads * d->head_dim,
            kv = (int64_t)d->n_kv_heads * d->head_dim, f = d->ffn_dim;
    int64_t per_layer = dm * q + 2 * dm * kv + q * dm + 3 * dm * f;
    return d->n_layers * per_layer + (int64_t)d->vocab_size * dm;
}

int64_t herd_model_dims_total_params(const herd_model_dims *d)
{
    int64_t dm = d->d_model;
    return herd_model_dims_matmul_params(d) + (int64_t)d->vocab_size * dm /* embedding */
           + (int64_t)d->n_layers * 2 * dm + dm;                          /* norms */
}

/* ---- the tensor table ---------------------------------------------------- */

typedef struct {
    herd_tensor *t;
    int n, cap;
    int64_t offset;
} tensor_list;

static herd_tensor *tensor_add(tensor_list *l, const char *name, int64_t rows, int64_t cols)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->t = realloc(l->t, sizeof(*l->t) * l->cap);
    }
    herd_tensor *t = &l->t[l->n++];
    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->ndim = cols ? 2 : 1;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->numel = cols ? rows * cols : rows;
    t->decay = cols != 0;
    t->offset = l->offset;
    l->offset += t->numel;
    return t;
}

static void build_table(herd_model *m)
{
    const herd_model_dims *d = &m->dims;
    int64_t dm = d->d_model, q = (int64_t)d->n_heads * d->head_dim,
            kv = (int64_t)d->n_kv_heads * d->head_dim, f = d->ffn_dim;
    tensor_list l = {0};
    char name[64];
    tensor_add(&l, "model.embed_tokens.weight", d->vocab_size, dm);
    for (int i = 0; i < d->n_layers; i++) {
#define LAYER(suffix, r, c) \
        (snprintf(name, sizeof name, "model.layers.%d.%s", i, suffix), tensor_add(&l, name, r, c))
        LAYER("input_layernorm.weight", dm, 0);
        LAYER("self_attn.q_proj.weight", q, dm);
        LAYER("self_attn.k_proj.weight", kv, dm);
        LAYER("self_attn.v_proj.weight", kv, dm);
        LAYER("self_attn.o_proj.weight", dm, q);
        LAYER("post_attention_layernorm.weight", dm, 0);
        LAYER("mlp.gate_proj.weight", f, dm);
        LAYER("mlp.up_proj.weight", f, dm);
        LAYER("mlp.down_proj.weight", dm, f);
#undef LAYER
    }
    tensor_add(&l, "model.norm.weight", dm, 0);
    tensor_add(&l, "lm_head.weight", d->vocab_size, dm);
    m->tensors = l.t;
    m->n_tensors = l.n;
    m->n_params = l.offset;
}

/* Point the per-layer views at params (or grads): the table order above. */
static void bind_views(herd_model *m, float *base, float **wte, float **norm_f, float **lm_head,
                       herd_layer_params *layers)
{
    const herd_tensor *t = m->tensors;
    *wte = base + t[0].offset;
    for (int i = 0; i < m->dims.n_layers; i++) {
        const herd_tensor *lt = t + 1 + 9 * i;
        herd_layer_params *p = &layers[i];
        p->attn_norm = base + lt[0].offset;
        p->wq = base + lt[1].offset;
        p->wk = base + lt[2].offset;
        p->wv = base + lt[3].offset;
        p->wo = base + lt[4].offset;
        p->ffn_norm = base + lt[5].offset;
        p->w_gate = base + lt[6].offset;
        p->w_up = base + lt[7].offset;
        p->w_down = base + lt[8].offset;
    }
    *norm_f = base + t[m->n_tensors - 2].offset;
    *lm_head = base + t[m->n_tensors - 1].offset;
}

static int is_output_side(const char *name)
{
    return strstr(name, "o_proj") || strstr(name, "down_proj");
}

/* Host-side init, a pure function of (seed, name, index). */
static void init_params(const herd_model *m, float *host, uint64_t seed)
{
    double out_scale = 1.0 / sqrt(2.0 * m->dims.n_layers);
    for (int i = 0; i < m->n_tensors; i++) {
        const herd_tensor *t = &m->tensors[i];
        float *p = host + t->offset;
        if (t->ndim == 1) {
            for (int64_t j = 0; j < t->numel; j++) p[j] = 1.0f;
            continue;
        }
        double std = m->dims.init_std * (is_output_side(t->name) ? out_scale : 1.0);
        uint64_t stream = herd_hash_str(t->name);
#pragma omp parallel for schedule(static)
        for (int64_t j = 0; j < t->numel; j++)
            p[j] = (float)(std * herd_rng_normal(seed, stream, (uint64_t)j));
    }
}

static float *rope_table(const herd_model_dims *d)
{
    int half = d->head_dim / 2;
    size_t n = (size_t)d->max_seq_len * half * 2;
    float *cs = malloc(n * sizeof(float));
    if (!cs) return NULL;
    for (int p = 0; p < d->max_seq_len; p++)
        for (int j = 0; j < half; j++) {
            double inv_freq = pow(d->rope_theta, -2.0 * j / d->head_dim);
            double ang = p * inv_freq;
            cs[((size_t)p * half + j) * 2] = (float)cos(ang);
            cs[((size_t)p * half + j) * 2 + 1] = (float)sin(ang);
        }
    return cs;
}

int herd_model_create(herd_model *m, const herd_model_dims *d, const herd_backend *be, uint64_t seed)
{
    memset(m, 0, sizeof(*m));
    m->dims = *d;
    m->be = be;
    build_table(m);
    size_t bytes = sizeof(float) * (size_t)m->n_params;
    m->params = be->alloc(bytes);
    m->grads = be->alloc(bytes);
    m->layer = calloc(d->n_layers, sizeof(*m->layer));
    m->g_layer = calloc(d->n_layers, sizeof(*m->g_layer));
    float *host = malloc(bytes);
    float *cs = rope_table(d);
    m->rope_cs = be->alloc(sizeof(float) * (size_t)d->max_seq_len * d->head_dim);
    if (!m->params || !m->grads || !m->layer || !m->g_layer || !host || !cs || !m->rope_cs) {
        fprintf(stderr, "herd: model: out of memory for %lld parameters (%.1f MiB each for "
                "weights and gradients)\n", (long long)m->n_params, bytes / 1048576.0);
        free(host);
        free(cs);
        herd_model_destroy(m);
        return -1;
    }
    init_params(m, host, seed);
    be->copy_h2d(m->params, host, bytes);
    be->copy_h2d(m->rope_cs, cs, sizeof(float) * (size_t)d->max_seq_len * d->head_dim);
    free(host);
    free(cs);
    bind_views(m, m->params, &m->wte, &m->norm_f, &m->lm_head, m->layer);
    bind_views(m, m->grads, &m->g_wte, &m->g_norm_f, &m->g_lm_head, m->g_layer);
    return 0;
}

/* ---- activations --------------------------------------------------------- */

static void free_acts(herd_model *m)
{
    const herd_backend *be = m->be;
    if (m->acts) {
        for (int l = 0; l < m->dims.n_layers; l++) {
            herd_layer_acts *a = &m->acts[l];
            float **f[] = {&a->x_in, &a->h1, &a->rstd1, &a->q, &a->k, &a->v, &a->att, &a->o,
                           &a->x_mid, &a->h2, &a->rstd2, &a->gate, &a->up, &a->act};
            for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) be->free(*f[i]);
        }
        free(m->acts);
        m->acts = NULL;
    }
    float **g[] = {&m->x_final, &m->h_final, &m->rstd_f, &m->logits, &m->losses, &m->lse,
                   &m->d_res, &m->d_h, &m->d_q, &m->d_k, &m->d_v, &m->d_o, &m->d_gate,
                   &m->d_up, &m->d_act, &m->d_att};
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        be->free(*g[i]);
        *g[i] = NULL;
    }
    int32_t **ints[] = {&m->tokens, &m->targets, &m->pos, &m->doc};
    for (size_t i = 0; i < 4; i++) {
        be->free(*ints[i]);
        *ints[i] = NULL;
    }
    m->cap_tokens = m->cap_T = m->cap_B = 0;
}

int herd_model_reserve(herd_model *m, int B, int T)
{
    if (B <= m->cap_B && T <= m->cap_T) return 0;
    if (T > m->dims.max_seq_len) {
        fprintf(stderr, "herd: model: sequence length %d exceeds model.max_seq_len %d\n", T,
                m->dims.max_seq_len);
        return -1;
    }
    free_acts(m);
    const herd_backend *be = m->be;
    const herd_model_dims *d = &m->dims;
    size_t N = (size_t)B * T, dm = d->d_model, q = (size_t)d->n_heads * d->head_dim,
           kv = (size_t)d->n_kv_heads * d->head_dim, f = d->ffn_dim, V = d->vocab_size;
    size_t att = (size_t)B * d->n_heads * T * T;
    int ok = 1;
#define ALLOC(ptr, count) (ok &= ((ptr) = be->alloc(sizeof(*(ptr)) * (count))) != NULL)
    m->acts = calloc(d->n_layers, sizeof(*m->acts));
    ok &= m->acts != NULL;
    for (int l = 0; ok && l < d->n_layers; l++) {
        herd_layer_acts *a = &m->acts[l];
        ALLOC(a->x_in, N * dm);  ALLOC(a->h1, N * dm);   ALLOC(a->rstd1, N);
        ALLOC(a->q, N * q);      ALLOC(a->k, N * kv);    ALLOC(a->v, N * kv);
        ALLOC(a->att, att);      ALLOC(a->o, N * q);     ALLOC(a->x_mid, N * dm);
        ALLOC(a->h2, N * dm);    ALLOC(a->rstd2, N);     ALLOC(a->gate, N * f);
        ALLOC(a->up, N * f);     ALLOC(a->act, N * f);
    }
    ALLOC(m->x_final, N * dm); ALLOC(m->h_final, N * dm); ALLOC(m->rstd_f, N);
    ALLOC(m->logits, N * V);   ALLOC(m->losses, N);       ALLOC(m->lse, N);
    ALLOC(m->d_res, N * dm);   ALLOC(m->d_h, N * dm);     ALLOC(m->d_q, N * q);
    ALLOC(m->d_k, N * kv);     ALLOC(m->d_v, N * kv);     ALLOC(m->d_o, N * q);
    ALLOC(m->d_gate, N * f);   ALLOC(m->d_up, N * f);     ALLOC(m->d_act, N * f);
    ALLOC(m->d_att, (size_t)T * T);
    ALLOC(m->tokens, N); ALLOC(m->targets, N); ALLOC(m->pos, N); ALLOC(m->doc, N);
#undef ALLOC
    if (!ok) {
        fprintf(stderr, "herd: model: out of memory for activations of %d x %d tokens\n", B, T);
        free_acts(m);
        return -1;
    }
    m->cap_B = B;
    m->cap_T = T;
    m->cap_tokens = (int)N;
    return 0;
}

void herd_model_destroy(herd_model *m)
{
    if (!m->be) return;
    free_acts(m);
    m->be->free(m->params);
    m->be->free(m->grads);
    m->be->free(m->rope_cs);
    free(m->layer);
    free(m->g_layer);
    free(m->tensors);
    memset(m, 0, sizeof(*m));
}

void herd_model_zero_grad(herd_model *m) { m->be->zero(m->grads, (size_t)m->n_params); }

const herd_tensor *herd_model_find(const herd_model *m, const char *name)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

/* ---- forward ------------------------------------------------------------- */

double herd_model_forward(herd_model *m, const int32_t *tokens, const int32_t *targets,
                          const int32_t *doc, int B, int T, int64_t *n_valid)
{
    const herd_backend *be = m->be;
    const herd_model_dims *d = &m->dims;
    if (herd_model_reserve(m, B, T)) return NAN;
    int N = B * T, dm = d->d_model, H = d->n_heads, KV = d->n_kv_heads, hd = d->head_dim,
        F = d->ffn_dim, V = d->vocab_size;
    m->B = B;
    m->T = T;

    int32_t *pos = malloc(sizeof(int32_t) * N);
    int64_t valid = 0;
    for (int i = 0; i < N; i++) {
        pos[i] = i % T;
        valid += targets[i] >= 0;
    }
    be->copy_h2d(m->tokens, tokens, sizeof(int32_t) * N);
    be->copy_h2d(m->targets, targets, sizeof(int32_t) * N);
    be->copy_h2d(m->doc, doc, sizeof(int32_t) * N);
    be->copy_h2d(m->pos, pos, sizeof(int32_t) * N);
    free(pos);

    be->embedding_fwd(m->acts[0].x_in, m->tokens, m->wte, N, dm);
    for (int l = 0; l < d->n_layers; l++) {
        herd_layer_acts *a = &m->acts[l];
        const herd_layer_params *p = &m->layer[l];
        float *x_out = l + 1 < d->n_layers ? m->acts[l + 1].x_in : m->x_final;
        /* attention block */
        be->rmsnorm_fwd(a->h1, a->rstd1, a->x_in, p->attn_norm, N, dm, (float)d->norm_eps);
        be->matmul_fwd(a->q, a->h1, p->wq, N, H * hd, dm, 0);   /* [N, H*hd] */
        be->matmul_fwd(a->k, a->h1, p->wk, N, KV * hd, dm, 0);  /* [N, KV*hd] */
        be->matmul_fwd(a->v, a->h1, p->wv, N, KV * hd, dm, 0);
        be->rope_fwd(a->q, m->rope_cs, m->pos, N, H, hd);
        be->rope_fwd(a->k, m->rope_cs, m->pos, N, KV, hd);
        be->attention_fwd(a->o, a->att, a->q, a->k, a->v, m->doc, B, T, H, KV, hd);
        be->copy_d2d(a->x_mid, a->x_in, sizeof(float) * (size_t)N * dm);
        be->matmul_fwd(a->x_mid, a->o, p->wo, N, dm, H * hd, 1); /* residual */
        /* feed-forward block */
        be->rmsnorm_fwd(a->h2, a->rstd2, a->x_mid, p->ffn_norm, N, dm, (float)d->norm_eps);
        be->matmul_fwd(a->gate, a->h2, p->w_gate, N, F, dm, 0); /* [N, F] */
        be->matmul_fwd(a->up, a->h2, p->w_up, N, F, dm, 0);
        be->swiglu_fwd(a->act, a->gate, a->up, (size_t)N * F);
        be->copy_d2d(x_out, a->x_mid, sizeof(float) * (size_t)N * dm);
        be->matmul_fwd(x_out, a->act, p->w_down, N, dm, F, 1);  /* residual */
    }
    be->rmsnorm_fwd(m->h_final, m->rstd_f, m->x_final, m->norm_f, N, dm, (float)d->norm_eps);
    be->matmul_fwd(m->logits, m->h_final, m->lm_head, N, V, dm, 0); /* [N, V] */
    be->xent_fwd(m->losses, m->lse, m->logits, m->targets, N, V);

    float *losses = malloc(sizeof(float) * N);
    be->copy_d2h(losses, m->losses, sizeof(float) * N);
    double sum = 0.0;
    for (int i = 0; i < N; i++) sum += losses[i];  /* ignored targets contribute 0 */
    free(losses);
    if (n_valid) *n_valid = valid;
    m->have_forward = 1;
    return sum;
}

/* ---- backward ------------------------------------------------------------ */

void herd_model_backward(herd_model *m, float loss_scale)
{
    const herd_backend *be = m->be;
    const herd_model_dims *d = &m->dims;
    if (!m->have_forward) {
        fprintf(stderr, "herd: model: backward without a forward\n");
        abort();
    }
    int B = m->B, T = m->T, N = B * T, dm = d->d_model, H = d->n_heads, KV = d->n_kv_heads,
        hd = d->head_dim, F = d->ffn_dim, V = d->vocab_size;

    be->xent_bwd(m->logits, m->lse, m->targets, N, V, loss_scale); /* logits -> dlogits */
    be->matmul_bwd(m->d_h, m->g_lm_head, m->logits, m->h_final, m->lm_head, N, V, dm, 0);
    be->zero(m->d_res, (size_t)N * dm);
    be->rmsnorm_bwd(m->d_res, m->g_norm_f, m->d_h, m->x_final, m->norm_f, m->rstd_f, N, dm);

    for (int l = d->n_layers - 1; l >= 0; l--) {
        const herd_layer_acts *a = &m->acts[l];
        const herd_layer_params *p = &m->layer[l];
        herd_layer_params *g = &m->g_layer[l];
        /* feed-forward block; d_res is the gradient of the layer's output */
        be->matmul_bwd(m->d_act, g->w_down, m->d_res, a->act, p->w_down, N, dm, F, 0);
        be->swiglu_bwd(m->d_gate, m->d_up, m->d_act, a->gate, a->up, (size_t)N * F);
        be->matmul_bwd(m->d_h, g->w_gate, m->d_gate, a->h2, p->w_gate, N, F, dm, 0);
        be->matmul_bwd(m->d_h, g->w_up, m->d_up, a->h2, p->w_up, N, F, dm, 1);
        be->rmsnorm_bwd(m->d_res, g->ffn_norm, m->d_h, a->x_mid, p->ffn_norm, a->rstd2, N, dm);
        /* attention block; d_res is now the gradient of x_mid */
        be->matmul_bwd(m->d_o, g->wo, m->d_res, a->o, p->wo, N, dm, H * hd, 0);
        be->attention_bwd(m->d_q, m->d_k, m->d_v, m->d_att, m->d_o, a->att, a->q, a->k, a->v,
                          m->doc, B, T, H, KV, hd);
        be->rope_bwd(m->d_q, m->rope_cs, m->pos, N, H, hd);
        be->rope_bwd(m->d_k, m->rope_cs, m->pos, N, KV, hd);
        be->matmul_bwd(m->d_h, g->wq, m->d_q, a->h1, p->wq, N, H * hd, dm, 0);
        be->matmul_bwd(m->d_h, g->wk, m->d_k, a->h1, p->wk, N, KV * hd, dm, 1);
        be->matmul_bwd(m->d_h, g->wv, m->d_v, a->h1, p->wv, N, KV * hd, dm, 1);
        be->rmsnorm_bwd(m->d_res, g->attn_norm, m->d_h, a->x_in, p->attn_norm, a->rstd1, N, dm);
    }
    be->embedding_bwd(m->g_wte, m->d_res, m->tokens, N, dm);
    m->have_forward = 0;  /* the logits now hold their gradient */
}
