/* BF16 tensor-core GEMM throughput through cuBLASLt: D = A^T B in BF16 with
 * FP32 accumulation, the shape and precision LLM inference runs on. */
#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "validate/gpucheck/cuda_internal.h"
#include "validate/gpucheck/kernels.h"

/* Hopper's cuBLASLt kernels want up to 32 MiB of workspace for their best
 * algorithms; less only narrows the choice. */
#define WORKSPACE_BYTES ((size_t)32 << 20)

static const int sizes[] = {4096, 8192, 16384};

#define LT_TRY(call)                                                                               \
    do {                                                                                           \
        cublasStatus_t s_ = (call);                                                                \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                         \
            snprintf(why, n, "%s: cuBLAS status %d", #call, (int)s_);                              \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

/* True when none of the first count BF16 values is Inf or NaN: a GEMM that
 * returns garbage fast must not pass. */
static bool bf16_finite(const uint16_t *v, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (((v[i] >> 7) & 0xff) == 0xff)
            return false;
    return true;
}

/* Times one size; *tflops stays 0 when it does not fit in memory. */
static int run_size(double *tflops, int *iters_out, cublasLtHandle_t lt, int m, void *ws,
                    cudaStream_t stream, double deadline, char *why, size_t n)
{
    int rc = -1;
    void *a = NULL, *b = NULL, *c = NULL;
    cublasLtMatmulDesc_t op = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    cudaEvent_t start = NULL, stop = NULL;
    size_t elems = (size_t)m * m, bytes = elems * 2;
    size_t free_b = 0, total_b = 0;
    *tflops = 0;
    *iters_out = 0;

    CUDA_TRY(cudaMemGetInfo(&free_b, &total_b));
    if (3 * bytes + ((size_t)256 << 20) > free_b) {
        rc = 0;
        goto done;
    }
    CUDA_TRY(cudaMalloc(&a, bytes));
    CUDA_TRY(cudaMalloc(&b, bytes));
    CUDA_TRY(cudaMalloc(&c, bytes));
    CUDA_TRY(kiln_kern_fill_bf16(a, elems, 1, stream));
    CUDA_TRY(kiln_kern_fill_bf16(b, elems, 2, stream));
    CUDA_TRY(cudaMemsetAsync(c, 0, bytes, stream));

    LT_TRY(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    LT_TRY(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
    LT_TRY(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
    /* Column-major; A is stored k x m and used transposed ("TN"), the layout
     * cuBLASLt's fastest BF16 kernels are tuned for. */
    LT_TRY(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, (uint64_t)m, (uint64_t)m, m));
    LT_TRY(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, (uint64_t)m, (uint64_t)m, m));
    LT_TRY(cublasLtMatrixLayoutCreate(&lc, CUDA_R_16BF, (uint64_t)m, (uint64_t)m, m));
    LT_TRY(cublasLtMatmulPreferenceCreate(&pref));
    size_t ws_bytes = WORKSPACE_BYTES;
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                &ws_bytes, sizeof(ws_bytes)));
    cublasLtMatmulHeuristicResult_t heur;
    int found = 0;
    memset(&heur, 0, sizeof(heur));
    LT_TRY(cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, 1, &heur, &found));
    if (found < 1) {
        snprintf(why, n, "cuBLASLt has no BF16 algorithm for %dx%d", m, m);
        goto done;
    }
    float alpha = 1.0f, beta = 0.0f;
#define MATMUL()                                                                                   \
    cublasLtMatmul(lt, op, &alpha, a, la, b, lb, &beta, c, lc, c, lc, &heur.algo, ws, ws_bytes,    \
                   stream)
    /* Warm-up: clocks ramp and the kernel loads; its time says how many timed
     * runs fit in about 150 ms. */
    CUDA_TRY(cudaEventCreate(&start));
    CUDA_TRY(cudaEventCreate(&stop));
    CUDA_TRY(cudaEventRecord(start, stream));
    for (int i = 0; i < 2; i++)
        LT_TRY(MATMUL());
    CUDA_TRY(cudaEventRecord(stop, stream));
    CUDA_TRY(cudaEventSynchronize(stop));
    float ms = 0;
    CUDA_TRY(cudaEventElapsedTime(&ms, start, stop));
    double per = ms / 2.0 / 1000.0;
    int iters = per > 0 ? (int)(0.15 / per) : 50;
    if (iters < 3)
        iters = 3;
    if (iters > 200)
        iters = 200;
    if (kiln_gpucheck_now() + per * iters > deadline) {
        snprintf(why, n, "no time left for %dx%d", m, m);
        rc = 0;
        goto done;
    }
    CUDA_TRY(cudaEventRecord(start, stream));
    for (int i = 0; i < iters; i++)
        LT_TRY(MATMUL());
#undef MATMUL
    CUDA_TRY(cudaEventRecord(stop, stream));
    CUDA_TRY(cudaEventSynchronize(stop));
    CUDA_TRY(cudaEventElapsedTime(&ms, start, stop));
    uint16_t sample[1024];
    CUDA_TRY(cudaMemcpy(sample, c, sizeof(sample), cudaMemcpyDeviceToHost));
    if (!bf16_finite(sample, sizeof(sample) / sizeof(sample[0]))) {
        snprintf(why, n, "BF16 GEMM %dx%d produced Inf/NaN from finite inputs", m, m);
        goto done;
    }
    if (ms <= 0) {
        snprintf(why, n, "BF16 GEMM %dx%d: timer reported no elapsed time", m, m);
        goto done;
    }
    *tflops = 2.0 * (double)m * m * m * iters / (ms / 1000.0) / 1e12;
    *iters_out = iters;
    rc = 0;
done:
    if (start)
        cudaEventDestroy(start);
    if (stop)
        cudaEventDestroy(stop);
    if (pref)
        cublasLtMatmulPreferenceDestroy(pref);
    if (la)
        cublasLtMatrixLayoutDestroy(la);
    if (lb)
        cublasLtMatrixLayoutDestroy(lb);
    if (lc)
        cublasLtMatrixLayoutDestroy(lc);
    if (op)
        cublasLtMatmulDescDestroy(op);
    cudaFree(a);
    cudaFree(b);
    cudaFree(c);
    return rc;
}

