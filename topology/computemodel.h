/* computemodel.h — the time of the step's GEMMs and attention from their
 * shapes: a roofline per kernel (tensor-core rate with wave quantization,
 * HBM traffic, a launch) scaled by the nearest measured point of a table
 * (`herd plan --calibrate FILE`, written by benchmarks/bench_shapes.c).
 * docs/topology.md, "Shape-aware compute", has the equations and sources. */
#ifndef HERD_COMPUTEMODEL_H
#define HERD_COMPUTEMODEL_H

enum { HERD_SHAPE_GEMM = 0, HERD_SHAPE_ATTN = 1 };

/* One measured kernel. GEMM: C[m,n] = A[m,k] B[k,n]. Attention (forward and
 * backward together): q query tokens against kv key tokens, width = heads x
 * head dim of the rank, causal 1 if the kernel skips masked blocks. */
typedef struct {
    int    kind;
    double a, b, c;     /* gemm: m n k; attn: q kv width */
    int    causal;
    double seconds;
} herd_shape_point;

#define HERD_SHAPE_MAX_POINTS 256

typedef struct herd_gpu_profile_s {
    char   name[16];      /* "h100", "a100", or the calibration file's name */
    double peak_tflops;   /* dense BF16 tensor-core peak */
    double hbm_GBps;      /* HBM bandwidth */
    double gemm_eff;      /* the largest GEMMs' fraction of peak */
    int    sms;           /* streaming multiprocessors: the wave of output tiles */
    int    tile_m, tile_n;/* output tile of one CTA */
    double launch_us;     /* per kernel */
    int    n_attn;        /* attention forward rate by sequence length (TFLOP/s) */
    double attn_seq[16], attn_tflops[16];
    double attn_bwd_ratio;/* backward rate / forward rate */
    int    n_points;      /* calibration: measured kernels */
    herd_shape_point pts[HERD_SHAPE_MAX_POINTS];
} herd_gpu_profile;

/* The built-in profiles: "h100", "a100"; -1 with a message for another name. */
int herd_gpu_profile_get(const char *name, herd_gpu_profile *g);

/* The H100 profile as a static object: herd plan's default. */
const herd_gpu_profile *herd_gpu_profile_h100(void);

/* Read a measured table into g (replacing its points): lines
 *   gemm M N K SECONDS
 *   attn Q KV WIDTH CAUSAL SECONDS
 *   peak TFLOPS | hbm GBPS            (optional: the machine's own roofline)
 * '#' comments. -1 with a message naming the file, the line and the field. */
int herd_gpu_profile_calibrate(herd_gpu_profile *g, const char *path);

/* Seconds of one GEMM [m,k] x [k,n] (bf16), and of attention forward plus
 * backward; both scaled by the nearest measured point when there are any. */
double herd_gemm_seconds(const herd_gpu_profile *g, double m, double n, double k);
double herd_attn_seconds(const herd_gpu_profile *g, double q, double kv, double width, int causal);

/* The roofline alone (no table): what the calibration scales. */
double herd_gemm_roofline(const herd_gpu_profile *g, double m, double n, double k);
double herd_attn_roofline(const herd_gpu_profile *g, double q, double kv, double width, int causal);

#endif
