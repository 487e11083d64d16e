// cublas.cpp — TEST TOOLING: cuBLAS and cuBLASLt as naive loops that follow
// NVIDIA's documented column-major semantics, so that the backend's row-major
// to column-major argument mapping is checked, not just the arithmetic:
//   C[m,n] = alpha op(A) op(B) + beta C, element (i,j) at C[i + j*ldc];
//   op(A)(i,l) = A[i + l*lda] (OP_N, A stored m x k) or A[l + i*lda] (OP_T, k x m);
//   op(B)(l,j) = B[l + j*ldb] (OP_N, k x n) or B[j + l*ldb] (OP_T, n x k);
//   beta == 0: C is not read (it may hold NaN).
// Argument checks as documented (CUBLAS_STATUS_INVALID_VALUE for negative sizes,
// lda < max(1, rows of A as stored), ...), and every operand must lie inside
// one device allocation (an operand that reaches past its buffer is a bug the
// GPU would report as an illegal address, or not at all). Sums in double.
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <vector>

struct emu_cublas { cublasMath_t math; };

cublasStatus_t cublasCreate(cublasHandle_t *h) { *h = new emu_cublas{CUBLAS_DEFAULT_MATH}; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasDestroy(cublasHandle_t h) { delete h; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m)
{
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->math = m;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t) { return h ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED; }
const char *cublasGetStatusString(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "CUBLAS_STATUS_(other)";
    }
}

// bytes spanned by a column-major rows x cols matrix with leading dimension ld
static size_t span(long rows, long cols, long ld, size_t esize)
{
    if (rows <= 0 || cols <= 0) return 0;
    return ((size_t)(cols - 1) * ld + rows) * esize;
}

static void need_device(const char *call, const char *what, const void *p, size_t bytes)
{
    if (bytes && !emu::is_device(p, bytes))
        emu::fail("%s: operand %s (%p, %zu bytes as its size and leading dimension say) is not "
                  "inside one device allocation", call, what, p, bytes);
    if (bytes) emu::check_current(p, call, what);
}

// one column-major GEMM over loaders of A, B (float values) and C
template <typename LA, typename LB>
static void gemm_loop(int ta, int tb, int m, int n, int k, float alpha, LA a, long lda, LB b,
                      long ldb, float beta, float *C, long ldc)
{
    std::vector<float> out((size_t)m * n);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double s = 0;
            for (int l = 0; l < k; l++) {
                double x = ta ? a((size_t)l + (size_t)i * lda) : a((size_t)i + (size_t)l * lda);
                double y = tb ? b((size_t)j + (size_t)l * ldb) : b((size_t)l + (size_t)j * ldb);
                s += x * y;
            }
            float r = (float)(alpha * s);
            if (beta != 0.0f) r += beta * C[(size_t)i + (size_t)j * ldc];
            out[(size_t)i + (size_t)j * m] = r;
        }
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) C[(size_t)i + (size_t)j * ldc] = out[(size_t)i + (size_t)j * m];
}

