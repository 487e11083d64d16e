/* topo.h — topology discovery, network-aware placement and the step cost model.
 *
 * One tree per job:  GPU (rank) -> node -> leaf switch -> spine/pod -> core.
 * Heights: two ranks whose lowest common ancestor is their node talk at height 1
 * (NVLink); under the same leaf switch at height 2; and so on up. Every link
 * parameter is indexed by that height (docs/topology.md).
 *
 * Sources, each optional and merged: hwloc (one node: sockets, NUMA, cores,
 * GPUs and NICs by PCI bus id; an XML file replaces the live machine), the
 * hostnames of the job's ranks (gathered over MPI/PMIx by the caller), Slurm's
 * topology.conf (switches and their nodes) or SLURM_TOPOLOGY_ADDR paths, and a
 * links file (bandwidth, latency, oversubscription per height).
 *
 * Status convention (the whole project): 0 on success, -1 on failure with a
 * message on stderr that names the file and the field.
 */
#ifndef HERD_TOPO_H
#define HERD_TOPO_H

#include <stddef.h>
#include "topology/recompute.h"

#define HERD_TOPO_NAME_MAX   64
#define HERD_TOPO_MAX_HEIGHT 8   /* 1 node, 2 leaf, 3 spine/pod, 4 core, ... */
#define HERD_TOPO_MAX_DEV    32  /* GPUs or NICs per node */
/* The most names (nodes and switches) one hostlist or one topology.conf may
 * give: 262,144, about 25 times the nodes of today's largest machines
 * (~10,000), so that a valid file never meets it; it bounds what a hostile
 * or mistyped file costs (~25 MB, a quarter of a second: a fuzzed file at
 * the old 2^20 took 2.5 s under AddressSanitizer), and keeps nodes x
 * HERD_TOPO_MAX_DEV GPUs inside an int. */
#define HERD_TOPO_MAX_NAMES  (1 << 18)

/* ---- one node, from hwloc (topology/hwloc_discover.c) ---- */

/* a cpu list in hwloc's list syntax ("0-27,56-83"); long enough for 1,024
 * PUs numbered in any order, and loading refuses a machine whose lists do
 * not fit rather than cutting one short */
#define HERD_TOPO_CPUS_LEN 640
#define HERD_TOPO_MAX_PU   1024  /* PUs whose core is known (core_of_pu) */

typedef struct {
    char busid[16];     /* PCI bus id "0000:1b:00.0" */
    char name[32];      /* OS device: "cuda0", "nvml0", "mlx5_0", "ib0" */
    int  package;       /* os index of the socket it hangs off, -1 if unknown */
    int  numa;          /* os index of its NUMA node, -1 if unknown */
    char cpus[HERD_TOPO_CPUS_LEN];          /* PUs nearest the device (its non-I/O ancestor), "0-27" */
    char package_cpus[HERD_TOPO_CPUS_LEN];  /* PUs of its package (of that ancestor if none) */
    int  nearest_nic;   /* GPUs: index into nic[] of the closest NIC, -1 none */
    int  nic_distance;  /* GPUs: 0 same PCIe switch, 1 same host bridge, 2 same socket, 3 other socket */
} herd_topo_pcidev;

typedef struct {
    char hostname[HERD_TOPO_NAME_MAX];
    char source[256];   /* "live" or the XML path */
    int  n_packages, n_numa, n_cores, n_pus;
    char cpus[HERD_TOPO_CPUS_LEN];  /* every PU of the node, hwloc list syntax */
    int  core_of_pu[HERD_TOPO_MAX_PU]; /* logical index of the core of PU os index i; -1 none */
    int  n_gpus;
    herd_topo_pcidev gpu[HERD_TOPO_MAX_DEV];  /* in PCI bus id order = CUDA's PCI_BUS_ID order */
    int  n_nics;
    herd_topo_pcidev nic[HERD_TOPO_MAX_DEV];  /* RDMA devices (OpenFabrics), bus id order */
} herd_topo_machine;

/* Discover one node: `xml_path` if not NULL, else $HWLOC_XMLFILE if set, else
 * the live machine. GPUs are hwloc's GPU/co-processor OS devices of its GPU
 * plugins (cuda*, nvml*, rsmi*, opencl*), or, without those plugins, PCI
 * functions of a compute class (3D controller 0x0302; AMD's accelerators
 * 0x0380 and 0x1200), never a VGA controller (a server's management chip).
 * A bad XML file: -1 with the reason (a format newer than this hwloc reads,
 * or hwloc's own parser message, which HWLOC_XML_VERBOSE=1 enables). */
