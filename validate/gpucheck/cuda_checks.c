/* The CUDA backend of kiln-gpucheck: C host code driving kernels.cu.
 *
 * Every CUDA call's return code is checked; a failure becomes the check's
 * "error" status with the call and CUDA's message. Every check works against
 * a deadline (the --timeout budget, shared among the GPUs) and sizes its
 * repetitions from a warm-up run, so a slow card makes a check report less
 * precise figures, not run longer.
 */
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "validate/gpucheck/backend.h"
#include "validate/gpucheck/cuda_internal.h"
#include "validate/gpucheck/kernels.h"
#include "validate/measured.h"

#define MIB ((size_t)1 << 20)
#define GIB ((size_t)1 << 30)

double kiln_gpucheck_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One operation to time, enqueued on stream. */
typedef cudaError_t (*op_fn)(void *arg, cudaStream_t stream);

/* GPU milliseconds of `runs` back-to-back runs of fn. */
static int time_runs(float *ms, op_fn fn, void *arg, cudaStream_t stream, int runs,
                     cudaEvent_t start, cudaEvent_t stop, char *why, size_t n)
{
    CUDA_TRY(cudaEventRecord(start, stream));
    for (int i = 0; i < runs; i++)
        CUDA_TRY(fn(arg, stream));
    CUDA_TRY(cudaEventRecord(stop, stream));
    CUDA_TRY(cudaEventSynchronize(stop));
    CUDA_TRY(cudaEventElapsedTime(ms, start, stop));
    return 0;
done:
    return -1;
}

/* Seconds one run of fn takes, STREAM-style: warm up for at least 20 ms of
 * GPU time (an idle GPU needs that long to raise its clocks; two runs were
 * not enough on an H100, which then measured 15% low), then time batches of
 * about 10 ms for about 100 ms and keep the fastest batch. All before
 * deadline. */
static int time_op(double *seconds, int *iters_out, op_fn fn, void *arg, cudaStream_t stream,
                   double deadline, char *why, size_t n)
{
    int rc = -1;
    cudaEvent_t start = NULL, stop = NULL;
    float ms = 0, warm_ms = 0;
    int warm_runs = 0;
    CUDA_TRY(cudaEventCreate(&start));
    CUDA_TRY(cudaEventCreate(&stop));
    while (warm_runs < 2 || (warm_ms < 20.0f && warm_runs < 64)) {
        int batch = warm_runs < 2 ? 2 : warm_runs;
        if (time_runs(&ms, fn, arg, stream, batch, start, stop, why, n))
            goto done;
        warm_runs += batch;
        warm_ms += ms;
        if (kiln_gpucheck_now() > deadline) {
            snprintf(why, n, "ran out of time warming up (%.2f s per run)",
                     warm_ms / warm_runs / 1000.0);
            goto done;
        }
    }
    double per = warm_ms / warm_runs / 1000.0;
    int batch = per > 0 ? (int)(0.01 / per) : 50;
    if (batch < 1)
        batch = 1;
    if (batch > 50)
        batch = 50;
    double best = 0;
    int timed = 0;
    for (int b = 0; b < 10; b++) {
        double left = deadline - kiln_gpucheck_now();
        if (per * batch > left || (b >= 3 && timed * per > 0.1))
            break;
        if (time_runs(&ms, fn, arg, stream, batch, start, stop, why, n))
            goto done;
        timed += batch;
        double one = ms / 1000.0 / batch;
        if (ms > 0 && (best == 0 || one < best))
            best = one;
    }
    if (!timed) {
        snprintf(why, n, "ran out of time (%.2f s per run)", per);
        goto done;
    }
    if (best <= 0) {
        snprintf(why, n, "timer reported no elapsed time");
        goto done;
    }
    *seconds = best;
    *iters_out = timed;
    rc = 0;
done:
    if (start)
        cudaEventDestroy(start);
    if (stop)
        cudaEventDestroy(stop);
    return rc;
}

static int gpu_count(const json_t *doc)
{
    return (int)json_array_size(json_object_get(doc, "gpus"));
}

static int gpu_index(const json_t *doc, int i)
{
    return (int)json_integer_value(
        json_object_get(json_array_get(json_object_get(doc, "gpus"), (size_t)i), "index"));
}

