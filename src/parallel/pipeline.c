/* pipeline.c — see pipeline.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "src/parallel/pipeline.h"
#include "monitoring/clock.h"


/* ---- running the schedule ------------------------------------------------ */

typedef struct {
    herd_model *m;
    const herd_pipe_op *ops;
    int n_ops, N, B, T, P, S;
    const int32_t *tok, *tgt, *doc;
    int *slot;                  /* [V * N] slot of (chunk, mb), -1 none */
    herd_comm_request **rreq;   /* [2 * V * N] pending receive (forward, backward) */
    herd_comm_request **sreq;   /* [2 * V * N] pending send */
    float *bsend;               /* [V * N * io] gradients sent back (live until the send is done) */
    size_t io;
    int next_f, next_b;         /* next ops whose receive is not posted yet */
} pipe_run;

static void check(int rc)
{
    if (rc) herd_comm_abort(1); /* the other stages would wait forever */
}

static int tag(const pipe_run *r, int kind, int stage, int mb)
{
    return 2 * (mb * r->S + stage) + kind; /* stage: the receiving virtual stage */
}

static int ensure_slot(pipe_run *r, int chunk, int mb)
{
    int *s = &r->slot[chunk * r->N + mb];
    if (*s >= 0) return *s;
    *s = herd_model_slot_acquire(r->m, chunk);
    if (*s < 0) return -1;
    size_t o = (size_t)mb * r->B * r->T;
    if (herd_model_slot_set_batch(r->m, *s, r->tok + o, r->tgt + o, r->doc + o, r->B, r->T))
        return -1;
    r->m->slots[*s].row0 = mb * r->B;
    return *s;
}

/* Post the receive of op i (its input from the neighbouring stage). */
static int post_recv(pipe_run *r, int i)
{
    herd_model *m = r->m;
    const herd_pipe_op *o = &r->ops[i];
    int s = herd_model_chunk_stage(m, o->chunk), k = o->chunk * r->N + o->mb;
    herd_comm_request **q = &r->rreq[2 * k + o->kind];
    if (*q) return 0;
    if (o->kind == 0 && s > 0) {
        int sl = ensure_slot(r, o->chunk, o->mb);
        if (sl < 0) return -1;
        check(herd_comm_irecv(m->pp, m->slots[sl].acts[0].x_in, r->io, HERD_F32, (s - 1) % r->P,
                              tag(r, 0, s, o->mb), q));
    } else if (o->kind == 1 && s < r->S - 1) {
        int sl = r->slot[k];
        if (sl < 0) return 1; /* its forward has not run: post later */
        check(herd_comm_irecv(m->pp, m->slots[sl].d_out, r->io, HERD_F32, (s + 1) % r->P,
                              tag(r, 1, s, o->mb), q));
    }
    return 0;
}

/* Receives run one op ahead: the next forward's and the next backward's
 * inputs are posted before the current op computes. */
static int post_ahead(pipe_run *r, int from)
{
    while (r->next_f < r->n_ops && (r->next_f < from || r->ops[r->next_f].kind != 0)) r->next_f++;
    while (r->next_b < r->n_ops && (r->next_b < from || r->ops[r->next_b].kind != 1)) r->next_b++;
    if (r->next_f < r->n_ops && post_recv(r, r->next_f) < 0) return -1;
    if (r->next_b < r->n_ops) {
        int rc = post_recv(r, r->next_b);
        if (rc < 0) return -1;
    }
    return 0;
}

