/* generate.c — KV-cached decoding (see generate.h).
 *
 * The cached forward is the model's forward restricted to new rows: each row
 * is (sequence b, position p, token). Its k and v are written into the cache
 * at [layer][b][p] first, then its query attends over cache rows 0..p of its
 * own sequence: rows of one sequence at increasing positions can go in one
 * call (the prefill), since a row never reads a later position. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/model/generate.h"
#include "src/base/rng.h"

typedef struct {
    herd_model *m;
    const herd_backend *be;
    int B, S;          /* sequences, positions per sequence */
    float *k, *v;      /* [L, B, S, KVl*hd] this rank's KV heads, after RoPE (k) */
    /* scratch for R rows (local widths: Hl heads, KVl KV heads, Fl, Vl) */
    int cap;
    float *x, *h, *q, *kn, *vn, *o, *gate, *up, *act, *part, *rstd, *logits, *score;
    float *gath, *full; /* TP: [tp, R, Vl] the gathered vocabulary slices, [R, V] in order */
    int32_t *tok, *pos;
} kv_state;

static void kv_free(kv_state *s)
{
    float **f[] = {&s->k, &s->v, &s->x, &s->h, &s->q, &s->kn, &s->vn, &s->o, &s->gate, &s->up,
                   &s->act, &s->part, &s->rstd, &s->logits, &s->score, &s->gath, &s->full};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) free(*f[i]), *f[i] = NULL;
    free(s->tok);
    free(s->pos);
    s->tok = s->pos = NULL;
    s->cap = 0;
}

static int kv_reserve(kv_state *s, int R)
{
    if (R <= s->cap) return 0;
    const herd_model *m = s->m;
    const herd_model_dims *d = &m->dims;
    size_t dm = d->d_model, q = (size_t)m->n_heads_local * d->head_dim,
           kv = (size_t)m->n_kv_local * d->head_dim, F = m->ffn_local, Vl = m->vocab_local,
           V = d->vocab_size, tp = m->tp_size > 1;
    float **f[] = {&s->x, &s->h, &s->q, &s->kn, &s->vn, &s->o, &s->gate, &s->up, &s->act,
                   &s->part, &s->rstd, &s->logits, &s->gath, &s->full};
    size_t n[] = {dm, dm, q, kv, kv, q, F, F, F, dm, 1, Vl, tp ? V : 0, tp ? V : 0};
    int ok = 1;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        free(*f[i]);
        *f[i] = n[i] ? malloc(sizeof(float) * n[i] * (size_t)R) : NULL;
        ok &= !n[i] || *f[i] != NULL;
    }
    free(s->tok);
    free(s->pos);
    s->tok = malloc(sizeof(int32_t) * (size_t)R);
    s->pos = malloc(sizeof(int32_t) * (size_t)R);
    if (!ok || !s->tok || !s->pos) {
        fprintf(stderr, "herd: generate: out of memory for %d rows\n", R);
        return -1;
    }
    s->cap = R;
    return 0;
}

static int kv_init(kv_state *s, herd_model *m, int B, int S)
{
    memset(s, 0, sizeof *s);
    s->m = m;
    s->be = m->be;
    s->B = B;
    s->S = S;
    const herd_model_dims *d = &m->dims;
    size_t n = (size_t)d->n_layers * B * S * m->n_kv_local * d->head_dim;
    s->k = calloc(n, sizeof(float));
    s->v = calloc(n, sizeof(float));
    s->score = malloc(sizeof(float) * (size_t)S);
    if (!s->k || !s->v || !s->score) {
        fprintf(stderr, "herd: generate: out of memory for a KV cache of %d x %d positions\n", B, S);
        kv_free(s);
        return -1;
    }
    return 0;
}

static void tp_check(int rc)
{
    if (rc) herd_comm_abort(1); /* a failed collective leaves the group waiting */
}

/* The logits of R rows over the whole vocabulary: this rank's slice [R, Vl]
 * itself at tp 1; with TP every rank's slice, gathered (rank-major [tp][R][Vl])
 * and put in vocabulary order into full [R, V]. The gather copies bytes, so
 * every rank of the group holds the same logits and samples the same token. */
static const float *vocab_gather(herd_model *m, const float *local, float *gath, float *full, int R)
{
    if (m->tp_size == 1) return local;
    int tp = m->tp_size, Vl = m->vocab_local, V = m->dims.vocab_size;
    size_t *counts = malloc(sizeof(size_t) * (size_t)tp);
    for (int r = 0; r < tp; r++) counts[r] = (size_t)R * Vl;
    tp_check(herd_comm_all_gather(m->tp, local, gath, counts, HERD_F32));
    free(counts);
    for (int r = 0; r < tp; r++)
        for (int i = 0; i < R; i++)
            memcpy(full + (size_t)i * V + (size_t)r * Vl, gath + ((size_t)r * R + i) * Vl,
                   sizeof(float) * Vl);
    return full;
}