int herd_topo_machine_load(herd_topo_machine *m, const char *xml_path);

/* The cores (hwloc list syntax into buf; whole cores, every PU of each) that
 * local rank `local_rank` of `local_size` ranks on this node should run on.
 * Rank r drives GPU r % n_gpus; the ranks whose GPUs sit in one package
 * divide that package's cores evenly (in GPU order, the ranks of one GPU
 * side by side), however the GPUs' bus ids run across the packages; more
 * ranks than cores share them evenly. Without GPUs, its share (1/local_size)
 * of all cores. */
int herd_topo_machine_rank_cpus(const herd_topo_machine *m, int local_rank, int local_size,
                                char *buf, size_t len);

/* The same with the machine GPU of every local rank given: gpu_of[r] is the
 * index into m->gpu[] of the GPU local rank r drives (-1: unknown; that rank
 * gets its 1/local_size share of all cores). The ranks whose GPUs sit in one
 * package divide its cores as above. */
int herd_topo_machine_gpu_rank_cpus(const herd_topo_machine *m, const int *gpu_of, int local_rank,
                                    int local_size, char *buf, size_t len);

/* The NIC nearest local rank's GPU ("mlx5_3"), "" without GPUs or NICs: for
 * NCCL_IB_HCA / UCX_NET_DEVICES, so that each rank uses its own NIC. */
const char *herd_topo_machine_rank_nic(const herd_topo_machine *m, int local_rank);

/* Bind the calling process (all its threads) to herd_topo_machine_rank_cpus()
 * of the live machine. `m` must have been loaded live (not from XML).
 * On success writes "cores 0-27 (near cuda0, NIC mlx5_0)" style text into desc. */
int herd_topo_bind_rank(const herd_topo_machine *m, int local_rank, int local_size,
                        char *desc, size_t desc_len);

/* Bind the calling process (all its threads) to `cpus` (hwloc list syntax)
 * of the live machine m. */
int herd_topo_bind_cpus(const herd_topo_machine *m, const char *cpus);

/* ---- which GPU each rank uses (topology/device.c) ---- */

/* A PCI bus id in hwloc's form, "0000:1b:00.0" (lower case, 4-digit domain),
 * from CUDA's ("0000:1B:00.0") or NVML's ("00000000:1B:00.0"); -1 if `in` is
 * not one. */
int herd_topo_busid_norm(const char *in, char out[16]);

/* The PUs the calling process may run on (hwloc list syntax into buf).
 * 1 if that is fewer than the machine's online PUs (a launcher bound it),
 * 0 if it may run anywhere, -1 on error. */
int herd_topo_current_cpus(char *buf, size_t len);

typedef struct {
    int device;      /* CUDA device index among the visible ones (for cudaSetDevice) */
    int gpu;         /* index into m->gpu[] of that device, by bus id; -1 if hwloc lacks it */
    int nic;         /* index into m->nic[] of the NIC nearest that GPU; -1 none */
    const char *how; /* "the only visible device", "nearest its cores", "by local rank" */
} herd_topo_pick;

/* Which device each of the local_size ranks of a node uses; picks[r] for
 * local rank r. visible[0..n_visible) are the bus ids CUDA shows each rank
 * (CUDA_VISIBLE_DEVICES applied, in CUDA's device order; normalized or not),
 * the same list for every local rank as the caller sees it (a rank that sees
 * one device, as --gpus-per-task=1 leaves it, takes that one whatever the
 * others see). bound[r]: the cores local rank r
 * was bound to by its launcher, NULL or "" if unbound (bound itself may be
 * NULL). With one visible device, that one. With several, the local ranks
 * take devices in rank order, each the device fewest ranks have taken so far,
 * and among those the one whose hwloc locality shares the most PUs with its
 * bound cores, ties to the lowest CUDA index: unbound, local rank r gets
 * device r % n_visible (= m->gpu[r % n] when all are visible, the order
 * herd_topo_machine_rank_cpus assumes); bound, the device nearest its cores.
 * m may list no GPUs (then gpu and nic are -1). -1 with a message if
 * n_visible is 0 or a rank is out of range. */
int herd_topo_pick_devices(const herd_topo_machine *m, const char (*visible)[16], int n_visible,
                           int local_size, const char *const *bound, herd_topo_pick *picks);

/* ---- the job's tree (topology/tree.c, slurm_topo.c, links.c) ---- */

