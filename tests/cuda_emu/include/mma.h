// TEST TOOLING: shadows <mma.h>: nvcuda::wmma on the CPU emulation. CUDA's
// fragment layout is opaque, so any layout is correct: here every lane holds
// the whole tile (row-major inside the fragment) and computes it alike. Each
// call is a warp collective (a barrier of the 32 lanes, so a lane that skips
// one is reported) whose arguments must be the same in every lane: the
// pointer, ldm and layout, and the fragments' contents (a lane-dependent edit
// of frag.x[] assumes a layout, which CUDA leaves opaque). The documented
// preconditions are checked: a 256-bit aligned pointer, ldm a multiple of 16
// bytes.
#pragma once
#include "tests/cuda_emu/emu.h"
#include <cuda_bf16.h>

namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K> struct shape;
template <int M, int N, int K> struct shape<matrix_a, M, N, K> { enum { rows = M, cols = K }; };
template <int M, int N, int K> struct shape<matrix_b, M, N, K> { enum { rows = K, cols = N }; };
template <int M, int N, int K> struct shape<accumulator, M, N, K> { enum { rows = M, cols = N }; };

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
    typedef T element_type;
    enum { rows = shape<Use, M, N, K>::rows, cols = shape<Use, M, N, K>::cols,
           num_elements = rows * cols };
    T x[num_elements];  // [rows][cols]
};

static inline void emu_wmma_check(const void *p, unsigned ldm, size_t esize, const char *what)
{
    if ((uintptr_t)p % 32)
        emu::fail("%s: pointer %p is not 256-bit (32-byte) aligned", what, p);
    if ((ldm * esize) % 16)
        emu::fail("%s: ldm %u is not a multiple of 16 bytes (%zu-byte elements)", what, ldm, esize);
}

// FNV-1a over bytes, to compare a call's arguments across the lanes
static inline uint64_t emu_wmma_hash(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}
// the warp barrier of a WMMA call: every lane's hash must equal lane 0's
static inline void emu_wmma_uniform(uint64_t h, int line, const char *what)
{
    uint64_t h0 = emu::warp_exchange(h, 0, 0xffffffffu, line, what);
    if (h0 != h)
        emu::fail("%s: lane %d's arguments (pointer, ldm, layout or fragment contents) differ "
                  "from lane 0's: a WMMA call takes the same arguments in every lane",
                  what, emu::lane_id());
}
template <typename... X> static inline uint64_t emu_wmma_args(const X &...x)
{
    uint64_t h = 0xcbf29ce484222325ull;
    ((h = emu_wmma_hash(h, &x, sizeof x)), ...);
    return h;
}

template <typename Use, int M, int N, int K, typename T, typename L, typename V>
inline void fill_fragment(fragment<Use, M, N, K, T, L> &f, const V &v)
{
    emu_wmma_uniform(emu_wmma_args((float)v), __LINE__, "wmma::fill_fragment");
    for (int i = 0; i < f.num_elements; i++) f.x[i] = T(v);
}

// matrix_a / matrix_b: the layout is the fragment's type
template <typename Use, int M, int N, int K, typename T, typename L>
inline void load_matrix_sync(fragment<Use, M, N, K, T, L> &f, const T *p, unsigned ldm)
{
    static_assert(!std::is_void<L>::value, "load of a matrix_a/b fragment without a layout");
    emu_wmma_uniform(emu_wmma_args(p, ldm), __LINE__, "wmma::load_matrix_sync");
    emu_wmma_check(p, ldm, sizeof(T), "wmma::load_matrix_sync");
    const bool row = std::is_same<L, row_major>::value;
    for (int r = 0; r < f.rows; r++)
        for (int c = 0; c < f.cols; c++)
            f.x[r * f.cols + c] = row ? p[(size_t)r * ldm + c] : p[r + (size_t)c * ldm];
}

// accumulator: the memory layout is an argument
template <int M, int N, int K, typename T>
inline void load_matrix_sync(fragment<accumulator, M, N, K, T, void> &f, const T *p, unsigned ldm,
                             layout_t l)
{
    emu_wmma_uniform(emu_wmma_args(p, ldm, l), __LINE__, "wmma::load_matrix_sync");
    emu_wmma_check(p, ldm, sizeof(T), "wmma::load_matrix_sync");
    for (int r = 0; r < f.rows; r++)
        for (int c = 0; c < f.cols; c++)
            f.x[r * f.cols + c] = l == mem_row_major ? p[(size_t)r * ldm + c] : p[r + (size_t)c * ldm];
}

template <int M, int N, int K, typename T>
inline void store_matrix_sync(T *p, const fragment<accumulator, M, N, K, T, void> &f, unsigned ldm,
                              layout_t l)
{
    emu_wmma_uniform(emu_wmma_hash(emu_wmma_args(p, ldm, l), f.x, sizeof f.x), __LINE__,
                     "wmma::store_matrix_sync");
    emu_wmma_check(p, ldm, sizeof(T), "wmma::store_matrix_sync");
    for (int r = 0; r < f.rows; r++)
        for (int c = 0; c < f.cols; c++)
            (l == mem_row_major ? p[(size_t)r * ldm + c] : p[r + (size_t)c * ldm]) = f.x[r * f.cols + c];
}

// d = a b + c, products and sums in fp32
template <int M, int N, int K, typename TA, typename LA, typename LB, typename TC>
inline void mma_sync(fragment<accumulator, M, N, K, TC, void> &d,
                     const fragment<matrix_a, M, N, K, TA, LA> &a,
                     const fragment<matrix_b, M, N, K, TA, LB> &b,
                     const fragment<accumulator, M, N, K, TC, void> &c)
{
    uint64_t h = emu_wmma_hash(emu_wmma_hash(emu_wmma_args(0), a.x, sizeof a.x), b.x, sizeof b.x);
    emu_wmma_uniform(emu_wmma_hash(h, c.x, sizeof c.x), __LINE__, "wmma::mma_sync");
    TC out[M * N];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = (float)c.x[i * N + j];
            for (int l = 0; l < K; l++) s += (float)a.x[i * K + l] * (float)b.x[l * N + j];
            out[i * N + j] = (TC)s;
        }
    memcpy(d.x, out, sizeof out);
}
}  // namespace wmma
}  // namespace nvcuda
