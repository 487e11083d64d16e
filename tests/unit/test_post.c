/* test_post.c — DPO with the policy equal to the reference gives log 2 plus
 * the NLL term; the reward loss of equal rewards is log 2; a step against the
 * gradient lowers both losses (the gradients point the right way). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "src/data/chat.h"
#include "src/post/dpo.h"
#include "src/post/reward.h"
#include "src/base/rng.h"
#include "tests/unit/test.h"

enum { P = 3, T = 12, V = 53 };
static herd_model m;
static int32_t tok[2 * P * T], tgt[2 * P * T], doc[2 * P * T];

static void make_batch(void)
{
    for (int r = 0; r < 2 * P; r++)
        for (int t = 0; t < T; t++) {
            int i = r * T + t, plen = 4 + r % P, end = T - (r % 3);
            tok[i] = (int32_t)(herd_splitmix64(100 + (t < plen ? (r % P) * T + t : 1000 + i)) % V);
            doc[i] = t < end ? 0 : 1;
            tgt[i] = t >= plen - 1 && t < end - 1 ? -2 : -1; /* filled below */
        }
    for (int i = 0; i < 2 * P * T; i++)
        if (tgt[i] == -2) tgt[i] = tok[i + 1];
}

static void sgd(herd_model *mm, float lr)
{
    for (int64_t i = 0; i < mm->n_params; i++) mm->params[i] -= lr * mm->grads[i];
}

TEST(dpo_policy_equal_reference_is_log2_plus_nll)
{
    double ref[2 * P];
    herd_dpo_opts o = {0.1, 0.2};
    herd_dpo_stats st;
    CHECK(herd_dpo_reference(&m, tok, tgt, doc, P, T, ref) == 0);
    CHECK(herd_dpo_step(&m, tok, tgt, doc, P, T, ref, &o, 0, &st) == 0);
    CHECK_NEAR(st.dpo, log(2.0), 1e-6);
    CHECK_NEAR(st.margin, 0.0, 1e-6);
    /* the NLL term, independently: each chosen row on its own through the model */
    double nll = 0;
    for (int p = 0; p < P; p++) {
        int64_t nv;
        double s = herd_model_forward(&m, tok + p * T, tgt + p * T, doc + p * T, 1, T, &nv);
        nll += s / (double)nv / P;
    }
    CHECK(nll > 1.0);
    CHECK_NEAR(st.nll, nll, 1e-5);
    CHECK_NEAR(st.loss, log(2.0) + 0.2 * nll, 1e-5);
}

TEST(dpo_step_lowers_the_loss)
{
    herd_model ref;
    herd_model_dims d = m.dims;
    CHECK(herd_model_create(&ref, &d, herd_backend_cpu(), 7) == 0);
    memcpy(ref.params, m.params, sizeof(float) * (size_t)m.n_params);
    double rl[2 * P];
    herd_dpo_opts o = {0.1, 0.2};
    herd_dpo_stats a, b;
    CHECK(herd_dpo_reference(&ref, tok, tgt, doc, P, T, rl) == 0);
    herd_model_zero_grad(&m);
    CHECK(herd_dpo_step(&m, tok, tgt, doc, P, T, rl, &o, 1, &a) == 0);
    float *saved = malloc(sizeof(float) * (size_t)m.n_params);
    memcpy(saved, m.params, sizeof(float) * (size_t)m.n_params);
    sgd(&m, 0.05f);
    CHECK(herd_dpo_step(&m, tok, tgt, doc, P, T, rl, &o, 0, &b) == 0);
    CHECK(b.loss < a.loss);
    CHECK(b.margin > 0.0 && b.accuracy > 0.5);
    memcpy(m.params, saved, sizeof(float) * (size_t)m.n_params);
    free(saved);
    herd_model_destroy(&ref);
}

