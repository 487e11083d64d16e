/* bench_mfu.c — herd's side of benchmarks/mfu: training throughput and MFU of
 * one replica on one device, at explicit shapes (the same flags as
 * benchmarks/mfu/torch_llama.py, so that run.sh hands both one string).
 *
 *   build/benchmarks/mfu/bench_mfu --backend cuda --layers 4 --d-model 4096 --ffn 14336 \
 *       --heads 32 --kv-heads 8 --vocab 128256 --seq 8192 --batch 1 --steps 10 --warmup 2
 *   build/benchmarks/mfu/bench_mfu --backend cpu --tiny         (a check without a GPU)
 *
 * A step: zero grads, forward, backward, global norm, AdamW with clipping (the
 * trainer's step for one rank). Random tokens, two documents per sequence.
 * MFU by DESIGN.md's formula (monitoring/mfu.h), its inputs printed; the
 * backend's device memory in use after the timed steps (herd allocates every
 * buffer up front, so it is the step's peak up to the backend's scratch).
 * The last line is JSON.
 *
 * --attention-only: the attention op alone (forward + backward, the flash pair
 * where the backend prefers it), one document per sequence (plain causal, as
 * SDPA's is_causal), TFLOP/s by the formula's attention term: 6 B H T^2 hd per
 * fwd+bwd (QK^T and PV, 2 FLOP per multiply-add, backward twice the forward,
 * halved by the causal mask).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "monitoring/mfu.h"
#include "src/config/config.h"
#include "src/model/model.h"
#include "src/model/optim.h"
#include "src/base/rng.h"
#include "topology/topo.h"
#include "monitoring/clock.h"

typedef struct {
    const char *backend, *label, *recompute, *precision;
    int layers, d_model, ffn, heads, kv_heads, vocab, seq, batch, steps, warmup;
    double peak_tflops;
    int attention_only, xent_chunk, weights_per_gemm;
} opts;

static int usage(const char *msg)
{
    fprintf(stderr, "bench_mfu: %s\nusage: bench_mfu [--backend cpu|cuda] [--tiny] [--layers L] "
            "[--d-model D] [--ffn F] [--heads H] [--kv-heads KV] [--vocab V] [--seq T] "
            "[--batch B] [--steps N] [--warmup W] [--peak-tflops P] [--label S] [--no-compile] "
            "[--pure-bf16] [--attention-only] [--recompute none|selective|full] [--precision fp32|bf16] [--xent-chunk C] [--weights-per-gemm]\n", msg);
    return 2;
}

static int parse(opts *o, int argc, char **argv)
{
    *o = (opts){.backend = "cuda", .label = "", .recompute = "none", .precision = "fp32", .layers = 4, .d_model = 4096,
                .ffn = 14336, .heads = 32, .kv_heads = 8, .vocab = 128256, .seq = 8192, .batch = 1,
                .steps = 10, .warmup = 2, .peak_tflops = 989.4};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--tiny")) {
            o->layers = 2; o->d_model = 64; o->ffn = 192; o->heads = 4; o->kv_heads = 2;
            o->vocab = 512; o->seq = 128; o->batch = 2; o->steps = 2; o->warmup = 1;
            continue;
        }
        if (!strcmp(a, "--attention-only")) { o->attention_only = 1; continue; }
        /* bf16: round the weights at every GEMM instead of once per step (to
         * measure what weights_bf16_begin saves) */
        if (!strcmp(a, "--weights-per-gemm")) { o->weights_per_gemm = 1; continue; }
        /* torch-only flags, accepted so that one argument string serves both sides */
        if (!strcmp(a, "--no-compile") || !strcmp(a, "--pure-bf16")) continue;
        if (i + 1 >= argc) return usage("a flag without its value");
        const char *v = argv[++i];
        if (!strcmp(a, "--device")) continue;
        if (!strcmp(a, "--backend")) { o->backend = v; continue; }
        if (!strcmp(a, "--label")) { o->label = v; continue; }
        if (!strcmp(a, "--recompute")) { o->recompute = v; continue; }
        if (!strcmp(a, "--precision")) { o->precision = v; continue; }
        if (!strcmp(a, "--xent-chunk")) { o->xent_chunk = atoi(v); continue; }
        if (!strcmp(a, "--peak-tflops")) { o->peak_tflops = atof(v); continue; }
        struct { const char *flag; int *dst; } ints[] = {
            {"--layers", &o->layers}, {"--d-model", &o->d_model}, {"--ffn", &o->ffn},
            {"--heads", &o->heads}, {"--kv-heads", &o->kv_heads}, {"--vocab", &o->vocab},
            {"--seq", &o->seq}, {"--batch", &o->batch}, {"--steps", &o->steps},
            {"--warmup", &o->warmup}};
        int found = 0;
        for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++)
            if (!strcmp(a, ints[k].flag)) {
                char *end;
                long x = strtol(v, &end, 10);
                if (*end || x < 0 || x > (1L << 30)) {
                    fprintf(stderr, "bench_mfu: %s: '%s' is not a count\n", a, v);
                    return 2;
                }
                *ints[k].dst = (int)x;
                found = 1;
            }
        if (!found) {
            fprintf(stderr, "bench_mfu: unknown flag %s\n", a);
            return 2;
        }
    }
    if (o->heads < 1 || o->kv_heads < 1 || o->d_model % o->heads || o->heads % o->kv_heads ||
        (o->d_model / o->heads) % 2)
        return usage("--heads must divide --d-model into an even head_dim, --kv-heads divide --heads");
    if (o->layers < 1 || o->seq < 2 || o->batch < 1 || o->steps < 1 || o->vocab < 2)
        return usage("--layers, --batch, --steps >= 1; --seq, --vocab >= 2");
    return 0;
}

