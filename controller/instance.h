/* controller/instance.h: the instance reconciler's pure parts, for tests.
 *
 * The reconcile itself (kiln_instance_reconcile, controller/internal.h)
 * follows DESIGN.md section 3; these helpers decide what it sends.
 */
#ifndef KILN_CONTROLLER_INSTANCE_H
#define KILN_CONTROLLER_INSTANCE_H

#include <jansson.h>
#include <stdbool.h>

#include "core/hash.h"

/* Makes a rendered object (modified in place) a child of instance (borrowed):
 * kiln's labels (managed-by, instance uid/name/namespace, rgd, node), GitOps
 * tracking labels and annotations and kiln.dev/ annotations (the
 * instance's inventory, suspend) removed, a controller ownerReference when
 * owner is true; then stamps kiln.dev/applied-hash with the hash of the
 * result (computed before the annotation is added) into hash. */
void kiln_instance_decorate(json_t *obj, const json_t *instance, const char *rgd, const char *node,
                            bool owner, char hash[KILN_SHA256_HEX_LEN + 1]);

/* True for label and annotation keys of GitOps tools that must never reach a
 * child (argocd.argoproj.io/, kubectl.kubernetes.io/, kustomize.toolkit.fluxcd.io/,
 * meta.helm.sh/, applyset.kubernetes.io/). app.kubernetes.io/instance is
 * not one: decorate drops it only when it equals the instance's own. */
bool kiln_instance_tracking_key(const char *key);

/* Whether a child in child_ns (NULL/"" for cluster-scoped) may carry a
 * controller ownerReference to instance: only a namespaced instance, and
 * only in its own namespace (the API server ignores anything else and its
 * garbage collector may delete the child). */
bool kiln_instance_owner_allowed(const json_t *instance, const char *child_ns);

/* The hash-skip decision: the cached child (borrowed, may be NULL) already
 * carries applied-hash == hash and is not being deleted. */
bool kiln_instance_up_to_date(const json_t *cached, const char *hash);

/* "suspended" in kiln.dev/reconcile (case-insensitive). */
bool kiln_instance_suspended(const json_t *instance);

#endif