/* ---- probe ---------------------------------------------------------------- */

static void version_string(char *out, size_t n, int v)
{
    snprintf(out, n, "%d.%d", v / 1000, (v % 1000) / 10);
}

static int probe(json_t *doc, kiln_err *err)
{
    int count = 0, drv = 0, rt = 0;
    char buf[128];
    json_t *host = json_object();
    json_object_set_new(doc, "host", host);
    json_object_set_new(host, "cudaBuild", json_true());
    if (cudaDriverGetVersion(&drv) == cudaSuccess && drv > 0) {
        version_string(buf, sizeof(buf), drv);
        json_object_set_new(host, "cudaDriverVersion", json_string(buf));
    }
    if (cudaRuntimeGetVersion(&rt) == cudaSuccess) {
        version_string(buf, sizeof(buf), rt);
        json_object_set_new(host, "cudaRuntimeVersion", json_string(buf));
    }
    char why[200];
    bool nvml = kiln_gpucheck_nvml_open(why, sizeof(why));
    json_object_set_new(host, "nvml", json_boolean(nvml));
    if (nvml && kiln_gpucheck_nvml_driver_version(buf, sizeof(buf)))
        json_object_set_new(host, "driverVersion", json_string(buf));
    else if (!nvml)
        json_object_set_new(host, "nvmlReason", json_string(why));

    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess)
        return kiln_err_set(err, KILN_ENOTFOUND, "no usable CUDA device: cudaGetDeviceCount: %s",
                            cudaGetErrorString(e));
    if (count == 0)
        return kiln_err_set(err, KILN_ENOTFOUND, "no CUDA device visible to this container");

    for (int d = 0; d < count; d++) {
        struct cudaDeviceProp p;
        memset(&p, 0, sizeof(p));
        e = cudaGetDeviceProperties(&p, d);
        json_t *g = kiln_validate_measured_add_gpu(doc, d, e == cudaSuccess ? p.name : "");
        if (e != cudaSuccess) {
            snprintf(buf, sizeof(buf), "cudaGetDeviceProperties: %s", cudaGetErrorString(e));
            json_object_set_new(g, "error", json_string(buf));
            continue;
        }
        snprintf(buf, sizeof(buf), "%d.%d", p.major, p.minor);
        json_object_set_new(g, "computeCapability", json_string(buf));
        json_object_set_new(g, "memoryBytes", json_integer((json_int_t)p.totalGlobalMem));
        json_object_set_new(g, "smCount", json_integer(p.multiProcessorCount));
        snprintf(buf, sizeof(buf),
                 "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 (unsigned char)p.uuid.bytes[0], (unsigned char)p.uuid.bytes[1],
                 (unsigned char)p.uuid.bytes[2], (unsigned char)p.uuid.bytes[3],
                 (unsigned char)p.uuid.bytes[4], (unsigned char)p.uuid.bytes[5],
                 (unsigned char)p.uuid.bytes[6], (unsigned char)p.uuid.bytes[7],
                 (unsigned char)p.uuid.bytes[8], (unsigned char)p.uuid.bytes[9],
                 (unsigned char)p.uuid.bytes[10], (unsigned char)p.uuid.bytes[11],
                 (unsigned char)p.uuid.bytes[12], (unsigned char)p.uuid.bytes[13],
                 (unsigned char)p.uuid.bytes[14], (unsigned char)p.uuid.bytes[15]);
        json_object_set_new(g, "uuid", json_string(buf));
        if (cudaDeviceGetPCIBusId(buf, sizeof(buf), d) == cudaSuccess)
            json_object_set_new(g, "pciBusId", json_string(buf));
        int ecc = 0;
        if (cudaDeviceGetAttribute(&ecc, cudaDevAttrEccEnabled, d) == cudaSuccess)
            json_object_set_new(g, "eccEnabled", json_boolean(ecc));
        /* Creating the context now makes a broken GPU show up here, named,
         * rather than as a puzzling failure of the first check. */
        e = cudaSetDevice(d);
        if (e == cudaSuccess)
            e = cudaFree(NULL);
        if (e != cudaSuccess) {
            snprintf(buf, sizeof(buf), "creating a CUDA context: %s", cudaGetErrorString(e));
            json_object_set_new(g, "error", json_string(buf));
        }
    }
    return 0;
}

