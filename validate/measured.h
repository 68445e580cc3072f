/* validate/measured.h: building the measured document.
 *
 * The one format real runs (kiln-gpucheck's CUDA checks) and simulated runs
 * (simulate.h) both produce, and the one kiln_validate_evaluate reads:
 *
 *   {"kind": "kiln-gpucheck", "schemaVersion": 1, "version": "0.1.0",
 *    "node": "gpu-1", "accelerator": "h100-sxm", "acceleratorRequested": "h100",
 *    "simulated": false, "host": {...},
 *    "gpus": [{"index": 0, "name": "NVIDIA H100 80GB HBM3", ...}],
 *    "checks": [{"name": "gemm", "status": "ran", "durationMs": 812,
 *                "measurements": [{"metric": "bf16Tflops", "gpu": 0,
 *                                  "value": 702.4, "unit": "TFLOP/s"}],
 *                "details": {...}}]}
 *
 * A check's status is "ran", "skipped" or "error" (with "reason"); a
 * measurement carries "value" (number), "text" (string) or "skipped" (why it
 * could not be taken), and "gpu"/"peer" where it belongs to a GPU or a pair.
 * An "error" string at the top level says the run as a whole could not happen.
 *
 * Every function takes the document or check it changes as a borrowed
 * pointer; returned objects are borrowed from the document.
 */
#ifndef KILN_VALIDATE_MEASURED_H
#define KILN_VALIDATE_MEASURED_H

#include <jansson.h>
#include <stdbool.h>

/* A new, empty document (new reference). requested may be NULL; accelerator
 * may be NULL when it is not known yet. */
json_t *kiln_validate_measured_new(const char *node, const char *accelerator, const char *requested,
                                   bool simulated);

/* Appends a GPU {"index", "name"}; the caller adds the other fields. */
json_t *kiln_validate_measured_add_gpu(json_t *doc, int index, const char *name);

/* Appends a check with status "ran" and no measurements. */
json_t *kiln_validate_measured_add_check(json_t *doc, const char *name);

/* Sets a check's status ("ran", "skipped", "error") and reason (may be NULL). */
void kiln_validate_measured_set_status(json_t *check, const char *status, const char *reason);

/* Adds a numeric measurement, rounded to two decimals. gpu/peer -1: none. */
void kiln_validate_measured_value(json_t *check, const char *metric, int gpu, int peer,
                                  double value, const char *unit);

/* Adds a text measurement (a product name, a compute capability). */
void kiln_validate_measured_text(json_t *check, const char *metric, int gpu, const char *text);

/* Records that a metric could not be taken on this GPU, and why. */
void kiln_validate_measured_skip(json_t *check, const char *metric, int gpu, const char *reason);

/* The check's free-form "details" object, created on first use. */
json_t *kiln_validate_measured_details(json_t *check);

#endif
