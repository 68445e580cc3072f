/* controller/leader.h: leader election with a coordination.k8s.io/v1 Lease.
 *
 * client-go's algorithm with controller-runtime's timings: lease duration
 * 15 s, renew deadline 10 s, retry period 2 s. A candidate takes the Lease
 * when it does not exist, is held by nobody, or its holder has not renewed it
 * for a lease duration as measured on this process's own clock since the
 * record last changed (immune to clock skew). The leader renews every retry
 * period; failing to renew for the renew deadline loses leadership, after
 * which the process must stop reconciling. Writes are optimistic (PUT with
 * resourceVersion), so two candidates never both win. On stop a leader
 * releases the Lease (holder "", duration 1 s) so a successor takes over at
 * once.
 *
 * The elector runs on its own thread; the client is borrowed.
 */
#ifndef KILN_CONTROLLER_LEADER_H
#define KILN_CONTROLLER_LEADER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "kube/client.h"

#define KILN_LEADER_LEASE_S 15
#define KILN_LEADER_RENEW_DEADLINE_MS 10000
#define KILN_LEADER_RETRY_MS 2000

typedef struct kiln_leader kiln_leader;

/* Starts campaigning for Lease ns/name as identity (strings copied). *out is
 * new (kiln_leader_stop). */
int kiln_leader_start(kiln_leader **out, kiln_kube_client *c, const char *ns, const char *name,
                      const char *identity, kiln_err *err);
bool kiln_leader_is_leader(kiln_leader *l);
/* True once this process was leader and failed to renew in time. */
bool kiln_leader_lost(kiln_leader *l);
/* Stops campaigning, releases the Lease if held, frees l. NULL allowed. */
void kiln_leader_stop(kiln_leader *l);

/* The decision at the heart of the algorithm, for tests: may identity take
 * (or keep) the Lease spec (borrowed, may be NULL) at now_ms, given that the
 * record was last seen to change at observed_ms? */
bool kiln_leader_can_acquire(const json_t *spec, const char *identity, int64_t observed_ms,
                             int64_t now_ms);

#endif
