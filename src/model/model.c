/* model.c — the Llama 3 model, forward and backward, over a herd_backend. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/model/model.h"
#include "src/base/rng.h"

void herd_model_dims_from_config(herd_model_dims *d, const herd_config_model *c)
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
    d->rope_scale_factor = c->rope_scale_factor;
    d->rope_low_freq_factor = c->rope_low_freq_factor;
    d->rope_high_freq_factor = c->rope_high_freq_factor;
    d->rope_original_max_pos = c->rope_original_max_pos;
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

/* Add this rank's piece of a whole tensor [grows, gcols] (gcols 0: a vector):
 * rows [r0, r0 + rows) and columns [c0, c0 + cols) of it. */
static herd_tensor *tensor_add_piece(tensor_list *l, const char *name, int64_t grows, int64_t gcols,
                                     herd_tp_split split, int64_t r0, int64_t rows, int64_t c0,
                                     int64_t cols, int copies, int primary);

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
    t->global_shape[0] = rows;
    t->global_shape[1] = cols;
    t->tp_copies = 1;
    t->tp_primary = 1;
    return t;
}

static herd_tensor *tensor_add_piece(tensor_list *l, const char *name, int64_t grows, int64_t gcols,
                                     herd_tp_split split, int64_t r0, int64_t rows, int64_t c0,
                                     int64_t cols, int copies, int primary)
{
    herd_tensor *t = tensor_add(l, name, rows, cols);
    t->global_shape[0] = grows;
    t->global_shape[1] = gcols;
    t->global_offset[0] = r0;
    t->global_offset[1] = c0;
    t->split = split;
    t->tp_copies = copies;
    t->tp_primary = primary;
    return t;
}

/* The table of this rank's tensors: the embedding if virtual stage 0 is here,
 * the layers of its chunks (global names), the final norm and the output
 * projection if the last virtual stage is here. With TP, rank r holds query
 * heads [r*Hl, (r+1)*Hl), KV heads [r*KVl, ...) or, when tp > n_kv_heads, a
 * copy of KV head r / (tp / n_kv_heads), ffn rows [r*Fl, ...) and vocabulary
 * rows [r*Vl, ...); o_proj and down_proj hold the matching columns. With CP
 * every CP rank holds the same pieces; CP rank 0's are the primary copies. */
static void build_table(herd_model *m)
{
    const herd_model_dims *d = &m->dims;
    int64_t dm = d->d_model, hd = d->head_dim, q = (int64_t)d->n_heads * hd,
            kv = (int64_t)d->n_kv_heads * hd, f = d->ffn_dim;
    int tp = m->tp_size, r = m->tp_rank, c0 = m->cp_rank == 0;
    int64_t ql = (int64_t)m->n_heads_local * hd, kvl = (int64_t)m->n_kv_local * hd,
            fl = m->ffn_local, vl = m->vocab_local;
    int kv_copies = tp > d->n_kv_heads ? tp / d->n_kv_heads : 1;
    int64_t kv_r0 = tp > d->n_kv_heads ? (int64_t)(r / kv_copies) * hd : (int64_t)r * kvl;
    int kv_primary = c0 && (tp > d->n_kv_heads ? r % kv_copies == 0 : 1);
    tensor_list l = {0};
    char name[64];
    if (m->has_embed)
        tensor_add_piece(&l, "model.embed_tokens.weight", d->vocab_size, dm, HERD_TP_ROWS,
                         (int64_t)r * vl, vl, 0, dm, 1, c0);
    for (int li = 0; li < m->n_layers_local; li++) {
        int i = m->layer_gid[li];
#define NAME(suffix) (snprintf(name, sizeof name, "model.layers.%d.%s", i, suffix), name)
        tensor_add_piece(&l, NAME("input_layernorm.weight"), dm, 0, HERD_TP_WHOLE, 0, dm, 0, 0,
                         tp, r == 0 && c0);
        tensor_add_piece(&l, NAME("self_attn.q_proj.weight"), q, dm, HERD_TP_ROWS, r * ql, ql, 0,
                         dm, 1, c0);
        tensor_add_piece(&l, NAME("self_attn.k_proj.weight"), kv, dm, HERD_TP_ROWS, kv_r0, kvl, 0,
                         dm, kv_copies, kv_primary);
        tensor_add_piece(&l, NAME("self_attn.v_proj.weight"), kv, dm, HERD_TP_ROWS, kv_r0, kvl, 0,
                         dm, kv_copies, kv_primary);
        tensor_add_piece(&l, NAME("self_attn.o_proj.weight"), dm, q, HERD_TP_COLS, 0, dm, r * ql,
                         ql, 1, c0);
        tensor_add_piece(&l, NAME("post_attention_layernorm.weight"), dm, 0, HERD_TP_WHOLE, 0, dm,
                         0, 0, tp, r == 0 && c0);
        tensor_add_piece(&l, NAME("mlp.gate_proj.weight"), f, dm, HERD_TP_ROWS, r * fl, fl, 0, dm,
                         1, c0);
        tensor_add_piece(&l, NAME("mlp.up_proj.weight"), f, dm, HERD_TP_ROWS, r * fl, fl, 0, dm, 1,
                         c0);
        tensor_add_piece(&l, NAME("mlp.down_proj.weight"), dm, f, HERD_TP_COLS, 0, dm, r * fl, fl,
                         1, c0);
#undef NAME
    }
    if (m->has_head) {
        tensor_add_piece(&l, "model.norm.weight", dm, 0, HERD_TP_WHOLE, 0, dm, 0, 0, tp,
                         r == 0 && c0);
        tensor_add_piece(&l, "lm_head.weight", d->vocab_size, dm, HERD_TP_ROWS, (int64_t)r * vl,
                         vl, 0, dm, 1, c0);
    }
    m->tensors = l.t;
    m->n_tensors = l.n;
    m->n_params = l.offset;
}

/* Point the per-layer views at params (or grads): the table order above. */
static void bind_views(herd_model *m, float *base, float **wte, float **norm_f, float **lm_head,
                       herd_layer_params *layers)
{
    const herd_tensor *t = m->tensors;
    int e = m->has_embed;
    *wte = e ? base + t[0].offset : NULL;
    for (int i = 0; i < m->n_layers_local; i++) {
        const herd_tensor *lt = t + e + 9 * i;
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
    *norm_f = m->has_head ? base + t[m->n_tensors - 2].offset : NULL;
    *lm_head = m->has_head ? base + t[m->n_tensors - 1].offset : NULL;
}

int herd_model_split_layers(int n_layers, int n_stages, int first_last_fewer, int *first,
                            int *count)
{
    int fewer = first_last_fewer && n_stages > 1;
    int total = n_layers + (fewer ? 2 : 0), per = n_stages > 0 ? total / n_stages : 0;
    if (n_stages <= 0 || total % n_stages || per - fewer < 1) {
        fprintf(stderr, "herd: model: key 'model.n_layers': %d layers cannot be split into %d "
                "pipeline stages (pp x virtual_stages)%s: %s\n", n_layers, n_stages,
                fewer ? " with the first and last one layer fewer" : "",
                fewer ? "n_layers + 2 must be a multiple of the stages, at least 2 per stage"
                      : "n_layers must be a multiple of the stages");
        return -1;
    }
    for (int s = 0, at = 0; s < n_stages; s++) {
        count[s] = per - (fewer && (s == 0 || s == n_stages - 1));
        first[s] = at;
        at += count[s];
    }
    return 0;
}

int herd_model_chunk_stage(const herd_model *m, int chunk)
{
    return chunk * m->pp_size + m->pp_rank;
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
        /* element (i, j) of this piece is element (r0 + i, c0 + j) of the whole */
        int64_t cols = t->shape[1], gcols = t->global_shape[1];
        int64_t r0 = t->global_offset[0], c0 = t->global_offset[1];
#pragma omp parallel for schedule(static)
        for (int64_t j = 0; j < t->numel; j++) {
            uint64_t g = (uint64_t)((r0 + j / cols) * gcols + c0 + j % cols);
            p[j] = (float)(std * herd_rng_normal(seed, stream, g));
        }
    }
}

