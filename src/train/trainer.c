/* trainer.c — see trainer.h: open, close, evaluate, checkpoint. The step
 * is in trainer_step.c, the printed report in train_report.c. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <mpi.h>
#include "monitoring/clock.h"
#include "monitoring/mfu.h"
#include "monitoring/watchdog.h"
#include "monitoring/exitcodes.h"
#include "checkpoint/safe_file.h"
#include "src/data/eval.h"
#include "src/train/trainer_dpo.h"
#include "src/train/trainer_rm.h"
#include "src/model/hf.h"
#include "src/model/weights.h"
#include "src/parallel/device.h"
#include "src/parallel/placement.h"
#include "src/train/train_report.h"
#include "src/train/trainer.h"

static int save_resolved_config(const herd_config *c)
{
    char path[HERD_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/config.yaml", c->train.out_dir);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int rc = f ? herd_config_write(c, f) : -1;
    if (f && fclose(f) != 0) rc = -1;
    /* temp file, rename: a link planted at config.yaml is replaced, never followed */
    if (rc == 0) rc = herd_safe_write(path, buf, len);
    else fprintf(stderr, "herd: %s: cannot write the resolved config\n", path);
    free(buf);
    return rc;
}

static void set_threads(int threads)
{
    if (threads <= 0) return;
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
}

int herd_trainer_agree(const herd_trainer *t, int rc)
{
    int32_t bad = rc != 0;
    if (herd_comm_all_reduce(t->grid.world, &bad, 1, HERD_I32, HERD_MAX)) herd_comm_abort(1);
    return bad ? -1 : 0;
}

/* Start-up phase times of this process (seconds), printed by rank 0 as one
 * "startup:" line so that runs at several world sizes show which phase grows
 * (benchmarks/startup_scale.sh). Kept here, beside the open sequence it
 * times, rather than in the trainer object. */
static struct {
    double launch, place, comms, data, dev_groups, model, resume;
} startup;

/* Seconds since this process was exec'd: the launcher, MPI_Init (PMIx's
 * exchanges and fences) and config parsing, before the trainer opens. */
static double since_exec_s(void)
{
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f) return -1;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');   /* the command name may hold spaces */
    unsigned long long start = 0;
    for (int field = 2; p && field < 22; field++) p = strchr(p + 1, ' ');
    if (!p || sscanf(p + 1, "%llu", &start) != 1) return -1;
    struct timespec now;
    clock_gettime(CLOCK_BOOTTIME, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9 - (double)start / (double)sysconf(_SC_CLK_TCK);
}

static void print_startup(const herd_trainer *t, double total)
{
    printf("startup: world %d | launch+MPI_Init %.3f s | placement %.3f s | communicators %.3f s "
           "(MPI groups) + %.3f s (device groups) | data %.3f s | model+FSDP %.3f s | checkpoint "
           "open/resume %.3f s | trainer open %.3f s\n", t->grid.world_size, startup.launch, startup.place,
           startup.comms, startup.dev_groups, startup.data, startup.model, startup.resume, total);
    fflush(stdout);
}

/* The process grid over the ranks, placed (parallel.placement) and bound
 * (backend cuda: one GPU per rank and its start-up line; else
 * parallel.bind_cores); the watchdog. */
static int open_grid(herd_trainer *t, const char *origin, char *place, size_t place_len,
                     char *bind, size_t bind_len)
{
    const herd_config *c = t->c;
    set_threads(c->train.threads);
    int world = herd_mpi_world_size();
    int *perm = malloc(sizeof(int) * (size_t)world);
    if (!perm) return -1;
    herd_device_info d;
    int cuda = c->train.backend == HERD_BACKEND_CUDA;
    double t0 = herd_now_s(); /* placement, then the GPU choice or the core binding */
    int prep = herd_placement_prepare(&c->parallel, cuda, world, perm, &d, place, place_len, bind, bind_len);
    if (prep) {
        free(perm);
        return prep == HERD_DEVICE_REFUSED ? HERD_EXIT_USAGE : -1;
    }
    t->device = d.device;
    if (cuda) {
        /* a long cpu list is cut in the header line; this per-rank line has it whole */
        char line[1024];
        herd_device_format(&d, line, sizeof line);
        printf("device: %s\n", line);
        fflush(stdout);
    }
    t->has_grid = 1; /* destroyed even when its creation fails */
    double t1 = herd_now_s();
    int rc = herd_grid_create(&t->grid, &c->parallel, origin, perm);
    startup.place = t1 - t0;
    startup.comms = herd_now_s() - t1;
    free(perm);
    if (rc || herd_grid_check_batch(&t->grid, &c->batch, origin)) return -1;
    t->root = t->grid.world_rank == 0;
    if (c->monitor.watchdog_step_s <= 0) return 0;
    char host[128] = "";
    const char *node = getenv("SLURMD_NODENAME");
    if (node) snprintf(host, sizeof host, "%s", node);
    else gethostname(host, sizeof host - 1);
    double commit = c->monitor.watchdog_commit_s > c->monitor.watchdog_step_s
                        ? c->monitor.watchdog_commit_s : c->monitor.watchdog_step_s;
    if (herd_watchdog_start(c->monitor.watchdog_step_s, commit, t->grid.world_rank, host)) return -1;
    return 0;
}