typedef struct {
    double bw_GBps;     /* per-GPU bandwidth of one direction at this height, GB/s */
    double latency_us;  /* one hop's latency (alpha), microseconds */
    double oversub;     /* uplinks into this height carry 1/oversub of what is below (7 = 1:7) */
    char   name[16];    /* "nvlink", "leaf", "spine", "core" */
} herd_topo_link;

typedef struct {
    char name[HERD_TOPO_NAME_MAX];
    int  parent;        /* index into sw[], -1 for a root */
    int  height;        /* 2 for a leaf switch (nodes below), 1 + the highest child otherwise */
    int  n_gpus;        /* GPUs below it (for uplink capacity) */
} herd_topo_switch;

typedef struct {
    char name[HERD_TOPO_NAME_MAX];
    int  leaf;          /* index into sw[] of its switch, -1 before the tree is built */
    int  n_gpus;        /* GPUs (ranks) on this node */
} herd_topo_node;

typedef struct {
    int node;           /* index into node[] */
    int local;          /* local rank on that node = its GPU index */
} herd_topo_rank;

typedef struct herd_topo {
    int n_switches;
    herd_topo_switch *sw;
    int n_nodes;
    herd_topo_node *node;
    int n_ranks;
    herd_topo_rank *rank;
    int height;                                /* height of the root(s) */
    herd_topo_link link[HERD_TOPO_MAX_HEIGHT + 1]; /* [1..height] */
    char conf_path[256];                       /* topology.conf used, "" if none */
} herd_topo;

/* The standard topology.conf: $SLURM_CONF's directory, else /etc/slurm. Writes
 * the path into buf; returns 0 if that file exists, -1 (quietly) if not. */
int herd_topo_conf_default(char *buf, size_t len);

/* Every node that topology_conf names must be a NodeName= of slurm_conf
 * (what slurmctld checks): -1 naming the line, the switch and the node. */
int herd_topo_conf_check_nodes(const char *topology_conf, const char *slurm_conf);

/* Expand a Slurm hostlist "node[1-3,7],gpu[01-02]" into a newly allocated array
 * of strings (free with herd_topo_names_free). `origin` names the source in
 * messages. */
int herd_topo_hostlist_expand(const char *list, const char *origin, char ***names, int *n);
void herd_topo_names_free(char **names, int n);

/* 1 if two host names name the same machine (equal, or equal up to a '.'). */
int herd_topo_host_match(const char *host, const char *name);

/* The tree of a running job: hostnames[r] is the host of world rank r (ranks
 * on one host get local ranks in rank order); give Slurm's node name
 * ($SLURMD_NODENAME) where set, since topology.conf names Slurm nodes. topology_conf may be NULL (all
 * nodes under one switch). Every host must appear in the conf. */
int herd_topo_from_hosts(herd_topo **out, int n_ranks, const char *const *hostnames,
                         const char *topology_conf);

/* Same, with SLURM_TOPOLOGY_ADDR of each rank ("s0.s1.node1") and the pattern
 * ("switch.switch.node") instead of a conf file: each address gives the
 * node's path from the root. */
int herd_topo_from_addrs(herd_topo **out, int n_ranks, const char *const *hostnames,
                         const char *const *addrs, const char *pattern);

/* The job's ranks from PMIx (topology/pmix_discover.c), no MPI needed. */
typedef struct {
    int    n_ranks, my_rank;
    char **hostnames;   /* [n_ranks] PMIX_HOSTNAME */
    int   *node_id;     /* [n_ranks] PMIX_NODEID, -1 if not given */
    int   *local_rank;  /* [n_ranks] PMIX_LOCAL_RANK, -1 if not given */
} herd_topo_pmix_job;

/* PMIx_Init, every rank's host, node id and local rank, PMIx_Finalize.
 * -1 with a message when not under a PMIx launcher. */
int herd_topo_pmix_ranks(herd_topo_pmix_job *job);
void herd_topo_pmix_free(herd_topo_pmix_job *job);

/* A whole cluster from its topology.conf, `gpus_per_node` GPUs on every node,
 * with a job of n_ranks GPUs packed onto its first nodes in tree order (as
 * Slurm's topology/tree packs them); n_ranks 0 takes every GPU. */
int herd_topo_from_conf(herd_topo **out, const char *topology_conf, int gpus_per_node, int n_ranks);

/* Same, spread = 1: the job's GPUs shared evenly among the top-level
 * subtrees (the pods under the core), packed inside each, as a user gets with
 * one job per pod-sized share (e.g. sbatch --switches or a hand-made hostlist). */
int herd_topo_from_conf_alloc(herd_topo **out, const char *topology_conf, int gpus_per_node, int n_ranks,
                              int spread);