/* ---- device ----------------------------------------------------------------- */

static void check_device(json_t *doc, json_t *c)
{
    int ngpu = gpu_count(doc);
    char first_error[300] = "";
    kiln_validate_measured_value(c, "count", -1, -1, ngpu, NULL);
    for (int i = 0; i < ngpu; i++) {
        json_t *g = json_array_get(json_object_get(doc, "gpus"), (size_t)i);
        int idx = gpu_index(doc, i);
        const char *gerr = json_string_value(json_object_get(g, "error"));
        if (gerr && !*first_error)
            snprintf(first_error, sizeof(first_error), "GPU %d: %s", idx, gerr);
        const char *name = json_string_value(json_object_get(g, "name"));
        const char *cc = json_string_value(json_object_get(g, "computeCapability"));
        if (name && *name)
            kiln_validate_measured_text(c, "product", idx, name);
        if (cc)
            kiln_validate_measured_text(c, "computeCapability", idx, cc);
        json_t *mem = json_object_get(g, "memoryBytes");
        if (json_is_integer(mem))
            kiln_validate_measured_value(c, "memoryGB", idx, -1,
                                         (double)json_integer_value(mem) / 1e9, "GB");
        kiln_gpucheck_ecc ecc;
        const char *bus = json_string_value(json_object_get(g, "pciBusId"));
        bool found = bus && kiln_gpucheck_nvml_ecc(&ecc, bus);
        if (!bus) {
            memset(&ecc, 0, sizeof(ecc));
            snprintf(ecc.why, sizeof(ecc.why), "PCI bus id unknown");
        }
        if (found && ecc.ecc_enabled >= 0)
            json_object_set_new(g, "eccEnabled", json_boolean(ecc.ecc_enabled));
        if (found && ecc.have_uncorrected)
            kiln_validate_measured_value(c, "eccUncorrected", idx, -1, (double)ecc.uncorrected,
                                         NULL);
        else
            kiln_validate_measured_skip(c, "eccUncorrected", idx, ecc.why);
        if (found && ecc.have_remap)
            kiln_validate_measured_value(c, "remapPending", idx, -1, ecc.remap_pending, NULL);
        else
            kiln_validate_measured_skip(c, "remapPending", idx,
                                        found ? "row remapping not supported on this GPU"
                                              : ecc.why);
    }
    if (*first_error)
        kiln_validate_measured_set_status(c, "error", first_error);
}

/* ---- memory ----------------------------------------------------------------- */

static const int patterns[] = {KILN_PATTERN_ADDRESS, KILN_PATTERN_ALT_A, KILN_PATTERN_ALT_5,
                               KILN_PATTERN_RANDOM,  KILN_PATTERN_ONES,  KILN_PATTERN_ZEROS};