TEST(reward_equal_is_log2_and_step_ranks)
{
    int B = 4, last[4] = {T - 1, T - 1, T - 3, T - 2}, group[4] = {0, 0, 1, 1}, rank[4] = {0, 1, 0, 1};
    int32_t t2[4 * T], d2[4 * T];
    /* rows 0 and 1 identical: equal rewards, loss log 2 on that pair */
    for (int i = 0; i < 4 * T; i++) t2[i] = tok[i % (2 * T)], d2[i] = 0;
    memcpy(t2 + T, t2, sizeof(int32_t) * T);
    int head = 5;
    double r[4];
    CHECK(herd_rm_score(&m, t2, d2, B, T, last, head, r) == 0);
    CHECK(r[0] == r[1]);
    int g1[4] = {0, 0, 1, 2};
    herd_rm_stats s;
    CHECK(herd_rm_step(&m, t2, d2, B, T, last, g1, rank, head, 0, &s) == 0);
    CHECK(s.pairs == 1);
    CHECK_NEAR(s.loss, log(2.0), 1e-6);
    /* a few gradient steps rank the better response higher */
    for (int k = 0; k < 5; k++) {
        herd_model_zero_grad(&m);
        CHECK(herd_rm_step(&m, t2 + 2 * T, d2, 2, T, last + 2, group, rank, head, 1, &s) == 0);
        sgd(&m, 0.05f);
    }
    CHECK(herd_rm_step(&m, t2 + 2 * T, d2, 2, T, last + 2, group, rank, head, 0, &s) == 0);
    CHECK(s.accuracy == 1.0 && s.loss < log(2.0));
    int none[4] = {0, 1, 2, 3};
    CHECK(herd_rm_step(&m, t2, d2, B, T, last, none, rank, head, 0, &s) == -1);
}

/* Data parallelism without MPI: the batch split 2 + 1 pairs, each part's
 * step divided by the global pair count, gives summed gradients and stats equal
 * to the whole batch's step (what the ranks' all-reduce adds up). */
static double rel_err(const float *a, const float *b, int64_t n)
{
    double d = 0, r = 0;
    for (int64_t i = 0; i < n; i++) d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), r += (double)b[i] * b[i];
    return sqrt(d / (r > 0 ? r : 1e-300));
}

TEST(dpo_step_norm_shares_sum_to_the_whole)
{
    double rl[2 * P];
    herd_dpo_opts o = {0.1, 0.2};
    herd_dpo_stats whole, s1, s2;
    /* a reference that differs from the policy: nonzero margins */
    for (int i = 0; i < 2 * P; i++) rl[i] = -30.0 + 2.0 * i;
    herd_model_zero_grad(&m);
    CHECK(herd_dpo_step(&m, tok, tgt, doc, P, T, rl, &o, 1, &whole) == 0);
    float *g = malloc(sizeof(float) * (size_t)m.n_params);
    memcpy(g, m.grads, sizeof(float) * (size_t)m.n_params);
    /* part 1: pairs 0, 1; part 2: pair 2 (rows: chosen then rejected) */
    int32_t a[3][4 * T], b[3][2 * T];
    double ra[4] = {rl[0], rl[1], rl[P], rl[P + 1]}, rb[2] = {rl[2], rl[P + 2]};
    const int32_t *src[3] = {tok, tgt, doc};
    for (int k = 0; k < 3; k++) {
        memcpy(a[k], src[k], sizeof(int32_t) * 2 * T);
        memcpy(a[k] + 2 * T, src[k] + P * T, sizeof(int32_t) * 2 * T);
        memcpy(b[k], src[k] + 2 * T, sizeof(int32_t) * T);
        memcpy(b[k] + T, src[k] + (P + 2) * T, sizeof(int32_t) * T);
    }
    herd_model_zero_grad(&m);
    CHECK(herd_dpo_step_norm(&m, a[0], a[1], a[2], 2, T, ra, &o, 1, P, &s1) == 0);
    CHECK(herd_dpo_step_norm(&m, b[0], b[1], b[2], 1, T, rb, &o, 1, P, &s2) == 0);
    CHECK(rel_err(m.grads, g, m.n_params) < 1e-5);
    CHECK_NEAR(s1.loss + s2.loss, whole.loss, 1e-5); /* fp32 forward of 4 vs 6 rows */
    CHECK_NEAR(s1.margin + s2.margin, whole.margin, 1e-5);
    CHECK(fabs(whole.margin) > 1e-3);
    free(g);
}