void herd_topo_free(herd_topo *t);

/* Links: defaults for H100 nodes (NVLink 4, one 400G NIC per GPU, full
 * bisection except `top_oversub` at the top height), then `path` (may be NULL)
 * overrides: lines "HEIGHT_OR_NAME bandwidth=GB/s latency=us oversubscription=R". */
void herd_topo_links_default(herd_topo *t, double top_oversub);
int herd_topo_links_load(herd_topo *t, const char *path);

/* Height of the lowest common ancestor of two ranks: 0 same rank, 1 same node,
 * 2 same leaf, ... */
int herd_topo_rank_distance(const herd_topo *t, int a, int b);

/* Name of the switch at `height` above `rank` ("" if none), e.g. its leaf. */
const char *herd_topo_rank_switch(const herd_topo *t, int rank, int height);

/* ---- placement (topology/place.c) ---- */

/* perm[grid_index] = MPI world rank that takes that grid position, where
 * grid_index = tp + TP*(cp + CP*(pp + PP*dp)) (TP innermost, DP outermost).
 * Best fit, outermost group first: each model replica (TP*CP*PP ranks) goes
 * to the smallest subtree that holds it, each pipeline stage (TP*CP) to the
 * smallest subtree of that, each TP group to one node when it fits. */
int herd_topo_place(const herd_topo *t, int tp, int cp, int pp, int dp, int *perm);

/* The order that ignores the network: DP innermost, TP outermost, ranks in
 * world order (for comparison: what a naive launcher does). */
int herd_topo_place_naive(const herd_topo *t, int tp, int cp, int pp, int dp, int *perm);

/* The identity over the grid order (rank r takes grid position r). */
int herd_topo_place_linear(const herd_topo *t, int tp, int cp, int pp, int dp, int *perm);

enum { HERD_DIM_TP = 0, HERD_DIM_CP, HERD_DIM_PP, HERD_DIM_DP, HERD_NDIM };

/* A --layout argument "TP,CP,PP,DP" (positive integers) into l[HERD_NDIM];
 * -1 with a message "PROG: --layout '...': ..." otherwise. */
int herd_topo_layout_parse(const char *prog, const char *s, int l[HERD_NDIM]);

/* What the groups of one dimension get when all of them run a ring at once. */
typedef struct {
    int    size;          /* ranks per group */
    int    n_groups;
    int    max_height;    /* highest link any group crosses */
    int    n_spanning;    /* groups that cross a link of height >= 2 (leave a node) */
    int    n_oversub;     /* groups that cross an oversubscribed height */
    double bw_GBps;       /* slowest ring edge of the slowest group, contention included */
    double latency_us;    /* alpha of the slowest hop */
} herd_topo_groupstat;

/* dims[4] = {TP, CP, PP, DP}; perm from herd_topo_place*. */
int herd_topo_group_stats(const herd_topo *t, const int dims[HERD_NDIM], const int *perm,
                          herd_topo_groupstat stat[HERD_NDIM]);

/* ---- the step cost model (topology/costmodel.c) ---- */

typedef struct {
    /* model shape (herd_config_apply_preset) */
    int    n_layers, d_model, n_heads, n_kv_heads, ffn_dim, vocab_size;
    /* job */
    int    seq_len;
    long long batch_tokens;   /* global batch in tokens */
    int    micro_batch;       /* sequences per micro-batch */
    int    virtual_stages;    /* interleaved 1F1B stages per rank; 0: one layer each */
    /* hardware and efficiency inputs (docs/topology.md) */
    double peak_tflops;       /* dense BF16 peak per GPU: 989.4 */
    double hbm_GB;            /* memory per GPU: 80 */
    double compute_eff;       /* fraction of peak that the weight GEMMs reach */
    double attn_eff;          /* fraction of peak that attention (QK^T, AV) reaches */
    int    sequence_parallel; /* 1: TP all-gather/reduce-scatter; 0: TP all-reduce (ring or tree) */
    double tp_overlap;        /* fraction of TP (sequence-parallel) traffic hidden under compute */
    double cp_overlap;        /* fraction of the CP all-gather hidden */
    double pp_overlap;        /* fraction of pipeline send/recv hidden */
    double dp_overlap;        /* fraction of FSDP all-gather/reduce-scatter hidden */
    double grad_bytes;        /* bytes per gradient element in the reduce-scatter: 4 (fp32) */
    int    recompute;         /* HERD_RECOMPUTE_*: activations kept for the backward (docs/topology.md) */
    int    pp_first_last_fewer; /* 1: the first and last pipeline stage hold one layer fewer */
    int    xent_chunk;        /* train.xent_chunk: the last rank keeps fp32 logits of this many
                                 vocabulary columns a token instead of vocab/tp; 0: all */
    /* shape-aware compute (topology/computemodel.h); NULL: the flat
     * compute_eff / attn_eff above (--compute-eff, --measured) */
    const struct herd_gpu_profile_s *gpu;
    int    gated_mlp;         /* 1: SwiGLU (gate, up, down); 0: GELU MLP (two GEMMs, GPT) */
    int    attn_full;         /* 1: attention computes every s x s score (unfused, masked) */
    int    doc_len;           /* documents of this many tokens (document masks); 0: the sequence */
    double other_frac;        /* non-GEMM kernels (norms, RoPE, SwiGLU, loss) as a fraction of GEMM time */
    double optimizer_bytes;   /* HBM bytes per parameter of the optimizer step: 30 (Adam, fp32 master) */
    int    sharding;          /* HERD_SHARD_ZERO2 (herd's FSDP) or HERD_SHARD_FULL (per-layer gather) */
    double oversub_hop_us;    /* ranks oversubscribe the cores: every ring step and point-to-point
                                 message waits this long for its descheduled peer; 0: off */
} herd_plan_inputs;

