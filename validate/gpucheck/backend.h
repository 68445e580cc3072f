/* validate/gpucheck/backend.h: what kiln-gpucheck's main needs from the GPU.
 *
 * Two implementations, picked at build time by which file is compiled in:
 * cuda_checks.c (C host code driving the kernels of kernels.cu, cuBLASLt and
 * NVML) when CMake found nvcc, and nocuda.c otherwise, whose probe says the
 * binary was built without CUDA so the run exits 2 with that reason. Main
 * owns the measured document; a backend only appends to it.
 */
#ifndef KILN_GPUCHECK_BACKEND_H
#define KILN_GPUCHECK_BACKEND_H

#include <jansson.h>
#include <stdbool.h>

#include "core/err.h"

typedef struct kiln_gpucheck_config {
    double timeout_s;        /* per check; work stops once it is spent */
    double memory_fraction;  /* share of each GPU's memory the memory check covers */
    bool plant_memory_error; /* flip one word before verifying (tests the test) */
} kiln_gpucheck_config;

typedef struct kiln_gpucheck_backend {
    const char *name; /* "cuda", "none" */
    /* Finds the GPUs, fills doc's "host" object and "gpus" list (borrowed
     * doc). Non-zero when nothing can be measured (no driver, no device, no
     * CUDA in this build): err says why, and the run exits 2. */
    int (*probe)(json_t *doc, kiln_err *err);
    /* Runs check (a name from kiln_validate_checks) on every GPU of doc and
     * appends its entry with kiln_validate_measured_add_check. A failure is
     * recorded in the entry (status "error"), never returned. */
    void (*run)(json_t *doc, const char *check, const kiln_gpucheck_config *cfg);
} kiln_gpucheck_backend;

/* The backend compiled into this binary. Static storage. */
const kiln_gpucheck_backend *kiln_gpucheck_backend_get(void);

#endif