TEST(reward_step_norm_shares_sum_to_the_whole)
{
    /* three records of two responses: rows 0..5, pairs (0,1) (2,3) (4,5) */
    enum { B = 6 };
    int last[B], group[B], rank[B];
    int32_t t2[B * T], d2[B * T];
    for (int r = 0; r < B; r++) {
        last[r] = T - 1 - r % 3, group[r] = r / 2, rank[r] = r % 2;
        for (int t = 0; t < T; t++)
            t2[r * T + t] = (int32_t)(herd_splitmix64(900 + (size_t)r * T + t) % V), d2[r * T + t] = 0;
    }
    int head = 5;
    herd_rm_stats whole, s1, s2;
    CHECK(herd_rm_count_pairs(group, rank, B) == 3);
    herd_model_zero_grad(&m);
    CHECK(herd_rm_step(&m, t2, d2, B, T, last, group, rank, head, 1, &whole) == 0);
    float *g = malloc(sizeof(float) * (size_t)m.n_params);
    memcpy(g, m.grads, sizeof(float) * (size_t)m.n_params);
    herd_model_zero_grad(&m);
    CHECK(herd_rm_step_norm(&m, t2, d2, 4, T, last, group, rank, head, 1, 3, &s1) == 0);
    CHECK(herd_rm_step_norm(&m, t2 + 4 * T, d2, 2, T, last + 4, group + 4, rank + 4, head, 1, 3, &s2) == 0);
    CHECK(s1.pairs == 2 && s2.pairs == 1);
    CHECK(rel_err(m.grads, g, m.n_params) < 1e-5);
    CHECK_NEAR(s1.loss + s2.loss, whole.loss, 1e-5); /* fp32 forward of 4 vs 6 rows */
    CHECK_NEAR(s1.accuracy + s2.accuracy, whole.accuracy, 1e-12);
    free(g);
}

/* SFT packing: two conversations in one row give the loss of each alone (the
 * document mask keeps them apart; RoPE sees only relative positions). */
TEST(packed_conversations_equal_separate)
{
    herd_chat_tokens c[2] = {{0}, {0}};
    const int len[2] = {9, 7};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < len[k]; i++)
            herd_chat_tokens_push(&c[k], (uint32_t)(herd_splitmix64(50 + 10 * k + i) % V),
                                  i >= 4 ? (i == len[k] - 1 ? HERD_MASK_EOT : HERD_MASK_CONTENT) : 0);
    enum { TT = 20 };
    int32_t tt[TT], tg[TT], dc[TT];
    int next = 0;
    CHECK(herd_chat_pack(c, 2, &next, 1, TT, HERD_MASK_EOT, tt, tg, dc) == 2);
    int64_t nv, n1, n2;
    double packed = herd_model_forward(&m, tt, tg, dc, 1, TT, &nv);
    double sep = 0;
    for (int k = 0; k < 2; k++) {
        next = 0;
        CHECK(herd_chat_pack(&c[k], 1, &next, 1, TT, HERD_MASK_EOT, tt, tg, dc) == 1);
        sep += herd_model_forward(&m, tt, tg, dc, 1, TT, k ? &n2 : &n1);
    }
    CHECK(nv == n1 + n2 && nv == 5 + 3);
    CHECK_NEAR(packed, sep, 1e-4 * fabs(sep));
    /* without the document mask the second conversation would see the first */
    next = 0;
    herd_chat_pack(c, 2, &next, 1, TT, HERD_MASK_EOT, tt, tg, dc);
    for (int i = 0; i < TT; i++) dc[i] = 0;
    double leaky = herd_model_forward(&m, tt, tg, dc, 1, TT, &nv);
    CHECK(fabs(leaky - sep) > 1e-3);
    herd_chat_tokens_free(&c[0]);
    herd_chat_tokens_free(&c[1]);
}

int main(void)
{
    herd_model_dims d = {.n_layers = 2, .d_model = 32, .n_heads = 4, .n_kv_heads = 2,
                         .head_dim = 8, .ffn_dim = 64, .vocab_size = V, .max_seq_len = 32,
                         .rope_theta = 10000.0, .norm_eps = 1e-5, .init_std = 0.2};
    if (herd_model_create(&m, &d, herd_backend_cpu(), 3)) return 1;
    make_batch();
    RUN(dpo_policy_equal_reference_is_log2_plus_nll);
    RUN(dpo_step_lowers_the_loss);
    RUN(reward_equal_is_log2_and_step_ranks);
    RUN(dpo_step_norm_shares_sum_to_the_whole);
    RUN(reward_step_norm_shares_sum_to_the_whole);
    RUN(packed_conversations_equal_separate);
    herd_model_destroy(&m);
    return test_summary();
}
