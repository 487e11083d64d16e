/* train.c — see train.h. */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "monitoring/metrics.h"
#include "monitoring/mfu.h"
#include "src/data.h"
#include "src/model.h"
#include "src/optim.h"
#include "src/schedule.h"
#include "src/train.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* mkdir -p */
static int make_dirs(const char *path)
{
    char buf[HERD_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) && errno != EEXIST) goto fail;
        *p = '/';
    }
    if (mkdir(buf, 0755) && errno != EEXIST) goto fail;
    return 0;
fail:
    fprintf(stderr, "herd: %s: cannot create directory: %s\n", buf, strerror(errno));
    return -1;
}

static int save_resolved_config(const herd_config *c)
{
    char path[HERD_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/config.yaml", c->out_dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "herd: %s: cannot write the resolved config: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = herd_config_write(c, f);
    if (fclose(f) != 0) rc = -1;
    return rc;
}

static void set_threads(int threads)
{
    if (threads <= 0) return;
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
}

static void print_header(const herd_config *c, const herd_model *m, double peak_tflops,
                         const char *peak_origin)
{
    const herd_model_dims *d = &m->dims;
    int64_t pm = herd_model_dims_matmul_params(d);
    printf("herd train: backend %s, %d threads\n", m->be->name, omp_get_max_threads());
    printf("model: %d layers, d_model %d, %d heads (%d kv), head_dim %d, ffn %d, vocab %d, "
           "theta %g\n", d->n_layers, d->d_model, d->n_heads, d->n_kv_heads, d->head_dim,
           d->ffn_dim, d->vocab_size, d->rope_theta);
    printf("params: %lld total, P_matmul %lld\n", (long long)m->n_params, (long long)pm);
    printf("mfu: flops_per_token = 6*P_matmul + 6*n_layers*seq_len*d_model "
           "= 6*%lld + 6*%d*seq_len*%d; peak %.4g TFLOP/s (%s)\n",
           (long long)pm, d->n_layers, d->d_model, peak_tflops, peak_origin);
    for (int i = 0; i < c->n_ramp; i++)
        printf("batch ramp: after %lld tokens: %lld tokens/batch at seq_len %d (%lld sequences, "
               "%lld micro-batches of %d)\n", (long long)c->ramp[i].after_tokens,
               (long long)c->ramp[i].batch_tokens, c->ramp[i].seq_len,
               (long long)(c->ramp[i].batch_tokens / c->ramp[i].seq_len),
               (long long)(c->ramp[i].batch_tokens / c->ramp[i].seq_len / c->micro_batch),
               c->micro_batch);
    fflush(stdout);
}

typedef struct {
    int32_t *tokens, *targets, *doc;  /* host [n_seqs * T] */
    size_t   cap;
} host_batch;

static int host_batch_reserve(host_batch *b, size_t n)
{
    if (n <= b->cap) return 0;
    free(b->tokens); free(b->targets); free(b->doc);
    b->tokens = malloc(n * sizeof(int32_t));
    b->targets = malloc(n * sizeof(int32_t));
    b->doc = malloc(n * sizeof(int32_t));
    b->cap = n;
    if (b->tokens && b->targets && b->doc) return 0;
    fprintf(stderr, "herd: out of memory for a batch of %zu tokens\n", n);
    return -1;
}

/* Mean loss over the same eval_batches micro-batches of the validation shard
 * every time (the sampler restarts from its first window), forward only. */
static double evaluate(herd_model *m, herd_data *val, const herd_config *c, int T, int64_t *n_tok)
{
    int B = c->micro_batch;
    size_t n = (size_t)B * T;
    int32_t *tok = malloc(n * sizeof(int32_t)), *tgt = malloc(n * sizeof(int32_t)),
            *doc = malloc(n * sizeof(int32_t));
    herd_data_state st = {c->seed, 0, 0, T};
    double sum = herd_data_set_state(val, &st) ? NAN : 0;
    int64_t valid = 0;
    for (int i = 0; i < c->eval_batches && tok && tgt && doc && !isnan(sum); i++) {
        int64_t nv;
        if (herd_data_next(val, B, T, tok, tgt, doc)) { sum = NAN; break; }
        sum += herd_model_forward(m, tok, tgt, doc, B, T, &nv);
        valid += nv;
    }
    free(tok); free(tgt); free(doc);
    *n_tok = valid;
    return valid ? sum / (double)valid : NAN;
}

static int log_eval(herd_metrics *mt, herd_model *m, herd_data *val, const herd_config *c, int T,
                    int64_t step)
{
    int64_t n;
    double vl = evaluate(m, val, c, T, &n);
    if (!isfinite(vl)) {
        fprintf(stderr, "herd: %s: validation loss is not finite\n", c->val_path);
        return -1;
    }
    printf("eval   %6lld | val loss %.4f (%lld tokens of %s)\n", (long long)step, vl, (long long)n,
           c->val_path);
    fflush(stdout);
    if (fprintf(mt->f, "{\"step\":%lld,\"val_loss\":%.17g,\"val_tokens\":%lld}\n",
                (long long)step, vl, (long long)n) < 0 || fflush(mt->f))
        return -1;
    return 0;
}

int herd_train(const herd_config *c, const char *config_origin)
{
    set_threads(c->threads);
    const herd_backend *be = herd_backend_get(c->backend);
    if (!be) {
        fprintf(stderr, "herd: %s: key 'train.backend': backend '%s' is not available "
                "(%s)\n", config_origin, c->backend,
                strcmp(c->backend, "cuda") ? "unknown backend" : "not built with CUDA or no device");
        return -1;
    }
    if (!c->data_path[0]) {
        fprintf(stderr, "herd: %s: key 'data.path': no training data given\n", config_origin);
        return -1;
    }
    herd_data *data = NULL;
    herd_data *val = NULL;
    if (herd_data_open(&data, c->data_path, c->vocab_size, c->seed)) return -1;
    if (c->val_path[0] && herd_data_open(&val, c->val_path, c->vocab_size, c->seed)) {
        herd_data_close(data);
        return -1;
    }
    if (make_dirs(c->out_dir) || save_resolved_config(c)) {
        herd_data_close(data);
        herd_data_close(val);
        return -1;
    }

    herd_model_dims dims;
    herd_model_dims_from_config(&dims, c);
    herd_model model;
    herd_adamw opt;
    if (herd_model_create(&model, &dims, be, c->seed)) {
        herd_data_close(data);
        herd_data_close(val);
        return -1;
    }
    if (herd_adamw_create(&opt, &model)) {
        herd_model_destroy(&model);
        herd_data_close(data);
        herd_data_close(val);
        return -1;
    }

    double peak = c->peak_tflops;
    const char *peak_origin = "monitor.peak_tflops";
    if (peak <= 0 && !strcmp(be->name, "cuda")) {
        peak = HERD_PEAK_TFLOPS_H100_BF16;
        peak_origin = "H100 dense BF16";
    } else if (peak <= 0) {
        peak = herd_mfu_measure_cpu_peak(512, 0.3);
        peak_origin = "measured fp32 sgemm 512^3 on this machine";
    }
    print_header(c, &model, peak, peak_origin);

    char mpath[HERD_PATH_MAX + 32];
    snprintf(mpath, sizeof mpath, "%s/metrics.jsonl", c->out_dir);
    remove(mpath); /* a fresh run starts a fresh file; resume (issue 7) will append */
    herd_metrics metrics;
    int rc = herd_metrics_open(&metrics, mpath);
    host_batch hb = {0};
    int64_t p_matmul = herd_model_dims_matmul_params(&dims);
    int64_t step = 0, tokens_seen = 0;

    while (rc == 0 && (c->max_steps == 0 || step < c->max_steps) &&
           (c->max_tokens == 0 || tokens_seen < c->max_tokens)) {
        double t0 = now_s();
        const herd_ramp_stage *st = herd_schedule_ramp(c, tokens_seen);
        int T = st->seq_len, B = c->micro_batch;
        int64_t n_seqs = st->batch_tokens / T, n_micro = n_seqs / B;
        if (host_batch_reserve(&hb, (size_t)n_seqs * T)) { rc = -1; break; }
        /* fetch the whole batch first: the loss is a mean over its valid targets */
        int64_t n_valid = 0;
        for (int64_t i = 0; i < n_micro && rc == 0; i++) {
            size_t o = (size_t)i * B * T;
            rc = herd_data_next(data, B, T, hb.tokens + o, hb.targets + o, hb.doc + o);
        }
        if (rc) break;
        for (size_t i = 0; i < (size_t)n_seqs * T; i++) n_valid += hb.targets[i] >= 0;

        herd_model_zero_grad(&model);
        double loss_sum = 0.0;
        for (int64_t i = 0; i < n_micro; i++) {
            size_t o = (size_t)i * B * T;
            loss_sum += herd_model_forward(&model, hb.tokens + o, hb.targets + o, hb.doc + o,
                                           B, T, NULL);
            herd_model_backward(&model, (float)(1.0 / (double)n_valid));
        }
        double loss = loss_sum / (double)n_valid;
        double gnorm = herd_grad_norm(&model);
        if (!isfinite(loss) || !isfinite(gnorm)) {
            fprintf(stderr, "herd: step %lld: loss %g, grad norm %g is not finite; stopping\n",
                    (long long)step, loss, gnorm);
            rc = -1;
            break;
        }
        double lr = herd_schedule_lr(c, step, tokens_seen);
        herd_adamw_step(&opt, &model, c, lr, gnorm);
        be->synchronize();
        tokens_seen += n_seqs * T;
        step++;

        double dt = now_s() - t0, tps = (double)(n_seqs * T) / dt;
        double fpt = herd_mfu_flops_per_token(p_matmul, dims.n_layers, T, dims.d_model);
        herd_step_metrics sm = {
            .step = step, .loss = loss, .lr = lr, .grad_norm = gnorm,
            .tokens_seen = tokens_seen, .batch_tokens = n_seqs * T, .seq_len = T,
            .step_seconds = dt, .tokens_per_second = tps, .tflops = tps * fpt / 1e12,
            .mfu = herd_mfu(tps, fpt, peak)};
        rc = herd_metrics_write(&metrics, &sm);
        if (c->log_every > 0 && (step % c->log_every == 0 || step == 1))
            printf("step %6lld | loss %.4f | lr %.3e | grad norm %.3f | %.0f tok/s | "
                   "%.2f GFLOP/s | mfu %.1f%%\n", (long long)step, loss, lr, gnorm, tps,
                   tps * fpt / 1e9, 100 * sm.mfu), fflush(stdout);
        int last = (c->max_steps && step >= c->max_steps) || (c->max_tokens && tokens_seen >= c->max_tokens);
        if (rc == 0 && val && c->eval_every > 0 && (step % c->eval_every == 0 || last))
            rc = log_eval(&metrics, &model, val, c, T, step);
    }
    if (rc == 0)
        printf("done: %lld steps, %lld tokens; metrics in %s\n", (long long)step,
               (long long)tokens_seen, mpath);
    free(hb.tokens); free(hb.targets); free(hb.doc);
    herd_metrics_close(&metrics);
    herd_adamw_destroy(&opt, &model);
    herd_model_destroy(&model);
    herd_data_close(data);
    herd_data_close(val);
    return rc;
}