int kiln_gpucheck_gemm_bf16(double *tflops, json_t *details, int dev, double deadline, char *why,
                            size_t n)
{
    int rc = -1;
    cublasLtHandle_t lt = NULL;
    cudaStream_t stream = NULL;
    void *ws = NULL;
    *tflops = 0;
    CUDA_TRY(cudaSetDevice(dev));
    CUDA_TRY(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    CUDA_TRY(cudaMalloc(&ws, WORKSPACE_BYTES));
    LT_TRY(cublasLtCreate(&lt));
    json_t *per = json_array();
    json_object_set_new(details, "bf16", per);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        double t = 0;
        int iters = 0;
        char note[200] = "";
        if (run_size(&t, &iters, lt, sizes[i], ws, stream, deadline, note, sizeof(note)) != 0) {
            snprintf(why, n, "%s", note);
            goto done;
        }
        json_t *e = json_object();
        json_object_set_new(e, "size", json_integer(sizes[i]));
        if (t > 0) {
            json_object_set_new(e, "tflops", json_real(t));
            json_object_set_new(e, "iterations", json_integer(iters));
        } else {
            json_object_set_new(e, "skipped", json_string(*note ? note : "not enough memory"));
        }
        json_array_append_new(per, e);
        if (t > *tflops)
            *tflops = t;
    }
    if (*tflops <= 0) {
        snprintf(why, n, "no GEMM size could be measured (memory or time)");
        goto done;
    }
    rc = 0;
done:
    if (lt)
        cublasLtDestroy(lt);
    cudaFree(ws);
    if (stream)
        cudaStreamDestroy(stream);
    return rc;
}