/* Llama 3.1's frequency scaling (transformers' _compute_llama3_parameters):
 * wavelengths longer than original_max_pos / low_freq_factor are stretched
 * by factor, those shorter than original_max_pos / high_freq_factor kept,
 * and the ones between interpolated. Every backend reads the one table. */
static double rope_scaled(const herd_model_dims *d, double inv_freq)
{
    if (d->rope_scale_factor <= 0) return inv_freq;
    double old = d->rope_original_max_pos, lo = d->rope_low_freq_factor,
           hi = d->rope_high_freq_factor, f = d->rope_scale_factor;
    double wavelen = 2 * M_PI / inv_freq;
    if (wavelen < old / hi) return inv_freq;
    if (wavelen > old / lo) return inv_freq / f;
    double smooth = (old / wavelen - lo) / (hi - lo);
    return (1 - smooth) * inv_freq / f + smooth * inv_freq;
}

static float *rope_table(const herd_model_dims *d)
{
    int half = d->head_dim / 2;
    size_t n = (size_t)d->max_seq_len * half * 2;
    float *cs = malloc(n * sizeof(float));
    if (!cs) return NULL;
    for (int p = 0; p < d->max_seq_len; p++)
        for (int j = 0; j < half; j++) {
            double inv_freq = rope_scaled(d, pow(d->rope_theta, -2.0 * j / d->head_dim));
            double ang = p * inv_freq;
            cs[((size_t)p * half + j) * 2] = (float)cos(ang);
            cs[((size_t)p * half + j) * 2 + 1] = (float)sin(ang);
        }
    return cs;
}

int herd_model_create(herd_model *m, const herd_model_dims *d, const herd_backend *be, uint64_t seed)
{
    return herd_model_create_parallel(m, d, be, seed, NULL);
}

/* Which layers are here: chunk c is virtual stage c*PP + p. */
static int place_layers(herd_model *m, int first_last_fewer)
{
    int S = m->n_stages, *first = malloc(sizeof(int) * S), *count = malloc(sizeof(int) * S);
    m->chunk_first = calloc(m->n_chunks, sizeof(int));
    m->chunk_layers = calloc(m->n_chunks, sizeof(int));
    m->simple_slot = malloc(sizeof(int) * m->n_chunks);
    int rc = !first || !count || !m->chunk_first || !m->chunk_layers || !m->simple_slot ? -1 : 0;
    if (rc == 0) rc = herd_model_split_layers(m->dims.n_layers, S, first_last_fewer, first, count);
    if (rc == 0) {
        m->n_layers_local = 0;
        for (int c = 0; c < m->n_chunks; c++) m->n_layers_local += count[herd_model_chunk_stage(m, c)];
        m->layer_gid = malloc(sizeof(int) * m->n_layers_local);
        rc = m->layer_gid ? 0 : -1;
        for (int c = 0, li = 0; rc == 0 && c < m->n_chunks; c++) {
            int s = herd_model_chunk_stage(m, c);
            m->chunk_first[c] = li;
            m->chunk_layers[c] = count[s];
            m->simple_slot[c] = -1;
            for (int j = 0; j < count[s]; j++) m->layer_gid[li++] = first[s] + j;
        }
    }
    m->has_embed = m->pp_rank == 0;
    m->has_head = m->pp_rank == m->pp_size - 1;
    free(first);
    free(count);
    return rc;
}

int herd_model_create_parallel(herd_model *m, const herd_model_dims *d, const herd_backend *be,
                               uint64_t seed, const herd_model_parallel *par)
{
    memset(m, 0, sizeof(*m));
    m->dims = *d;
    m->be = be;
    m->tp_size = par && par->tp ? par->tp->size : 1;
    m->tp_rank = par && par->tp ? par->tp->rank : 0;
    m->tp = m->tp_size > 1 ? par->tp : NULL;
    m->sp = m->tp_size > 1 && par->sequence_parallel;
    m->pp_size = par && par->pp ? par->pp->size : 1;
    m->pp_rank = par && par->pp ? par->pp->rank : 0;
    m->pp = m->pp_size > 1 ? par->pp : NULL;
    m->cp_size = par && par->cp ? par->cp->size : 1;
    m->cp_rank = par && par->cp ? par->cp->rank : 0;
    m->cp = m->cp_size > 1 ? par->cp : NULL;
    m->n_chunks = par && par->virtual_stages > 1 ? par->virtual_stages : 1;
    m->xent_chunk = par ? par->xent_chunk : 0;
    if (m->xent_chunk < 0) {
        fprintf(stderr, "herd: model: key 'train.xent_chunk': %d is negative (0: the whole "
                "logits, > 0: vocabulary columns per chunk)\n", m->xent_chunk);
        return -1;
    }
    m->n_stages = m->n_chunks * m->pp_size;
    int tp = m->tp_size;
    if (d->n_heads % tp || d->ffn_dim % tp || d->vocab_size % tp ||
        (tp <= d->n_kv_heads ? d->n_kv_heads % tp : tp % d->n_kv_heads)) {
        fprintf(stderr, "herd: model: tp %d does not split n_heads %d, n_kv_heads %d, ffn_dim %d "
                "and vocab_size %d evenly\n", tp, d->n_heads, d->n_kv_heads, d->ffn_dim,
                d->vocab_size);
        return -1;
    }
    if (place_layers(m, par ? par->first_last_fewer : 0)) {
        herd_model_destroy(m);
        return -1;
    }
    m->n_heads_local = d->n_heads / tp;
    m->n_kv_local = tp <= d->n_kv_heads ? d->n_kv_heads / tp : 1;
    m->ffn_local = d->ffn_dim / tp;
    m->vocab_local = d->vocab_size / tp;
    m->vocab_start = m->tp_rank * m->vocab_local;
    if (tp > d->n_kv_heads) { /* the copies of one KV head sum their gradients */
        int copies = tp / d->n_kv_heads;
        m->kv_group = herd_comm_mpi_split(m->tp, m->tp_rank / copies, m->tp_rank, "tp-kv");
        if (!m->kv_group) return -1;
    }
    build_table(m);
    size_t bytes = sizeof(float) * (size_t)m->n_params;
    m->params = be->alloc(be, bytes);
    m->grads = be->alloc(be, bytes);
    m->layer = calloc(m->n_layers_local + 1, sizeof(*m->layer));
    m->g_layer = calloc(m->n_layers_local + 1, sizeof(*m->g_layer));
    float *host = malloc(bytes);
    float *cs = rope_table(d);
    m->rope_cs = be->alloc(be, sizeof(float) * (size_t)d->max_seq_len * d->head_dim);
    if (!m->params || !m->grads || !m->layer || !m->g_layer || !host || !cs || !m->rope_cs) {
        fprintf(stderr, "herd: model: out of memory for %lld parameters (%.1f MiB each for "
                "weights and gradients)\n", (long long)m->n_params, bytes / 1048576.0);
        free(host);
        free(cs);
        herd_model_destroy(m);
        return -1;
    }
    init_params(m, host, seed);
    be->copy_h2d(be, m->params, host, bytes);
    be->copy_h2d(be, m->rope_cs, cs, sizeof(float) * (size_t)d->max_seq_len * d->head_dim);
    free(host);
    free(cs);
    bind_views(m, m->params, &m->wte, &m->norm_f, &m->lm_head, m->layer);
    bind_views(m, m->grads, &m->g_wte, &m->g_norm_f, &m->g_lm_head, m->g_layer);
    return 0;
}

/* ---- activations --------------------------------------------------------- */

/* The flash-attention pair (no [T,T] probabilities; att holds lse [B,H,T])
 * where the backend prefers it (CUDA) and the keys are not gathered over CP. */
/* Buffers are sized for flash_always (the backend's choice in any precision);
 * use_flash may also pick the flash pair in bf16 mode (prefer_flash_bf16),
 * which needs less: lse[B,H,T] in place of the [B,H,T,T] probabilities. */
static int flash_always(const herd_model *m)
{
    return !m->cp && m->be->prefer_flash && m->be->attention_flash_fwd &&
           m->be->attention_flash_bwd;
}

static int use_flash(const herd_model *m)
{
    const herd_backend *be = m->be;
    return flash_always(m) ||
           (!m->cp && be->prefer_flash_bf16 && be->get_matmul_bf16 && be->get_matmul_bf16(be) &&
            be->attention_flash_fwd && be->attention_flash_bwd);
}

