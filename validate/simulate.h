/* validate/simulate.h: measured results for GPUs that are not there.
 *
 * The dev cluster's simulated GPU nodes (`kiln dev --simulate-gpus h100x8`)
 * still run validation Jobs, so the controller's whole path (Job, termination
 * message, status, Ready) is exercised without hardware. Their pods run
 * `kiln-gpucheck --simulate ACCEL`, which builds the measured document here:
 * the same schema a real run produces, "simulated": true, every figure taken
 * from the thresholds data (achievable x typical, a little lower per GPU so
 * the values are not all equal) and fully deterministic.
 *
 * A failing card is simulated per check: device reports uncorrected ECC
 * errors, memory reports mismatches, and the bandwidth and GEMM checks report
 * 60% of their floor on the last GPU (p2p: on the pair from the last GPU to the
 * first), which is what a slow card looks like to the controller.
 */
#ifndef KILN_VALIDATE_SIMULATE_H
#define KILN_VALIDATE_SIMULATE_H

#include <jansson.h>

#include "core/err.h"
#include "validate/thresholds.h"

typedef struct kiln_validate_sim_opts {
    const char *node;               /* "node" of the document; NULL: "simulated-node" */
    const char *requested;          /* the accelerator name as asked for; NULL: acc->name */
    int gpus;                       /* GPUs to simulate, 1..64; 0 means 1 */
    const char *const *checks;      /* checks to produce, NULL-terminated; NULL: all six */
    const char *const *fail_checks; /* checks whose last GPU fails; NULL: none */
} kiln_validate_sim_opts;

/* Builds a simulated measured document for acc (borrowed) into *out (new
 * reference). KILN_EINVAL for a GPU count out of range or an unknown check
 * name in checks or fail_checks. opts may be NULL. */
int kiln_validate_simulate(json_t **out, const kiln_threshold_accel *acc,
                           const kiln_validate_sim_opts *opts, kiln_err *err);

#endif