/* out [R, d] (+)= the row-parallel product a w^T summed over the TP group:
 * accumulated in place at tp 1; with TP each rank's partial sum is
 * all-reduced, then added. */
static void row_parallel(kv_state *s, float *out, const float *a, const float *w, int R, int K)
{
    const herd_backend *be = s->be;
    herd_model *m = s->m;
    int dm = m->dims.d_model;
    if (m->tp_size == 1) {
        be->matmul_fwd(be, out, a, w, R, dm, K, 1);
        return;
    }
    be->matmul_fwd(be, s->part, a, w, R, dm, K, 0);
    tp_check(herd_comm_all_reduce(m->tp, s->part, (size_t)R * dm, HERD_F32, HERD_SUM));
    be->add_inplace(be, out, s->part, (size_t)R * dm);
}

/* The embedding of R tokens: with TP each rank looks up the rows of its
 * vocabulary slice (zeros for the others' tokens) and the group sums them. */
static void kv_embed(kv_state *s, const uint32_t *tok, int R)
{
    herd_model *m = s->m;
    int dm = m->dims.d_model;
    for (int r = 0; r < R; r++) {
        int64_t t = (int64_t)tok[r] - m->vocab_start;
        s->tok[r] = t >= 0 && t < m->vocab_local ? (int32_t)t : -1;
    }
    s->be->embedding_fwd(s->be, s->x, s->tok, m->wte, R, dm);
    if (m->tp_size > 1)
        tp_check(herd_comm_all_reduce(m->tp, s->x, (size_t)R * dm, HERD_F32, HERD_SUM));
}

/* Attention of R rows over their sequences' cached keys and values (this
 * rank's heads), into s->o. */
static void kv_attend(kv_state *s, const float *kc, const float *vc, const int *seq, const int *pos,
                      int R)
{
    const herd_model *m = s->m;
    int H = m->n_heads_local, KV = m->n_kv_local, hd = m->dims.head_dim, kvd = KV * hd,
        grp = H / KV;
    float scale = 1.0f / sqrtf((float)hd);
    for (int r = 0; r < R; r++)
        for (int h = 0; h < H; h++) {
            const float *q = s->q + ((size_t)r * H + h) * hd;
            const float *kb = kc + (size_t)seq[r] * s->S * kvd + (size_t)(h / grp) * hd;
            const float *vb = vc + (size_t)seq[r] * s->S * kvd + (size_t)(h / grp) * hd;
            float mx = -FLT_MAX, sum = 0.0f, *o = s->o + ((size_t)r * H + h) * hd;
            for (int j = 0; j <= pos[r]; j++) {
                float a = 0.0f;
                for (int e = 0; e < hd; e++) a += q[e] * kb[(size_t)j * kvd + e];
                s->score[j] = a * scale;
                if (s->score[j] > mx) mx = s->score[j];
            }
            for (int j = 0; j <= pos[r]; j++) sum += s->score[j] = expf(s->score[j] - mx);
            memset(o, 0, sizeof(float) * hd);
            for (int j = 0; j <= pos[r]; j++) {
                float w = s->score[j] / sum;
                for (int e = 0; e < hd; e++) o[e] += w * vb[(size_t)j * kvd + e];
            }
        }
}

/* Forward R rows; the logits of each row over the whole vocabulary are
 * returned ([R, V], valid until the next call). Under TP the layer is
 * Megatron's: column-parallel q/k/v/gate/up on this rank's heads and ffn
 * columns, row-parallel o/down summed over the group. */
