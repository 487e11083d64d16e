// selftest.cu — TEST TOOLING: the CPU emulation's own test (tests/cli/cuda_emu.sh).
// Correct kernels and library calls against naive loops, and deliberately
// wrong kernels that the emulator must catch (--bad NAME must abort with the
// message --expect NAME prints). Compiled like kernels/cuda/*.cu (launch.pl, g++).
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <mma.h>
#include <cblas.h>
#include "kernels/cuda/cuda_common.h"

static int fails;
#define EXPECT(name, cond) do { if (cond) printf("PASS %s\n", name); \
    else { printf("FAIL %s\n", name); fails++; } } while (0)

static float *dev(size_t n) { float *p; CUDA_CHECK(cudaMalloc(&p, n * sizeof(float))); return p; }
static void h2d(void *d, const void *h, size_t b) { CUDA_CHECK(cudaMemcpy(d, h, b, cudaMemcpyHostToDevice)); }
static void d2h(void *h, const void *d, size_t b) { CUDA_CHECK(cudaMemcpy(h, d, b, cudaMemcpyDeviceToHost)); }

// ---- correct kernels ------------------------------------------------------------
// out[t] = (sum over the warp of t, xor-shuffled; lane 5's value; the next lane's value)
__global__ void shfl_kernel(float *out, int n)
{
    int t = threadIdx.x, lane = t & 31;
    float v = (float)t;
    float s = herd_warp_sum(v);
    float b = __shfl_sync(0xffffffffu, v, 5);
    float d = __shfl_down_sync(0xffffffffu, v, 1);
    if (t < n) { out[3 * t] = s; out[3 * t + 1] = b; out[3 * t + 2] = d; }
    (void)lane;
}

// block sum (shared memory, __syncthreads, shuffles) and a reversal in dynamic shared memory
__global__ void block_kernel(float *sums, float *rev, const float *x)
{
    extern __shared__ float buf[];
    float v = x[blockIdx.x * blockDim.x + threadIdx.x];
    float s = herd_block_sum(v);
    buf[threadIdx.x] = v;
    __syncthreads();
    rev[blockIdx.x * blockDim.x + threadIdx.x] = buf[blockDim.x - 1 - threadIdx.x];
    if (threadIdx.x == 0) sums[blockIdx.x] = s;
}

__global__ void wmma_kernel(float *c, const __nv_bfloat16 *a, const __nv_bfloat16 *b)
{
    using namespace nvcuda;
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> fc;
    wmma::fill_fragment(fc, 1.0f);
    wmma::load_matrix_sync(fa, a, 16);
    wmma::load_matrix_sync(fb, b, 16);
    wmma::mma_sync(fc, fa, fb, fc);
    wmma::store_matrix_sync(c, fc, 16, wmma::mem_col_major);
}

__global__ void nop_kernel(float *x) { (void)x; }

// votes: out[3t..] = ballot of odd lanes, any(lane == 7), all(lane < 32)
__global__ void vote_kernel(unsigned *out)
{
    int lane = threadIdx.x & 31;
    unsigned b = __ballot_sync(0xffffffffu, lane & 1);
    int a = __any_sync(0xffffffffu, lane == 7), l = __all_sync(0xffffffffu, lane < 31);
    out[3 * threadIdx.x] = b; out[3 * threadIdx.x + 1] = (unsigned)a; out[3 * threadIdx.x + 2] = (unsigned)l;
}

// static shared memory written only by block 0: block 1 must not see it
__global__ void stale_shared_kernel(float *out)
{
    __shared__ float v, w[4];
    if (blockIdx.x == 0 && threadIdx.x == 0) { v = 1.0f; w[2] = 2.0f; }
    __syncthreads();
    if (threadIdx.x == 0) { out[2 * blockIdx.x] = v; out[2 * blockIdx.x + 1] = w[2]; }
}

// a missing __syncthreads between the write and the read of another warp's
// slot: on a GPU a race; here one of the two thread orders reads the poison
__global__ void race_kernel(float *out)
{
    extern __shared__ float buf[];
    buf[threadIdx.x] = (float)threadIdx.x;
    out[blockIdx.x * blockDim.x + threadIdx.x] = buf[(threadIdx.x + 32) % blockDim.x];
}