/* The tensors of herd_layer_acts, and from which recompute mode on each is
 * dropped: a view of the model's one-layer scratch m->rc instead of the
 * slot's own (topology/recompute.h; topology/memmodel.c charges the same). */
static const struct {
    size_t offset;
    int    dropped_from;
} act_fields[] = {
    {offsetof(herd_layer_acts, x_in), HERD_RECOMPUTE_FULL + 1}, /* always kept */
    {offsetof(herd_layer_acts, h1), HERD_RECOMPUTE_SELECTIVE},
    {offsetof(herd_layer_acts, rstd1), HERD_RECOMPUTE_FULL},
    {offsetof(herd_layer_acts, q), HERD_RECOMPUTE_FULL},
    {offsetof(herd_layer_acts, k), HERD_RECOMPUTE_FULL},
    {offsetof(herd_layer_acts, v), HERD_RECOMPUTE_FULL},
    {offsetof(herd_layer_acts, att), HERD_RECOMPUTE_FULL},
    {offsetof(herd_layer_acts, o), HERD_RECOMPUTE_FULL},
    {offsetof(herd_layer_acts, x_mid), HERD_RECOMPUTE_FULL},
    {offsetof(herd_layer_acts, h2), HERD_RECOMPUTE_SELECTIVE},
    {offsetof(herd_layer_acts, rstd2), HERD_RECOMPUTE_FULL},
    {offsetof(herd_layer_acts, gate), HERD_RECOMPUTE_FULL},
    {offsetof(herd_layer_acts, up), HERD_RECOMPUTE_FULL},
    {offsetof(herd_layer_acts, act), HERD_RECOMPUTE_SELECTIVE},
    {offsetof(herd_layer_acts, kg), HERD_RECOMPUTE_FULL},
    {offsetof(herd_layer_acts, vg), HERD_RECOMPUTE_FULL},
};
enum { N_ACT_FIELDS = sizeof act_fields / sizeof act_fields[0] };

static float **act_field(herd_layer_acts *a, int i)
{
    return (float **)((char *)a + act_fields[i].offset);
}

/* Elements of field i for the current micro-batch shape (0: not used). */
static size_t act_numel(const herd_model *m, int i)
{
    size_t N = (size_t)m->cap_B * m->T_local, Nl = m->sp ? N / m->tp_size : N,
           dm = m->dims.d_model, q = (size_t)m->n_heads_local * m->dims.head_dim,
           kv = (size_t)m->n_kv_local * m->dims.head_dim, f = m->ffn_local,
           gathered = m->cp ? (size_t)m->cap_B * m->cap_T * kv : 0;
    size_t att = (size_t)m->cap_B * m->n_heads_local * m->T_local * (flash_always(m) ? 1 : m->cap_T);
    size_t n[] = {Nl * dm, N * dm, Nl, N * q, N * kv, N * kv, att, N * q,
                  Nl * dm, N * dm, Nl, N * f, N * f, N * f, gathered, gathered};
    _Static_assert(sizeof n / sizeof n[0] == N_ACT_FIELDS, "one size per field");
    return n[i];
}

static void free_slot(herd_model *m, herd_act_slot *s)
{
    const herd_backend *be = m->be;
    if (s->acts) {
        for (int l = 0; l < m->chunk_layers[s->chunk]; l++)
            for (int i = 0; i < N_ACT_FIELDS; i++) /* views of m->rc are not the slot's */
                if (*act_field(&s->acts[l], i) != *act_field(&m->rc, i))
                    be->free(be, *act_field(&s->acts[l], i));
        free(s->acts);
    }
    float *g[] = {s->x_out, s->d_out, s->d_in, s->h_final, s->rstd_f, s->logits, s->losses,
                  s->lse};
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) be->free(be, g[i]);
    int32_t *ints[] = {s->tokens, s->targets, s->pos, s->doc, s->kpos, s->kdoc};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) be->free(be, ints[i]);
    free(s->seq_w);
    memset(s, 0, sizeof *s);
}

/* The output projection and the cross-entropy run in vocabulary chunks
 * (train.xent_chunk) when a chunk is smaller than this rank's slice. */
static int xent_chunked(const herd_model *m)
{
    return m->xent_chunk > 0 && m->xent_chunk < m->vocab_local;
}

static void free_acts(herd_model *m)
{
    const herd_backend *be = m->be;
    for (int i = 0; i < m->n_slots; i++) free_slot(m, &m->slots[i]);
    free(m->slots);
    m->slots = NULL;
    m->n_slots = m->slots_in_use = 0;
    for (int c = 0; m->simple_slot && c < m->n_chunks; c++) m->simple_slot[c] = -1;
    m->logits = NULL;
    float **g[] = {&m->d_res, &m->d_h, &m->d_q, &m->d_k, &m->d_v, &m->d_o, &m->d_gate,
                   &m->d_up, &m->d_act, &m->d_att, &m->part, &m->d_full, &m->d_loc,
                   &m->xent_tmp, &m->d_kg, &m->d_vg, &m->cp_tmp, &m->xent_scratch};
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        be->free(be, *g[i]);
        *g[i] = NULL;
    }
    for (int i = 0; i < N_ACT_FIELDS; i++) be->free(be, *act_field(&m->rc, i));
    memset(&m->rc, 0, sizeof m->rc);
    be->free(be, m->rc_out);
    m->rc_out = NULL;
    m->cap_tokens = m->cap_T = m->cap_B = 0;
}

/* Buffer shapes, Tl = T/CP tokens of each sequence here, N = B*Tl, Nl = N/tp
 * with sequence parallelism (else N), Hl, KVl, Fl, Vl this rank's heads, KV
 * heads, ffn and vocabulary:
 *   residual stream x_in, x_mid, x_out, d_res: [Nl, d]; rstd: [Nl]
 *   normed inputs of the matmuls h1, h2, h_final: [N, d] (with SP this rank
 *   writes its Nl rows and the all-gather fills the rest)
 *   q, o [N, Hl*hd]; k, v [N, KVl*hd]; att [B, Hl, Tl, T]; gate, up, act [N, Fl];
 *   logits [N, Vl]; CP: kg, vg [B*T, KVl*hd].
 * Here: the shared backward scratch; the slots come one by one (acquire). */
int herd_model_reserve(herd_model *m, int B, int T)
{
    if (B == m->cap_B && T == m->cap_T) return 0;
    if (T > m->dims.max_seq_len) {
        fprintf(stderr, "herd: model: sequence length %d exceeds model.max_seq_len %d\n", T,
                m->dims.max_seq_len);
        return -1;
    }
    if (m->cp && T % (2 * m->cp_size)) {
        fprintf(stderr, "herd: model: key 'batch.ramp': seq_len %d is not divisible by 2 x cp "
                "(%d): context parallelism cuts each sequence into 2 x cp chunks\n", T,
                2 * m->cp_size);
        return -1;
    }
    int Tl = T / m->cp_size;
    if (m->sp && ((long)B * Tl) % m->tp_size) {
        fprintf(stderr, "herd: model: %d x %d tokens do not split over tp %d (sequence "
                "parallel)\n", B, Tl, m->tp_size);
        return -1;
    }
    if (m->slots_in_use) {
        fprintf(stderr, "herd: model: micro-batch shape changed while %d activation slots are "
                "in use\n", m->slots_in_use);
        return -1;
    }
    free_acts(m);
    const herd_backend *be = m->be;
    size_t N = (size_t)B * Tl, Nl = m->sp ? N / m->tp_size : N, dm = m->dims.d_model,
           q = (size_t)m->n_heads_local * m->dims.head_dim,
           kv = (size_t)m->n_kv_local * m->dims.head_dim, f = m->ffn_local;
    int ok = 1;
#define ALLOC(ptr, count) (ok &= ((ptr) = be->alloc(be, sizeof(*(ptr)) * (count))) != NULL)
    ALLOC(m->d_res, Nl * dm);   ALLOC(m->d_h, N * dm);     ALLOC(m->d_q, N * q);
    ALLOC(m->d_k, N * kv);      ALLOC(m->d_v, N * kv);     ALLOC(m->d_o, N * q);
    ALLOC(m->d_gate, N * f);    ALLOC(m->d_up, N * f);     ALLOC(m->d_act, N * f);
    ALLOC(m->d_att, flash_always(m) ? 1 : (size_t)Tl * T);
    ALLOC(m->part, N * dm);     ALLOC(m->xent_tmp, 3 * N);
    if (m->has_head && xent_chunked(m)) /* one chunk's logits instead of [N, Vl] per slot */
        ALLOC(m->xent_scratch, N * (size_t)m->xent_chunk);
    if (m->sp) {
        ALLOC(m->d_full, N * dm);
        ALLOC(m->d_loc, Nl * dm);
    }
    if (m->cp) {
        ALLOC(m->d_kg, (size_t)B * T * kv);
        ALLOC(m->d_vg, (size_t)B * T * kv);
        ALLOC(m->cp_tmp, (size_t)B * T * kv);
    }
    /* the one layer's scratch that the dropped tensors of every layer view */
    m->cap_B = B;
    m->cap_T = T;
    m->T_local = Tl;
    for (int i = 0; ok && i < N_ACT_FIELDS; i++)
        if (m->recompute >= act_fields[i].dropped_from && act_numel(m, i))
            ALLOC(*act_field(&m->rc, i), act_numel(m, i));
    if (m->recompute == HERD_RECOMPUTE_FULL) ALLOC(m->rc_out, Nl * dm);
    if (!ok) {
        fprintf(stderr, "herd: model: out of memory for activations of %d x %d tokens\n", B, T);
        free_acts(m);
        return -1;
    }
    m->cap_B = B;
    m->cap_T = T;
    m->cap_tokens = (int)N;
    m->B = B;
    m->T = T;
    m->T_local = Tl;
    m->N_local = (int)Nl;
    return 0;
}

