/* validate/gpucheck/cuda_internal.h: shared pieces of the CUDA backend.
 *
 * The backend is split by concern: cuda_checks.c (probe, dispatch and the
 * memory, bandwidth, FMA, PCIe and peer checks), cuda_gemm.c (BF16 GEMM
 * through cuBLASLt) and cuda_nvml.c (ECC and row-remap counters through NVML,
 * loaded at run time so the build needs no NVML). Every function reports a
 * failure as a readable reason in why (size n), never by printing.
 */
#ifndef KILN_GPUCHECK_CUDA_INTERNAL_H
#define KILN_GPUCHECK_CUDA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* Runs a CUDA runtime call; on failure writes the call and CUDA's message to
 * why (size n, both in scope) and jumps to the caller's done label. */
#define CUDA_TRY(call)                                                                             \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            snprintf(why, n, "%s: %s", #call, cudaGetErrorString(e_));                             \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

/* Seconds on a monotonic clock. */
double kiln_gpucheck_now(void);

/* Loads libnvidia-ml.so.1 and initializes it, once. false (with why) when it
 * is not there or does not start: ECC counters are then skipped. */
bool kiln_gpucheck_nvml_open(char *why, size_t n);

/* The driver version string ("580.65.06"), or false. */
bool kiln_gpucheck_nvml_driver_version(char *out, size_t n);

typedef struct kiln_gpucheck_ecc {
    int ecc_enabled;                /* 1, 0, or -1 when unknown */
    bool have_uncorrected;          /* uncorrected is valid */
    unsigned long long uncorrected; /* volatile count since the driver loaded */
    bool have_remap;                /* remap_pending is valid (Ampere and newer) */
    unsigned remap_pending;
    char why[160]; /* why a counter is missing */
} kiln_gpucheck_ecc;

/* Reads the ECC state of the GPU at pci_bus_id ("0000:3b:00.0"). false with
 * out->why when the device cannot be found in NVML. */
bool kiln_gpucheck_nvml_ecc(kiln_gpucheck_ecc *out, const char *pci_bus_id);

/* Best BF16 tensor-core GEMM rate on device dev, in TFLOP/s, over a few square
 * sizes, stopping at deadline (kiln_gpucheck_now() time). details (borrowed)
 * receives per-size figures. -1 with why on failure. */
int kiln_gpucheck_gemm_bf16(double *tflops, json_t *details, int dev, double deadline, char *why,
                            size_t n);

#endif
