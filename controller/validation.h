/* controller/validation.h: running a graph's validation node (DESIGN.md
 * section 5) on the cluster.
 *
 * One step per reconcile, stateless apart from the cluster: it selects the
 * GPU nodes, keeps one Job per node running `kiln-gpucheck` under its own
 * ServiceAccount (no API rights, no token mounted), reads each finished pod's
 * termination message, and returns what expressions read and what
 * status.validation records. A node's Job is named after a hash of
 * everything that decides its run (accelerator, checks, GPUs, timeout, the
 * instance's generation, the kiln.dev/revalidate annotation, the node and
 * the image), so a spec change, a revalidation or a new node starts exactly
 * the Jobs it must, and Jobs of older runs are deleted.
 *
 * It fails closed: an unknown accelerator, no matching node, a node without
 * GPUs, a pod without a usable termination message, a Job that fails or
 * never finishes each become a failed node with a reason; nothing but a
 * parsed, passing summary from every selected node passes.
 *
 * Pure helpers are exposed for the unit tests.
 */
#ifndef KILN_CONTROLLER_VALIDATION_H
#define KILN_CONTROLLER_VALIDATION_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

#define KILN_LABEL_VALIDATION "kiln.dev/validation"         /* the graph node id */
#define KILN_LABEL_VALIDATION_RUN "kiln.dev/validation-run" /* the run hash */
#define KILN_LABEL_VALIDATION_JOB "kiln.dev/validation-job" /* on pods: their Job */
#define KILN_LABEL_VALIDATION_NODE "kiln.dev/validation-node"
#define KILN_ANN_REVALIDATE "kiln.dev/revalidate"
#define KILN_GPUCHECK_SERVICE_ACCOUNT "kiln-gpucheck"
#define KILN_GPUCHECK_IMAGE_DEFAULT "ghcr.io/kiln-dev/kiln-gpucheck:" KILN_VERSION

/* The phase of one validation node. */
typedef enum kiln_validation_phase {
    KILN_VALIDATION_RUNNING = 0,
    KILN_VALIDATION_PASSED = 1,
    KILN_VALIDATION_FAILED = 2,
} kiln_validation_phase;

/* "Running", "Passed", "Failed". */
const char *kiln_validation_phase_name(kiln_validation_phase phase);

/* One GPU node chosen for a run. */
typedef struct kiln_validation_target {
    char *node;        /* node name */
    char *accelerator; /* thresholds name ("h100-sxm"); NULL when it cannot be told */
    int gpus;          /* GPUs the Job requests */
    char *why_not;     /* set when the node cannot be validated (fails closed) */
} kiln_validation_target;

typedef struct kiln_validation_selection {
    kiln_validation_target *items; /* sorted by node name */
    size_t len;
    char *why_none; /* set when nothing can be selected: the node fails as a whole */
} kiln_validation_selection;

/* Chooses the nodes of spec (the rendered validation map: accelerator,
 * checks, nodeSelector, gpusPerNode, maxNodes, timeoutSeconds) among nodes
 * (an array of Node objects, already filtered by the nodeSelector's labels).
 * Without a nodeSelector only nodes advertising nvidia.com/gpu count; with
 * one, a matching node without GPUs is selected and fails. maxNodes > 0 keeps
 * the first maxNodes by name. The accelerator is spec's (resolved through the
 * thresholds' alias rule) or, when spec has none, the one the node's
 * nvidia.com/gpu.product label names. */
void kiln_validation_select(kiln_validation_selection *out, const json_t *spec,
                            const json_t *nodes);
void kiln_validation_selection_free(kiln_validation_selection *s);

/* "k=v,k2=v2" for spec.nodeSelector (sorted keys), "" without one. New
 * string; NULL with *err set when a key or value is not a valid label. */
char *kiln_validation_label_selector(const json_t *spec, kiln_err *err);

/* What decides one node's run. */
typedef struct kiln_validation_run {
    const char *instance_name;
    const char *instance_namespace;
    const char *node_id;     /* the graph node */
    const char *node;        /* the Kubernetes node */
    const char *accelerator; /* thresholds name */
    const json_t *checks;    /* array of check names */
    int gpus;
    int64_t timeout_s;
    int64_t generation;     /* the instance's metadata.generation */
    const char *revalidate; /* the annotation's value, or NULL */
    const char *image;
} kiln_validation_run;

/* The run's hash (first 10 hex digits of a SHA-256) and the Job's name,
 * "<instance>-<node id>-<hash>" shortened to stay a valid name whose pods'
 * names (5 more characters) are valid too. */
void kiln_validation_run_hash(char out[11], const kiln_validation_run *run);
char *kiln_validation_job_name(const kiln_validation_run *run, const char hash[11]);

/* The Job of a run (new reference). labels (borrowed) are added to the Job
 * and its pod template (kiln's instance labels, so caches hold them and
 * their events queue the instance); owner (borrowed, may be NULL) becomes
 * its ownerReference. */
json_t *kiln_validation_job(const kiln_validation_run *run, const char *name, const char hash[11],
                            const json_t *labels, const json_t *owner);

/* The result of one node from its Job and pods (borrowed; pods may be
 * NULL), as a status entry {"name", "job", "run", "result", "passed",
 * "reason", ...summary fields}. *final tells whether it will not change any
 * more. now and the Job's creationTimestamp decide the timeout: a Job not
 * finished timeout_s + 30 s after it was created has failed. *wait_ms is
 * set to the time until that deadline when not final. */
json_t *kiln_validation_node_result(const kiln_validation_run *run, const char *job_name,
                                    const char hash[11], const json_t *job, const json_t *pods,
                                    int64_t now, bool *final, int64_t *wait_ms);

/* Seconds since the epoch of an RFC 3339 time, or -1. */
int64_t kiln_validation_parse_time(const char *s);

/* ------------------------------------------------------------------------ */
/* one reconcile's step                                                       */

struct kiln_manager;

typedef struct kiln_validation_outcome {
    kiln_validation_phase phase;
    json_t *observed;   /* what expressions read: {passed, simulated, nodes, phase, message} */
    json_t *status;     /* status.validation.<node id> */
    char *message;      /* why it has not passed; NULL when it has */
    int64_t requeue_ms; /* > 0: look again after this long (a deadline, a retry) */
} kiln_validation_outcome;

/* Advances the validation node node_id (its rendered spec borrowed) of inst
 * (borrowed; queued as "inst:<rgd>:<ns>:<name>" when a selected node
 * changes): selects the nodes, creates the missing Jobs (and the
 * ServiceAccount they run as), reads finished pods, deletes Jobs of older
 * runs. previous is the node's status.validation entry from the last write
 * (borrowed, may be NULL): a finished node's result is kept from there once
 * its Job is gone (ttlSecondsAfterFinished). image NULL: the default. Never
 * fails: every problem becomes a node's or the run's reason. */
void kiln_validation_step(struct kiln_manager *m, const json_t *inst, const char *rgd,
                          const char *node_id, const json_t *spec, const json_t *previous,
                          const char *image, kiln_validation_outcome *out);
void kiln_validation_outcome_free(kiln_validation_outcome *o);

#endif