static int alloc_slot(herd_model *m, herd_act_slot *s, int chunk)
{
    const herd_backend *be = m->be;
    int B = m->cap_B, T = m->cap_T, Tl = m->T_local;
    size_t N = (size_t)B * Tl, Nl = m->sp ? N / m->tp_size : N, dm = m->dims.d_model,
           V = m->vocab_local;
    int ok = 1, nl = m->chunk_layers[chunk];
    memset(s, 0, sizeof *s);
    s->chunk = chunk;
    s->acts = calloc(nl, sizeof(*s->acts));
    ok &= s->acts != NULL;
    for (int l = 0; ok && l < nl; l++)
        for (int i = 0; ok && i < N_ACT_FIELDS; i++) {
            if (!act_numel(m, i)) continue;
            if (m->recompute >= act_fields[i].dropped_from)
                *act_field(&s->acts[l], i) = *act_field(&m->rc, i); /* refilled by the backward */
            else
                ALLOC(*act_field(&s->acts[l], i), act_numel(m, i));
        }
    ALLOC(s->x_out, Nl * dm); ALLOC(s->d_out, Nl * dm); ALLOC(s->d_in, Nl * dm);
    ALLOC(s->tokens, N); ALLOC(s->targets, N); ALLOC(s->pos, N); ALLOC(s->doc, N);
    if (m->cp) {
        ALLOC(s->kpos, (size_t)B * T);
        ALLOC(s->kdoc, (size_t)B * T);
    }
    if (m->has_head && herd_model_chunk_stage(m, chunk) == m->n_stages - 1) {
        ALLOC(s->h_final, N * dm); ALLOC(s->rstd_f, Nl);
        if (!xent_chunked(m)) ALLOC(s->logits, N * V); /* chunked: m->xent_scratch */
        ALLOC(s->losses, N);       ALLOC(s->lse, N);
    }
#undef ALLOC
    if (!ok) {
        fprintf(stderr, "herd: model: out of memory for one more activation slot (%d x %d "
                "tokens, %d layers)\n", B, T, nl);
        free_slot(m, s);
        return -1;
    }
    return 0;
}

int herd_model_slot_acquire(herd_model *m, int chunk)
{
    if (!m->cap_B) {
        fprintf(stderr, "herd: model: slot acquired before herd_model_reserve\n");
        return -1;
    }
    int i = 0;
    while (i < m->n_slots && (m->slots[i].in_use || m->slots[i].chunk != chunk || !m->slots[i].acts))
        i++;
    if (i == m->n_slots) {
        herd_act_slot *ns = realloc(m->slots, sizeof(*ns) * (m->n_slots + 1));
        if (!ns) return -1;
        m->slots = ns;
        if (alloc_slot(m, &m->slots[i], chunk)) return -1;
        m->n_slots++;
    }
    m->slots[i].in_use = 1;
    if (++m->slots_in_use > m->peak_slots) m->peak_slots = m->slots_in_use;
    return i;
}

void herd_model_slot_release(herd_model *m, int slot)
{
    if (slot < 0 || slot >= m->n_slots || !m->slots[slot].in_use) return;
    m->slots[slot].in_use = 0;
    m->slots_in_use--;
}

size_t herd_model_io_numel(const herd_model *m) { return (size_t)m->N_local * m->dims.d_model; }

/* This rank's tokens of each sequence: with CP the sequence is cut into 2*CP
 * chunks of C = T/(2CP) and rank r holds chunks r and 2CP-1-r (equal causal
 * work); positions stay global. Local token j of a sequence is global token
 * local_pos(r, j). */
static int local_pos(int cp, int r, int C, int j)
{
    return j < C ? r * C + j : (2 * cp - 1 - r) * C + (j - C);
}

int herd_model_slot_set_batch(herd_model *m, int slot, const int32_t *tokens,
                              const int32_t *targets, const int32_t *doc, int B, int T)
{
    if (herd_model_reserve(m, B, T)) return -1;
    const herd_backend *be = m->be;
    herd_act_slot *s = &m->slots[slot];
    int cp = m->cp_size, Tl = m->T_local, C = T / (2 * cp), V = m->vocab_local;
    size_t N = (size_t)B * Tl;
    int32_t *h = malloc(sizeof(int32_t) * 4 * N);
    if (!h) return -1;
    int32_t *tok = h, *tgt = h + N, *pos = h + 2 * N, *dc = h + 3 * N;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < Tl; j++) {
            int p = cp > 1 ? local_pos(cp, m->cp_rank, C, j) : j;
            size_t i = (size_t)b * Tl + j, g = (size_t)b * T + p;
            int32_t t = tokens[g] - m->vocab_start; /* this rank's vocabulary rows */
            tok[i] = t >= 0 && t < V ? t : -1;
            tgt[i] = targets[g];
            pos[i] = p;
            dc[i] = doc[g];
        }
    be->copy_h2d(be, s->tokens, tok, sizeof(int32_t) * N);
    be->copy_h2d(be, s->targets, tgt, sizeof(int32_t) * N);
    be->copy_h2d(be, s->pos, pos, sizeof(int32_t) * N);
    be->copy_h2d(be, s->doc, dc, sizeof(int32_t) * N);
    free(h);
    if (cp > 1) { /* the gathered keys: [b][r*Tl + j] is rank r's local token j */
        int32_t *kp = malloc(sizeof(int32_t) * 2 * (size_t)B * T), *kd = kp ? kp + (size_t)B * T : NULL;
        if (!kp) return -1;
        for (int b = 0; b < B; b++)
            for (int r = 0; r < cp; r++)
                for (int j = 0; j < Tl; j++) {
                    int p = local_pos(cp, r, C, j);
                    kp[(size_t)b * T + r * Tl + j] = p;
                    kd[(size_t)b * T + r * Tl + j] = doc[(size_t)b * T + p];
                }
        be->copy_h2d(be, s->kpos, kp, sizeof(int32_t) * (size_t)B * T);
        be->copy_h2d(be, s->kdoc, kd, sizeof(int32_t) * (size_t)B * T);
        free(kp);
    }
    return 0;
}

void herd_model_destroy(herd_model *m)
{
    if (!m->be) return;
    free_acts(m);
    m->be->free(m->be, m->params);
    m->be->free(m->be, m->grads);
    m->be->free(m->be, m->rope_cs);
    free(m->layer);
    free(m->g_layer);
    free(m->tensors);
    free(m->chunk_first);
    free(m->chunk_layers);
    free(m->layer_gid);
    free(m->simple_slot);
    herd_comm_destroy(m->kv_group);
    memset(m, 0, sizeof(*m));
}