/* The backend, the training and validation data, the output directory. */
static int open_data(herd_trainer *t, const char *origin)
{
    const herd_config *c = t->c;
    const char *backend_name = herd_config_enum_name(herd_backend_choices, c->train.backend);
    /* the precision is set once the model is built */
    t->be = herd_backend_create(backend_name, &(herd_backend_options){.device = t->device});
    if (!t->be) {
        if (t->root)
            fprintf(stderr, "herd: %s: key 'train.backend': backend '%s' is not available "
                    "(%s)\n", origin, backend_name,
                    c->train.backend != HERD_BACKEND_CUDA ? "unknown backend" : "not built with CUDA or no device");
        return -1;
    }
    int rc;
    if (c->post.objective != HERD_OBJECTIVE_PRETRAIN) {
        rc = herd_chat_batch_open(&t->chat, c, t->root);
    } else if (!c->data.path[0] && c->data.n_sources == 0) {
        if (t->root) fprintf(stderr, "herd: %s: key 'data.path': no training data given\n", origin);
        return -1;
    } else {
        rc = herd_loader_open(&t->data, c, c->model.vocab_size);
    }
    if (rc == 0 && c->data.val_path[0]) rc = herd_data_open(&t->val, c->data.val_path, c->model.vocab_size, c->train.seed);
    if (rc == 0 && t->root) rc = herd_safe_mkdirs(c->train.out_dir) || save_resolved_config(c) ? -1 : 0;
    return herd_trainer_agree(t, rc);
}

/* train.init_from: the weights of a Hugging Face Llama directory, whose
 * config.json must agree with the run's model keys (checked on rank 0, all
 * ranks agree), or of a weights file (`herd ckpt export`, `herd post`: whole
 * F32 tensors whose shapes must be the model's); each rank reads only its own
 * slices. A resumed run's checkpoint replaces them later. */
static int init_from_hf(herd_trainer *t, int rc)
{
    const char *dir = t->c->train.init_from;
    herd_config_model hf = t->c->model;
    int tied = 0;
    struct stat st;
    if (rc == 0 && stat(dir, &st) == 0 && S_ISREG(st.st_mode)) {
        rc = herd_weights_load(&t->model, dir);
        if (rc == 0 && t->root) printf("weights from %s\n", dir), fflush(stdout);
        return herd_trainer_agree(t, rc);
    }
    if (rc == 0 && t->root)
        rc = herd_hf_config_read(dir, &hf, &tied) || herd_hf_config_check(dir, &t->c->model, &hf) ? -1 : 0;
    rc = herd_trainer_agree(t, rc);
    if (rc == 0) rc = herd_hf_config_read(dir, &hf, &tied);
    if (rc == 0) rc = herd_hf_load(&t->model, dir, tied);
    if (rc == 0 && t->root) printf("weights from %s%s\n", dir, tied ? " (tied output: lm_head starts as "
                                   "embed_tokens and trains on its own)" : ""), fflush(stdout);
    return herd_trainer_agree(t, rc);
}