// ---- wrong kernels -----------------------------------------------------------------
__global__ void sync_divergent_kernel(float *x)
{
    if (threadIdx.x < 32) __syncthreads();
    else __syncthreads();
    x[threadIdx.x] = 1;
}
__global__ void sync_exit_kernel(float *x)
{
    if (threadIdx.x >= 40) return;
    __syncthreads();
    x[threadIdx.x] = 1;
}
__global__ void shfl_exit_kernel(float *x)
{
    if ((threadIdx.x & 31) >= 16) return;
    x[threadIdx.x] = herd_warp_sum(1.0f);
}
__global__ void deadlock_kernel(float *x)
{
    if ((threadIdx.x & 31) < 16) x[threadIdx.x] = herd_warp_sum(1.0f);
    else __syncthreads();
}
// each lane passes its own pointer: wrong, a WMMA load takes one tile per warp
__global__ void wmma_lane_kernel(float *c, const __nv_bfloat16 *a)
{
    using namespace nvcuda;
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
    wmma::load_matrix_sync(fa, a + 16 * (threadIdx.x & 1), 16);
    (void)c;
}
__global__ void oob_kernel(float *x, int n) { x[n + threadIdx.x] = 1.0f; }

static const struct { const char *name, *expect; } bad_cases[] = {
    {"sync_divergent", "__syncthreads diverged"},
    {"sync_exit", "thread exited while"},
    {"shfl_exit", "lane(s) exited while"},
    {"deadlock", "deadlock"},
    {"oob_write", "past the end of a device allocation"},
    {"host_pointer", "is not device memory"},
    {"gemm_past_end", "not inside one device allocation"},
    {"wmma_misaligned", "not 256-bit"},
    {"host_deref", "HOST code dereferenced device memory"},
    {"wmma_lane_pointer", "differ from lane 0's"},
    {"wrong_device", "is memory of device 0, but device 1 is current"},
    {"wrong_device_gemm", "is memory of device 0, but device 1 is current"},
};

static void run_bad(const char *c)
{
    float *x = dev(64);
    if (!strcmp(c, "sync_divergent")) sync_divergent_kernel<<<1, 64>>>(x);
    else if (!strcmp(c, "sync_exit")) sync_exit_kernel<<<1, 64>>>(x);
    else if (!strcmp(c, "shfl_exit")) shfl_exit_kernel<<<1, 64>>>(x);
    else if (!strcmp(c, "deadlock")) deadlock_kernel<<<1, 32>>>(x);
    else if (!strcmp(c, "oob_write")) oob_kernel<<<1, 32>>>(x, 64);
    else if (!strcmp(c, "host_pointer")) { static float h[64]; nop_kernel<<<1, 32>>>(h); }
    else if (!strcmp(c, "gemm_past_end")) {
        // a 8 x 8 product with lda 16 reaches 7*16+8 = 120 floats into a 64-float buffer
        cublasHandle_t h; cublasCreate(&h);
        float one = 1, zero = 0, *c8 = dev(64);
        cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 8, &one, x, 16, x, 8, &zero, c8, 8);
    } else if (!strcmp(c, "wmma_misaligned")) {
        __nv_bfloat16 *a; cudaMalloc(&a, 2 * 512);
        wmma_kernel<<<1, 32>>>(x, a + 1, a);
    }
    else if (!strcmp(c, "wmma_lane_pointer")) {
        __nv_bfloat16 *a; cudaMalloc(&a, 2 * 4096);
        wmma_lane_kernel<<<1, 32>>>(x, a);
    }
    else if (!strcmp(c, "wrong_device")) {  // two devices (main sets them up)
        CUDA_CHECK(cudaSetDevice(1));
        nop_kernel<<<1, 32>>>(x);
    }
    else if (!strcmp(c, "wrong_device_gemm")) {
        CUDA_CHECK(cudaSetDevice(1));
        cublasHandle_t h; cublasCreate(&h);
        float one = 1, zero = 0, *c8 = dev(64);
        cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 8, &one, x, 8, c8, 8, &zero, c8, 8);
    }
    else if (!strcmp(c, "host_deref")) {
        volatile float *v = x;
        fprintf(stderr, "read %g\n", (double)v[3]);
    }
    CUDA_CHECK(cudaGetLastError());
    fprintf(stderr, "%s: not caught\n", c);
}