int herd_model_set_recompute(herd_model *m, int mode)
{
    if (mode < HERD_RECOMPUTE_NONE || mode > HERD_RECOMPUTE_FULL) {
        fprintf(stderr, "herd: model: recompute mode %d is not none, selective or full\n", mode);
        return -1;
    }
    if (m->slots_in_use) {
        fprintf(stderr, "herd: model: recompute mode changed while %d activation slots are in "
                "use\n", m->slots_in_use);
        return -1;
    }
    if (mode != m->recompute) free_acts(m); /* the next reserve allocates for the mode */
    m->recompute = mode;
    return 0;
}

void herd_model_zero_grad(herd_model *m) { m->be->zero(m->be, m->grads, (size_t)m->n_params); }

const herd_tensor *herd_model_find(const herd_model *m, const char *name)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

/* ---- tensor-parallel data movement ----------------------------------------
 * A failed collective leaves the other ranks of the group waiting: abort. */

static void tp_check(int rc)
{
    if (rc) herd_comm_abort(1);
}

/* Rows of the [N, d] buffer `full` that this rank computes under SP. */
static float *my_rows(const herd_model *m, float *full)
{
    return m->sp ? full + (size_t)m->tp_rank * m->N_local * m->dims.d_model : full;
}

/* full[N, d] <- the rows of every rank (each rank wrote its rows in place). */
static void gather_rows(herd_model *m, float *full)
{
    if (!m->sp) return;
    size_t *counts = malloc(sizeof(size_t) * m->tp_size);
    for (int r = 0; r < m->tp_size; r++) counts[r] = (size_t)m->N_local * m->dims.d_model;
    tp_check(herd_comm_all_gather(m->tp, my_rows(m, full), full, counts, HERD_F32));
    free(counts);
}

/* out[Nl, d] <- sum over the TP group of part[N, d] (this rank's rows with SP:
 * a reduce-scatter; all of them without: an all-reduce). part is clobbered;
 * the result may be `part` itself only without SP. */
static void reduce_rows(herd_model *m, float *out, float *part)
{
    const herd_backend *be = m->be;
    size_t n = (size_t)m->N_local * m->dims.d_model;
    if (m->sp) {
        size_t *counts = malloc(sizeof(size_t) * m->tp_size);
        for (int r = 0; r < m->tp_size; r++) counts[r] = n;
        tp_check(herd_comm_reduce_scatter(m->tp, part, out, counts, HERD_F32));
        free(counts);
        return;
    }
    if (m->tp) tp_check(herd_comm_all_reduce(m->tp, part, n, HERD_F32, HERD_SUM));
    if (out != part) be->copy_d2d(be, out, part, sizeof(float) * n);
}

/* The fused output projection + cross-entropy (train.xent_chunk): chunk c of
 * this rank's vocabulary rows [v, v + Vc) of lm_head gives logits_c [N, Vc] =
 * h_final [N, d] @ W_c^T in the one scratch [N, xent_chunk], folded at once
 * into a running (max, sum of exp, picked logit) per row (online softmax), so
 * the [N, Vl] logits never exist. Leaves xent_tmp = [max, sumexp, pick] with
 * the max already all-reduced over TP and each rank's sum rescaled to it,
 * ready for xent_forward's all-reduce of the sums. */
static void xent_forward_chunked(herd_model *m, herd_act_slot *s, int N)
{
    const herd_backend *be = m->be;
    int V = m->vocab_local, dm = m->dims.d_model;
    float *mx = m->xent_tmp, *se = mx + N, *pick = mx + 2 * (size_t)N;
    float *h = malloc(sizeof(float) * 2 * (size_t)N);
    if (!h) herd_comm_abort(1);
    for (int i = 0; i < N; i++) h[i] = -INFINITY, h[N + i] = 0.0f;
    be->copy_h2d(be, mx, h, sizeof(float) * (size_t)N);
    be->zero(be, se, 2 * (size_t)N); /* sumexp and picked */
    for (int v = 0; v < V; v += m->xent_chunk) {
        int Vc = V - v < m->xent_chunk ? V - v : m->xent_chunk;
        be->matmul_fwd(be, m->xent_scratch, s->h_final, m->lm_head + (size_t)v * dm, N, Vc, dm, 0);
        be->xent_chunk_update(be, mx, se, pick, m->xent_scratch, s->targets, m->vocab_start + v, N,
                              Vc);
    }
    if (m->tp) {
        /* each rank's sum is relative to its own max: move it to the global one,
         * sumexp_r * exp(m_r - M), on the host (N floats, as the lse below) */
        be->copy_d2h(be, h, mx, sizeof(float) * 2 * (size_t)N); /* [m_r, sumexp_r] */
        tp_check(herd_comm_all_reduce(m->tp, mx, (size_t)N, HERD_F32, HERD_MAX));
        float *gm = malloc(sizeof(float) * (size_t)N);
        if (!gm) herd_comm_abort(1);
        be->copy_d2h(be, gm, mx, sizeof(float) * (size_t)N);
        for (int i = 0; i < N; i++) h[N + i] *= expf(h[i] - gm[i]);
        be->copy_h2d(be, se, h + N, sizeof(float) * (size_t)N);
        free(gm);
    }
    free(h);
}

/* The reward head's gradient of the logits [N, V] (columns from v0): one
 * entry per scored token, where this slice holds score_col. */
static void score_bwd(herd_model *m, herd_act_slot *s, float *logits, int v0, int V, float loss_scale)
{
    const herd_backend *be = m->be;
    size_t N = (size_t)m->B * m->T_local;
    int col = m->score_col - v0;
    be->zero(be, logits, N * V);
    if (col < 0 || col >= V) return;
    int32_t *tg = malloc(sizeof(int32_t) * N);
    if (!tg) herd_comm_abort(1);
    be->copy_d2h(be, tg, s->targets, sizeof(int32_t) * N);
    for (size_t i = 0; i < N; i++) {
        if (tg[i] != HERD_TARGET_SCORE) continue;
        float g = loss_scale * s->seq_w[i / m->T_local];
        be->copy_h2d(be, logits + i * V + col, &g, sizeof g);
    }
    free(tg);
}

/* The gradient of the logits [N, V] (a vocabulary slice from column v0):
 * the token cross-entropy's, or under a sequence loss each row's weighted. */
static void xent_bwd_rows(herd_model *m, herd_act_slot *s, float *logits, int v0, int V,
                          float loss_scale)
{
    const herd_backend *be = m->be;
    int Tl = m->T_local;
    if (!m->seq_loss) {
        be->xent_bwd_range(be, logits, s->lse, s->targets, v0, m->B * Tl, V, loss_scale);
        return;
    }
    if (m->score_col > 0) {
        score_bwd(m, s, logits, v0, V, loss_scale);
        return;
    }
    for (int b = 0; b < m->B; b++) /* a row's tokens are contiguous: one call per row */
        be->xent_bwd_range(be, logits + (size_t)b * Tl * V, s->lse + (size_t)b * Tl,
                           s->targets + (size_t)b * Tl, v0, Tl, V, loss_scale * s->seq_w[b]);
}

/* The backward of the chunked head: each chunk's logits are recomputed (the
 * same GEMM), turned into dlogits in place, and pushed through the GEMM's
 * backward: d_h [N, d] (+)= dlogits_c @ W_c, g_lm_head rows of the chunk +=
 * dlogits_c^T @ h_final (lm_head is [Vl, d] row-major: a chunk's rows are
 * contiguous). Costs one more [N, Vl, d] GEMM than the stored logits. */
static void xent_backward_chunked(herd_model *m, herd_act_slot *s, int N, float loss_scale)
{
    const herd_backend *be = m->be;
    int V = m->vocab_local, dm = m->dims.d_model;
    for (int v = 0; v < V; v += m->xent_chunk) {
        int Vc = V - v < m->xent_chunk ? V - v : m->xent_chunk;
        const float *w = m->lm_head + (size_t)v * dm;
        be->matmul_fwd(be, m->xent_scratch, s->h_final, w, N, Vc, dm, 0);
        xent_bwd_rows(m, s, m->xent_scratch, m->vocab_start + v, Vc, loss_scale);
        be->matmul_bwd(be, m->d_h, m->g_lm_head + (size_t)v * dm, m->xent_scratch, s->h_final, w, N,
                       Vc, dm, v > 0);
    }
}

