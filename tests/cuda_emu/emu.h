// emu.h — TEST TOOLING, not part of herd: a CPU emulation of the parts of the
// CUDA runtime that kernels/cuda/*.cu use, so that every custom kernel runs on
// a machine without a GPU (tests/cuda_emu/README in docs/cuda.md, "Kernel
// checks without a GPU").
//
// Model: a launch runs its blocks one after another; the threads of a block are
// fibers (ucontext) run round-robin by a scheduler. __syncthreads is a block
// barrier, the warp intrinsics (shuffles, wmma) are barriers of the 32 lanes of
// a warp that exchange values through the scheduler. __shared__ is `static`
// (one block at a time, so a static is the block's shared memory). Errors a
// GPU would hang on or report (barrier divergence, a thread leaving while
// others wait, bad launch configurations, pointers that are not device memory,
// accesses past the end of an allocation) abort with the kernel's name.
//
// Devices: HERD_CUDA_EMU_DEVICES=N (1..8, default 1) physical GPUs, with the PCI
// bus ids of tests/fixtures/topology (see emu.cpp), filtered and renumbered by
// CUDA_VISIBLE_DEVICES as the real runtime does. Each allocation belongs to
// the device current when it was made; a kernel or cuBLAS call given memory of
// another device aborts (a GPU faults on it without peer access).
#ifndef HERD_CUDA_EMU_H
#define HERD_CUDA_EMU_H

#include <math.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tuple>
#include <type_traits>
#include <utility>
#include <algorithm>

// ---- qualifiers ----------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __shared__ static
#define __constant__ static
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __align__(n) alignas(n)

// ---- built-in vectors and indices -----------------------------------------------
struct uint3 { unsigned x, y, z; };
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
static const int warpSize = 32;

// ---- runtime types -------------------------------------------------------------
typedef enum cudaError {
    cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9, cudaErrorInvalidDevicePointer = 17,
    cudaErrorInvalidMemcpyDirection = 21, cudaErrorNoDevice = 100, cudaErrorInvalidDevice = 101,
    cudaErrorInvalidResourceHandle = 400, cudaErrorLaunchFailure = 719
} cudaError_t;
enum cudaMemcpyKind { cudaMemcpyHostToHost = 0, cudaMemcpyHostToDevice = 1,
                      cudaMemcpyDeviceToHost = 2, cudaMemcpyDeviceToDevice = 3,
                      cudaMemcpyDefault = 4 };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
                         cudaFuncAttributePreferredSharedMemoryCarveout = 9 };
enum cudaMemoryType { cudaMemoryTypeUnregistered = 0, cudaMemoryTypeHost = 1,
                      cudaMemoryTypeDevice = 2, cudaMemoryTypeManaged = 3 };
struct cudaPointerAttributes { enum cudaMemoryType type; int device; void *devicePointer;
                               void *hostPointer; };
// the fields of cudaDeviceProp that herd reads (the real struct has many more)
struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    int major, minor, multiProcessorCount;
    int pciDomainID, pciBusID, pciDeviceID;
};
typedef struct emu_stream *cudaStream_t;
typedef struct emu_event *cudaEvent_t;
#define cudaStreamDefault 0x0
#define cudaStreamNonBlocking 0x1
#define cudaEventDefault 0x0
#define cudaEventDisableTiming 0x2

cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaGetDevice(int *d);
cudaError_t cudaDeviceGetPCIBusId(char *buf, int len, int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device);
cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
const char *cudaGetErrorName(cudaError_t e);
const char *cudaGetErrorString(cudaError_t e);
cudaError_t cudaMalloc(void **p, size_t bytes);
template <typename T> cudaError_t cudaMalloc(T **p, size_t bytes) { return cudaMalloc((void **)p, bytes); }
cudaError_t cudaMallocHost(void **p, size_t bytes);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaFree(void *p);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind,
                            cudaStream_t s = 0);
cudaError_t cudaMemset(void *p, int v, size_t n);
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t s = 0);
cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaStreamCreate(cudaStream_t *s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags = 0);
cudaError_t cudaEventCreate(cudaEvent_t *e);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = 0);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b);
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes *a, const void *p);

