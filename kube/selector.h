/* kube/selector.h: Kubernetes label selectors, parsed and matched locally.
 *
 * The grammar is the API server's (apimachinery labels.Parse): requirements
 * joined by commas, each one of `k=v`, `k==v`, `k!=v`, `k in (a,b)`,
 * `k notin (a,b)`, `k` (exists) or `!k` (does not exist). Informer caches use
 * it to answer "list by label" without a request. The selector owns its
 * strings.
 */
#ifndef KILN_KUBE_SELECTOR_H
#define KILN_KUBE_SELECTOR_H

#include <jansson.h>
#include <stdbool.h>

#include "core/err.h"

typedef struct kiln_kube_selector kiln_kube_selector;

/* *out is new (kiln_kube_selector_free). An empty text selects everything. */
int kiln_kube_selector_parse(kiln_kube_selector **out, const char *text, kiln_err *err);
/* labels: the metadata.labels object (borrowed), or NULL for none. */
bool kiln_kube_selector_matches(const kiln_kube_selector *sel, const json_t *labels);
void kiln_kube_selector_free(kiln_kube_selector *sel);

#endif