/* Vocabulary-parallel cross-entropy: the full logits are never gathered; each
 * rank reduces its columns and the TP group combines three numbers per row. */
static void xent_forward(herd_model *m, herd_act_slot *s, int N)
{
    const herd_backend *be = m->be;
    int V = m->vocab_local;
    float *mx = m->xent_tmp, *se_pick = m->xent_tmp + N; /* [N], [2N] */
    if (xent_chunked(m)) {
        xent_forward_chunked(m, s, N);
    } else {
        be->xent_row_max(be, mx, s->logits, N, V);
        if (m->tp) tp_check(herd_comm_all_reduce(m->tp, mx, (size_t)N, HERD_F32, HERD_MAX));
        be->xent_sumexp_pick(be, se_pick, se_pick + N, s->logits, mx, s->targets, m->vocab_start,
                             N, V);
    }
    if (m->tp) tp_check(herd_comm_all_reduce(m->tp, se_pick, 2 * (size_t)N, HERD_F32, HERD_SUM));
    /* lse and the losses from N triples on the host (a few floats per token) */
    float *h = malloc(sizeof(float) * 3 * (size_t)N);
    int32_t *tg = malloc(sizeof(int32_t) * (size_t)N);
    be->copy_d2h(be, h, m->xent_tmp, sizeof(float) * 3 * (size_t)N);
    be->copy_d2h(be, tg, s->targets, sizeof(int32_t) * (size_t)N);
    float *lse = malloc(sizeof(float) * 2 * (size_t)N), *loss = lse + N;
    for (int i = 0; i < N; i++) {
        lse[i] = h[i] + logf(h[N + i]);
        loss[i] = tg[i] >= 0 ? lse[i] - h[2 * N + i] : 0.0f;
    }
    be->copy_h2d(be, s->lse, lse, sizeof(float) * (size_t)N);
    be->copy_h2d(be, s->losses, loss, sizeof(float) * (size_t)N);
    free(h);
    free(tg);
    free(lse);
}


/* ---- context-parallel keys and values --------------------------------------
 * The paper's choice over ring attention: every CP rank all-gathers K and V
 * of the whole sequence (they are small under GQA) and its queries attend to
 * them with global positions; the gradients of K and V are reduce-scattered
 * back to the ranks that own those tokens. */

/* full[B, T, kv] <- every CP rank's local[B, Tl, kv]: the all-gather is
 * rank-major ([CP][B][Tl]); each sequence's keys are put together
 * ([B][CP*Tl], key r*Tl + j being rank r's local token j: slot->kpos). */
static void cp_gather(herd_model *m, float *full, const float *local)
{
    int B = m->B, T = m->T, Tl = m->T_local, cp = m->cp_size;
    size_t kvd = (size_t)m->n_kv_local * m->dims.head_dim, blk = (size_t)Tl * kvd;
    size_t *counts = calloc((size_t)cp, sizeof(size_t));
    for (int r = 0; r < cp; r++) counts[r] = (size_t)B * blk;
    tp_check(herd_comm_all_gather(m->cp, local, m->cp_tmp, counts, HERD_F32));
    free(counts);
    for (int r = 0; r < cp; r++)
        for (int b = 0; b < B; b++)
            m->be->copy_d2d(m->be, full + ((size_t)b * T + (size_t)r * Tl) * kvd,
                            m->cp_tmp + ((size_t)r * B + b) * blk, sizeof(float) * blk);
}

/* local[B, Tl, kv] <- sum over the CP group of the gradient rows of this
 * rank's tokens in every rank's full[B, T, kv] (reduce-scatter). */
static void cp_reduce_grad(herd_model *m, float *local, const float *full)
{
    int B = m->B, T = m->T, Tl = m->T_local, cp = m->cp_size;
    size_t kvd = (size_t)m->n_kv_local * m->dims.head_dim, blk = (size_t)Tl * kvd;
    for (int r = 0; r < cp; r++)
        for (int b = 0; b < B; b++)
            m->be->copy_d2d(m->be, m->cp_tmp + ((size_t)r * B + b) * blk,
                            full + ((size_t)b * T + (size_t)r * Tl) * kvd, sizeof(float) * blk);
    size_t *counts = calloc((size_t)cp, sizeof(size_t));
    for (int r = 0; r < cp; r++) counts[r] = (size_t)B * blk;
    tp_check(herd_comm_reduce_scatter(m->cp, m->cp_tmp, local, counts, HERD_F32));
    free(counts);
}

/* ---- forward ------------------------------------------------------------- */

/* One layer's forward: slot s's layer li (of its chunk) from acts[li].x_in
 * into x_out [Nl, d], keeping what the backward reads in acts[li] (with
 * recomputation some of those buffers are the model's one-layer scratch). */
static void layer_forward(herd_model *m, herd_act_slot *s, int li, float *x_out)
{
    const herd_backend *be = m->be;
    const herd_model_dims *d = &m->dims;
    int B = m->B, T = m->T, Tl = m->T_local, N = B * Tl, Nl = m->N_local, dm = d->d_model,
        H = m->n_heads_local, KV = m->n_kv_local, hd = d->head_dim, F = m->ffn_local;
    float eps = (float)d->norm_eps;
    herd_layer_acts *a = &s->acts[li];
    const herd_layer_params *p = &m->layer[m->chunk_first[s->chunk] + li];
    /* attention block: norm (own rows), gather, column-parallel q/k/v */
    be->rmsnorm_fwd(be, my_rows(m, a->h1), a->rstd1, a->x_in, p->attn_norm, Nl, dm, eps);
    gather_rows(m, a->h1);
    be->matmul_fwd(be, a->q, a->h1, p->wq, N, H * hd, dm, 0);   /* [N, Hl*hd] */
    be->matmul_fwd(be, a->k, a->h1, p->wk, N, KV * hd, dm, 0);  /* [N, KVl*hd] */
    be->matmul_fwd(be, a->v, a->h1, p->wv, N, KV * hd, dm, 0);
    be->rope_fwd(be, a->q, m->rope_cs, s->pos, N, H, hd);        /* global positions */
    be->rope_fwd(be, a->k, m->rope_cs, s->pos, N, KV, hd);
    if (m->cp) {
        cp_gather(m, a->kg, a->k);
        cp_gather(m, a->vg, a->v);
        be->attention_fwd_pos(be, a->o, a->att, a->q, a->kg, a->vg, s->pos, s->doc, s->kpos,
                              s->kdoc, B, Tl, T, H, KV, hd);
    } else if (use_flash(m)) {
        be->attention_flash_fwd(be, a->o, a->att, a->q, a->k, a->v, s->doc, B, T, H, KV, hd);
    } else {
        be->attention_fwd(be, a->o, a->att, a->q, a->k, a->v, s->doc, B, T, H, KV, hd);
    }
    /* row-parallel o_proj: partial sums, reduced, then the residual */
    be->matmul_fwd(be, m->part, a->o, p->wo, N, dm, H * hd, 0);
    reduce_rows(m, a->x_mid, m->part);
    be->add_inplace(be, a->x_mid, a->x_in, (size_t)Nl * dm);
    /* feed-forward block */
    be->rmsnorm_fwd(be, my_rows(m, a->h2), a->rstd2, a->x_mid, p->ffn_norm, Nl, dm, eps);
    gather_rows(m, a->h2);
    be->matmul_fwd(be, a->gate, a->h2, p->w_gate, N, F, dm, 0); /* [N, Fl] */
    be->matmul_fwd(be, a->up, a->h2, p->w_up, N, F, dm, 0);
    be->swiglu_fwd(be, a->act, a->gate, a->up, (size_t)N * F);
    be->matmul_fwd(be, m->part, a->act, p->w_down, N, dm, F, 0);
    reduce_rows(m, x_out, m->part);
    be->add_inplace(be, x_out, a->x_mid, (size_t)Nl * dm);
}

/* The reward head's input: x[b] (+)= logit [i, score_col] of row b's scored
 * token i, from the TP rank whose vocabulary slice holds the column; x[B + b]
 * counts those tokens. */