// ---- the emulator's own interface (used by the rewritten launches) -----------------
namespace emu {
// 1 when [p, p+n) lies inside one live device allocation
int is_device(const void *p, size_t n);
// abort when p is device memory of another device than the current one
// (`call` and `what` name the kernel or library call and the operand)
void check_current(const void *p, const char *call, const char *what);
// while one lives, device memory is readable and writable from the host (the
// emulator's calls); otherwise it is PROT_NONE
struct device_access { device_access(); ~device_access(); };
// report a bug in the running kernel (or API call) and abort
[[noreturn]] void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void set_error(cudaError_t e);
void *dyn_smem(void);
// a block of `bytes` of static shared memory, the same pointer for the life
// of the program, refilled with 0xff before each block (launch.pl)
void *shared_new(size_t bytes);
cudaError_t set_max_dyn_smem(const void *fn, int bytes);
int max_dyn_smem(const void *fn);
// one launch: checks the configuration, runs body() on every thread of every block
struct launch_info { const char *name, *file; int line; dim3 grid, block; size_t smem;
                     const void *fn; };
void run(const launch_info &li, void (*body)(void *), void *arg);
// warp intrinsics: exchange 8 bytes with the lane src (computed per lane)
uint64_t warp_exchange(uint64_t v, int src, unsigned mask, int line, const char *what);
// a warp vote: the mask of the lanes whose pred is non-zero
unsigned warp_ballot(int pred, unsigned mask, int line, const char *what);
unsigned lanes_mask(void);  // the lanes that exist in this thread's warp
void block_barrier(int line);
void warp_barrier(unsigned mask, int line, const char *what);
int lane_id(void);

template <typename T> static inline void check_arg(const launch_info &li, int i, const T &) {}
template <typename T> static inline void check_arg(const launch_info &li, int i, T *const &p)
{
    if (p && !is_device(p, 0))
        fail("launch of %s (%s:%d): argument %d (%p) is not device memory", li.name, li.file,
             li.line, i, (const void *)p);
    char what[32];
    snprintf(what, sizeof what, "argument %d", i);
    if (p) check_current(p, li.name, what);
}

template <typename... P> struct launcher {
    void (*fn)(P...);
    launch_info li;
    template <typename... A> void operator()(A &&...a)
    {
        static_assert(sizeof...(A) == sizeof...(P), "kernel argument count");
        std::tuple<std::decay_t<P>...> args(std::forward<A>(a)...);
        int i = 0;
        std::apply([&](const auto &...x) { (check_arg(li, i++, x), ...); }, args);
        struct ctx { void (*fn)(P...); std::tuple<std::decay_t<P>...> *args; } c{fn, &args};
        run(li, [](void *v) {
            ctx *c = (ctx *)v;
            std::apply(c->fn, *c->args);
        }, &c);
    }
};
}  // namespace emu

template <typename... P>
emu::launcher<P...> emu_launch(const char *name, const char *file, int line, void (*fn)(P...),
                               dim3 grid, dim3 block, size_t smem = 0, cudaStream_t = 0)
{
    return emu::launcher<P...>{fn, {name, file, line, grid, block, smem, (const void *)fn}};
}

template <typename F> cudaError_t cudaFuncSetAttribute(F *fn, enum cudaFuncAttribute a, int v)
{
    if (a == cudaFuncAttributeMaxDynamicSharedMemorySize) return emu::set_max_dyn_smem((const void *)fn, v);
    return cudaSuccess;
}

// ---- device intrinsics ---------------------------------------------------------------
#define __syncthreads() emu::block_barrier(__LINE__)
#define __syncwarp(...) emu::warp_barrier(0xffffffffu, __LINE__, "__syncwarp")
#define __threadfence() ((void)0)