enum { HERD_SHARD_ZERO2 = 0, HERD_SHARD_FULL = 1 };

/* Activation recomputation (train.recompute): HERD_RECOMPUTE_* of
 * topology/recompute.h, which the model does and the memory estimate charges. */

/* "none" / "selective" / "full" -> HERD_RECOMPUTE_*; -1 if none of them. */
int herd_plan_recompute_parse(const char *s);
const char *herd_plan_recompute_name(int mode);

/* Bytes one GPU keeps per transformer layer and micro-batch for the backward
 * (bf16), at TP tp, CP cp, with in->recompute (FULL: the layer input only). */
double herd_plan_layer_act_bytes(const herd_plan_inputs *in, int tp, int cp);

/* Per pipeline rank p of pp (V chunks, M micro-batches; herd's schedule,
 * src/parallel/pipeline.c): its transformer layers, and the most layer x micro-batch
 * activations it holds at once. -1 if the layers do not split. */
int herd_plan_stage_layers(const herd_plan_inputs *in, int pp, int V, int M, int p, int *layers,
                           double *inflight);

/* The documented inputs (docs/topology.md): one set for every layout. */
void herd_plan_inputs_default(herd_plan_inputs *in);

/* A measured compute efficiency: the median "mfu" of a herd train
 * metrics.jsonl (steps after the first), for compute_eff. */
int herd_plan_eff_from_metrics(const char *path, double *eff);

typedef struct {
    int    tp, cp, pp, dp, micro_batches, virtual_stages;
    double flops_per_token;   /* 6 P_matmul + 6 L s d (DESIGN.md) */
    double t_compute, t_bubble, t_tp, t_cp, t_pp, t_dp;  /* seconds per step (exposed comm) */
    double t_sched;           /* exposed per-hop pipeline costs (launch + sync per virtual stage) */
    double t_opt;             /* the optimizer step (HBM-bound, not overlapped) */
    double t_step;
    double mfu, tflops_per_gpu, tokens_per_s;
    double mem_GB;            /* estimated peak memory per GPU: the most loaded pipeline rank */
    double mem_static_GB;     /* of which weights, gradients, optimizer state */
    double mem_act_GB;        /* of which activations (and the one-layer backward workspace) */
    int    mem_stage;         /* the pipeline rank of mem_GB */
    double mem_inflight;      /* layer x micro-batch activations that rank holds at its peak */
    int    fits;              /* mem_GB <= hbm_GB (else it needs more activation recompute) */
    herd_topo_groupstat stat[HERD_NDIM];
} herd_plan_result;

/* Estimate one layout on the job of t (n_ranks = tp*cp*pp*dp) with placement
 * perm. -1 with a message naming the field if the layout is invalid. */
int herd_plan_estimate(const herd_plan_inputs *in, const herd_topo *t, int tp, int cp, int pp,
                       int dp, const int *perm, herd_plan_result *r);

/* Every valid layout of t->n_ranks GPUs (placed with herd_topo_place): those
 * that fit in memory first, each part by MFU, best first. Layouts whose weights
 * and optimizer state alone exceed HBM are left out. *out is malloc'ed. */
int herd_plan_rank_layouts(const herd_plan_inputs *in, const herd_topo *t, int max_tp,
                           herd_plan_result **out, int *n_out);

#endif