static const float *kv_forward(kv_state *s, const int *seq, const int *pos, const uint32_t *tok, int R)
{
    const herd_backend *be = s->be;
    herd_model *m = s->m;
    const herd_model_dims *d = &m->dims;
    int dm = d->d_model, H = m->n_heads_local, KV = m->n_kv_local, hd = d->head_dim,
        F = m->ffn_local, kvd = KV * hd;
    float eps = (float)d->norm_eps;
    kv_embed(s, tok, R);
    for (int r = 0; r < R; r++) s->pos[r] = pos[r];
    for (int l = 0; l < d->n_layers; l++) {
        const herd_layer_params *p = &m->layer[l];
        float *kc = s->k + (size_t)l * s->B * s->S * kvd, *vc = s->v + (size_t)l * s->B * s->S * kvd;
        be->rmsnorm_fwd(be, s->h, s->rstd, s->x, p->attn_norm, R, dm, eps);
        be->matmul_fwd(be, s->q, s->h, p->wq, R, H * hd, dm, 0);  /* [R, Hl*hd] */
        be->matmul_fwd(be, s->kn, s->h, p->wk, R, kvd, dm, 0);    /* [R, KVl*hd] */
        be->matmul_fwd(be, s->vn, s->h, p->wv, R, kvd, dm, 0);
        be->rope_fwd(be, s->q, m->rope_cs, s->pos, R, H, hd);
        be->rope_fwd(be, s->kn, m->rope_cs, s->pos, R, KV, hd);
        for (int r = 0; r < R; r++) {
            size_t at = ((size_t)seq[r] * s->S + pos[r]) * kvd;
            memcpy(kc + at, s->kn + (size_t)r * kvd, sizeof(float) * kvd);
            memcpy(vc + at, s->vn + (size_t)r * kvd, sizeof(float) * kvd);
        }
        kv_attend(s, kc, vc, seq, pos, R);
        row_parallel(s, s->x, s->o, p->wo, R, H * hd); /* residual: x += o wo^T */
        be->rmsnorm_fwd(be, s->h, s->rstd, s->x, p->ffn_norm, R, dm, eps);
        be->matmul_fwd(be, s->gate, s->h, p->w_gate, R, F, dm, 0);
        be->matmul_fwd(be, s->up, s->h, p->w_up, R, F, dm, 0);
        be->swiglu_fwd(be, s->act, s->gate, s->up, (size_t)R * F);
        row_parallel(s, s->x, s->act, p->w_down, R, F);
    }
    be->rmsnorm_fwd(be, s->h, s->rstd, s->x, m->norm_f, R, dm, eps);
    be->matmul_fwd(be, s->logits, s->h, m->lm_head, R, m->vocab_local, dm, 0); /* [R, Vl] */
    return vocab_gather(m, s->logits, s->gath, s->full, R);
}

int herd_sample(const float *logits, int V, double temperature, double top_p, double u)
{
    int best = 0;
    if (V < 1) return 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    if (temperature <= 0.0) return best;
    double *p = malloc(sizeof(double) * V), sum = 0.0;
    int *idx = malloc(sizeof(int) * V);
    for (int i = 0; i < V; i++) {
        p[i] = exp((logits[i] - logits[best]) / temperature);
        sum += p[i];
        idx[i] = i;
    }
    /* the nucleus: most probable first (insertion order among equals kept) */
    int n = V;
    if (top_p < 1.0) {
        for (int i = 1; i < V; i++) {
            int k = idx[i], j = i;
            while (j > 0 && p[idx[j - 1]] < p[k]) idx[j] = idx[j - 1], j--;
            idx[j] = k;
        }
        double c = 0.0;
        for (n = 0; n < V && c < top_p * sum;) c += p[idx[n++]];
        sum = c;
    }
    double target = u * sum, c = 0.0;
    if (n < 1) n = 1;
    int pick = idx[n - 1];
    for (int i = 0; i < n; i++) {
        c += p[idx[i]];
        if (c >= target) {
            pick = idx[i];
            break;
        }
    }
    free(p);
    free(idx);
    return pick;
}

/* The reference: the whole prefix through the model's own forward, last row's
 * logits (gathered over the vocabulary slices under TP). */
static int forward_nocache(herd_model *m, const uint32_t *ids, int n, float *logits)
{
    int32_t *t = malloc(sizeof(int32_t) * 3 * (size_t)n), *tg = t + n, *dc = tg + n;
    for (int i = 0; i < n; i++) t[i] = (int32_t)ids[i], tg[i] = -1, dc[i] = 0;
    double r = herd_model_forward(m, t, tg, dc, 1, n, NULL);
    free(t);
    if (isnan(r)) return -1;
    if (!m->logits) { /* train.xent_chunk: the head never stored the logits */
        fprintf(stderr, "herd: generate: the model runs its cross-entropy in vocabulary chunks "
                "(train.xent_chunk > 0) and keeps no logits; use train.xent_chunk 0\n");
        return -1;
    }
    int Vl = m->vocab_local, tp = m->tp_size;
    float *row = malloc(sizeof(float) * Vl), *gath = tp > 1 ? malloc(sizeof(float) * Vl * tp) : NULL;
    m->be->copy_d2h(m->be, row, m->logits + (size_t)(n - 1) * Vl, sizeof(float) * Vl);
    const float *full = vocab_gather(m, row, gath, logits, 1); /* tp > 1: logits itself */
    if (full != logits) memcpy(logits, full, sizeof(float) * m->dims.vocab_size);
    free(row);
    free(gath);
    return 0;
}