static cublasStatus_t sgemm_check(const char *call, cublasHandle_t h, cublasOperation_t ta,
                                  cublasOperation_t tb, int m, int n, int k, const float *alpha,
                                  int lda, int ldb, const float *beta, int ldc)
{
    const char *bad = nullptr;
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (m < 0 || n < 0 || k < 0) bad = "m, n or k negative";
    else if ((ta != CUBLAS_OP_N && ta != CUBLAS_OP_T) || (tb != CUBLAS_OP_N && tb != CUBLAS_OP_T))
        bad = "transa/transb not N or T";
    else if (lda < std::max(1, ta == CUBLAS_OP_N ? m : k)) bad = "lda < max(1, rows of A as stored)";
    else if (ldb < std::max(1, tb == CUBLAS_OP_N ? k : n)) bad = "ldb < max(1, rows of B as stored)";
    else if (ldc < std::max(1, m)) bad = "ldc < max(1, m)";
    else if (!alpha || !beta) bad = "alpha or beta NULL";
    if (bad) {
        fprintf(stderr, "cuda-emu: %s(transa %d transb %d m %d n %d k %d lda %d ldb %d ldc %d): %s\n",
                call, (int)ta, (int)tb, m, n, k, lda, ldb, ldc, bad);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    return CUBLAS_STATUS_SUCCESS;
}

static void sgemm_one(const char *call, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                      int k, float alpha, const float *A, int lda, const float *B, int ldb,
                      float beta, float *C, int ldc)
{
    if (m == 0 || n == 0) return;
    if (k > 0 && alpha != 0.0f) {
        need_device(call, "A", A, span(ta ? k : m, ta ? m : k, lda, 4));
        need_device(call, "B", B, span(tb ? n : k, tb ? k : n, ldb, 4));
    } else {
        k = 0;  // C = beta C
    }
    need_device(call, "C", C, span(m, n, ldc, 4));
    gemm_loop(ta != CUBLAS_OP_N, tb != CUBLAS_OP_N, m, n, k, alpha,
              [A](size_t i) { return A[i]; }, lda, [B](size_t i) { return B[i]; }, ldb, beta, C, ldc);
}

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                           int n, int k, const float *alpha, const float *A, int lda,
                           const float *B, int ldb, const float *beta, float *C, int ldc)
{
    emu::device_access open;
    cublasStatus_t s = sgemm_check("cublasSgemm", h, ta, tb, m, n, k, alpha, lda, ldb, beta, ldc);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    sgemm_one("cublasSgemm", ta, tb, m, n, k, *alpha, A, lda, B, ldb, *beta, C, ldc);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta,
                                         cublasOperation_t tb, int m, int n, int k,
                                         const float *alpha, const float *A, int lda,
                                         long long sA, const float *B, int ldb, long long sB,
                                         const float *beta, float *C, int ldc, long long sC,
                                         int batch)
{
    const char *call = "cublasSgemmStridedBatched";
    emu::device_access open;
    cublasStatus_t s = sgemm_check(call, h, ta, tb, m, n, k, alpha, lda, ldb, beta, ldc);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    if (batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
    for (int p = 0; p < batch; p++)
        sgemm_one(call, ta, tb, m, n, k, *alpha, A + p * sA, lda, B + p * sB, ldb, *beta,
                  C + p * sC, ldc);
    return CUBLAS_STATUS_SUCCESS;
}

// ---- cuBLASLt ----------------------------------------------------------------------
struct emu_lt { int unused; };
struct emu_lt_desc { cublasComputeType_t compute; cudaDataType_t scale; int32_t ta, tb; };
struct emu_lt_layout { cudaDataType_t type; uint64_t rows, cols; int64_t ld; };
struct emu_lt_pref { uint64_t ws; };

cublasStatus_t cublasLtCreate(cublasLtHandle_t *h) { *h = new emu_lt{0}; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) { delete h; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t ct, cudaDataType_t scale)
{
    *d = new emu_lt_desc{ct, scale, CUBLAS_OP_N, CUBLAS_OP_N};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) { delete d; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a,
                                              const void *buf, size_t size)
{
    // TRANSA / TRANSB are int32_t (cublasOperation_t) attributes
    if (a == CUBLASLT_MATMUL_DESC_TRANSA || a == CUBLASLT_MATMUL_DESC_TRANSB) {
        if (size != sizeof(int32_t)) return CUBLAS_STATUS_INVALID_VALUE;
        int32_t v;
        memcpy(&v, buf, 4);
        if (v != CUBLAS_OP_N && v != CUBLAS_OP_T) return CUBLAS_STATUS_INVALID_VALUE;
        (a == CUBLASLT_MATMUL_DESC_TRANSA ? d->ta : d->tb) = v;
        return CUBLAS_STATUS_SUCCESS;
    }
    emu::fail("cublasLtMatmulDescSetAttribute: attribute %d is not emulated", (int)a);
}
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType t, uint64_t rows,
                                          uint64_t cols, int64_t ld)
{
    *l = new emu_lt_layout{t, rows, cols, ld};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) { delete l; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p) { *p = new emu_lt_pref{0}; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) { delete p; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p,
                                                    cublasLtMatmulPreferenceAttributes_t a,
                                                    const void *buf, size_t size)
{
    if (a == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES) {
        if (size != sizeof(uint64_t)) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&p->ws, buf, 8);
    }
    return CUBLAS_STATUS_SUCCESS;
}

static size_t esize(cudaDataType_t t) { return t == CUDA_R_32F ? 4 : t == CUDA_R_16BF || t == CUDA_R_16F ? 2 : 0; }

