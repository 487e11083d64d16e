// emu.cpp — TEST TOOLING: the CPU emulation of the CUDA runtime (see emu.h):
// device memory, the launch scheduler (threads of a block as fibers), the
// barriers and warp exchanges, and the checks that turn a kernel bug into an
// abort naming the kernel.
#include "tests/cuda_emu/emu.h"
#include <map>
#include <vector>
#include <execinfo.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <unistd.h>

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

namespace emu {

// ---- device memory -----------------------------------------------------------------
// Each allocation is its own mapping that ends at a PROT_NONE guard page, the
// buffer placed so that its (16-byte rounded) end touches the guard: a read or
// write past the end faults (SIGSEGV, reported with the kernel's name). Freed
// memory is unmapped, so a use after free faults too. New memory is filled with
// 0xff bytes (NaN floats, -1 ints), as cudaMalloc's garbage: a kernel that
// reads memory nobody wrote gets NaN, not a lucky zero.
struct alloc { size_t bytes; void *map; size_t map_bytes; int dev; };  // dev: physical device
static std::map<uintptr_t, alloc> allocs;  // by start address
static const size_t PAGE = 4096;

// Outside the emulator's own calls (a launch, a copy, a cuBLAS call) device
// memory is PROT_NONE: host code that dereferences a device pointer (which
// works by accident when device memory is host memory) faults and is
// reported, as it would fault or read garbage on a GPU.
static int open_depth;
static void protect_all(int prot)
{
    for (auto &a : allocs)
        mprotect(a.second.map, a.second.map_bytes - PAGE, prot);
}
device_access::device_access() { if (open_depth++ == 0) protect_all(PROT_READ | PROT_WRITE); }
device_access::~device_access() { if (--open_depth == 0) protect_all(PROT_NONE); }

static const alloc *find(const void *p, uintptr_t *base)
{
    uintptr_t a = (uintptr_t)p;
    auto it = allocs.upper_bound(a);
    if (it == allocs.begin()) return nullptr;
    --it;
    if (a > it->first + it->second.bytes) return nullptr;  // one past the end is a pointer too
    if (base) *base = it->first;
    return &it->second;
}

int is_device(const void *p, size_t n)
{
    uintptr_t base;
    const alloc *a = find(p, &base);
    return a && (uintptr_t)p + n <= base + a->bytes;
}

// ---- the running kernel, for messages ----------------------------------------------------
static const launch_info *cur_launch;
static int cur_thread = -1;

[[noreturn]] void fail(const char *fmt, ...)
{
    fflush(stdout);
    fprintf(stderr, "cuda-emu: ");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (!cur_launch) {
        void *bt[16];
        int n = backtrace(bt, 16);
        fprintf(stderr, "\ncuda-emu: host backtrace (addr2line -e BINARY, or gdb):\n");
        backtrace_symbols_fd(bt, n, 2);
    }
    if (cur_launch)
        fprintf(stderr, "\ncuda-emu:   in kernel %s launched at %s:%d, block (%u,%u,%u) of (%u,%u,%u), "
                "thread %d of (%u,%u,%u)", cur_launch->name, cur_launch->file, cur_launch->line,
                blockIdx.x, blockIdx.y, blockIdx.z, gridDim.x, gridDim.y, gridDim.z, cur_thread,
                blockDim.x, blockDim.y, blockDim.z);
    fprintf(stderr, "\n");
    abort();
}

static void on_segv(int sig, siginfo_t *si, void *)
{
    uintptr_t a = (uintptr_t)si->si_addr;
    // the allocation whose guard page was hit: the nearest start below
    auto it = allocs.upper_bound(a);
    char where[160] = "not near any device allocation";
    if (it != allocs.begin()) {
        --it;
        if (a >= it->first + it->second.bytes && a < it->first + it->second.bytes + 2 * PAGE)
            snprintf(where, sizeof where, "%zu bytes past the end of a device allocation of %zu bytes",
                     (size_t)(a - it->first - it->second.bytes), it->second.bytes);
        else if (a >= it->first && !open_depth)
            snprintf(where, sizeof where, "HOST code dereferenced device memory (byte %zu of an "
                     "allocation of %zu bytes): a device pointer used as a host pointer",
                     (size_t)(a - it->first), it->second.bytes);
    }
    fail("signal %d (invalid memory access) at %p: %s", sig, si->si_addr, where);
}

static void install_handler(void)
{
    static int done;
    if (done) return;
    done = 1;
    // an alternate stack: the fault may be a fiber's stack overflow
    static char altstack[1 << 16];
    stack_t ss = {};
    ss.ss_sp = altstack;
    ss.ss_size = sizeof altstack;
    sigaltstack(&ss, nullptr);
    struct sigaction sa = {};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSEGV, &sa, nullptr);
    sigaction(SIGBUS, &sa, nullptr);
}

