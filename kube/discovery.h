/* kube/discovery.h: what the API server serves, and the schemas of its kinds.
 *
 * Discovery maps apiVersion + kind to the resource to request (plural name,
 * scope, verbs, subresources). /api and /apis are asked for aggregated
 * discovery (apidiscovery.k8s.io/v2: everything in two requests); a server
 * that answers with the legacy documents is read the legacy way (/api/v1 and
 * every /apis/<g>/<v>), as client-go decides by the reply's Content-Type.
 * The map is cached; a kind
 * that is not in it triggers a refresh (new CRDs appear this way), at most once
 * per min_refresh_ms so a typo cannot hammer the server.
 *
 * OpenAPI v3 documents (/openapi/v3, then one document per group-version at
 * its hash URL) are cached by that URL: a hash names immutable content, so a
 * cached document is never fetched again.
 *
 * The discovery cache borrows its client; it is thread-safe.
 */
#ifndef KILN_KUBE_DISCOVERY_H
#define KILN_KUBE_DISCOVERY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "kube/client.h"

enum {
    KILN_KUBE_VERB_GET = 1 << 0,
    KILN_KUBE_VERB_LIST = 1 << 1,
    KILN_KUBE_VERB_WATCH = 1 << 2,
    KILN_KUBE_VERB_CREATE = 1 << 3,
    KILN_KUBE_VERB_UPDATE = 1 << 4,
    KILN_KUBE_VERB_PATCH = 1 << 5,
    KILN_KUBE_VERB_DELETE = 1 << 6,
    KILN_KUBE_VERB_DELETECOLLECTION = 1 << 7,
};

typedef struct kiln_kube_resource_info {
    char group[254]; /* "" for the core group */
    char version[64];
    char resource[254]; /* plural: "deployments" */
    char kind[128];
    bool namespaced;
    unsigned verbs; /* KILN_KUBE_VERB_* bits */
    bool has_status;
    bool has_scale;
} kiln_kube_resource_info;

typedef struct kiln_kube_discovery kiln_kube_discovery;

typedef struct kiln_kube_discovery_opts {
    long min_refresh_ms;   /* 0: 10 s between refreshes caused by misses */
    kiln_kube_clock clock; /* zero: the system clock */
} kiln_kube_discovery_opts;

/* *out is new (kiln_kube_discovery_free). c borrowed; opts may be NULL.
 * Nothing is fetched until the first lookup. */
kiln_kube_discovery *kiln_kube_discovery_new(kiln_kube_client *c,
                                             const kiln_kube_discovery_opts *opts);
void kiln_kube_discovery_free(kiln_kube_discovery *d);

/* Fetches the map now. With legacy discovery a group-version that fails (an
 * aggregated API that is down) is skipped with a warning; /api or /apis
 * failing fails. */
int kiln_kube_discovery_refresh(kiln_kube_discovery *d, kiln_err *err);

/* Resolves api_version ("v1", "apps/v1") and kind into *out. A miss refreshes
 * once (rate-limited) before failing with KILN_ENOTFOUND. */
int kiln_kube_discovery_resolve(kiln_kube_resource_info *out, kiln_kube_discovery *d,
                                const char *api_version, const char *kind, kiln_err *err);

/* Resolves group ("" for core), version and resource (the plural) into *out:
 * the reverse lookup, for callers that hold a resource and need its scope.
 * A miss refreshes once (rate-limited) before failing with KILN_ENOTFOUND. */
int kiln_kube_discovery_resolve_resource(kiln_kube_resource_info *out, kiln_kube_discovery *d,
                                         const char *group, const char *version,
                                         const char *resource, kiln_err *err);

/* The OpenAPI v3 document of group/version (group "" for core): a new
 * reference to the cached document (do not modify). */
int kiln_kube_openapi_document(json_t **out, kiln_kube_discovery *d, const char *group,
                               const char *version, kiln_err *err);

/* The schema of kind in an OpenAPI v3 document, found by its
 * x-kubernetes-group-version-kind extension (names differ for CRDs): a borrowed
 * reference into doc, or NULL. */
json_t *kiln_kube_openapi_find_kind(const json_t *doc, const char *group, const char *version,
                                    const char *kind);

#endif
