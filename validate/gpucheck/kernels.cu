#include "validate/gpucheck/kernels.h"

#include <cuda_bf16.h>

#define THREADS 256
#define FMA_CHAINS 8
#define FMA_UNROLL 16

/* A cheap 64-bit mix (splitmix64's finalizer): every word gets a different,
 * reproducible value, so a stuck or swapped line shows up. */
__host__ __device__ static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

__host__ __device__ static inline uint64_t pattern_value(uint64_t i, uint64_t seed, int pattern)
{
    switch (pattern) {
    case KILN_PATTERN_ADDRESS:
        return i ^ seed;
    case KILN_PATTERN_ALT_A:
        return 0xaaaaaaaaaaaaaaaaull;
    case KILN_PATTERN_ALT_5:
        return 0x5555555555555555ull;
    case KILN_PATTERN_RANDOM:
        return mix64(i + seed);
    case KILN_PATTERN_ONES:
        return ~0ull;
    default:
        return 0;
    }
}

extern "C" uint64_t kiln_kern_pattern_value(uint64_t i, uint64_t seed, int pattern)
{
    return pattern_value(i, seed, pattern);
}

/* Blocks for a grid-stride kernel: enough resident blocks to fill every SM. */
static cudaError_t grid_for(const void *kernel, int threads, size_t dyn_smem, int *blocks)
{
    int dev = 0, sms = 0, per_sm = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e == cudaSuccess)
        e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    if (e == cudaSuccess)
        e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, dyn_smem);
    if (e != cudaSuccess)
        return e;
    *blocks = sms * (per_sm > 0 ? per_sm : 1);
    return cudaSuccess;
}

__global__ void fill_kernel(uint64_t *buf, size_t n, uint64_t seed, int pattern)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        buf[i] = pattern_value(i, seed, pattern);
}

__global__ void verify_kernel(const uint64_t *buf, size_t n, uint64_t seed, int pattern,
                              unsigned long long *mismatches)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    unsigned long long bad = 0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        bad += buf[i] != pattern_value(i, seed, pattern);
    /* One atomic per thread that saw an error: a healthy card never pays. */
    if (bad)
        atomicAdd(mismatches, bad);
}

/* Four independent 16-byte loads in flight per thread before any store: the
 * memory-level parallelism HBM needs to approach cudaMemcpy's copy rate. */
__global__ void copy_kernel(uint4 *__restrict__ dst, const uint4 *__restrict__ src, size_t n)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    for (; i + 3 * stride < n; i += 4 * stride) {
        uint4 a = src[i];
        uint4 b = src[i + stride];
        uint4 c = src[i + 2 * stride];
        uint4 d = src[i + 3 * stride];
        dst[i] = a;
        dst[i + stride] = b;
        dst[i + 2 * stride] = c;
        dst[i + 3 * stride] = d;
    }
    for (; i < n; i += stride)
        dst[i] = src[i];
}

__global__ void triad_kernel(float4 *__restrict__ a, const float4 *__restrict__ b,
                             const float4 *__restrict__ c, float s, size_t n)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    for (; i + stride < n; i += 2 * stride) {
        float4 b0 = b[i], c0 = c[i], b1 = b[i + stride], c1 = c[i + stride];
        a[i] = make_float4(b0.x + s * c0.x, b0.y + s * c0.y, b0.z + s * c0.z, b0.w + s * c0.w);
        a[i + stride] =
            make_float4(b1.x + s * c1.x, b1.y + s * c1.y, b1.z + s * c1.z, b1.w + s * c1.w);
    }
    for (; i < n; i += stride) {
        float4 b0 = b[i], c0 = c[i];
        a[i] = make_float4(b0.x + s * c0.x, b0.y + s * c0.y, b0.z + s * c0.z, b0.w + s * c0.w);
    }
}

/* FMA_CHAINS independent dependency chains hide the FMA latency; the
 * multiplier below one keeps the values finite for any iteration count. */