static void score_gather(herd_model *m, herd_act_slot *s, const int32_t *tg, double *x)
{
    int B = m->B, Tl = m->T_local, V = m->vocab_local, col = m->score_col - m->vocab_start;
    for (size_t i = 0; i < (size_t)B * Tl; i++) {
        if (tg[i] != HERD_TARGET_SCORE) continue;
        x[B + i / Tl] += 1;
        if (col < 0 || col >= V) continue;
        float v;
        m->be->copy_d2h(m->be, &v, s->logits + i * V + col, sizeof v);
        x[i / Tl] += v;
    }
    if (m->tp) tp_check(herd_comm_all_reduce(m->tp, x, (size_t)B, HERD_F64, HERD_SUM));
}

/* The head of a sequence loss (model.h herd_seq_loss_fn): each row's summed
 * log-probability over its CP shards, then the hook's loss and row weights. */
static double seq_loss_forward(herd_model *m, herd_act_slot *s, const float *losses)
{
    int B = m->B, Tl = m->T_local;
    size_t N = (size_t)B * Tl;
    double *lp = calloc(2 * (size_t)B, sizeof(double)); /* logp [B], then counts [B] */
    int32_t *tg = malloc(sizeof(int32_t) * N);
    int64_t *n = malloc(sizeof(int64_t) * B);
    float *w = realloc(s->seq_w, sizeof(float) * B);
    if (!lp || !tg || !n || !w) herd_comm_abort(1); /* the other ranks wait on this one */
    s->seq_w = w;
    m->be->copy_d2h(m->be, tg, s->targets, sizeof(int32_t) * N);
    if (m->score_col > 0) {
        score_gather(m, s, tg, lp);
    } else {
        for (size_t i = 0; i < N; i++)
            if (tg[i] >= 0) lp[i / Tl] -= losses[i], lp[B + i / Tl] += 1;
    }
    if (m->cp) tp_check(herd_comm_all_reduce(m->cp, lp, 2 * (size_t)B, HERD_F64, HERD_SUM));
    for (int b = 0; b < B; b++) n[b] = (int64_t)lp[B + b];
    double loss = m->seq_loss(m->seq_loss_ctx, s->row0, lp, n, B, w);
    free(lp), free(tg), free(n);
    return loss;
}

double herd_model_chunk_forward(herd_model *m, int slot)
{
    const herd_backend *be = m->be;
    const herd_model_dims *d = &m->dims;
    herd_act_slot *s = &m->slots[slot];
    int c = s->chunk, stage = herd_model_chunk_stage(m, c), nl = m->chunk_layers[c];
    int N = m->B * m->T_local, Nl = m->N_local, dm = d->d_model, V = m->vocab_local;
    float eps = (float)d->norm_eps;

    if (stage == 0) { /* vocabulary-parallel embedding: each rank looks up its rows, zeros elsewhere */
        be->embedding_fwd(be, m->tp ? m->part : s->acts[0].x_in, s->tokens, m->wte, N, dm);
        if (m->tp) reduce_rows(m, s->acts[0].x_in, m->part);
    }
    for (int li = 0; li < nl; li++)
        layer_forward(m, s, li, li + 1 < nl ? s->acts[li + 1].x_in : s->x_out);
    if (stage != m->n_stages - 1) return 0.0;
    be->rmsnorm_fwd(be, my_rows(m, s->h_final), s->rstd_f, s->x_out, m->norm_f, Nl, dm, eps);
    gather_rows(m, s->h_final);
    if (!xent_chunked(m)) /* [N, Vl]; chunked: inside xent_forward, Vc columns at a time */
        be->matmul_fwd(be, s->logits, s->h_final, m->lm_head, N, V, dm, 0);
    xent_forward(m, s, N);
    float *losses = malloc(sizeof(float) * N);
    be->copy_d2h(be, losses, s->losses, sizeof(float) * N);
    if (m->seq_loss) {
        double l = seq_loss_forward(m, s, losses);
        free(losses);
        return l;
    }
    double sum = 0.0;
    for (int i = 0; i < N; i++) sum += losses[i];  /* ignored targets contribute 0 */
    free(losses);
    if (m->cp) tp_check(herd_comm_all_reduce(m->cp, &sum, 1, HERD_F64, HERD_SUM));
    return sum;
}

/* ---- backward ------------------------------------------------------------ */

/* The gradient of the residual stream as the [N, d] input of a row-parallel
 * matmul's backward: d_res itself without SP, gathered from all ranks with. */
static float *full_grad(herd_model *m)
{
    if (!m->sp) return m->d_res;
    size_t n = (size_t)m->N_local * m->dims.d_model;
    m->be->copy_d2d(m->be, my_rows(m, m->d_full), m->d_res, sizeof(float) * n);
    gather_rows(m, m->d_full);
    return m->d_full;
}

/* d_h [N, d] holds partial sums over the TP group: reduce to this rank's rows. */
static float *reduced_dh(herd_model *m)
{
    if (!m->tp) return m->d_h;
    float *out = m->sp ? m->d_loc : m->d_h;
    reduce_rows(m, out, m->d_h);
    return out;
}

/* SELECTIVE: refill layer li's dropped tensors, the two RMSNorm outputs
 * (gathered over TP with SP) and silu(gate) * up, from what the slot kept.
 * rstd is rewritten with the value it had. */
static void recompute_selective(herd_model *m, herd_act_slot *s, int li)
{
    const herd_backend *be = m->be;
    herd_layer_acts *a = &s->acts[li];
    const herd_layer_params *p = &m->layer[m->chunk_first[s->chunk] + li];
    int Nl = m->N_local, dm = m->dims.d_model;
    float eps = (float)m->dims.norm_eps;
    be->rmsnorm_fwd(be, my_rows(m, a->h1), a->rstd1, a->x_in, p->attn_norm, Nl, dm, eps);
    gather_rows(m, a->h1);
    be->rmsnorm_fwd(be, my_rows(m, a->h2), a->rstd2, a->x_mid, p->ffn_norm, Nl, dm, eps);
    gather_rows(m, a->h2);
    be->swiglu_fwd(be, a->act, a->gate, a->up, (size_t)m->B * m->T_local * m->ffn_local);
}

/* Tensors per transformer layer, in build_table's order. */
enum { LAYER_TENSORS = 9 };

/* The hook of model.h, for tensors [t0, t1), on the step's last backward. */
static void grads_ready(herd_model *m, int t0, int t1)
{
    if (m->grad_ready && m->grad_final && t1 > t0) m->grad_ready(m->grad_ready_ctx, m, t0, t1);
}

