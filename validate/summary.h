/* validate/summary.h: the compact result a validation pod leaves behind.
 *
 * Kubernetes keeps at most 4,096 bytes of a container's termination message
 * (/dev/termination-log), and that is where the controller reads a node's
 * result, so kiln-gpucheck writes a compact JSON summary there (format in
 * docs/gpu-validation.md):
 *
 *   {"kiln":"gpucheck","schemaVersion":1,"node":"gpu-1","accelerator":"h100-sxm",
 *    "simulated":false,"result":"failed","exitCode":1,"gpus":8,
 *    "product":"NVIDIA H100 80GB HBM3","reason":"...",
 *    "checks":[{"name":"gemm","result":"fail","metric":"bf16Tflops","gpu":3,
 *               "value":412.3,"unit":"TFLOP/s","op":">=","threshold":494.5,
 *               "reason":"gemm on node gpu-1 GPU 3: ..."}]}
 *
 * One entry per requested check: its deciding metric (see evaluate.h). The
 * builder shortens reasons, then drops them, to stay under the limit, and sets
 * "truncated": true when it did. The parser is what the controller runs on a
 * pod's message: it rejects anything it cannot trust with a reason a person
 * can act on, and it fails closed (a missing requested check is a failure).
 */
#ifndef KILN_VALIDATE_SUMMARY_H
#define KILN_VALIDATE_SUMMARY_H

#include <jansson.h>
#include <stddef.h>

#include "core/err.h"

/* Kubernetes' cap on a termination message, in bytes. */
#define KILN_VALIDATE_SUMMARY_MAX 4096

/* Builds the summary of report (borrowed; from kiln_validate_evaluate or
 * kiln_validate_report_error) into *out: a new NUL-terminated string of at
 * most KILN_VALIDATE_SUMMARY_MAX bytes, no trailing newline. KILN_EINVAL when
 * report is not a report; KILN_ELIMIT when even the shortest form is too
 * long. */
int kiln_validate_summary_build(char **out, const json_t *report, kiln_err *err);

typedef struct kiln_validate_expect {
    const char *node;          /* the pod's node; NULL: not compared */
    const char *const *checks; /* requested checks, NULL-terminated; NULL: not compared */
} kiln_validate_expect;

/* Parses a termination message (msg, len bytes; need not be NUL-terminated)
 * into *out, a new object in the shape status.validation uses per node:
 *   {"name", "accelerator", "simulated", "gpus", "product", "result",
 *    "passed", "reason", "checks": [{"name", "result", "metric", "gpu",
 *    "peer", "value", "unit", "op", "threshold", "reason"}]}
 * "passed" is derived, never copied: true only when the result is "passed",
 * no check failed, at least one passed and every expected check is present.
 * A missing expected check is added as a failure. Errors (with *out NULL):
 * KILN_ENOTFOUND for an empty message, KILN_ELIMIT for one over 4,096 bytes,
 * KILN_EINVAL for text that is not JSON (truncated), not a summary, of another
 * schema version, inconsistent, or from another node. expect may be NULL. */
int kiln_validate_summary_parse(json_t **out, const char *msg, size_t len,
                                const kiln_validate_expect *expect, kiln_err *err);

/* A node entry (the shape kiln_validate_summary_parse returns) for a node
 * with no usable result: the Job never started, timed out, or the message
 * could not be parsed. passed false, result "error", no checks, reason as
 * given. Returns a new reference. */
json_t *kiln_validate_node_failed(const char *node, const char *reason);

/* The validation status of a graph node from its per-node entries (borrowed
 * array): {"passed", "simulated", "nodes"} as DESIGN.md section 5 lets
 * expressions read it. passed is true only when there is at least one node and
 * every node passed; simulated when any node's results were simulated. The
 * entries are copied. Returns a new reference. */
json_t *kiln_validate_status_new(const json_t *nodes);

#endif