static int bench_attention(const opts *o, const herd_backend *be)
{
    int B = o->batch, T = o->seq, H = o->heads, KV = o->kv_heads, hd = o->d_model / o->heads;
    int flash = be->prefer_flash && be->attention_flash_fwd && be->attention_flash_bwd;
    size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KV * hd;
    size_t natt = flash ? (size_t)B * H * T : (size_t)B * H * T * T;
    float *hx = malloc(sizeof(float) * nq);
    float *q = be->alloc(be, 4 * nq), *k = be->alloc(be, 4 * nk), *v = be->alloc(be, 4 * nk),
          *dout = be->alloc(be, 4 * nq), *out = be->alloc(be, 4 * nq), *att = be->alloc(be, 4 * natt),
          *dq = be->alloc(be, 4 * nq), *dk = be->alloc(be, 4 * nk), *dv = be->alloc(be, 4 * nk),
          *scr = flash ? NULL : be->alloc(be, 4 * (size_t)T * T);
    int32_t *doc = be->alloc(be, sizeof(int32_t) * (size_t)B * T); /* zero: one document */
    if (!hx || !q || !k || !v || !dout || !out || !att || !dq || !dk || !dv || !doc ||
        (!flash && !scr)) {
        fprintf(stderr, "bench_mfu: --attention-only: out of %s memory\n", be->name);
        return 1;
    }
    float *dst[] = {q, k, v, dout};
    size_t cnt[] = {nq, nk, nk, nq};
    for (int t = 0; t < 4; t++) {
        for (size_t i = 0; i < cnt[t]; i++) hx[i] = (float)herd_rng_normal(11, (uint64_t)t, i);
        be->copy_h2d(be, dst[t], hx, sizeof(float) * cnt[t]);
    }
    double t0 = 0;
    for (int s = 0; s < o->warmup + o->steps; s++) {
        if (s == o->warmup) {
            be->synchronize(be);
            t0 = herd_now_s();
        }
        if (flash) {
            be->attention_flash_fwd(be, out, att, q, k, v, doc, B, T, H, KV, hd);
            be->attention_flash_bwd(be, dq, dk, dv, dout, out, att, q, k, v, doc, B, T, H, KV, hd);
        } else {
            be->attention_fwd(be, out, att, q, k, v, doc, B, T, H, KV, hd);
            be->attention_bwd(be, dq, dk, dv, scr, dout, att, q, k, v, doc, B, T, H, KV, hd);
        }
    }
    be->synchronize(be);
    double dt = (herd_now_s() - t0) / o->steps;
    double flops = 6.0 * B * H * (double)T * T * hd, tflops = flops / dt / 1e12;
    printf("herd %s attention (%s, fp32): B %d T %d H %d KV %d hd %d: fwd+bwd %.3f ms, "
           "%.2f TFLOP/s\n", be->name, flash ? "flash" : "materialized", B, T, H, KV, hd,
           dt * 1e3, tflops);
    printf("{\"bench\":\"attention\",\"impl\":\"herd\",\"label\":\"%s\",\"backend\":\"%s\","
           "\"attention\":\"%s\",\"precision\":\"fp32\",\"batch\":%d,\"seq\":%d,\"heads\":%d,"
           "\"kv_heads\":%d,\"head_dim\":%d,\"ms\":%.4f,\"tflops\":%.4f}\n", o->label, be->name,
           flash ? "flash" : "materialized", B, T, H, KV, hd, dt * 1e3, tflops);
    void *bufs[] = {q, k, v, dout, out, att, dq, dk, dv, scr, doc};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) be->free(be, bufs[i]);
    free(hx);
    return 0;
}