/* The model (TP, SP, PP, CP inside it), its precision, FSDP across DP. */
static int open_model(herd_trainer *t)
{
    const herd_config *c = t->c;
    const herd_backend *be = t->be;
    herd_model_dims dims;
    herd_model_dims_from_config(&dims, &c->model);
    /* the backend's buffers travel over NCCL on the CUDA backend (groups of
     * more than one rank), over MPI on the CPU */
    double t0 = herd_now_s();
    int rc = herd_grid_device_groups(&t->grid, !strcmp(be->name, "cuda"));
    startup.dev_groups = herd_now_s() - t0;
    herd_model_parallel par = {t->grid.tp_dev, c->parallel.sequence_parallel, t->grid.pp_dev, t->grid.cp_dev,
                               c->parallel.virtual_stages, c->parallel.pp_first_last_fewer, c->train.xent_chunk};
    if (rc == 0) rc = herd_model_create_parallel(&t->model, &dims, be, c->train.seed, &par);
    if (rc == 0) t->has_model = 1;
    if (c->train.init_from[0]) rc = init_from_hf(t, rc);
    if (rc == 0 && herd_model_set_recompute(&t->model, c->train.recompute)) rc = -1;
    /* BF16 compute: the backend rounds every GEMM input; master weights,
     * gradients and the optimizer stay fp32 */
    t->bf16 = c->train.precision == HERD_PRECISION_BF16;
    if (rc == 0 && t->bf16 && !be->set_matmul_bf16) {
        fprintf(stderr, "herd: key 'train.precision': backend %s has no bf16 matmul\n", be->name);
        rc = -1;
    }
    if (rc == 0 && be->set_matmul_bf16) be->set_matmul_bf16(be, t->bf16);
    if (rc == 0 && herd_fsdp_create(&t->fsdp, &t->model, t->grid.dp_dev)) rc = -1;
    if (rc == 0) t->has_fsdp = 1;
    return herd_trainer_agree(t, rc);
}

/* The peak TFLOP/s of one device, for the MFU; *origin says where it came from. */
static void find_peak(herd_trainer *t, const char **origin)
{
    t->peak_tflops = t->c->monitor.peak_tflops;
    *origin = "monitor.peak_tflops";
    if (t->peak_tflops <= 0 && !strcmp(t->be->name, "cuda")) {
        t->peak_tflops = HERD_PEAK_TFLOPS_H100_BF16;
        *origin = "H100 dense BF16";
    } else if (t->peak_tflops <= 0) {
        /* every rank measures (the same binary on the same kind of core); rank 0's number is used */
        t->peak_tflops = herd_mfu_measure_cpu_peak(512, 0.3);
        if (herd_comm_broadcast(t->grid.world, &t->peak_tflops, 1, HERD_F64, 0)) herd_comm_abort(1);
        *origin = "measured fp32 sgemm 512^3 on this machine, per rank";
    }
}

/* Checkpoints (resuming from the newest good one, whatever layout wrote
 * it), metrics.jsonl, the straggler detector. */
static int open_state(herd_trainer *t)
{
    const herd_config *c = t->c;
    char resumed_from[HERD_PATH_MAX + 256];
    t->has_ckpt = 1; /* closed even when opening it fails */
    int rc = herd_trainer_agree(t, herd_train_ckpt_open(&t->ckpt, c, &t->grid));
    int resumed = rc == 0 ? herd_train_ckpt_resume(&t->ckpt, c, &t->grid, &t->model, &t->fsdp, t->data,
                                                   &t->step, &t->tokens_seen, resumed_from,
                                                   sizeof resumed_from)
                          : -1;
    if (resumed < 0) rc = -1;
    if (t->root && resumed > 0) printf("resumed from %s\n", resumed_from), fflush(stdout);
    if (resumed > 0 && t->chat) rc = herd_trainer_agree(t, herd_trainer_chat_replay(t));
    snprintf(t->metrics_path, sizeof t->metrics_path, "%s/metrics.jsonl", c->train.out_dir);
    if (t->root && rc == 0) {
        /* a fresh run starts a fresh file; a resumed one appends */
        rc = herd_metrics_open_fresh(&t->metrics, t->metrics_path, !resumed);
        if (rc == 0 && resumed)
            rc = herd_metrics_event_restart(&t->metrics, t->step, (double)time(NULL), 1);
    }
    rc = herd_trainer_agree(t, rc);
    /* stragglers: every rank's compute time, gathered every straggler_every steps */
    if (rc == 0 && c->monitor.straggler_every > 0)
        rc = herd_trainer_agree(t, herd_straggler_create(&t->strag, MPI_COMM_WORLD, 4, 1.5));
    if (c->monitor.prom_file[0]) snprintf(t->prom_path, sizeof t->prom_path, "%s", c->monitor.prom_file);
    else snprintf(t->prom_path, sizeof t->prom_path, "%s/herd.prom", c->train.out_dir);
    snprintf(t->strag_path, sizeof t->strag_path, "%s/stragglers.txt", c->train.out_dir);
    return rc;
}