static cudaError_t last_error = cudaSuccess;
void set_error(cudaError_t e) { if (last_error == cudaSuccess) last_error = e; }

// ---- devices ------------------------------------------------------------------------------
// HERD_CUDA_EMU_DEVICES physical GPUs (1..8, default 1). Their PCI bus ids are
// those of the GPUs of tests/fixtures/topology/dgx_h100.xml, spread evenly:
// device i of N is the DGX's GPU i*8/N. So 8 devices match dgx_h100.xml, and 2
// match gpu2.xml (0000:11:00.0 near socket 0, 0000:91:00.0 near socket 1), which
// lets hwloc locality be tested against the emulated devices.
// CUDA_VISIBLE_DEVICES as the real runtime reads it: a comma-separated list of
// physical indices, renumbered 0.. in the order given; the list ends at the
// first entry that is not a valid index (out of range, a repeat, not a number:
// the emulator has no UUIDs); set but empty, or starting with an invalid entry,
// means no device.
static const int DGX_BUS[8] = {0x11, 0x21, 0x51, 0x61, 0x91, 0xa1, 0xd1, 0xe1};
enum { EMU_MAX_DEV = 8 };
static int n_phys = -1;
static std::vector<int> visible;  // visible index -> physical index
static int current;               // the current device, a visible index

static void devices_init(void)
{
    if (n_phys >= 0) return;
    const char *e = getenv("HERD_CUDA_EMU_DEVICES");
    n_phys = 1;
    if (e && *e) {
        char *end;
        long v = strtol(e, &end, 10);
        if (*end || v < 1 || v > EMU_MAX_DEV)
            fail("HERD_CUDA_EMU_DEVICES='%s': not a number of devices in 1..%d", e, EMU_MAX_DEV);
        n_phys = (int)v;
    }
    const char *cvd = getenv("CUDA_VISIBLE_DEVICES");
    if (!cvd) {
        for (int i = 0; i < n_phys; i++) visible.push_back(i);
        return;
    }
    const char *q = cvd;
    while (*q) {
        while (*q == ' ') q++;
        char *end;
        long v = strtol(q, &end, 10);
        if (end == q || v < 0 || v >= n_phys ||
            std::find(visible.begin(), visible.end(), (int)v) != visible.end())
            break;
        while (*end == ' ') end++;
        if (*end != ',' && *end) break;
        visible.push_back((int)v);
        q = *end ? end + 1 : end;
    }
}

static int bus_of(int phys) { return DGX_BUS[phys * 8 / n_phys]; }
static int visible_of(int phys)
{
    for (size_t i = 0; i < visible.size(); i++)
        if (visible[i] == phys) return (int)i;
    return -1;
}

void check_current(const void *p, const char *call, const char *what)
{
    const alloc *a = find(p, nullptr);
    if (a && a->dev != visible[current])
        fail("%s: %s (%p) is memory of device %d, but device %d is current (cudaSetDevice): "
             "a GPU does not reach another GPU's memory", call, what, p, visible_of(a->dev), current);
}

}  // namespace emu

using namespace emu;

// ---- runtime API ------------------------------------------------------------------------
static const size_t EMU_TOTAL = (size_t)80 << 30;  // an H100's 80 GB, as cudaMemGetInfo reports
static size_t in_use[EMU_MAX_DEV];  // per physical device