/* -1 with a message when the model's layout or the backend cannot generate. */
static int check_layout(const herd_model *m, const herd_gen_opts *o)
{
    if (m->pp_size != 1 || m->n_chunks != 1 || m->cp_size != 1) {
        fprintf(stderr, "herd: generate: runs tensor- and data-parallel only (got pp %d, cp %d, "
                "%d virtual stages)\n", m->pp_size, m->cp_size, m->n_chunks);
        return -1;
    }
    if (o->use_cache && strcmp(m->be->name, "cpu")) {
        fprintf(stderr, "herd: generate: the KV cache runs on the cpu backend (got %s)\n",
                m->be->name);
        return -1;
    }
    return 0;
}

int herd_generate(herd_model *m, const uint32_t *const *prompts, const int *prompt_len, int B,
                  const herd_gen_opts *o, uint32_t **out, int *out_len)
{
    const herd_model_dims *d = &m->dims;
    int V = d->vocab_size, S = 0, total = 0;
    if (B < 1 || B > 1 << 20 || o->max_new < 1) {
        fprintf(stderr, "herd: generate: need 1 or more prompts and max_new >= 1 (got %d, %d)\n",
                B, o->max_new);
        return -1;
    }
    if (check_layout(m, o)) return -1;
    for (int b = 0; b < B; b++) {
        if (prompt_len[b] < 1 || prompt_len[b] > d->max_seq_len - o->max_new) {
            fprintf(stderr, "herd: generate: prompt %d: %d tokens + max_new %d exceed "
                    "model.max_seq_len %d\n", b, prompt_len[b], o->max_new, d->max_seq_len);
            return -1;
        }
        for (int i = 0; i < prompt_len[b]; i++)
            if (prompts[b][i] >= (uint32_t)V) {
                fprintf(stderr, "herd: generate: prompt %d: token %u is outside the vocabulary "
                        "(%d)\n", b, prompts[b][i], V);
                return -1;
            }
        if (prompt_len[b] + o->max_new > S) S = prompt_len[b] + o->max_new;
        total += prompt_len[b];
    }
    uint32_t **seqs = calloc(B, sizeof *seqs);
    int *len = calloc(B, sizeof *len), *done = calloc(B, sizeof *done);
    size_t rows = (size_t)(total > B ? total : B);
    int *rs = malloc(sizeof(int) * rows), *rp = malloc(sizeof(int) * rows);
    uint32_t *rt = malloc(sizeof(uint32_t) * rows);
    float *row = malloc(sizeof(float) * V);
    kv_state s;
    int rc = 0;
    memset(&s, 0, sizeof s);
    for (int b = 0; b < B; b++) {
        seqs[b] = malloc(sizeof(uint32_t) * (size_t)S);
        memcpy(seqs[b], prompts[b], sizeof(uint32_t) * prompt_len[b]);
        len[b] = prompt_len[b];
        out[b] = malloc(sizeof(uint32_t) * (size_t)o->max_new);
        out_len[b] = 0;
    }
    if (o->use_cache) {
        rc = kv_init(&s, m, B, S) || kv_reserve(&s, total > B ? total : B);
    } else {
        herd_model_drop_forward(m); /* a previous forward's activations are not needed */
        rc = herd_model_reserve(m, 1, S);
    }
    /* rows of the step: the whole prompts first, then one token per live sequence */
    int R = 0;
    for (int b = 0; b < B && rc == 0; b++)
        for (int i = 0; i < prompt_len[b]; i++, R++) rs[R] = b, rp[R] = i, rt[R] = prompts[b][i];
    for (int step = 0; step < o->max_new && rc == 0; step++) {
        const float *logits = o->use_cache ? kv_forward(&s, rs, rp, rt, R) : NULL;
        int live = 0;
        for (int r = 0; r < R && rc == 0; r++) {
            int b = rs[r];
            if (r + 1 < R && rs[r + 1] == b) continue; /* only the sequence's last row predicts */
            if (o->use_cache) memcpy(row, logits + (size_t)r * V, sizeof(float) * V);
            else rc = forward_nocache(m, seqs[b], len[b], row);
            double u = herd_rng_uniform(o->seed, o->index0 + (uint64_t)b, (uint64_t)step);
            int next = herd_sample(row, V, o->temperature, o->top_p, u);
            out[b][out_len[b]++] = (uint32_t)next;
            seqs[b][len[b]++] = (uint32_t)next;
            if (next == o->stop_id) done[b] = 1;
        }
        for (int b = 0; b < B; b++)
            if (!done[b]) rs[live] = b, rp[live] = len[b] - 1, rt[live] = seqs[b][len[b] - 1], live++;
        R = live;
        if (!live) break;
    }
    kv_free(&s);
    for (int b = 0; b < B; b++) free(seqs[b]);
    free(seqs);
    free(len);
    free(done);
    free(rs);
    free(rp);
    free(rt);
    free(row);
    if (rc)
        for (int b = 0; b < B; b++) free(out[b]), out[b] = NULL;
    return rc ? -1 : 0;
}