int main(int argc, char **argv)
{
    opts o;
    int rc = parse(&o, argc, argv);
    if (rc) return rc;
    const herd_backend *be = herd_backend_get(o.backend);
    if (!be) {
        fprintf(stderr, "bench_mfu: --backend %s: not available here (cuda: built without nvcc, "
                "or no device)\n", o.backend);
        return 1;
    }
    if (o.attention_only) return bench_attention(&o, be);
    herd_config c;
    herd_config_defaults(&c);
    c.model.n_layers = o.layers; c.model.d_model = o.d_model; c.model.ffn_dim = o.ffn; c.model.n_heads = o.heads;
    c.model.n_kv_heads = o.kv_heads; c.model.vocab_size = o.vocab; c.model.max_seq_len = o.seq;
    herd_model_dims d;
    herd_model_dims_from_config(&d, &c.model);
    herd_model m;
    herd_adamw opt;
    int rc_mode = herd_plan_recompute_parse(o.recompute);
    if (rc_mode < 0) return usage("--recompute: none, selective or full");
    int bf16 = !strcmp(o.precision, "bf16");
    if (!bf16 && strcmp(o.precision, "fp32")) return usage("--precision: fp32 or bf16");
    if (bf16 && !be->set_matmul_bf16) return usage("--precision bf16: this backend has no bf16 matmul");
    if (be->set_matmul_bf16) be->set_matmul_bf16(be, bf16);
    herd_model_parallel par = {.xent_chunk = o.xent_chunk}; /* one rank: no TP/PP/CP groups */
    if (herd_model_create_parallel(&m, &d, be, 1, &par) || herd_model_set_recompute(&m, rc_mode))
        return 1;
    if (herd_adamw_create(&opt, &m)) return 1;
    int B = o.batch, T = o.seq, N = B * T;
    int32_t *tok = malloc(sizeof(int32_t) * N), *tgt = malloc(sizeof(int32_t) * N),
            *doc = malloc(sizeof(int32_t) * N);
    if (!tok || !tgt || !doc) return 1;
    for (int i = 0; i < N; i++) {
        tok[i] = (int32_t)(herd_splitmix64((uint64_t)i) % (uint64_t)o.vocab);
        tgt[i] = (int32_t)(herd_splitmix64((uint64_t)i + 7) % (uint64_t)o.vocab);
        doc[i] = (i % T) < T / 2 ? 0 : 1; /* two documents per sequence */
    }
    int64_t pm = herd_model_dims_matmul_params(&d);
    double fpt = herd_mfu_flops_per_token(pm, d.n_layers, T, d.d_model);
    double t0 = 0, loss = 0;
    for (int s = 0; s < o.warmup + o.steps; s++) {
        if (s == o.warmup) {
            be->synchronize(be);
            t0 = herd_now_s();
            if (be->mem_peak) be->mem_peak(be, 1); /* the timed steps' peak */
        }
        int64_t nv = 0;
        herd_model_zero_grad(&m);
        /* as the trainer: bf16 weights rounded once for the step's GEMMs */
        int w16 = bf16 && !o.weights_per_gemm && be->weights_bf16_begin;
        if (w16 && be->weights_bf16_begin(be, m.params, (size_t)m.n_params)) return 1;
        loss = herd_model_forward(&m, tok, tgt, doc, B, T, &nv);
        herd_model_backward(&m, 1.0f / (float)(nv ? nv : 1));
        if (w16) be->weights_bf16_end(be);
        herd_adamw_step(&opt, &m, &c.optim, 1e-4, herd_grad_norm(&m));
        loss /= (double)(nv ? nv : 1);
    }
    be->synchronize(be);
    double dt = herd_now_s() - t0;
    double tps = (double)N * o.steps / dt, tflops = tps * fpt / 1e12, mfu = tflops / o.peak_tflops;
    double mem_gib = be->mem_in_use ? (double)be->mem_in_use(be) / (1u << 30) : 0.0;
    double peak_gib = be->mem_peak ? (double)be->mem_peak(be, 0) / (1u << 30) : 0.0;
    int flash = be->prefer_flash && be->attention_flash_fwd != NULL;
    printf("herd %s: layers %d d %d ffn %d heads %d/%d vocab %d seq %d batch %d; params %.1fM, "
           "P_matmul %.1fM; attention %s; GEMM inputs %s%s\n", be->name, o.layers, o.d_model, o.ffn, o.heads,
           o.kv_heads, o.vocab, T, B, m.n_params / 1e6, pm / 1e6, flash ? "flash" : "materialized",
           o.precision, !strcmp(o.precision, "bf16") ? (o.weights_per_gemm ? " (weights rounded at every GEMM)"
                                                      : " (weights rounded once per step)") : "");
    printf("  flops/token = 6*%lld + 6*%d*%d*%d = %.4e\n", (long long)pm, o.layers, T, o.d_model,
           fpt);
    printf("  %d steps in %.3f s: %.0f tokens/s, %.2f TFLOP/s, MFU %.2f%% of %.1f TFLOP/s; "
           "loss %.4f; device memory in use %.1f GiB; peak allocated by herd %.2f GiB "
           "(recompute %s)\n", o.steps, dt, tps, tflops, 100 * mfu, o.peak_tflops, loss, mem_gib,
           peak_gib, o.recompute);
    printf("{\"bench\":\"mfu\",\"impl\":\"herd\",\"label\":\"%s\",\"backend\":\"%s\","
           "\"precision\":\"%s\",\"attention\":\"%s\",\"layers\":%d,\"d_model\":%d,\"ffn\":%d,"
           "\"heads\":%d,\"kv_heads\":%d,\"vocab\":%d,\"seq\":%d,\"batch\":%d,\"steps\":%d,"
           "\"seconds\":%.6f,\"tokens_per_second\":%.1f,\"p_matmul\":%lld,\"flops_per_token\":%.6e,"
           "\"tflops\":%.4f,\"peak_tflops\":%.1f,\"mfu\":%.6f,\"loss\":%.6f,\"mem_gib\":%.3f,"
           "\"peak_alloc_gib\":%.3f,\"recompute\":\"%s\"}\n",
           o.label, be->name, o.precision, flash ? "flash" : "materialized", o.layers, o.d_model, o.ffn,
           o.heads, o.kv_heads, o.vocab, T, B, o.steps, dt, tps, (long long)pm, fpt, tflops,
           o.peak_tflops, mfu, loss, mem_gib, peak_gib, o.recompute);
    free(tok); free(tgt); free(doc);
    herd_adamw_destroy(&opt, &m);
    herd_model_destroy(&m);
    return 0;
}