int herd_pipe_run(herd_model *m, const int32_t *tokens, const int32_t *targets,
                  const int32_t *doc, int n_micro, int B, int T, float loss_scale,
                  double *loss_sum, herd_pipe_stats *st)
{
    int P = m->pp_size, V = m->n_chunks, N = n_micro, S = m->n_stages;
    if (N < P) {
        fprintf(stderr, "herd: pipeline: %d micro-batches are fewer than the %d pipeline stages\n",
                N, P);
        return -1;
    }
    herd_model_drop_forward(m); /* an evaluation's activations are not needed */
    if (herd_model_reserve(m, B, T)) return -1;
    int *warm = malloc(sizeof(int) * P);
    herd_pipe_op *ops = malloc(sizeof(*ops) * 2 * (size_t)N * V);
    pipe_run r = {.m = m, .ops = ops, .n_ops = 2 * N * V, .N = N, .B = B, .T = T, .P = P,
                  .S = S, .tok = tokens, .tgt = targets, .doc = doc,
                  .io = herd_model_io_numel(m)};
    r.slot = malloc(sizeof(int) * V * N);
    r.rreq = calloc(2 * (size_t)V * N, sizeof(*r.rreq));
    r.sreq = calloc(2 * (size_t)V * N, sizeof(*r.sreq));
    r.bsend = m->pp ? m->be->alloc(m->be, sizeof(float) * (size_t)V * N * r.io) : NULL;
    int rc = warm && ops && r.slot && r.rreq && r.sreq && (!m->pp || r.bsend) ? 0 : -1;
    if (rc == 0 && herd_pipe_plan(P, V, N, warm) < 0) {
        fprintf(stderr, "herd: pipeline: no schedule for pp %d, virtual_stages %d, %d "
                "micro-batches\n", P, V, N);
        rc = -1;
    }
    if (rc == 0) herd_pipe_order(P, V, N, m->pp_rank, warm[m->pp_rank], ops);
    for (int i = 0; r.slot && i < V * N; i++) r.slot[i] = -1;
    if (st) {
        memset(st, 0, sizeof *st);
        st->ev = calloc((size_t)r.n_ops, sizeof(*st->ev));
        if (m->pp) check(herd_comm_barrier(m->pp));
    }
    m->peak_slots = m->slots_in_use;
    /* each chunk's last backward of the step makes its gradients final (the
     * model's gradient-ready hook) */
    int *last_b = calloc((size_t)V, sizeof(int));
    if (!last_b) rc = -1;
    for (int i = 0; rc == 0 && i < r.n_ops; i++)
        if (ops[i].kind == 1) last_b[ops[i].chunk] = i;
    double loss = 0.0, t_start = herd_now_s(), busy = 0.0;
    for (int i = 0; rc == 0 && i < r.n_ops; i++) {
        const herd_pipe_op *o = &ops[i];
        int s = herd_model_chunk_stage(m, o->chunk), k = o->chunk * N + o->mb;
        if (ensure_slot(&r, o->chunk, o->mb) < 0 || post_recv(&r, i) < 0 ||
            post_ahead(&r, i + 1) < 0) {
            rc = -1;
            break;
        }
        int sl = r.slot[k];
        herd_comm_request **q = &r.rreq[2 * k + o->kind];
        if (*q) check(herd_comm_wait(m->pp, *q)), *q = NULL;
        double t0 = herd_now_s();
        if (o->kind == 0) {
            loss += herd_model_chunk_forward(m, sl);
        } else {
            m->grad_final = i == last_b[o->chunk];
            herd_model_chunk_backward(m, sl, loss_scale);
            m->grad_final = 0;
            if (s > 0) m->be->copy_d2d(m->be, r.bsend + (size_t)k * r.io, m->slots[sl].d_in,
                                       sizeof(float) * r.io);
        }
        double t1 = herd_now_s();
        busy += t1 - t0;
        if (st) st->ev[st->n_ev++] = (herd_pipe_event){t0 - t_start, t1 - t_start, o->kind,
                                                       o->chunk, o->mb};
        if (o->kind == 0 && s < S - 1)
            check(herd_comm_isend(m->pp, m->slots[sl].x_out, r.io, HERD_F32, (s + 1) % P,
                                  tag(&r, 0, s + 1, o->mb), &r.sreq[2 * k]));
        if (o->kind == 1) {
            if (s > 0)
                check(herd_comm_isend(m->pp, r.bsend + (size_t)k * r.io, r.io, HERD_F32,
                                      (s - 1) % P, tag(&r, 1, s - 1, o->mb), &r.sreq[2 * k + 1]));
            /* the next stage has sent this micro-batch's gradient, so it has
             * our forward output: that send is complete and the slot can go */
            if (r.sreq[2 * k]) check(herd_comm_wait(m->pp, r.sreq[2 * k])), r.sreq[2 * k] = NULL;
            herd_model_slot_release(m, sl);
            r.slot[k] = -1;
        }
    }
    for (int i = 0; r.sreq && i < 2 * V * N; i++)
        if (r.sreq[i]) check(herd_comm_wait(m->pp, r.sreq[i]));
    if (rc == 0 && m->pp) check(herd_comm_all_reduce(m->pp, &loss, 1, HERD_F64, HERD_SUM));
    if (st) { /* the span ends with the rank's last op (not the loss reduction after it) */
        st->span = st->n_ev ? st->ev[st->n_ev - 1].t1 : herd_now_s() - t_start;
        st->busy = busy;
        st->peak_slots = m->peak_slots;
    }
    *loss_sum = loss;
    if (r.bsend) m->be->free(m->be, r.bsend);
    free(r.slot); free(r.rreq); free(r.sreq); free(warm); free(ops); free(last_b);
    return rc;
}