template <typename T> static inline T emu_shfl(T v, int src, unsigned mask, int line, const char *what)
{
    static_assert(sizeof(T) <= 8, "shuffle of more than 8 bytes");
    uint64_t b = 0;
    memcpy(&b, &v, sizeof(T));
    b = emu::warp_exchange(b, src, mask, line, what);
    T r;
    memcpy(&r, &b, sizeof(T));
    return r;
}
static inline int emu_shfl_src(int kind, int lane, int arg, int width)
{
    int base = lane & ~(width - 1), in = lane - base;
    switch (kind) {
    case 0: return base + (arg % width);                                  // idx
    case 1: { int s = in ^ arg; return s < width ? base + s : lane; }     // xor
    case 2: return in + arg < width ? lane + arg : lane;                  // down
    default: return in - arg >= 0 ? lane - arg : lane;                    // up
    }
}
#define __shfl_sync(m, v, s, ...) emu_shfl_w(0, m, v, s, __LINE__, "__shfl_sync", ##__VA_ARGS__)
#define __shfl_xor_sync(m, v, s, ...) emu_shfl_w(1, m, v, s, __LINE__, "__shfl_xor_sync", ##__VA_ARGS__)
#define __shfl_down_sync(m, v, s, ...) emu_shfl_w(2, m, v, s, __LINE__, "__shfl_down_sync", ##__VA_ARGS__)
#define __shfl_up_sync(m, v, s, ...) emu_shfl_w(3, m, v, s, __LINE__, "__shfl_up_sync", ##__VA_ARGS__)
template <typename T>
static inline T emu_shfl_w(int kind, unsigned mask, T v, int arg, int line, const char *what,
                           int width = 32)
{
    if (width < 1 || width > 32 || (width & (width - 1)))
        emu::fail("%s: width %d is not a power of 2 in 1..32", what, width);
    return emu_shfl(v, emu_shfl_src(kind, emu::lane_id(), arg, width), mask, line, what);
}

#define __ballot_sync(m, p) emu::warp_ballot((p) != 0, m, __LINE__, "__ballot_sync")
#define __any_sync(m, p) (emu::warp_ballot((p) != 0, m, __LINE__, "__any_sync") != 0u)
#define __all_sync(m, p) (emu::warp_ballot((p) != 0, m, __LINE__, "__all_sync") == emu::lanes_mask())
#define __activemask() emu::lanes_mask()
template <typename T> static inline T __ldg(const T *p) { return *p; }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline float __frcp_rn(float a) { return 1.0f / a; }
static inline float __saturatef(float a) { return a < 0.0f ? 0.0f : a > 1.0f ? 1.0f : a; }

// vector types
struct float2 { float x, y; };
struct float4 { float x, y, z, w; };
struct int2 { int x, y; };
struct int4 { int x, y, z, w; };
static inline float2 make_float2(float x, float y) { return float2{x, y}; }
static inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
static inline int2 make_int2(int x, int y) { return int2{x, y}; }
static inline int4 make_int4(int x, int y, int z, int w) { return int4{x, y, z, w}; }

// single-threaded at any instant: the atomics are plain read-modify-writes
template <typename T> static inline T atomicAdd(T *p, T v) { T o = *p; *p = o + v; return o; }
template <typename T> static inline T atomicMax(T *p, T v) { T o = *p; *p = o > v ? o : v; return o; }
template <typename T> static inline T atomicMin(T *p, T v) { T o = *p; *p = o < v ? o : v; return o; }
template <typename T> static inline T atomicExch(T *p, T v) { T o = *p; *p = v; return o; }
template <typename T> static inline T atomicCAS(T *p, T c, T v) { T o = *p; if (o == c) *p = v; return o; }

// integer min/max of device code (CUDA has them as overloaded globals)
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
static inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
static inline long long min(long long a, long long b) { return a < b ? a : b; }
static inline long long max(long long a, long long b) { return a > b ? a : b; }
static inline size_t min(size_t a, size_t b) { return a < b ? a : b; }
static inline size_t max(size_t a, size_t b) { return a > b ? a : b; }
static inline float min(float a, float b) { return fminf(a, b); }
static inline float max(float a, float b) { return fmaxf(a, b); }
// __expf and __logf: glibc declares them (the same functions)
static inline float __fdividef(float a, float b) { return a / b; }
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }

#endif