void herd_model_chunk_backward(herd_model *m, int slot, float loss_scale)
{
    const herd_backend *be = m->be;
    const herd_model_dims *d = &m->dims;
    herd_act_slot *s = &m->slots[slot];
    int c = s->chunk, stage = herd_model_chunk_stage(m, c), nl = m->chunk_layers[c];
    int B = m->B, T = m->T, Tl = m->T_local, N = B * Tl, Nl = m->N_local, dm = d->d_model,
        H = m->n_heads_local, KV = m->n_kv_local, hd = d->head_dim, F = m->ffn_local,
        V = m->vocab_local;

    if (stage == m->n_stages - 1) {
        if (xent_chunked(m)) {
            xent_backward_chunked(m, s, N, loss_scale);
        } else {
            xent_bwd_rows(m, s, s->logits, m->vocab_start, V, loss_scale);
            be->matmul_bwd(be, m->d_h, m->g_lm_head, s->logits, s->h_final, m->lm_head, N, V, dm,
                           0);
        }
        be->zero(be, m->d_res, (size_t)Nl * dm);
        be->rmsnorm_bwd(be, m->d_res, m->g_norm_f, reduced_dh(m), s->x_out, m->norm_f, s->rstd_f,
                        Nl, dm);
        grads_ready(m, m->has_embed + LAYER_TENSORS * m->n_layers_local, m->n_tensors);
    } else {
        be->copy_d2d(be, m->d_res, s->d_out, sizeof(float) * (size_t)Nl * dm);
    }
    for (int li = nl - 1; li >= 0; li--) {
        if (m->recompute == HERD_RECOMPUTE_FULL)
            layer_forward(m, s, li, m->rc_out);
        else if (m->recompute == HERD_RECOMPUTE_SELECTIVE)
            recompute_selective(m, s, li);
        const herd_layer_acts *a = &s->acts[li];
        const herd_layer_params *p = &m->layer[m->chunk_first[c] + li];
        herd_layer_params *g = &m->g_layer[m->chunk_first[c] + li];
        /* feed-forward block; d_res is the gradient of the layer's output */
        be->matmul_bwd(be, m->d_act, g->w_down, full_grad(m), a->act, p->w_down, N, dm, F, 0);
        be->swiglu_bwd(be, m->d_gate, m->d_up, m->d_act, a->gate, a->up, (size_t)N * F);
        be->matmul_bwd(be, m->d_h, g->w_gate, m->d_gate, a->h2, p->w_gate, N, F, dm, 0);
        be->matmul_bwd(be, m->d_h, g->w_up, m->d_up, a->h2, p->w_up, N, F, dm, 1);
        be->rmsnorm_bwd(be, m->d_res, g->ffn_norm, reduced_dh(m), a->x_mid, p->ffn_norm, a->rstd2,
                        Nl, dm);
        /* attention block; d_res is now the gradient of x_mid */
        be->matmul_bwd(be, m->d_o, g->wo, full_grad(m), a->o, p->wo, N, dm, H * hd, 0);
        if (m->cp) {
            be->attention_bwd_pos(be, m->d_q, m->d_kg, m->d_vg, m->d_att, m->d_o, a->att, a->q,
                                  a->kg, a->vg, B, Tl, T, H, KV, hd);
            cp_reduce_grad(m, m->d_k, m->d_kg);
            cp_reduce_grad(m, m->d_v, m->d_vg);
        } else if (use_flash(m)) {
            be->attention_flash_bwd(be, m->d_q, m->d_k, m->d_v, m->d_o, a->o, a->att, a->q, a->k,
                                    a->v, s->doc, B, T, H, KV, hd);
        } else {
            be->attention_bwd(be, m->d_q, m->d_k, m->d_v, m->d_att, m->d_o, a->att, a->q, a->k,
                              a->v, s->doc, B, T, H, KV, hd);
        }
        be->rope_bwd(be, m->d_q, m->rope_cs, s->pos, N, H, hd);
        be->rope_bwd(be, m->d_k, m->rope_cs, s->pos, N, KV, hd);
        be->matmul_bwd(be, m->d_h, g->wq, m->d_q, a->h1, p->wq, N, H * hd, dm, 0);
        be->matmul_bwd(be, m->d_h, g->wk, m->d_k, a->h1, p->wk, N, KV * hd, dm, 1);
        be->matmul_bwd(be, m->d_h, g->wv, m->d_v, a->h1, p->wv, N, KV * hd, dm, 1);
        be->rmsnorm_bwd(be, m->d_res, g->attn_norm, reduced_dh(m), a->x_in, p->attn_norm, a->rstd1,
                        Nl, dm);
        int t0 = m->has_embed + LAYER_TENSORS * (m->chunk_first[c] + li);
        grads_ready(m, t0, t0 + LAYER_TENSORS);
    }
    if (stage == 0) {
        be->embedding_bwd(be, m->g_wte, full_grad(m), s->tokens, N, dm);
        grads_ready(m, 0, m->has_embed);
    }
    else be->copy_d2d(be, s->d_in, m->d_res, sizeof(float) * (size_t)Nl * dm);
}

/* ---- the whole model, stage after stage ---------------------------------- */

enum { SIMPLE_TAG = 1 << 24 }; /* apart from src/parallel/pipeline.c's tags */

static void release_simple(herd_model *m)
{
    for (int c = 0; c < m->n_chunks; c++) {
        herd_model_slot_release(m, m->simple_slot[c]);
        m->simple_slot[c] = -1;
    }
}

void herd_model_drop_forward(herd_model *m)
{
    release_simple(m);
    m->have_forward = 0;
}

double herd_model_forward(herd_model *m, const int32_t *tokens, const int32_t *targets,
                          const int32_t *doc, int B, int T, int64_t *n_valid)
{
    release_simple(m);
    m->have_forward = 0;
    if (herd_model_reserve(m, B, T)) return NAN;
    int64_t valid = 0;
    for (int i = 0; i < B * T; i++) valid += targets[i] >= 0;
    double loss = 0.0;
    int P = m->pp_size, S = m->n_stages;
    for (int st = 0; st < S; st++) {
        if (st % P != m->pp_rank) continue;
        int c = st / P, slot = herd_model_slot_acquire(m, c);
        if (slot < 0 || herd_model_slot_set_batch(m, slot, tokens, targets, doc, B, T))
            herd_comm_abort(1); /* the other stages wait on this one */
        m->simple_slot[c] = slot;
        herd_act_slot *s = &m->slots[slot];
        s->row0 = 0;
        if (st > 0)
            tp_check(herd_comm_recv(m->pp, s->acts[0].x_in, herd_model_io_numel(m), HERD_F32,
                                    (st - 1) % P, SIMPLE_TAG + st));
        loss += herd_model_chunk_forward(m, slot);
        if (st + 1 < S)
            tp_check(herd_comm_send(m->pp, s->x_out, herd_model_io_numel(m), HERD_F32,
                                    (st + 1) % P, SIMPLE_TAG + st + 1));
        if (st == S - 1) m->logits = s->logits;
    }
    if (m->pp) tp_check(herd_comm_broadcast(m->pp, &loss, 1, HERD_F64, P - 1));
    if (n_valid) *n_valid = valid;
    m->have_forward = 1;
    return loss;
}

void herd_model_backward(herd_model *m, float loss_scale)
{
    if (!m->have_forward) {
        fprintf(stderr, "herd: model: backward without a forward\n");
        abort();
    }
    int P = m->pp_size, S = m->n_stages;
    for (int st = S - 1; st >= 0; st--) {
        if (st % P != m->pp_rank) continue;
        int slot = m->simple_slot[st / P];
        herd_act_slot *s = &m->slots[slot];
        if (st + 1 < S)
            tp_check(herd_comm_recv(m->pp, s->d_out, herd_model_io_numel(m), HERD_F32,
                                    (st + 1) % P, 2 * SIMPLE_TAG + st));
        herd_model_chunk_backward(m, slot, loss_scale);
        if (st > 0)
            tp_check(herd_comm_send(m->pp, s->d_in, herd_model_io_numel(m), HERD_F32,
                                    (st - 1) % P, 2 * SIMPLE_TAG + st - 1));
    }
    release_simple(m);
    m->have_forward = 0;  /* the logits now hold their gradient */
}

int herd_model_sync_grads_range(herd_model *m, int t0, int t1)
{
    if (t1 <= t0) return 0;
    for (int i = t0; i < t1; i++) {
        const herd_tensor *t = &m->tensors[i];
        float *g = m->grads + t->offset;
        /* under SP each rank's norm gradient covers its own tokens only */
        if (m->sp && t->split == HERD_TP_WHOLE &&
            herd_comm_all_reduce(m->tp, g, (size_t)t->numel, HERD_F32, HERD_SUM))
            return -1;
        /* a replicated KV head got gradient from each copy's query heads */
        if (m->kv_group && t->tp_copies > 1 && t->split != HERD_TP_WHOLE &&
            herd_comm_all_reduce(m->kv_group, g, (size_t)t->numel, HERD_F32, HERD_SUM))
            return -1;
    }
    /* each CP rank saw its chunks of every sequence */
    const herd_tensor *first = &m->tensors[t0], *last = &m->tensors[t1 - 1];
    if (m->cp && herd_comm_all_reduce(m->cp, m->grads + first->offset,
                                      (size_t)(last->offset + last->numel - first->offset),
                                      HERD_F32, HERD_SUM))
        return -1;
    return 0;
}

int herd_model_sync_grads(herd_model *m)
{
    return herd_model_sync_grads_range(m, 0, m->n_tensors);
}

void herd_model_drop_grads(herd_model *m)
{
    m->be->free(m->be, m->grads);
    m->grads = NULL;
    m->g_wte = m->g_norm_f = m->g_lm_head = NULL;
    memset(m->g_layer, 0, sizeof(*m->g_layer) * (size_t)m->n_layers_local);
}