void herd_pipe_stats_free(herd_pipe_stats *st)
{
    free(st->ev);
    memset(st, 0, sizeof *st);
}

/* ---- the timeline ---------------------------------------------------------- */

int herd_pipe_print(const herd_model *m, const herd_pipe_stats *st, int n_micro, FILE *out)
{
    int P = m->pp_size, V = m->n_chunks, n = 2 * n_micro * V, root = m->pp_rank == 0;
    /* per rank: span, busy, peak, then n events of 5 numbers */
    size_t per = 3 + 5 * (size_t)n;
    double *mine = calloc(per, sizeof(double)), *all = calloc(per * P, sizeof(double));
    size_t *counts = malloc(sizeof(size_t) * P);
    if (!mine || !all || !counts) { free(mine); free(all); free(counts); return -1; }
    mine[0] = st->span;
    mine[1] = st->busy;
    mine[2] = st->peak_slots;
    for (int i = 0; i < st->n_ev && i < n; i++) {
        const herd_pipe_event *e = &st->ev[i];
        double *d = mine + 3 + 5 * (size_t)i;
        d[0] = e->t0; d[1] = e->t1; d[2] = e->kind; d[3] = e->chunk; d[4] = e->mb;
    }
    for (int p = 0; p < P; p++) counts[p] = per;
    int rc = 0;
    if (m->pp) rc = herd_comm_all_gather(m->pp, mine, all, counts, HERD_F64);
    else memcpy(all, mine, per * sizeof(double));
    if (rc == 0 && root) {
        double span = 0.0, bubble = 0.0;
        for (int p = 0; p < P; p++) if (all[p * per] > span) span = all[p * per];
        int warm[64], cols = 100;
        double sim = P <= 64 ? herd_pipe_plan(P, V, n_micro, warm) : -1.0;
        fprintf(out, "pipeline schedule: pp %d, virtual_stages %d, %d micro-batches (%s); "
                "'0'-'9' forward of micro-batch mb%%10, 'a'-'z' backward of mb%%26, '.' idle; "
                "%.3f s across\n", P, V, n_micro, V > 1 ? "interleaved 1F1B" : "1F1B", span);
        char *line = malloc((size_t)cols + 1);
        for (int p = 0; p < P && line; p++) {
            const double *d = all + p * per;
            memset(line, '.', (size_t)cols);
            line[cols] = 0;
            for (int i = 0; i < n; i++) {
                const double *e = d + 3 + 5 * (size_t)i;
                int a = (int)(e[0] / span * cols), b = (int)(e[1] / span * cols);
                if (b <= a) b = a + 1;
                int mb = (int)e[4];
                for (int c = a; c < b && c < cols; c++)
                    line[c] = e[2] ? (char)('a' + mb % 26) : (char)('0' + mb % 10);
            }
            double bub = 1.0 - d[1] / span;
            bubble += bub / P;
            fprintf(out, "stage %2d |%s| busy %.3f s, bubble %.3f, peak activations %d "
                    "micro-batch chunks\n", p, line, d[1], bub, (int)d[2]);
        }
        free(line);
        fprintf(out, "pipeline bubble: measured %.3f, theory (PP-1)/(N*V+PP-1) = %.3f, "
                "simulated (backward = 2 x forward) %.3f\n", bubble,
                herd_pipe_theory(P, V, n_micro), sim);
        fprintf(out, "pipeline peak activations per stage:");
        for (int p = 0; p < P; p++) fprintf(out, " %d", (int)all[p * per + 2]);
        fprintf(out, "\n");
        fflush(out);
    }
    free(mine); free(all); free(counts);
    return rc ? -1 : 0;
}