__global__ void fma_kernel(float *out, int iters, float mul, float add)
{
    float x[FMA_CHAINS];
#pragma unroll
    for (int k = 0; k < FMA_CHAINS; k++)
        x[k] = (float)threadIdx.x * 1e-3f + (float)k;
    for (int i = 0; i < iters; i += FMA_UNROLL) {
#pragma unroll
        for (int u = 0; u < FMA_UNROLL; u++) {
#pragma unroll
            for (int k = 0; k < FMA_CHAINS; k++)
                x[k] = fmaf(x[k], mul, add);
        }
    }
    float s = 0.0f;
#pragma unroll
    for (int k = 0; k < FMA_CHAINS; k++)
        s += x[k];
    out[(size_t)blockIdx.x * blockDim.x + threadIdx.x] = s;
}

__global__ void fill_bf16_kernel(__nv_bfloat16 *buf, size_t n, uint32_t seed)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        uint64_t h = mix64(i + ((uint64_t)seed << 40));
        float v = (float)(h >> 40) / (float)(1u << 24) * 2.0f - 1.0f;
        buf[i] = __float2bfloat16(v);
    }
}

extern "C" cudaError_t kiln_kern_fill(uint64_t *buf, size_t n, uint64_t seed, int pattern,
                                      cudaStream_t stream)
{
    int blocks = 0;
    cudaError_t e = grid_for((const void *)fill_kernel, THREADS, 0, &blocks);
    if (e != cudaSuccess)
        return e;
    fill_kernel<<<blocks, THREADS, 0, stream>>>(buf, n, seed, pattern);
    return cudaGetLastError();
}

extern "C" cudaError_t kiln_kern_verify(const uint64_t *buf, size_t n, uint64_t seed, int pattern,
                                        unsigned long long *mismatches, cudaStream_t stream)
{
    int blocks = 0;
    cudaError_t e = grid_for((const void *)verify_kernel, THREADS, 0, &blocks);
    if (e != cudaSuccess)
        return e;
    verify_kernel<<<blocks, THREADS, 0, stream>>>(buf, n, seed, pattern, mismatches);
    return cudaGetLastError();
}

extern "C" cudaError_t kiln_kern_copy(void *dst, const void *src, size_t n16, cudaStream_t stream)
{
    int blocks = 0;
    cudaError_t e = grid_for((const void *)copy_kernel, THREADS, 0, &blocks);
    if (e != cudaSuccess)
        return e;
    copy_kernel<<<blocks, THREADS, 0, stream>>>((uint4 *)dst, (const uint4 *)src, n16);
    return cudaGetLastError();
}

extern "C" cudaError_t kiln_kern_triad(float *a, const float *b, const float *c, float scalar,
                                       size_t n4, cudaStream_t stream)
{
    int blocks = 0;
    cudaError_t e = grid_for((const void *)triad_kernel, THREADS, 0, &blocks);
    if (e != cudaSuccess)
        return e;
    triad_kernel<<<blocks, THREADS, 0, stream>>>((float4 *)a, (const float4 *)b, (const float4 *)c,
                                                 scalar, n4);
    return cudaGetLastError();
}

extern "C" cudaError_t kiln_kern_fma(float *out, int iters, double *flops, size_t *threads,
                                     cudaStream_t stream)
{
    int blocks = 0;
    cudaError_t e = grid_for((const void *)fma_kernel, THREADS, 0, &blocks);
    if (e != cudaSuccess)
        return e;
    /* Rounded up to the unroll, as the kernel runs whole unrolled steps. */
    int steps = (iters + FMA_UNROLL - 1) / FMA_UNROLL;
    size_t total = (size_t)blocks * THREADS;
    if (threads)
        *threads = total;
    if (flops)
        *flops = 2.0 * FMA_CHAINS * (double)steps * FMA_UNROLL * (double)total;
    if (!out)
        return cudaSuccess;
    fma_kernel<<<blocks, THREADS, 0, stream>>>(out, steps * FMA_UNROLL, 0.999999f, 1e-6f);
    return cudaGetLastError();
}

extern "C" cudaError_t kiln_kern_fill_bf16(void *buf, size_t n, uint32_t seed, cudaStream_t stream)
{
    int blocks = 0;
    cudaError_t e = grid_for((const void *)fill_bf16_kernel, THREADS, 0, &blocks);
    if (e != cudaSuccess)
        return e;
    fill_bf16_kernel<<<blocks, THREADS, 0, stream>>>((__nv_bfloat16 *)buf, n, seed);
    return cudaGetLastError();
}