int herd_trainer_open(herd_trainer **tp, const herd_config *c, const char *config_origin,
                      const herd_train_options *opt)
{
    herd_trainer *t = *tp = calloc(1, sizeof *t);
    if (!t) return -1;
    t->c = c;
    t->opt = opt;
    char place[1200] = "rank order", bind[256] = "not bound";
    startup.launch = since_exec_s();
    double t0 = herd_now_s(), t1, t2;
    int rc = open_grid(t, config_origin, place, sizeof place, bind, sizeof bind);
    if (rc) return rc; /* HERD_EXIT_USAGE: no GPU, or two ranks on one */
    t1 = herd_now_s();
    if (open_data(t, config_origin)) return -1;
    t2 = herd_now_s();
    startup.data = t2 - t1;
    if (open_model(t)) return -1;
    startup.model = herd_now_s() - t2 - startup.dev_groups;
    const char *peak_origin;
    find_peak(t, &peak_origin);
    if (t->root) herd_train_print_header(t, peak_origin, place, bind);
    if (c->post.objective == HERD_OBJECTIVE_RM && herd_trainer_rm_open(&t->rm, t)) return -1;
    t1 = herd_now_s();
    rc = open_state(t);
    /* DPO's reference is the model at step 0: the init, train.init_from, or
     * the step-0 checkpoint of `herd ckpt import` just resumed */
    if (rc == 0 && c->post.objective == HERD_OBJECTIVE_DPO && herd_trainer_dpo_open(&t->dpo, t)) return -1;
    startup.resume = herd_now_s() - t1;
    if (t->root && rc == 0) print_startup(t, herd_now_s() - t0);
    return rc;
}

int herd_trainer_more(const herd_trainer *t)
{
    const herd_config *c = t->c;
    return (c->train.max_steps == 0 || t->step < c->train.max_steps) &&
           (c->train.max_tokens == 0 || t->tokens_seen < c->train.max_tokens);
}

/* Mean loss over the same eval_batches micro-batches of the validation shard
 * every time (the sampler restarts from its first window), forward only.
 * Every DP replica computes the same value; the TP ranks cooperate. */
static double evaluate(herd_model *m, herd_data *val, const herd_config *c, int T, int64_t *n_tok)
{
    int B = c->batch.micro_batch;
    size_t n = (size_t)B * T;
    int32_t *tok = malloc(n * sizeof(int32_t)), *tgt = malloc(n * sizeof(int32_t)),
            *doc = malloc(n * sizeof(int32_t));
    herd_data_state st = {c->train.seed, 0, 0, T};
    double sum = herd_data_set_state(val, &st) ? NAN : 0;
    int64_t valid = 0;
    for (int i = 0; i < c->train.eval_batches && tok && tgt && doc && !isnan(sum); i++) {
        int64_t nv;
        if (herd_data_next(val, B, T, tok, tgt, doc)) { sum = NAN; break; }
        sum += herd_model_forward(m, tok, tgt, doc, B, T, &nv);
        valid += nv;
    }
    free(tok); free(tgt); free(doc);
    *n_tok = valid;
    return valid ? sum / (double)valid : NAN;
}

static int log_eval(herd_trainer *t, int T)
{
    const herd_config *c = t->c;
    int64_t n;
    double vl = evaluate(&t->model, t->val, c, T, &n);
    if (!isfinite(vl)) {
        fprintf(stderr, "herd: %s: validation loss is not finite\n", c->data.val_path);
        return -1;
    }
    if (!t->root) return 0;
    printf("eval   %6lld | val loss %.4f (%lld tokens of %s)\n", (long long)t->step, vl, (long long)n,
           c->data.val_path);
    fflush(stdout);
    if (fprintf(t->metrics.f, "{\"step\":%lld,\"val_loss\":%.17g,\"val_tokens\":%lld}\n",
                (long long)t->step, vl, (long long)n) < 0 || fflush(t->metrics.f))
        return -1;
    return 0;
}

static double forward_for_eval(void *ctx, const int32_t *tok, const int32_t *tgt, const int32_t *doc,
                               int B, int T, int64_t *n_valid)
{
    return herd_model_forward(ctx, tok, tgt, doc, B, T, n_valid);
}

/* Validation loss and bits per byte of every source of a data.sources mix
 * (the same windows each time); every DP replica computes the same numbers. */