// the problem the descriptors describe: m, n, k, or a message why it is invalid
static const char *lt_shape(const emu_lt_desc *d, const emu_lt_layout *A, const emu_lt_layout *B,
                            const emu_lt_layout *C, const emu_lt_layout *D, long *m, long *n, long *k,
                            cublasStatus_t *st)
{
    *st = CUBLAS_STATUS_INVALID_VALUE;
    for (const emu_lt_layout *l : {A, B, C, D})
        if ((int64_t)l->rows > l->ld && l->cols > 1) return "a layout with ld < rows (column-major)";
    *m = (long)C->rows; *n = (long)C->cols;
    long am = d->ta ? (long)A->cols : (long)A->rows;
    *k = d->ta ? (long)A->rows : (long)A->cols;
    long bk = d->tb ? (long)B->cols : (long)B->rows, bn = d->tb ? (long)B->rows : (long)B->cols;
    if (am != *m) return "rows of op(A) differ from rows of C";
    if (bn != *n) return "columns of op(B) differ from columns of C";
    if (bk != *k) return "columns of op(A) differ from rows of op(B)";
    if (D->rows != C->rows || D->cols != C->cols) return "C and D of different shapes";
    *st = CUBLAS_STATUS_NOT_SUPPORTED;
    if (d->compute != CUBLAS_COMPUTE_32F || d->scale != CUDA_R_32F) return "compute/scale type not 32F (not emulated)";
    if (A->type != B->type) return "A and B of different types";
    if (C->type != D->type) return "C and D of different types";
    bool ok = (A->type == CUDA_R_32F && C->type == CUDA_R_32F) ||
              (A->type == CUDA_R_16BF && (C->type == CUDA_R_16BF || C->type == CUDA_R_32F));
    if (!ok) return "type combination not supported (or not emulated)";
    *st = CUBLAS_STATUS_SUCCESS;
    return nullptr;
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t d,
                                              cublasLtMatrixLayout_t A, cublasLtMatrixLayout_t B,
                                              cublasLtMatrixLayout_t C, cublasLtMatrixLayout_t D,
                                              cublasLtMatmulPreference_t p, int requested,
                                              cublasLtMatmulHeuristicResult_t *res, int *found)
{
    long m, n, k;
    cublasStatus_t st;
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (requested < 1) return CUBLAS_STATUS_INVALID_VALUE;
    const char *bad = lt_shape(d, A, B, C, D, &m, &n, &k, &st);
    if (bad) {
        fprintf(stderr, "cuda-emu: cublasLtMatmulAlgoGetHeuristic: %s\n", bad);
        *found = 0;
        return st;
    }
    memset(res, 0, sizeof *res);
    res->state = CUBLAS_STATUS_SUCCESS;
    res->wavesCount = 1;
    res->algo.data[0] = 0xe1u;  // the emulator's one algorithm
    *found = 1;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t d, const void *alpha,
                              const void *A, cublasLtMatrixLayout_t Ad, const void *B,
                              cublasLtMatrixLayout_t Bd, const void *beta, const void *C,
                              cublasLtMatrixLayout_t Cd, void *D, cublasLtMatrixLayout_t Dd,
                              const cublasLtMatmulAlgo_t *algo, void *ws, size_t ws_bytes,
                              cudaStream_t)
{
    const char *call = "cublasLtMatmul";
    emu::device_access open;
    long m, n, k;
    cublasStatus_t st;
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    const char *bad = lt_shape(d, Ad, Bd, Cd, Dd, &m, &n, &k, &st);
    if (bad) {
        fprintf(stderr, "cuda-emu: cublasLtMatmul: %s\n", bad);
        return st;
    }
    if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
    if (algo && algo->data[0] != 0xe1u) emu::fail("cublasLtMatmul: algo not from cublasLtMatmulAlgoGetHeuristic");
    if (ws_bytes) need_device(call, "workspace", ws, ws_bytes);
    if (C == D && (Cd->ld != Dd->ld)) return CUBLAS_STATUS_INVALID_VALUE;  // in place: same layout
    float a = *(const float *)alpha, b = *(const float *)beta;
    if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
    need_device(call, "A", A, span((long)Ad->rows, (long)Ad->cols, Ad->ld, esize(Ad->type)));
    need_device(call, "B", B, span((long)Bd->rows, (long)Bd->cols, Bd->ld, esize(Bd->type)));
    need_device(call, "D", D, span(m, n, Dd->ld, esize(Dd->type)));
    if (b != 0.0f) need_device(call, "C", C, span(m, n, Cd->ld, esize(Cd->type)));
    if (Cd->type != CUDA_R_32F) emu::fail("cublasLtMatmul: C/D other than fp32 not emulated");
    // D = alpha op(A) op(B) + beta C: with C != D, copy C into D first (beta != 0)
    if (C != D && b != 0.0f)
        for (long j = 0; j < n; j++)
            for (long i = 0; i < m; i++)
                ((float *)D)[i + j * Dd->ld] = ((const float *)C)[i + j * Cd->ld];
    auto load = [](cudaDataType_t t, const void *p) {
        return [t, p](size_t i) -> float {
            return t == CUDA_R_32F ? ((const float *)p)[i]
                                   : __bfloat162float(((const __nv_bfloat16 *)p)[i]);
        };
    };
    gemm_loop(d->ta, d->tb, (int)m, (int)n, (int)k, a, load(Ad->type, A), Ad->ld,
              load(Bd->type, B), Bd->ld, b, (float *)D, Dd->ld);
    return CUBLAS_STATUS_SUCCESS;
}
