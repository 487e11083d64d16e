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
    float *k, *v;      /* [L, B, S, KV*hd] after RoPE (k) */
    /* scratch for R rows */
    int cap;
    float *x, *h, *q, *kn, *vn, *o, *gate, *up, *act, *tmp, *rstd, *logits, *score;
    int32_t *tok, *pos;
} kv_state;

static void kv_free(kv_state *s)
{
    float **f[] = {&s->k, &s->v, &s->x, &s->h, &s->q, &s->kn, &s->vn, &s->o, &s->gate, &s->up,
                   &s->act, &s->tmp, &s->rstd, &s->logits, &s->score};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) free(*f[i]), *f[i] = NULL;
    free(s->tok);
    free(s->pos);
    s->tok = s->pos = NULL;
    s->cap = 0;
}

static int kv_reserve(kv_state *s, int R)
{
    if (R <= s->cap) return 0;
    const herd_model_dims *d = &s->m->dims;
    size_t dm = d->d_model, q = (size_t)d->n_heads * d->head_dim,
           kv = (size_t)d->n_kv_heads * d->head_dim, F = d->ffn_dim, V = d->vocab_size;
    float **f[] = {&s->x, &s->h, &s->q, &s->kn, &s->vn, &s->o, &s->gate, &s->up, &s->act,
                   &s->tmp, &s->rstd, &s->logits};
    size_t n[] = {dm, dm, q, kv, kv, q, F, F, F, dm, 1, V};
    int ok = 1;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        free(*f[i]);
        ok &= (*f[i] = malloc(sizeof(float) * n[i] * (size_t)R)) != NULL;
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
    size_t n = (size_t)d->n_layers * B * S * d->n_kv_heads * d->head_dim;
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

/* Forward R rows; logits of each row land in s->logits [R, V]. */
static void kv_forward(kv_state *s, const int *seq, const int *pos, const uint32_t *tok, int R)
{
    const herd_backend *be = s->be;
    herd_model *m = s->m;
    const herd_model_dims *d = &m->dims;
    int dm = d->d_model, H = d->n_heads, KV = d->n_kv_heads, hd = d->head_dim, F = d->ffn_dim,
        V = d->vocab_size, kvd = KV * hd, grp = H / KV;
    float eps = (float)d->norm_eps, scale = 1.0f / sqrtf((float)hd);
    for (int r = 0; r < R; r++) s->tok[r] = (int32_t)tok[r], s->pos[r] = pos[r];
    be->embedding_fwd(be, s->x, s->tok, m->wte, R, dm);
    for (int l = 0; l < d->n_layers; l++) {
        const herd_layer_params *p = &m->layer[l];
        float *kc = s->k + (size_t)l * s->B * s->S * kvd, *vc = s->v + (size_t)l * s->B * s->S * kvd;
        be->rmsnorm_fwd(be, s->h, s->rstd, s->x, p->attn_norm, R, dm, eps);
        be->matmul_fwd(be, s->q, s->h, p->wq, R, H * hd, dm, 0);  /* [R, H*hd] */
        be->matmul_fwd(be, s->kn, s->h, p->wk, R, kvd, dm, 0);    /* [R, KV*hd] */
        be->matmul_fwd(be, s->vn, s->h, p->wv, R, kvd, dm, 0);
        be->rope_fwd(be, s->q, m->rope_cs, s->pos, R, H, hd);
        be->rope_fwd(be, s->kn, m->rope_cs, s->pos, R, KV, hd);
        for (int r = 0; r < R; r++) {
            size_t at = ((size_t)seq[r] * s->S + pos[r]) * kvd;
            memcpy(kc + at, s->kn + (size_t)r * kvd, sizeof(float) * kvd);
            memcpy(vc + at, s->vn + (size_t)r * kvd, sizeof(float) * kvd);
        }
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
        be->matmul_fwd(be, s->x, s->o, p->wo, R, dm, H * hd, 1); /* residual: x += o wo^T */
        be->rmsnorm_fwd(be, s->h, s->rstd, s->x, p->ffn_norm, R, dm, eps);
        be->matmul_fwd(be, s->gate, s->h, p->w_gate, R, F, dm, 0);
        be->matmul_fwd(be, s->up, s->h, p->w_up, R, F, dm, 0);
        be->swiglu_fwd(be, s->act, s->gate, s->up, (size_t)R * F);
        be->matmul_fwd(be, s->x, s->act, p->w_down, R, dm, F, 1);
    }
    be->rmsnorm_fwd(be, s->h, s->rstd, s->x, m->norm_f, R, dm, eps);
    be->matmul_fwd(be, s->logits, s->h, m->lm_head, R, V, dm, 0); /* [R, V] */
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

/* The reference: the whole prefix through the model's own forward, last row's logits. */
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
    int V = m->dims.vocab_size;
    m->be->copy_d2h(m->be, logits, m->logits + (size_t)(n - 1) * V, sizeof(float) * V);
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
    if (m->tp_size != 1 || (o->use_cache && strcmp(m->be->name, "cpu"))) {
        fprintf(stderr, "herd: generate: runs on one rank of the cpu backend (got tp %d, %s)\n",
                m->tp_size, m->be->name);
        return -1;
    }
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
        if (o->use_cache) kv_forward(&s, rs, rp, rt, R);
        int live = 0;
        for (int r = 0; r < R && rc == 0; r++) {
            int b = rs[r];
            if (r + 1 < R && rs[r + 1] == b) continue; /* only the sequence's last row predicts */
            if (o->use_cache) memcpy(row, s.logits + (size_t)r * V, sizeof(float) * V);
            else rc = forward_nocache(m, seqs[b], len[b], row);
            double u = herd_rng_uniform(o->seed, (uint64_t)b, (uint64_t)step);
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
