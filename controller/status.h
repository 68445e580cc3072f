/* controller/status.h: kstatus-shaped status for instances and RGDs.
 *
 * Pure functions: given what a reconcile found and the status already on the
 * object, build the new status. A condition keeps its lastTransitionTime while
 * its status stays the same, so a reconcile that changes nothing produces a
 * status equal to the old one and no write is sent (kiln_status_equal).
 *
 * Instance conditions: Ready, Reconciling, Stalled, GraphResolved,
 * ResourcesReady, Validated, each with observedGeneration. Ready=False while
 * converging is not Stalled; Stalled=True only for errors retrying cannot fix.
 * state: IN_PROGRESS, ACTIVE, DELETING or ERROR.
 */
#ifndef KILN_CONTROLLER_STATUS_H
#define KILN_CONTROLLER_STATUS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kiln_status_input {
    int64_t generation;
    bool deleting;
    bool suspended;
    const char *graph_error; /* the graph could not be used; NULL when it was */
    const char *stalled;     /* an error retrying cannot fix; NULL when none */
    const char *retrying;    /* a transient failure (the API server said 5xx) */
    size_t nodes;            /* nodes that count (not excluded) */
    size_t ready;            /* of those, ready */
    const char *not_ready;   /* why ResourcesReady is False ("waiting for ...") */
    size_t validations;      /* validation nodes that count */
    size_t validations_ready;
    const json_t *resources;  /* [{id, kind, name, namespace, state, message}]; borrowed */
    const json_t *projected;  /* projected status fields (object); borrowed, may be NULL */
    const json_t *validation; /* status.validation; borrowed, may be NULL */
    /* A validation node failed (GPU results below their floors, a node that
     * could not be checked): Validated=False, and Stalled, as no retry fixes
     * hardware; reruns come from kiln.dev/revalidate, a spec change or a new
     * node. NULL when none failed. */
    const char *validation_failed;
    const char *validation_running; /* why validation is still running; may be NULL */
} kiln_status_input;

/* RFC 3339 UTC time with second precision ("2026-01-01T00:00:00Z"). */
void kiln_status_now(char out[32]);

/* Sets condition type in conds (an array, modified): lastTransitionTime is
 * taken from the same type in old_conds (borrowed, may be NULL) when its
 * status is unchanged, else now. message may be NULL (""). */
void kiln_status_set_condition(json_t *conds, const json_t *old_conds, const char *type,
                               const char *status, const char *reason, const char *message,
                               int64_t generation, const char *now);

/* The condition of type in status (borrowed), or NULL. */
const json_t *kiln_status_condition(const json_t *status, const char *type);

/* The new status of an instance (new reference). old_status borrowed, may be
 * NULL. */
json_t *kiln_status_instance(const json_t *old_status, const kiln_status_input *in,
                             const char *now);

/* Equal documents (key order ignored). NULL equals only NULL or {}. */
bool kiln_status_equal(const json_t *a, const json_t *b);

#endif