// ---- the correct cases ----------------------------------------------------------------
static void good(void)
{
    {   // shuffles over two warps and a partial third (70 threads)
        int n = 70;
        float *o = dev(3 * n), h[3 * 70];
        shfl_kernel<<<1, 96>>>(o, n);
        CUDA_CHECK(cudaGetLastError());
        d2h(h, o, sizeof h);
        int ok = 1;
        for (int t = 0; t < n; t++) {
            int w = t / 32 * 32, lane = t & 31;
            ok &= h[3 * t] == (float)(32 * w + 496) && h[3 * t + 1] == (float)(w + 5) &&
                  h[3 * t + 2] == (float)(lane == 31 ? t : t + 1);
        }
        EXPECT("shuffles", ok);
    }
    {   // block sums and the reversal through dynamic shared memory, 3 blocks of 96
        float hx[288], hs[3], hr[288];
        for (int i = 0; i < 288; i++) hx[i] = (float)(i % 17);
        float *x = dev(288), *s = dev(3), *r = dev(288);
        h2d(x, hx, sizeof hx);
        block_kernel<<<3, 96, 96 * sizeof(float)>>>(s, r, x);
        CUDA_CHECK(cudaGetLastError());
        d2h(hs, s, sizeof hs); d2h(hr, r, sizeof hr);
        int ok = 1;
        for (int b = 0; b < 3; b++) {
            float want = 0;
            for (int i = 0; i < 96; i++) { want += hx[b * 96 + i]; ok &= hr[b * 96 + i] == hx[b * 96 + 95 - i]; }
            ok &= hs[b] == want;
        }
        EXPECT("block_sum_and_dynamic_shared", ok);
    }
    {   // launch checks: 2048 threads, and 64 KiB of dynamic shared memory before / after opting in
        float *x = dev(1);
        nop_kernel<<<1, 2048>>>(x);
        EXPECT("rejects_2048_threads", cudaGetLastError() == cudaErrorInvalidConfiguration);
        nop_kernel<<<1, 32, 64 * 1024>>>(x);
        EXPECT("rejects_64k_smem_without_optin", cudaGetLastError() != cudaSuccess);
        CUDA_CHECK(cudaFuncSetAttribute(nop_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024));
        nop_kernel<<<1, 32, 64 * 1024>>>(x);
        EXPECT("accepts_64k_smem_with_optin", cudaGetLastError() == cudaSuccess);
    }
    {   // the race shows in one of two blocks (they run in opposite thread orders)
        float *o = dev(128), h[128];
        race_kernel<<<2, 64, 64 * sizeof(float)>>>(o);
        d2h(h, o, sizeof h);
        int wrong = 0;
        for (int i = 0; i < 128; i++) wrong += h[i] != (float)(((i % 64) + 32) % 64);
        EXPECT("race_missing_barrier_shows", wrong > 0);
    }
    {   // warp votes
        unsigned *o, h[3 * 64];
        CUDA_CHECK(cudaMalloc(&o, sizeof h));
        vote_kernel<<<1, 64>>>(o);
        d2h(h, o, sizeof h);
        int ok = 1;
        for (int t = 0; t < 64; t++) ok &= h[3 * t] == 0xaaaaaaaau && h[3 * t + 1] == 1 && h[3 * t + 2] == 0;
        EXPECT("ballot_any_all", ok);
    }
    {   // static __shared__ starts as garbage in every block
        float *o = dev(4), h[4];
        stale_shared_kernel<<<2, 32>>>(o);
        d2h(h, o, sizeof h);
        EXPECT("static_shared_is_garbage_per_block", h[0] == 1.0f && h[1] == 2.0f && isnan(h[2]) && isnan(h[3]));
    }
    {   // bf16: round to nearest, ties to even
        EXPECT("bf16_round_tie_to_even",
               __bfloat162float(__float2bfloat16_rn(1.0f + 1.0f / 256)) == 1.0f &&
               __bfloat162float(__float2bfloat16_rn(1.0f + 3.0f / 256)) == 1.0f + 1.0f / 64 &&
               __bfloat162float(__float2bfloat16_rn(-(1.0f + 1.0f / 256 + 1.0f / 65536))) == -(1.0f + 1.0f / 128));
    }
    {   // cublasSgemm, every transpose, lda/ldb/ldc above the rows, against the column-major formula
        int m = 5, n = 4, k = 3, ld = 7;
        float hA[7 * 7], hB[7 * 7], hC[7 * 7], want[7 * 7];
        for (int i = 0; i < 49; i++) { hA[i] = (float)(i % 5) - 2; hB[i] = (float)(i % 3) + 0.5f; hC[i] = (float)i; }
        float *A = dev(49), *B = dev(49), *C = dev(49);
        h2d(A, hA, sizeof hA); h2d(B, hB, sizeof hB);
        cublasHandle_t h; CUBLAS_CHECK(cublasCreate(&h));
        float alpha = 2, beta = 0.5f;
        int ok = 1;
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                h2d(C, hC, sizeof hC);
                CUBLAS_CHECK(cublasSgemm(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                         m, n, k, &alpha, A, ld, B, ld, &beta, C, ld));
                float got[49];
                d2h(got, C, sizeof got);
                memcpy(want, hC, sizeof want);
                for (int j = 0; j < n; j++)
                    for (int i = 0; i < m; i++) {
                        float s = 0;
                        for (int l = 0; l < k; l++)
                            s += (ta ? hA[l + i * ld] : hA[i + l * ld]) * (tb ? hB[j + l * ld] : hB[l + j * ld]);
                        want[i + j * ld] = alpha * s + beta * hC[i + j * ld];
                    }
                ok &= memcmp(got, want, sizeof got) == 0;
            }
        EXPECT("sgemm_transposes", ok);
        // and against an independent BLAS: OpenBLAS's column-major sgemm, same arguments
        int same = 1;
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                float ref[49], got[49];
                memcpy(ref, hC, sizeof ref);
                h2d(C, hC, sizeof hC);
                cblas_sgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                            m, n, k, alpha, hA, ld, hB, ld, beta, ref, ld);
                CUBLAS_CHECK(cublasSgemm(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                         m, n, k, &alpha, A, ld, B, ld, &beta, C, ld));
                d2h(got, C, sizeof got);
                for (int i = 0; i < 49; i++) same &= fabsf(got[i] - ref[i]) <= 1e-5f * (1 + fabsf(ref[i]));
            }
        EXPECT("sgemm_matches_openblas_colmajor", same);
        EXPECT("sgemm_rejects_small_lda",
               cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, A, m - 1, B, ld, &beta, C, ld) ==
                   CUBLAS_STATUS_INVALID_VALUE &&
               cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, A, k - 1, B, ld, &beta, C, ld) ==
                   CUBLAS_STATUS_INVALID_VALUE);
        // beta = 0: C is not read (NaN there must not come through)
        float nan[49];
        for (int i = 0; i < 49; i++) nan[i] = NAN;
        h2d(C, nan, sizeof nan);
        float zero = 0, got[49];
        CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, A, ld, B, ld, &zero, C, ld));
        d2h(got, C, sizeof got);
        EXPECT("sgemm_beta0_ignores_c", !isnan(got[0]) && isnan(got[m]));
    }
    {   // WMMA: C = A (row-major) B (col-major) + 1, stored column-major
        __nv_bfloat16 ha[256], hb[256];
        for (int i = 0; i < 256; i++) { ha[i] = __float2bfloat16_rn((float)(i % 7) - 3); hb[i] = __float2bfloat16_rn((float)(i % 5) * 0.5f); }
        __nv_bfloat16 *a, *b;
        CUDA_CHECK(cudaMalloc(&a, sizeof ha)); CUDA_CHECK(cudaMalloc(&b, sizeof hb));
        h2d(a, ha, sizeof ha); h2d(b, hb, sizeof hb);
        float *c = dev(256), hc[256];
        wmma_kernel<<<1, 32>>>(c, a, b);
        CUDA_CHECK(cudaGetLastError());
        d2h(hc, c, sizeof hc);
        int ok = 1;
        for (int i = 0; i < 16; i++)
            for (int j = 0; j < 16; j++) {
                float s = 1;
                for (int l = 0; l < 16; l++) s += (float)ha[i * 16 + l] * (float)hb[l + j * 16];
                ok &= hc[i + j * 16] == s;
            }
        EXPECT("wmma_bf16_16x16x16", ok);
    }
}