cudaError_t cudaGetDeviceCount(int *n)
{
    install_handler();
    devices_init();
    *n = (int)visible.size();
    if (*n == 0) { set_error(cudaErrorNoDevice); return cudaErrorNoDevice; }
    return cudaSuccess;
}
static cudaError_t valid_device(int d)
{
    devices_init();
    if (visible.empty()) { set_error(cudaErrorNoDevice); return cudaErrorNoDevice; }
    if (d < 0 || d >= (int)visible.size()) { set_error(cudaErrorInvalidDevice); return cudaErrorInvalidDevice; }
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int d)
{
    cudaError_t e = valid_device(d);
    if (e == cudaSuccess) current = d;
    return e;
}
cudaError_t cudaGetDevice(int *d)
{
    cudaError_t e = valid_device(0);
    *d = current;
    return e;
}
// as the real runtime: "0000:91:00.0", hexadecimal digits in upper case
cudaError_t cudaDeviceGetPCIBusId(char *buf, int len, int d)
{
    cudaError_t e = valid_device(d);
    if (e != cudaSuccess) return e;
    if (!buf || len < 13) { set_error(cudaErrorInvalidValue); return cudaErrorInvalidValue; }
    snprintf(buf, (size_t)len, "0000:%02X:00.0", bus_of(visible[d]));
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int d)
{
    cudaError_t e = valid_device(d);
    if (e != cudaSuccess) return e;
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "NVIDIA H100 80GB HBM3 (cuda-emu)");
    prop->totalGlobalMem = EMU_TOTAL;
    prop->major = 9;
    prop->multiProcessorCount = 132;
    prop->pciBusID = bus_of(visible[d]);
    return cudaSuccess;
}
cudaError_t cudaGetLastError(void) { cudaError_t e = last_error; last_error = cudaSuccess; return e; }
cudaError_t cudaPeekAtLastError(void) { return last_error; }
const char *cudaGetErrorName(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    default: return "cudaErrorLaunchFailure";
    }
}
const char *cudaGetErrorString(cudaError_t e) { return cudaGetErrorName(e); }

cudaError_t cudaMalloc(void **p, size_t bytes)
{
    install_handler();
    cudaError_t e = valid_device(current);
    if (e != cudaSuccess) { *p = nullptr; return e; }
    size_t b16 = (bytes + 15) & ~(size_t)15;
    size_t body = (b16 + PAGE - 1) & ~(PAGE - 1), map_bytes = body + PAGE;
    void *m = mmap(nullptr, map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) { *p = nullptr; set_error(cudaErrorMemoryAllocation); return cudaErrorMemoryAllocation; }
    mprotect((char *)m + body, PAGE, PROT_NONE);
    char *start = (char *)m + body - b16;
    memset(start, 0xff, b16);
    if (!open_depth) mprotect(m, body, PROT_NONE);
    allocs[(uintptr_t)start] = alloc{bytes, m, map_bytes, visible[current]};
    in_use[visible[current]] += bytes;
    *p = start;
    return cudaSuccess;
}

cudaError_t cudaFree(void *p)
{
    if (!p) return cudaSuccess;
    auto it = allocs.find((uintptr_t)p);
    if (it == allocs.end()) fail("cudaFree(%p): not the start of a live device allocation", p);
    munmap(it->second.map, it->second.map_bytes);
    in_use[it->second.dev] -= it->second.bytes;
    allocs.erase(it);
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void **p, size_t bytes) { *p = malloc(bytes ? bytes : 1); return cudaSuccess; }
cudaError_t cudaFreeHost(void *p) { free(p); return cudaSuccess; }

static void check_range(const char *call, const char *which, const void *p, size_t n, int device)
{
    if (!n) return;
    int d = is_device(p, n);
    if (device && !d)
        fail("%s: %s %p (+%zu bytes) is not inside one device allocation", call, which, p, n);
    if (!device && find(p, nullptr))
        fail("%s: %s %p is device memory where the direction says host", call, which, p);
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind)
{
    device_access open;
    switch (kind) {
    case cudaMemcpyHostToDevice: check_range("cudaMemcpy HostToDevice", "dst", dst, n, 1);
                                 check_range("cudaMemcpy HostToDevice", "src", src, n, 0); break;
    case cudaMemcpyDeviceToHost: check_range("cudaMemcpy DeviceToHost", "dst", dst, n, 0);
                                 check_range("cudaMemcpy DeviceToHost", "src", src, n, 1); break;
    case cudaMemcpyDeviceToDevice: check_range("cudaMemcpy DeviceToDevice", "dst", dst, n, 1);
                                   check_range("cudaMemcpy DeviceToDevice", "src", src, n, 1); break;
    default: break;
    }
    if (n) memmove(dst, src, n);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind, cudaStream_t)
{
    return cudaMemcpy(dst, src, n, kind);
}
cudaError_t cudaMemset(void *p, int v, size_t n)
{
    device_access open;
    check_range("cudaMemset", "ptr", p, n, 1);
    if (n) memset(p, v, n);
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t) { return cudaMemset(p, v, n); }
cudaError_t cudaMemGetInfo(size_t *f, size_t *t)
{
    cudaError_t e = valid_device(current);
    if (e != cudaSuccess) return e;
    *t = EMU_TOTAL;
    *f = EMU_TOTAL - in_use[visible[current]];
    return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }

