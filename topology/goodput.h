/* goodput.h — the expected fraction of wall time spent on useful training
 * (goodput) of a run that checkpoints every N steps and is interrupted at
 * random: a first-order closed form (Young/Daly with the checkpoint stall,
 * the background write and the restart costs) and a Monte Carlo simulation
 * of the same run (failures during a write or a restart, requeues, data
 * parallelism shrunk on a lost node and grown back). docs/goodput.md has the
 * equations and where the two part. Times in seconds. */
#ifndef HERD_GOODPUT_H
#define HERD_GOODPUT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    double step_s;     /* one optimizer step of the whole job (useful work) */
    double stall_s;    /* the training loop blocked per checkpoint */
    double write_s;    /* background write until the checkpoint commits (0: synchronous) */
    double restart_s;  /* an interruption to training again, inside the allocation */
    double requeue_s;  /* added when the job must requeue (a new allocation) */
    double p_requeue;  /* fraction of interruptions that requeue */
    double mtbf_s;     /* the job's mean time between interruptions */
    int    nodes;      /* the job's nodes: a lost node shrinks data parallelism by 1/nodes */
    double p_node;     /* fraction of interruptions that lose a node (needs nodes >= 2) */
    double repair_s;   /* a lost node is back after this; the job grows back at the next
                          checkpoint after it, with a planned restart */
} herd_goodput_inputs;

/* Fractions of wall time; they sum to 1. */
typedef struct {
    double goodput;    /* useful training (full-speed equivalent) */
    double ckpt;       /* stalls of the loop for checkpoints */
    double restart;    /* restarts and requeues */
    double lost;       /* work redone after a rollback, and the shrunk job's slower steps */
    double n_fail;     /* interruptions per hour of wall time (the simulation: counted) */
} herd_goodput_result;

/* Zero every field, then the defaults that mean "not modelled" (1 node). */
void herd_goodput_inputs_init(herd_goodput_inputs *in);

/* The job's mean time between interruptions from a count over a period
 * (466 in 54 days) or from a per-GPU rate (failures per GPU per day). */
double herd_goodput_mtbf_from_count(double interruptions, double period_s);
double herd_goodput_mtbf_from_gpu_rate(double per_gpu_day, int gpus);

/* Check the inputs: 0, or -1 with the offending field written into why. */
int herd_goodput_check(const herd_goodput_inputs *in, char *why, size_t n);

/* The closed form for a checkpoint every `every` steps (first order in
 * period/MTBF): the goodput and its parts. */
void herd_goodput_closed(const herd_goodput_inputs *in, int every, herd_goodput_result *r);

/* The interval (steps, 1..max_every) of the highest closed-form goodput
 * (Young/Daly's when restarts alone outlast the MTBF: goodput 0 everywhere). */
int herd_goodput_best_every(const herd_goodput_inputs *in, int max_every, herd_goodput_result *r);

/* Young/Daly's optimum in seconds of work between checkpoints, sqrt(2 C M) - C
 * (C = stall + write waited for): for comparison in logs and docs. */
double herd_goodput_young_daly_s(const herd_goodput_inputs *in);

/* Simulate horizon_s of wall time with failures drawn from seed (the same
 * seed: the same failure times whatever `every` is, so that intervals compare
 * with common random numbers). */
void herd_goodput_simulate(const herd_goodput_inputs *in, int every, double horizon_s, uint64_t seed,
                           herd_goodput_result *r);

/* The simulation's optimum: the goodput of `n` intervals spread geometrically
 * over [lo, hi] steps, each simulated over horizon_s with the same failure
 * times, and the vertex of the parabola (in log interval) through the best
 * one and its two neighbours. Returns the interval; *g the simulated goodput
 * there. */
int herd_goodput_sim_best_every(const herd_goodput_inputs *in, int lo, int hi, int n, double horizon_s,
                                uint64_t seed, double *g);

#endif