static int log_eval_sources(herd_trainer *t, int T)
{
    int n = herd_loader_n_val_sources(t->data);
    if (n <= 0) return 0;
    herd_eval_acc *acc = calloc((size_t)n, sizeof *acc);
    int rc = acc ? 0 : -1;
    for (int v = 0; v < n && rc == 0; v++)
        rc = herd_eval_source(t->data, v, forward_for_eval, &t->model, t->c->batch.micro_batch, T, 0,
                              t->c->train.eval_batches, &acc[v]);
    if (rc == 0 && t->root) {
        rc = herd_eval_report(t->data, acc, t->step, t->metrics.f, stdout);
        fflush(t->metrics.f);
        fflush(stdout);
    }
    free(acc);
    return rc;
}

int herd_trainer_evaluate(herd_trainer *t, int T)
{
    int rc = t->val ? log_eval(t, T) : 0;
    if (rc == 0 && t->data && t->c->data.n_sources > 0) rc = log_eval_sources(t, T);
    return rc;
}

int herd_trainer_poll(herd_trainer *t, int *stop)
{
    *stop = 0;
    if (t->ckpt.writer && herd_ckpt_poll(t->ckpt.writer)) return -1;
    *stop = herd_ckpt_stopper_check(t->ckpt.stopper);
    if (*stop >= 0) return 0;
    *stop = 0;
    return -1;
}

/* the checkpoint event's time, to the millisecond: scripts/goodput_stage.sh
 * takes a stage's wall time per step from consecutive checkpoints */
static double wall_clock_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int herd_trainer_checkpoint(herd_trainer *t, int force)
{
    herd_ckpt_interval *iv = t->ckpt.ival; /* checkpoint.every auto (src/train/ckpt_interval.c) */
    if (iv) herd_ckpt_interval_tick(iv, herd_now_s(), 0);
    if (!t->ckpt.writer || t->ckpt.last_saved == t->step) return 0;
    int due = iv ? herd_ckpt_interval_due(iv, t->step, t->ckpt.last_saved)
                 : t->step % t->c->checkpoint.every == 0;
    if (!due && !force) return 0;
    double stall = 0;
    int rc = herd_trainer_agree(t, herd_train_ckpt_save(&t->ckpt, t->c, &t->grid, &t->model, &t->fsdp,
                                                        t->data, t->step, t->tokens_seen, &stall));
    if (rc == 0 && t->root)
        rc = herd_metrics_event_checkpoint(&t->metrics, t->step, wall_clock_s(), stall, 0.0);
    if (rc == 0 && iv) {
        iv->pending_stall = stall;
        rc = herd_ckpt_interval_update(iv, t->ckpt.writer, t->grid.world, t->root, t->step);
    }
    return rc;
}

int herd_trainer_stop(herd_trainer *t)
{
    int rc = 0;
    herd_watchdog_commit(1);
    if (t->ckpt.writer && herd_ckpt_wait(t->ckpt.writer)) rc = -1;
    herd_watchdog_commit(0);
    if (t->root)
        printf("stopping at step %lld on signal %d: checkpoint %s; exit %d (requeue)\n",
               (long long)t->step, herd_ckpt_stopper_signal(t->ckpt.stopper),
               t->ckpt.writer && rc == 0 ? "committed" : "NOT written (checkpoint.every 0)",
               HERD_EXIT_REQUEUE), fflush(stdout);
    return rc == 0 ? HERD_EXIT_REQUEUE : rc;
}

int herd_trainer_finish(herd_trainer *t)
{
    if (!t->has_ckpt) return 0;
    herd_watchdog_commit(1); /* the last checkpoint commits */
    int rc = herd_train_ckpt_close(&t->ckpt);
    herd_watchdog_commit(0);
    t->has_ckpt = 0;
    return rc ? -1 : 0;
}

void herd_trainer_close(herd_trainer *t)
{
    if (!t) return;
    herd_trainer_finish(t);
    free(t->batch.tokens);
    free(t->batch.targets);
    free(t->batch.doc);
    herd_straggler_destroy(t->strag);
    herd_metrics_close(&t->metrics);
    if (t->has_fsdp) herd_fsdp_destroy(&t->fsdp, &t->model);
    if (t->has_model) herd_model_destroy(&t->model);
    herd_backend_free(t->be); /* after everything its alloc handed out */
    herd_loader_close(t->data);
    herd_chat_batch_close(t->chat);
    herd_trainer_dpo_close(t->dpo);
    herd_trainer_rm_close(t->rm);
    herd_data_close(t->val);
    herd_watchdog_stop();
    if (t->has_grid) herd_grid_destroy(&t->grid);
    free(t);
}