// streams and events: every operation completes before its call returns
struct emu_stream { int id; };
struct emu_event { int recorded; };
cudaError_t cudaStreamCreate(cudaStream_t *s) { *s = new emu_stream{1}; return cudaSuccess; }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) { return cudaStreamCreate(s); }
cudaError_t cudaStreamDestroy(cudaStream_t s) { delete s; return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned) { return cudaSuccess; }
cudaError_t cudaEventCreate(cudaEvent_t *e) { *e = new emu_event{0}; return cudaSuccess; }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) { return cudaEventCreate(e); }
cudaError_t cudaEventDestroy(cudaEvent_t e) { delete e; return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) { e->recorded = 1; return cudaSuccess; }
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t, cudaEvent_t) { *ms = 0; return cudaSuccess; }
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes *a, const void *p)
{
    memset(a, 0, sizeof *a);
    const alloc *al = find(p, nullptr);
    a->type = al ? cudaMemoryTypeDevice : cudaMemoryTypeUnregistered;
    a->device = al ? visible_of(al->dev) : -2;  // -2: the real runtime's "no device"
    a->devicePointer = a->type == cudaMemoryTypeDevice ? (void *)p : nullptr;
    return cudaSuccess;
}

// ---- dynamic shared memory limits -----------------------------------------------------------
namespace emu {
static std::map<const void *, int> smem_optin;
static const int SMEM_DEFAULT = 48 * 1024, SMEM_MAX_OPTIN = 227 * 1024;  // sm_90
cudaError_t set_max_dyn_smem(const void *fn, int bytes)
{
    if (bytes < 0 || bytes > SMEM_MAX_OPTIN) { set_error(cudaErrorInvalidValue); return cudaErrorInvalidValue; }
    smem_optin[fn] = bytes;
    return cudaSuccess;
}
int max_dyn_smem(const void *fn)
{
    auto it = smem_optin.find(fn);
    return it == smem_optin.end() ? SMEM_DEFAULT : std::max(it->second, SMEM_DEFAULT);
}

// ---- the scheduler ----------------------------------------------------------------------------
enum { RUN, AT_BLOCK, AT_WARP, DONE };
// A context switch of our own (x86-64 System V): swapcontext saves and restores
// the signal mask with a system call on every switch, which made the emulator
// eight times slower. Saves the callee-saved registers on the old stack, swaps
// stack pointers. (MXCSR and the x87 control word are not touched by kernels.)
// Elsewhere: swapcontext (slow, but correct).
#if defined(__x86_64__) && !defined(EMU_FORCE_UCONTEXT)
extern "C" void emu_switch(void **save_sp, void *new_sp);
asm(".text\n.globl emu_switch\n.type emu_switch,@function\nemu_switch:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n.size emu_switch, .-emu_switch\n");
#define EMU_OWN_SWITCH 1
#else
#include <ucontext.h>
#endif

struct fiber {
    void *sp;
#ifndef EMU_OWN_SWITCH
    ucontext_t ctx;
#endif
    char *stack;
    int state, line;
    const char *what;   // the warp intrinsic waited at
    unsigned mask;
    int src;            // shuffle source lane
    int vote;           // 1: a ballot (res = mask of lanes with val != 0)
    uint64_t val, res;  // shuffle value in, result out
};
static const size_t STACK = 256 * 1024;
static std::vector<fiber> fibers;
static void *sched_sp;
#ifndef EMU_OWN_SWITCH
static ucontext_t sched_ctx;
#endif
static void (*cur_body)(void *);
static void *cur_arg;
static std::vector<unsigned char> smem_buf;
// the dynamic shared memory starts 128-byte aligned, as on the GPU (a kernel
// may declare `extern __shared__ __align__(128)` and rely on it for WMMA's
// 256-bit aligned tile pointers); std::vector's data() is only 16-byte aligned
enum { SMEM_ALIGN = 128 };
void *dyn_smem(void)
{
    uintptr_t p = (uintptr_t)smem_buf.data();
    return (void *)((p + SMEM_ALIGN - 1) & ~(uintptr_t)(SMEM_ALIGN - 1));
}

static std::vector<std::pair<void *, size_t>> static_shared;
void *shared_new(size_t bytes)
{
    void *p = aligned_alloc(16, (bytes + 15) & ~(size_t)15);
    memset(p, 0xff, bytes);
    static_shared.push_back({p, bytes});
    return p;
}

int lane_id(void) { return cur_thread & 31; }

static void to_scheduler(void)
{
#ifdef EMU_OWN_SWITCH
    emu_switch(&fibers[cur_thread].sp, sched_sp);
#else
    swapcontext(&fibers[cur_thread].ctx, &sched_ctx);
#endif
}

static void to_fiber(int t)
{
#ifdef EMU_OWN_SWITCH
    emu_switch(&sched_sp, fibers[t].sp);
#else
    swapcontext(&sched_ctx, &fibers[t].ctx);
#endif
}

static void yield(void) { to_scheduler(); }

static void fiber_main(void)
{
    cur_body(cur_arg);
    fibers[cur_thread].state = DONE;
    to_scheduler();
    abort();  // never resumed
}

// a fresh stack whose first switch "returns" into fiber_main: [entry, 0] at
// the 16-aligned top (so fiber_main starts with rsp = 8 mod 16, as after a
// call), six zero registers below
static void *fresh_stack(char *stack)
{
    uintptr_t top = ((uintptr_t)stack + STACK) & ~(uintptr_t)15;
    void **p = (void **)(top - 16);
    p[0] = (void *)fiber_main;
    p[1] = nullptr;
    void **sp = p - 6;
    for (int i = 0; i < 6; i++) sp[i] = nullptr;
    return sp;
}

static void ensure_fibers(int n)
{
    while ((int)fibers.size() < n) {
        fiber f = {};
        // a guard page below each stack: an overflow faults instead of corrupting
        char *m = (char *)mmap(nullptr, STACK + PAGE, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) fail("no memory for %d thread stacks", n);
        mprotect(m, PAGE, PROT_NONE);
        f.stack = m + PAGE;
        fibers.push_back(f);
    }
}

void block_barrier(int line)
{
    fiber &f = fibers[cur_thread];
    f.state = AT_BLOCK;
    f.line = line;
    yield();
}

void warp_barrier(unsigned mask, int line, const char *what)
{
    fiber &f = fibers[cur_thread];
    f.state = AT_WARP;
    f.line = line;
    f.what = what;
    f.mask = mask;
    f.src = cur_thread & 31;
    f.vote = 0;
    yield();
}

unsigned lanes_mask(void)
{
    int nt = (int)(blockDim.x * blockDim.y * blockDim.z), lo = cur_thread & ~31;
    int n = std::min(32, nt - lo);
    return n == 32 ? 0xffffffffu : ((1u << n) - 1);
}

unsigned warp_ballot(int pred, unsigned mask, int line, const char *what)
{
    fiber &f = fibers[cur_thread];
    f.vote = 1;
    return (unsigned)warp_exchange((uint64_t)(pred != 0), cur_thread & 31, mask, line, what);
}

uint64_t warp_exchange(uint64_t v, int src, unsigned mask, int line, const char *what)
{
    fiber &f = fibers[cur_thread];
    f.val = v;
    f.state = AT_WARP;
    f.line = line;
    f.what = what;
    f.mask = mask;
    f.src = src;
    yield();
    return fibers[cur_thread].res;
}

static void set_thread(int t)
{
    cur_thread = t;
    if (blockDim.y == 1 && blockDim.z == 1) { threadIdx.x = t; threadIdx.y = threadIdx.z = 0; return; }
    threadIdx.x = t % blockDim.x;
    threadIdx.y = t / blockDim.x % blockDim.y;
    threadIdx.z = t / (blockDim.x * blockDim.y);
}

static const char *state_name(const fiber &f)
{
    static char buf[96];
    switch (f.state) {
    case RUN: return "running";
    case DONE: return "exited";
    case AT_BLOCK: snprintf(buf, sizeof buf, "__syncthreads at line %d", f.line); return buf;
    default: snprintf(buf, sizeof buf, "%s at line %d", f.what, f.line); return buf;
    }
}

// run the threads of one block to completion
// rev: resume the threads last to first. Between two barriers a thread runs
// alone to the next one, so in one order a missing barrier between a write
// and a read of shared memory in another warp can go unseen; blocks alternate
// orders (by block and launch), so such a race shows up as a wrong result.
// a warp whose every lane waits at the same warp intrinsic: exchange, resume
static int release_warp(int w, int nt)
{
    int lo = w * 32, hi = std::min(nt, lo + 32), n = hi - lo, at = 0, gone = 0;
    for (int t = lo; t < hi; t++) { at += fibers[t].state == AT_WARP; gone += fibers[t].state == DONE; }
    if (!at) return 0;
    if (gone) {
        int t = lo;
        while (fibers[t].state != AT_WARP) t++;
        cur_thread = t;
        fail("warp %d: %d lane(s) exited while lane %d waits at %s (line %d): the lanes "
             "of a warp collective must all take part", w, gone, t - lo, fibers[t].what,
             fibers[t].line);
    }
    if (at != n) return 0;  // some lanes still on their way (or at __syncthreads)
    unsigned full = n == 32 ? 0xffffffffu : ((1u << n) - 1);
    for (int t = lo; t < hi; t++) {
        const fiber &f = fibers[t];
        if (f.line != fibers[lo].line || f.what != fibers[lo].what) {
            cur_thread = t;
            fail("warp %d diverged: lane %d at %s, lane 0 at %s line %d", w, t - lo,
                 state_name(f), fibers[lo].what, fibers[lo].line);
        }
        if ((f.mask & full) != full) {
            cur_thread = t;
            fail("%s at line %d with mask 0x%08x: the emulator supports only masks of "
                 "the whole warp (0x%08x)", f.what, f.line, f.mask, full);
        }
        if (f.src < 0 || f.src >= n) {
            cur_thread = t;
            fail("%s at line %d: source lane %d is outside the warp of %d lanes", f.what,
                 f.line, f.src, n);
        }
    }
    if (fibers[lo].vote) {
        uint64_t m = 0;
        for (int t = lo; t < hi; t++) m |= (fibers[t].val ? 1ull : 0ull) << (t - lo);
        for (int t = lo; t < hi; t++) { fibers[t].res = m; fibers[t].vote = 0; }
    } else {
        for (int t = lo; t < hi; t++) fibers[t].res = fibers[lo + fibers[t].src].val;
    }
    for (int t = lo; t < hi; t++) fibers[t].state = RUN;
    return 1;
}

static void run_block(int nt, int rev)
{
    for (int t = 0; t < nt; t++) {
        fiber &f = fibers[t];
#ifdef EMU_OWN_SWITCH
        f.sp = fresh_stack(f.stack);
#else
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = f.stack;
        f.ctx.uc_stack.ss_size = STACK;
        f.ctx.uc_link = nullptr;
        makecontext(&f.ctx, fiber_main, 0);
#endif
        f.state = RUN;
    }
    int nwarps = (nt + 31) / 32;
    for (;;) {
        // warp by warp: a warp runs on through its shuffles without waiting
        // for a pass over the whole block
        for (int wi = 0; wi < nwarps; wi++) {
            int w = rev ? nwarps - 1 - wi : wi, lo = w * 32, hi = std::min(nt, lo + 32);
            do {
                for (int i = lo; i < hi; i++) {
                    int t = rev ? hi - 1 - (i - lo) : i;
                    if (fibers[t].state == RUN) {
                        set_thread(t);
                        to_fiber(t);
                    }
                }
            } while (release_warp(w, nt));
        }
        cur_thread = -1;
        int done = 0, at_block = 0;
        for (int t = 0; t < nt; t++) {
            done += fibers[t].state == DONE;
            at_block += fibers[t].state == AT_BLOCK;
        }
        if (done == nt) return;
        if (at_block && at_block + done == nt) {
            if (done) {
                int w = 0, d = 0;
                while (fibers[w].state != AT_BLOCK) w++;
                while (fibers[d].state != DONE) d++;
                cur_thread = d;
                fail("thread exited while %d thread(s) wait at __syncthreads (line %d): "
                     "a barrier that not every thread reaches", at_block, fibers[w].line);
            }
            int line = -1;
            for (int t = 0; t < nt; t++) {
                if (line < 0) line = fibers[t].line;
                else if (fibers[t].line != line) {
                    cur_thread = t;
                    fail("__syncthreads diverged: thread %d at line %d, thread 0 at line %d", t,
                         fibers[t].line, line);
                }
            }
            for (int t = 0; t < nt; t++) fibers[t].state = RUN;
            continue;
        }
        // nothing can move: a deadlock
        int a = 0, b = 0;
        for (int t = 0; t < nt; t++)
            if (fibers[t].state != DONE) { a = t; break; }
        for (int t = nt - 1; t >= 0; t--)
            if (fibers[t].state != DONE && fibers[t].state != fibers[a].state) { b = t; break; }
        cur_thread = a;
        char sa[96];
        snprintf(sa, sizeof sa, "%s", state_name(fibers[a]));
        fail("deadlock: thread %d waits at %s, thread %d at %s (%d exited)", a, sa, b,
             state_name(fibers[b]), done);
    }
}

void run(const launch_info &li, void (*body)(void *), void *arg)
{
    install_handler();
    size_t nt = (size_t)li.block.x * li.block.y * li.block.z;
    const char *bad = nullptr;
    if (!nt || !li.grid.x || !li.grid.y || !li.grid.z) bad = "an empty grid or block";
    else if (nt > 1024 || li.block.x > 1024 || li.block.y > 1024 || li.block.z > 64)
        bad = "more than 1024 threads per block (or block.z > 64)";
    else if (li.grid.y > 65535 || li.grid.z > 65535) bad = "grid.y or grid.z above 65535";
    else if (li.grid.x > 2147483647u) bad = "grid.x above 2^31-1";
    if (bad) {
        fprintf(stderr, "cuda-emu: launch of %s (%s:%d): invalid configuration: %s (grid %u,%u,%u block %u,%u,%u)\n",
                li.name, li.file, li.line, bad, li.grid.x, li.grid.y, li.grid.z, li.block.x,
                li.block.y, li.block.z);
        set_error(cudaErrorInvalidConfiguration);
        return;
    }
    if ((long)li.smem > max_dyn_smem(li.fn)) {
        fprintf(stderr, "cuda-emu: launch of %s (%s:%d): %zu bytes of dynamic shared memory, "
                "above the function's limit of %d (cudaFuncSetAttribute opts in up to 227 KiB)\n",
                li.name, li.file, li.line, li.smem, max_dyn_smem(li.fn));
        set_error(cudaErrorInvalidValue);
        return;
    }
    if (cur_launch) fail("a kernel launch from inside kernel %s", cur_launch->name);
    device_access open;
    static unsigned launches_;
    unsigned launches = launches_++;
    cur_launch = &li;
    cur_body = body;
    cur_arg = arg;
    blockDim = li.block;
    gridDim = li.grid;
    ensure_fibers((int)nt);
    // dynamic shared memory: garbage, as on the GPU (NaN floats)
    smem_buf.assign((li.smem ? li.smem : 1) + SMEM_ALIGN, 0xff);
    for (unsigned z = 0; z < li.grid.z; z++)
        for (unsigned y = 0; y < li.grid.y; y++)
            for (unsigned x = 0; x < li.grid.x; x++) {
                blockIdx.x = x; blockIdx.y = y; blockIdx.z = z;
                if (li.smem) memset(dyn_smem(), 0xff, li.smem);
                for (auto &sh : static_shared) memset(sh.first, 0xff, sh.second);
                run_block((int)nt, (int)((x + y + z + launches) & 1));
            }
    cur_launch = nullptr;
    cur_thread = -1;
}

}  // namespace emu
