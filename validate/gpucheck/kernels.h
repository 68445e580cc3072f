/* validate/gpucheck/kernels.h: the CUDA kernels of kiln-gpucheck, for C callers.
 *
 * Each launcher enqueues its kernel on stream for the current device, sizes
 * the grid from the device's SM count and the kernel's occupancy, and returns
 * the launch error without synchronizing; the caller synchronizes and checks
 * again. Device pointers are borrowed.
 */
#ifndef KILN_GPUCHECK_KERNELS_H
#define KILN_GPUCHECK_KERNELS_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Memory test patterns over 64-bit words. */
enum {
    KILN_PATTERN_ADDRESS = 0, /* word index xor seed: catches address-line faults */
    KILN_PATTERN_ALT_A = 1,   /* 0xAAAA... */
    KILN_PATTERN_ALT_5 = 2,   /* 0x5555... */
    KILN_PATTERN_RANDOM = 3,  /* a hash of index and seed */
    KILN_PATTERN_ONES = 4,
    KILN_PATTERN_ZEROS = 5,
    KILN_PATTERN_COUNT = 6,
};

/* The value pattern puts at word index i (host copy of the device rule, for
 * planting a known-bad word). */
uint64_t kiln_kern_pattern_value(uint64_t i, uint64_t seed, int pattern);

/* Writes pattern over n words. */
cudaError_t kiln_kern_fill(uint64_t *buf, size_t n, uint64_t seed, int pattern,
                           cudaStream_t stream);

/* Adds the number of words that differ from pattern to *mismatches (device
 * memory, one unsigned long long). */
cudaError_t kiln_kern_verify(const uint64_t *buf, size_t n, uint64_t seed, int pattern,
                             unsigned long long *mismatches, cudaStream_t stream);

/* dst = src over n 16-byte vectors. */
cudaError_t kiln_kern_copy(void *dst, const void *src, size_t n16, cudaStream_t stream);

/* a = b + scalar * c over n4 float4 vectors (STREAM triad). */
cudaError_t kiln_kern_triad(float *a, const float *b, const float *c, float scalar, size_t n4,
                            cudaStream_t stream);

/* Independent FP32 FMA chains in registers; writes one float per thread to
 * out so nothing is optimized away. *flops receives the FLOPs one launch does;
 * out must hold *threads floats (query with out == NULL: nothing launched). */
cudaError_t kiln_kern_fma(float *out, int iters, double *flops, size_t *threads,
                          cudaStream_t stream);

/* Fills n bf16 values with a deterministic spread in [-1, 1). */
cudaError_t kiln_kern_fill_bf16(void *buf, size_t n, uint32_t seed, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
