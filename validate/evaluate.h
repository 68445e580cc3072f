/* validate/evaluate.h: judging measured GPU results against thresholds.
 *
 * Input is the "measured" document kiln-gpucheck produces (real or simulated;
 * schema in docs/gpu-validation.md): the node, its GPUs, and per check a
 * status (ran, skipped, error) with measurements {metric, gpu, peer, value or
 * text, unit, skipped}. Output is a report: per check pass, fail or skip, each
 * with the deciding metric, measured value, threshold and a reason naming the
 * node, GPU, check, measured and expected values, plus every per-GPU verdict.
 *
 * The rules fail closed. A requested check that is absent, reported as an
 * error, or lacks a measurement for any GPU (or GPU pair) fails. A skip is
 * only ever a skip: it never turns into a pass, and a node whose requested
 * checks were all skipped has not passed. The only skips are the ones that do
 * not apply to the hardware: p2p with fewer than two GPUs, and an ECC or
 * row-remap counter the card does not have.
 *
 * Evaluation itself fails (non-zero return) only on bad arguments; anything
 * wrong with the measured document becomes a failing verdict instead.
 */
#ifndef KILN_VALIDATE_EVALUATE_H
#define KILN_VALIDATE_EVALUATE_H

#include <jansson.h>
#include <stdbool.h>

#include "core/err.h"
#include "validate/thresholds.h"

/* Schema version of the measured document, the report and the summary. */
#define KILN_VALIDATE_SCHEMA 1

typedef struct kiln_validate_eval_opts {
    const char *node;          /* names the node in reasons; NULL: the measured "node" */
    int expect_gpus;           /* GPUs the node must show; 0: at least one */
    const char *const *checks; /* requested checks, NULL-terminated; NULL: all six */
} kiln_validate_eval_opts;

/* Judges measured (borrowed) against acc (borrowed) into *out, a new report:
 *   {"schemaVersion", "node", "accelerator", "simulated", "gpus", "product",
 *    "result": "passed"|"failed", "exitCode": 0|1, "reason",
 *    "checks": [{"name", "result": "pass"|"fail"|"skip", "metric", "gpu",
 *                "peer", "value", "unit", "op", "threshold", "reason",
 *                "passed", "failed", "skipped", "verdicts": [...]}]}
 * The check's top-level fields are its deciding verdict: the failing one
 * furthest below its threshold, else the passing one closest to it.
 * opts may be NULL. KILN_EINVAL for a NULL argument or an unknown check. */
int kiln_validate_evaluate(json_t **out, const json_t *measured, const kiln_threshold_accel *acc,
                           const kiln_validate_eval_opts *opts, kiln_err *err);

/* A report for a run that could not happen (no device, unknown accelerator,
 * bad flags): result "error", exitCode 2, no checks, reason as given. node,
 * accelerator may be NULL. Returns a new reference. */
json_t *kiln_validate_report_error(const char *node, const char *accelerator, bool simulated,
                                   const char *reason);

/* The exit code a report asks for: 0 passed, 1 failed, 2 error (also for a
 * report that is not one). */
int kiln_validate_report_exit_code(const json_t *report);

#endif
