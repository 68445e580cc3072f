/* graph/compat.h: is a new CRD schema a breaking change for stored objects?
 *
 * When an RGD changes, kiln compares the OpenAPI schema of the old and the new
 * CRD version and refuses a change that would make existing instances invalid
 * or lose data, unless the RGD is annotated
 * kiln.dev/allow-breaking-changes: "true" (DESIGN.md section 2).
 *
 * Breaking: a removed property; a changed type (also of items and of
 * additionalProperties values); a new required field or a field becoming
 * required; an enum value removed, or an enum added to a field that had none;
 * a bound tightened (minimum up, maximum down, exclusive bound set,
 * minLength/minItems/minProperties up, maxLength/maxItems/maxProperties down,
 * a bound added where there was none, multipleOf set or changed); a pattern
 * added or changed; a type set where there was none;
 * x-kubernetes-preserve-unknown-fields, x-kubernetes-int-or-string, nullable
 * or additionalProperties removed; a list becoming a set or a map (or
 * uniqueItems added), or a map list's keys changed. Once a node's type
 * changed, nothing below it is compared.
 * Not breaking: new optional properties, enum values added, an enum removed,
 * description or default changes, a field no longer required, bounds loosened
 * or removed, a pattern removed.
 */
#ifndef KILN_GRAPH_COMPAT_H
#define KILN_GRAPH_COMPAT_H

#include <jansson.h>

#include "core/err.h"

/* Compares old_schema with new_schema (both borrowed OpenAPI schemas: a CRD
 * version's openAPIV3Schema, or the spec part of it) and appends one
 * KILN_EINVAL error per breaking change to out (may be NULL), each starting
 * with the field path relative to the schema root, array items written as
 * "[*]" and map values as "[*]" too:
 *   `spec.replicas: type changed from integer to string`
 *   `spec.mode: enum value "b" removed`
 *   `spec.name: property removed`
 * Changes are reported in a stable order (properties in key order). Returns
 * the number of breaking changes found (>= 0), or KILN_EINVAL when an input is
 * not an object. */
int kiln_crd_breaking_changes(kiln_errs *out, const json_t *old_schema, const json_t *new_schema);

#endif