// --devices: the devices this process sees (HERD_CUDA_EMU_DEVICES and
// CUDA_VISIBLE_DEVICES of its environment), one line "devices N BUSID...",
// then, with two or more, the cases of memory kept per device
static int devices(void)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    printf("devices %d", e == cudaSuccess ? n : 0);
    int props_agree = 1;
    for (int d = 0; d < n; d++) {
        char bus[32];
        cudaDeviceProp p;
        CUDA_CHECK(cudaDeviceGetPCIBusId(bus, sizeof bus, d));
        CUDA_CHECK(cudaGetDeviceProperties(&p, d));
        unsigned b = 0;
        props_agree &= sscanf(bus, "0000:%x:00.0", &b) == 1 && (int)b == p.pciBusID;
        printf(" %s", bus);
    }
    printf("\n");
    if (n == 0) {
        EXPECT("no_device_is_an_error", e == cudaErrorNoDevice && cudaGetLastError() == cudaErrorNoDevice);
        return fails != 0;
    }
    EXPECT("properties_bus_id_matches", props_agree);
    int cur = -1;
    EXPECT("set_device_out_of_range", cudaSetDevice(n) == cudaErrorInvalidDevice &&
                                          cudaGetLastError() == cudaErrorInvalidDevice &&
                                          cudaGetDevice(&cur) == cudaSuccess && cur == 0);
    if (n < 2) return fails != 0;
    float *a = dev(1024);
    size_t free0, free1, total;
    CUDA_CHECK(cudaMemGetInfo(&free0, &total));
    CUDA_CHECK(cudaSetDevice(1));
    CUDA_CHECK(cudaGetDevice(&cur));
    CUDA_CHECK(cudaMemGetInfo(&free1, &total));
    float *b = dev(16);
    cudaPointerAttributes pa, pb;
    CUDA_CHECK(cudaPointerGetAttributes(&pa, a));
    CUDA_CHECK(cudaPointerGetAttributes(&pb, b));
    EXPECT("current_device_follows_set", cur == 1);
    EXPECT("memory_info_per_device", free1 == total && free0 == total - 1024 * sizeof(float));
    EXPECT("pointer_attributes_device", pa.device == 0 && pb.device == 1 &&
                                            pa.type == cudaMemoryTypeDevice);
    nop_kernel<<<1, 32>>>(b);
    EXPECT("kernel_on_own_device_runs", cudaGetLastError() == cudaSuccess);
    return fails != 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--devices")) return devices();
    // the wrong-device cases need two devices, whatever the caller's environment
    if (argc == 3 && !strcmp(argv[1], "--bad") && !strncmp(argv[2], "wrong_device", 12)) {
        setenv("HERD_CUDA_EMU_DEVICES", "2", 1);
        unsetenv("CUDA_VISIBLE_DEVICES");
    }
    int n = 0;
    CUDA_CHECK(cudaGetDeviceCount(&n));
    if (argc == 2 && !strcmp(argv[1], "--list-bad")) {
        for (auto &c : bad_cases) printf("%s\n", c.name);
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "--expect")) {
        for (auto &c : bad_cases) if (!strcmp(c.name, argv[2])) { printf("%s\n", c.expect); return 0; }
        return 1;
    }
    if (argc == 3 && !strcmp(argv[1], "--bad")) { run_bad(argv[2]); return 0; }
    good();
    return fails != 0;
}