static int memory_one(json_t *c, int dev, const kiln_gpucheck_config *cfg, double deadline,
                      char *why, size_t n)
{
    int rc = -1;
    uint64_t *buf = NULL;
    unsigned long long *d_bad = NULL;
    cudaStream_t stream = NULL;
    size_t free_b = 0, total_b = 0, bytes = 0;
    unsigned long long bad = 0;
    int done_patterns = 0;
    CUDA_TRY(cudaSetDevice(dev));
    CUDA_TRY(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    CUDA_TRY(cudaMemGetInfo(&free_b, &total_b));
    bytes = (size_t)((double)total_b * cfg->memory_fraction);
    /* Leave room for the context and other users of this GPU. */
    if (free_b > 512 * MIB && bytes > free_b - 512 * MIB)
        bytes = free_b - 512 * MIB;
    bytes &= ~(MIB - 1);
    /* Fragmentation can refuse one large block that the free total allows. */
    while (bytes >= 64 * MIB) {
        cudaError_t e = cudaMalloc((void **)&buf, bytes);
        if (e == cudaSuccess)
            break;
        buf = NULL;
        if (e != cudaErrorMemoryAllocation)
            CUDA_TRY(e);
        cudaGetLastError();
        bytes = (bytes - bytes / 8) & ~(MIB - 1);
    }
    if (!buf) {
        snprintf(why, n, "could not allocate even 64 MiB of the %zu MiB free", free_b / MIB);
        goto done;
    }
    CUDA_TRY(cudaMalloc((void **)&d_bad, sizeof(*d_bad)));
    CUDA_TRY(cudaMemsetAsync(d_bad, 0, sizeof(*d_bad), stream));
    size_t words = bytes / sizeof(uint64_t);
    uint64_t seed = 0x6b696c6e00000000ull ^ (uint64_t)dev;
    double t_pattern = 0;
    for (size_t p = 0; p < sizeof(patterns) / sizeof(patterns[0]); p++) {
        double t0 = kiln_gpucheck_now();
        /* Two patterns at least (a value and its neighbour complement); more
         * while the budget allows another full pass. */
        if (p >= 2 && t0 + t_pattern * 1.5 > deadline)
            break;
        CUDA_TRY(kiln_kern_fill(buf, words, seed, patterns[p], stream));
        if (cfg->plant_memory_error && p == 0) {
            /* Test mode: corrupt one word behind the kernel's back; the
             * verify pass must count it. */
            uint64_t idx = words / 2 + 7;
            uint64_t badword = kiln_kern_pattern_value(idx, seed, patterns[p]) ^ 0x10;
            CUDA_TRY(cudaMemcpyAsync(buf + idx, &badword, sizeof(badword), cudaMemcpyHostToDevice,
                                     stream));
        }
        CUDA_TRY(kiln_kern_verify(buf, words, seed, patterns[p], d_bad, stream));
        CUDA_TRY(cudaStreamSynchronize(stream));
        t_pattern = kiln_gpucheck_now() - t0;
        done_patterns++;
    }
    CUDA_TRY(cudaMemcpy(&bad, d_bad, sizeof(bad), cudaMemcpyDeviceToHost));
    kiln_validate_measured_value(c, "mismatches", dev, -1, (double)bad, NULL);
    kiln_validate_measured_value(c, "testedGB", dev, -1, (double)bytes / 1e9, "GB");
    json_t *d = kiln_validate_measured_details(c);
    char key[32];
    snprintf(key, sizeof(key), "gpu%d", dev);
    json_t *e = json_object();
    json_object_set_new(e, "bytes", json_integer((json_int_t)bytes));
    json_object_set_new(e, "share", json_real((double)bytes / (double)total_b));
    json_object_set_new(e, "patterns", json_integer(done_patterns));
    json_object_set_new(e, "planted", json_boolean(cfg->plant_memory_error));
    json_object_set_new(d, key, e);
    rc = 0;
done:
    cudaFree(buf);
    cudaFree(d_bad);
    if (stream)
        cudaStreamDestroy(stream);
    return rc;
}

/* ---- hbm-bandwidth ---------------------------------------------------------- */

typedef struct bw_arg {
    void *a, *b, *c;
    size_t bytes;
} bw_arg;

static cudaError_t op_copy(void *arg, cudaStream_t s)
{
    bw_arg *x = arg;
    return kiln_kern_copy(x->a, x->b, x->bytes / 16, s);
}

static cudaError_t op_triad(void *arg, cudaStream_t s)
{
    bw_arg *x = arg;
    return kiln_kern_triad(x->a, x->b, x->c, 3.0f, x->bytes / 16, s);
}

static cudaError_t op_memcpy(void *arg, cudaStream_t s)
{
    bw_arg *x = arg;
    return cudaMemcpyAsync(x->a, x->b, x->bytes, cudaMemcpyDeviceToDevice, s);
}

static int hbm_one(json_t *c, int dev, double deadline, char *why, size_t n)
{
    int rc = -1;
    cudaStream_t stream = NULL;
    bw_arg x = {0};
    size_t free_b = 0, total_b = 0;
    double t_copy = 0, t_triad = 0, t_memcpy = 0;
    int i_copy = 0, i_triad = 0, i_memcpy = 0;
    CUDA_TRY(cudaSetDevice(dev));
    CUDA_TRY(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    CUDA_TRY(cudaMemGetInfo(&free_b, &total_b));
    /* 1 GiB arrays dwarf any L2 (50 MB on H100, 126 MB on B200), so every
     * byte comes from HBM. */
    x.bytes = GIB;
    while (x.bytes > 64 * MIB && 3 * x.bytes + 256 * MIB > free_b)
        x.bytes /= 2;
    CUDA_TRY(cudaMalloc(&x.a, x.bytes));
    CUDA_TRY(cudaMalloc(&x.b, x.bytes));
    CUDA_TRY(cudaMalloc(&x.c, x.bytes));
    CUDA_TRY(cudaMemsetAsync(x.a, 0, x.bytes, stream));
    CUDA_TRY(cudaMemsetAsync(x.b, 0, x.bytes, stream));
    CUDA_TRY(cudaMemsetAsync(x.c, 0, x.bytes, stream));
    /* The reference is measured in the same run, between our two kernels,
     * so clocks and temperature are the same for all three. */
    if (time_op(&t_copy, &i_copy, op_copy, &x, stream, deadline, why, n) ||
        time_op(&t_memcpy, &i_memcpy, op_memcpy, &x, stream, deadline, why, n) ||
        time_op(&t_triad, &i_triad, op_triad, &x, stream, deadline, why, n))
        goto done;
    /* Bytes moved: a copy reads and writes each byte, triad reads two
     * arrays and writes one; cudaMemcpy is counted like our copy. */
    double copy = 2.0 * (double)x.bytes / t_copy / 1e9;
    double mcpy = 2.0 * (double)x.bytes / t_memcpy / 1e9;
    double triad = 3.0 * (double)x.bytes / t_triad / 1e9;
    kiln_validate_measured_value(c, "copyGBps", dev, -1, copy, "GB/s");
    kiln_validate_measured_value(c, "triadGBps", dev, -1, triad, "GB/s");
    kiln_validate_measured_value(c, "memcpyGBps", dev, -1, mcpy, "GB/s");
    kiln_validate_measured_value(c, "copyVsMemcpy", dev, -1, copy / mcpy, NULL);
    json_t *d = kiln_validate_measured_details(c);
    char key[32];
    snprintf(key, sizeof(key), "gpu%d", dev);
    json_t *e = json_object();
    json_object_set_new(e, "arrayBytes", json_integer((json_int_t)x.bytes));
    json_object_set_new(
        e, "iterations",
        json_pack("{s:i,s:i,s:i}", "copy", i_copy, "triad", i_triad, "memcpy", i_memcpy));
    json_object_set_new(d, key, e);
    rc = 0;
done:
    cudaFree(x.a);
    cudaFree(x.b);
    cudaFree(x.c);
    if (stream)
        cudaStreamDestroy(stream);
    return rc;
}

/* ---- gemm ------------------------------------------------------------------- */

typedef struct fma_arg {
    float *out;
    int iters;
} fma_arg;

static cudaError_t op_fma(void *arg, cudaStream_t s)
{
    fma_arg *x = arg;
    return kiln_kern_fma(x->out, x->iters, NULL, NULL, s);
}

static int gemm_one(json_t *c, int dev, double deadline, char *why, size_t n)
{
    int rc = -1;
    cudaStream_t stream = NULL;
    fma_arg x = {NULL, 4096};
    double bf16 = 0, flops = 0, t = 0;
    size_t threads = 0;
    int iters = 0;
    json_t *d = kiln_validate_measured_details(c);
    char key[32];
    snprintf(key, sizeof(key), "gpu%d", dev);
    json_t *e = json_object();
    json_object_set_new(d, key, e);
    /* GEMM gets most of the budget; the FMA kernel needs well under a second. */
    double now = kiln_gpucheck_now();
    if (kiln_gpucheck_gemm_bf16(&bf16, e, dev, now + (deadline - now) * 0.7, why, n))
        goto done;
    kiln_validate_measured_value(c, "bf16Tflops", dev, -1, bf16, "TFLOP/s");

    CUDA_TRY(cudaSetDevice(dev));
    CUDA_TRY(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    CUDA_TRY(kiln_kern_fma(NULL, x.iters, &flops, &threads, stream));
    CUDA_TRY(cudaMalloc((void **)&x.out, threads * sizeof(float)));
    if (time_op(&t, &iters, op_fma, &x, stream, deadline, why, n))
        goto done;
    kiln_validate_measured_value(c, "fp32Tflops", dev, -1, flops / t / 1e12, "TFLOP/s");
    json_object_set_new(
        e, "fp32", json_pack("{s:i,s:I}", "iterations", iters, "threads", (json_int_t)threads));
    rc = 0;
done:
    cudaFree(x.out);
    if (stream)
        cudaStreamDestroy(stream);
    return rc;
}

/* ---- pcie ------------------------------------------------------------------- */

typedef struct copy_arg {
    void *dst;
    const void *src;
    size_t bytes;
    enum cudaMemcpyKind kind;
} copy_arg;

static cudaError_t op_memcpy_kind(void *arg, cudaStream_t s)
{
    copy_arg *x = arg;
    return cudaMemcpyAsync(x->dst, x->src, x->bytes, x->kind, s);
}

#define PCIE_BYTES (256 * MIB)

static int pcie_one(json_t *c, int dev, void *host, double deadline, char *why, size_t n)
{
    int rc = -1;
    cudaStream_t stream = NULL;
    void *d = NULL;
    double t_h2d = 0, t_d2h = 0;
    int i_h2d = 0, i_d2h = 0;
    CUDA_TRY(cudaSetDevice(dev));
    CUDA_TRY(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    CUDA_TRY(cudaMalloc(&d, PCIE_BYTES));
    copy_arg h2d = {d, host, PCIE_BYTES, cudaMemcpyHostToDevice};
    copy_arg d2h = {host, d, PCIE_BYTES, cudaMemcpyDeviceToHost};
    if (time_op(&t_h2d, &i_h2d, op_memcpy_kind, &h2d, stream, deadline, why, n) ||
        time_op(&t_d2h, &i_d2h, op_memcpy_kind, &d2h, stream, deadline, why, n))
        goto done;
    kiln_validate_measured_value(c, "h2dGBps", dev, -1, (double)PCIE_BYTES / t_h2d / 1e9, "GB/s");
    kiln_validate_measured_value(c, "d2hGBps", dev, -1, (double)PCIE_BYTES / t_d2h / 1e9, "GB/s");
    rc = 0;
done:
    cudaFree(d);
    if (stream)
        cudaStreamDestroy(stream);
    return rc;
}

/* ---- p2p -------------------------------------------------------------------- */

#define P2P_BYTES (256 * MIB)

typedef struct peer_arg {
    void *dst;
    int dst_dev;
    const void *src;
    int src_dev;
} peer_arg;

static cudaError_t op_peer(void *arg, cudaStream_t s)
{
    peer_arg *x = arg;
    return cudaMemcpyPeerAsync(x->dst, x->dst_dev, x->src, x->src_dev, P2P_BYTES, s);
}

static void check_p2p(json_t *doc, json_t *c, double deadline)
{
    int ngpu = gpu_count(doc);
    if (ngpu < 2) {
        kiln_validate_measured_set_status(c, "skipped", "1 GPU: no pair to measure");
        return;
    }
    char why[300] = "";
    size_t n = sizeof(why);
    void **bufs = calloc((size_t)ngpu, sizeof(void *));
    cudaStream_t stream = NULL;
    int src_stream_dev = -1, measured = 0, total = ngpu * (ngpu - 1);
    json_t *access = json_object();
    json_object_set_new(kiln_validate_measured_details(c), "peerAccess", access);
    if (!bufs) {
        snprintf(why, n, "out of host memory");
        goto done;
    }
    for (int i = 0; i < ngpu; i++) {
        CUDA_TRY(cudaSetDevice(gpu_index(doc, i)));
        CUDA_TRY(cudaMalloc(&bufs[i], P2P_BYTES));
        CUDA_TRY(cudaMemset(bufs[i], i, P2P_BYTES));
    }
    for (int i = 0; i < ngpu; i++) {
        int src = gpu_index(doc, i);
        for (int j = 0; j < ngpu; j++) {
            if (i == j)
                continue;
            int dst = gpu_index(doc, j);
            if (kiln_gpucheck_now() > deadline) {
                snprintf(why, n, "ran out of time after %d of %d GPU pairs", measured, total);
                goto done;
            }
            int can = 0;
            CUDA_TRY(cudaDeviceCanAccessPeer(&can, src, dst));
            char key[32];
            snprintf(key, sizeof(key), "%d->%d", src, dst);
            json_object_set_new(access, key, json_boolean(can));
            if (src_stream_dev != src) {
                if (stream) {
                    CUDA_TRY(cudaSetDevice(src_stream_dev));
                    CUDA_TRY(cudaStreamDestroy(stream));
                    stream = NULL;
                }
                CUDA_TRY(cudaSetDevice(src));
                CUDA_TRY(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
                src_stream_dev = src;
            }
            CUDA_TRY(cudaSetDevice(src));
            if (can) {
                cudaError_t e = cudaDeviceEnablePeerAccess(dst, 0);
                if (e == cudaErrorPeerAccessAlreadyEnabled)
                    cudaGetLastError();
                else
                    CUDA_TRY(e);
            }
            /* Without peer access the copy is staged through the host: still
             * a pair's real bandwidth, just a low one. */
            peer_arg x = {bufs[j], dst, bufs[i], src};
            double t = 0;
            int iters = 0;
            /* Each pair gets an equal share of what is left. */
            int left = total - measured;
            double now = kiln_gpucheck_now();
            if (time_op(&t, &iters, op_peer, &x, stream, now + (deadline - now) / left, why, n))
                goto done;
            kiln_validate_measured_value(c, "peerGBps", src, dst, (double)P2P_BYTES / t / 1e9,
                                         "GB/s");
            measured++;
        }
    }
done:
    if (*why)
        kiln_validate_measured_set_status(c, "error", why);
    if (stream) {
        cudaSetDevice(src_stream_dev);
        cudaStreamDestroy(stream);
    }
    for (int i = 0; bufs && i < ngpu; i++) {
        if (bufs[i]) {
            cudaSetDevice(gpu_index(doc, i));
            cudaFree(bufs[i]);
        }
    }
    free(bufs);
}

/* ---- dispatch ----------------------------------------------------------------- */

static void run(json_t *doc, const char *check, const kiln_gpucheck_config *cfg)
{
    json_t *c = kiln_validate_measured_add_check(doc, check);
    double start = kiln_gpucheck_now();
    double deadline = start + cfg->timeout_s;
    if (strcmp(check, "device") == 0) {
        check_device(doc, c);
        return;
    }
    if (strcmp(check, "p2p") == 0) {
        check_p2p(doc, c, deadline);
        return;
    }
    int ngpu = gpu_count(doc);
    void *host = NULL;
    char why[300] = "", first[400] = "";
    if (strcmp(check, "pcie") == 0) {
        cudaError_t e = cudaSetDevice(gpu_index(doc, 0));
        if (e == cudaSuccess)
            e = cudaHostAlloc(&host, PCIE_BYTES, cudaHostAllocPortable);
        if (e != cudaSuccess) {
            snprintf(first, sizeof(first), "cudaHostAlloc (pinned, %zu MiB): %s", PCIE_BYTES / MIB,
                     cudaGetErrorString(e));
            host = NULL;
            goto done;
        }
        memset(host, 0x5a, PCIE_BYTES);
    }
    for (int i = 0; i < ngpu; i++) {
        int dev = gpu_index(doc, i);
        /* An equal share of the remaining budget for each remaining GPU. */
        double now = kiln_gpucheck_now();
        double gpu_deadline = now + (deadline - now) / (ngpu - i);
        int rc;
        why[0] = '\0';
        if (strcmp(check, "memory") == 0)
            rc = memory_one(c, dev, cfg, gpu_deadline, why, sizeof(why));
        else if (strcmp(check, "hbm-bandwidth") == 0)
            rc = hbm_one(c, dev, gpu_deadline, why, sizeof(why));
        else if (strcmp(check, "gemm") == 0)
            rc = gemm_one(c, dev, gpu_deadline, why, sizeof(why));
        else
            rc = pcie_one(c, dev, host, gpu_deadline, why, sizeof(why));
        if (rc && !*first)
            snprintf(first, sizeof(first), "GPU %d: %s", dev, why);
    }
done:
    if (host)
        cudaFreeHost(host);
    if (*first)
        kiln_validate_measured_set_status(c, "error", first);
}

const kiln_gpucheck_backend *kiln_gpucheck_backend_get(void)
{
    static const kiln_gpucheck_backend backend = {"cuda", probe, run};
    return &backend;
}
