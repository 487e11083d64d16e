/* mfu.h — model FLOPs utilisation, one definition (DESIGN.md):
 *
 *   flops_per_token = 6 * P_matmul + 6 * n_layers * seq_len * d_model
 *   MFU = tokens_per_second_per_device * flops_per_token / peak_flops_per_device
 *
 * P_matmul counts every weight matrix used in a matrix multiply, the output
 * projection included, the embedding lookup and norm weights excluded. The
 * second term is attention (QK^T and AV, forward and backward: 12 L T d)
 * halved for the causal mask.
 */
#ifndef HERD_MFU_H
#define HERD_MFU_H

#include <stdint.h>

/* Dense BF16 peak of an H100 SXM / H200 (the 1,979 figure is with sparsity). */
#define HERD_PEAK_TFLOPS_H100_BF16 989.4

double herd_mfu_flops_per_token(int64_t p_matmul, int n_layers, int seq_len, int d_model);

/* MFU in [0, 1] (or above 1 when the peak is set too low). */
double herd_mfu(double tokens_per_second, double flops_per_token, double peak_tflops);

/* Measure this machine's fp32 sgemm rate (TFLOP/s) on n x n x n products for
 * about `seconds` with the current BLAS thread count: the CPU "peak" that MFU
 * is quoted against when monitor.peak_tflops is 0 on the cpu backend. */
double herd_mfu_measure_cpu_peak(int n, double seconds);

#endif
