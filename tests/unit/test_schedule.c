/* test_schedule.c — learning-rate schedule, batch ramp, AdamW and MFU formula. */
#include <math.h>
#include <string.h>
#include "monitoring/mfu.h"
#include "src/model/model.h"
#include "src/model/optim.h"
#include "src/model/schedule.h"
#include "tests/unit/test.h"

static herd_config base(void)
{
    herd_config c;
    memset(&c, 0, sizeof c);
    c.optim.lr = 8e-5; c.optim.min_lr = 8e-7;
    c.schedule.warmup_steps = 8000; c.schedule.decay_steps = 1200000;
    return c;
}

TEST(lr_warmup_is_linear)
{
    herd_config c = base();
    CHECK_NEAR(herd_schedule_lr(&c, 0, 0), 8e-5 / 8000, 1e-15);
    CHECK_NEAR(herd_schedule_lr(&c, 3999, 0), 8e-5 * 0.5, 1e-15);
    CHECK_NEAR(herd_schedule_lr(&c, 7999, 0), 8e-5, 1e-15);
}

TEST(lr_cosine_reaches_min_and_stays)
{
    herd_config c = base();
    CHECK_NEAR(herd_schedule_lr(&c, 8000, 0), 8e-5, 1e-15);
    int64_t mid = 8000 + (1200000 - 8000) / 2;
    CHECK_NEAR(herd_schedule_lr(&c, mid, 0), 8e-7 + 0.5 * (8e-5 - 8e-7), 1e-12);
    CHECK_NEAR(herd_schedule_lr(&c, 1200000, 0), 8e-7, 1e-15);
    CHECK_NEAR(herd_schedule_lr(&c, 5000000, 0), 8e-7, 1e-15);
    /* monotone decreasing after warm-up */
    double prev = 1;
    for (int64_t s = 8000; s <= 1200000; s += 10000) {
        double lr = herd_schedule_lr(&c, s, 0);
        CHECK(lr <= prev);
        prev = lr;
    }
}

TEST(lr_anneals_linearly_to_zero)
{
    herd_config c = base();
    c.schedule.warmup_steps = 0; c.schedule.decay_steps = 0; c.optim.lr = c.optim.min_lr = 1e-4; /* flat, to isolate */
    c.train.max_tokens = 1000; c.schedule.anneal_tokens = 400;
    CHECK_NEAR(herd_schedule_lr(&c, 10, 500), 1e-4, 1e-15);
    CHECK_NEAR(herd_schedule_lr(&c, 10, 600), 1e-4, 1e-15);
    CHECK_NEAR(herd_schedule_lr(&c, 10, 800), 0.5e-4, 1e-15);
    CHECK_NEAR(herd_schedule_lr(&c, 10, 1000), 0.0, 0);
}

TEST(batch_ramp_of_the_paper)
{
    herd_config c = base();
    c.batch.n_ramp = 3;
    c.batch.ramp[0] = (herd_ramp_stage){0, 4194304, 4096};
    c.batch.ramp[1] = (herd_ramp_stage){252000000, 8388608, 8192};
    c.batch.ramp[2] = (herd_ramp_stage){2870000000000LL, 16777216, 8192};
    CHECK(herd_schedule_ramp(&c, 0)->batch_tokens == 4194304);
    CHECK(herd_schedule_ramp(&c, 251999999)->seq_len == 4096);
    CHECK(herd_schedule_ramp(&c, 252000000)->batch_tokens == 8388608);
    CHECK(herd_schedule_ramp(&c, 252000000)->seq_len == 8192);
    CHECK(herd_schedule_ramp(&c, 2870000000000LL)->batch_tokens == 16777216);
}

/* AdamW against a hand computation of torch.optim.AdamW on two tensors: a
 * matrix (decayed) and a norm weight (not decayed), with clipping. */
TEST(adamw_matches_hand_computation)
{
    herd_model_dims d = {.n_layers = 1, .d_model = 4, .n_heads = 2, .n_kv_heads = 1,
                         .head_dim = 2, .ffn_dim = 4, .vocab_size = 5, .max_seq_len = 4,
                         .rope_theta = 500000, .norm_eps = 1e-5, .init_std = 0.02};
    herd_model m;
    herd_adamw o;
    CHECK(herd_model_create(&m, &d, herd_backend_cpu(), 1) == 0);
    CHECK(herd_adamw_create(&o, &m) == 0);
    herd_config c = base();
    c.optim.beta1 = 0.9; c.optim.beta2 = 0.95; c.optim.eps = 1e-8; c.optim.weight_decay = 0.1; c.optim.grad_clip = 1.0;
    for (int64_t i = 0; i < m.n_params; i++) m.grads[i] = 0.5f; /* norm = 0.5 sqrt(n) > 1 */
    double norm = herd_grad_norm(&m);
    CHECK_NEAR(norm, 0.5 * sqrt((double)m.n_params), 1e-9 * norm);
    const herd_tensor *wq = herd_model_find(&m, "model.layers.0.self_attn.q_proj.weight");
    const herd_tensor *nw = herd_model_find(&m, "model.layers.0.input_layernorm.weight");
    CHECK(wq && nw && wq->decay && !nw->decay);
    float p0 = m.params[wq->offset], n0 = m.params[nw->offset];
    double lr = 1e-3, clip = herd_adamw_step(&o, &m, &c.optim, lr, norm);
    CHECK_NEAR(clip, 1.0 / (norm + 1e-6), 1e-12);
    /* step 1: m_hat = g, v_hat = g^2, update = lr * g / (|g| + eps) = lr * sign(g) */
    double g = 0.5 * clip;
    double upd = lr * g / (fabs(g) + 1e-8);
    CHECK_NEAR(m.params[wq->offset], p0 * (1 - lr * 0.1) - upd, 1e-7);
    CHECK_NEAR(m.params[nw->offset], n0 - upd, 1e-7);
    herd_adamw_destroy(&o, &m);
    herd_model_destroy(&m);
}

TEST(mfu_formula)
{
    /* 405B, seq 8192: P_matmul of the model table, the attention term */
    herd_model_dims d = {.n_layers = 126, .d_model = 16384, .n_heads = 128, .n_kv_heads = 8,
                         .head_dim = 128, .ffn_dim = 53248, .vocab_size = 128256};
    int64_t pm = herd_model_dims_matmul_params(&d);
    int64_t per_layer = 16384LL * 16384 * 2 + 2LL * 16384 * 1024 + 3LL * 16384 * 53248;
    CHECK(pm == 126 * per_layer + 128256LL * 16384);
    CHECK(pm > 400e9 && pm < 410e9);
    double fpt = herd_mfu_flops_per_token(pm, 126, 8192, 16384);
    CHECK_NEAR(fpt, 6.0 * pm + 6.0 * 126 * 8192 * 16384, 1);
    /* Table 4: 430 TFLOP/s per GPU is 43% of 989.4 */
    double tps = 430e12 / fpt;
    CHECK_NEAR(herd_mfu(tps, fpt, HERD_PEAK_TFLOPS_H100_BF16), 0.4346, 1e-3);
}

int main(void)
{
    RUN(lr_warmup_is_linear);
    RUN(lr_cosine_reaches_min_and_stays);
    RUN(lr_anneals_linearly_to_zero);
    RUN(batch_ramp_of_the_paper);
    RUN(adamw_matches_hand_computation);
    RUN(mfu_formula);
    return test_summary();
}
