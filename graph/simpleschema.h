/* graph/simpleschema.h: SimpleSchema (kro's short field grammar) -> OpenAPI v3.
 *
 * An RGD declares the spec of its kind as a map whose leaves are declarations
 * such as `integer | default=1 minimum=0` and whose nested maps are objects.
 * This module turns that map, plus the named custom types of
 * spec.schema.types, into a structural OpenAPI v3 schema that a CRD can carry.
 * docs/simpleschema.md is the user reference (grammar, types, markers, default
 * propagation, differences from kro).
 *
 * Errors: every problem is appended to errs (may be NULL), each message
 * starting with the full path of the field, built from the caller's prefix:
 * `spec.schema.spec.replicas: unknown marker "minimun"`. Problems inside a
 * custom type are reported once, where the type is defined: under
 * "spec.schema.types.<Name>" when path starts with "spec.schema.", else under
 * "types.<Name>"; fields using a broken type add nothing. Functions return 0
 * or the first error's code (KILN_EINVAL; KILN_ELIMIT when a bound is hit)
 * and then leave *out NULL.
 *
 * Ownership: inputs are borrowed for the call; *out is a new reference.
 */
#ifndef KILN_GRAPH_SIMPLESCHEMA_H
#define KILN_GRAPH_SIMPLESCHEMA_H

#include <jansson.h>
#include <stdbool.h>

#include "core/err.h"

/* Most levels of []/map[string] nesting in one type expression (as kro). */
#define KILN_SIMPLESCHEMA_MAX_TYPE_DEPTH 16
/* Most schema levels (objects, arrays, maps nested in each other) in one
 * result, counting custom types expanded inline. */
#define KILN_SIMPLESCHEMA_MAX_DEPTH 64
/* Most schema nodes one conversion may produce: custom types are expanded
 * inline, so types that use each other twice per level grow exponentially. */
#define KILN_SIMPLESCHEMA_MAX_NODES 100000

/* Converts spec (a JSON object: field name -> declaration string or nested
 * object) into *out, an OpenAPI schema {"type": "object", "properties": ...,
 * "required": [sorted]} (plus "default": {} when propagation applies). types
 * (may be NULL) maps custom type names to an alias declaration string or a
 * struct map; every type is checked (used or not), in dependency order;
 * cycles are errors naming the cycle ("cyclic dependency in types: A -> B ->
 * A"). path prefixes every message ("spec.schema.spec"; NULL or "" for
 * none). */
int kiln_simpleschema_to_openapi(json_t **out, const json_t *spec, const json_t *types,
                                 const char *path, kiln_errs *errs);

/* Converts one declaration ("integer | default=1 minimum=0", "[]string",
 * "map[string]MyType | required=true") into *out. *required (may be NULL) is
 * set to whether the declaration (or the custom type it names) is marked
 * required=true; the parent object lists it, so the schema itself carries no
 * "required". path names the field in messages ("spec.schema.spec.replicas").
 * Also used for the type prefix of a status projection
 * (`available: integer | ${...}`): pass only the part before the expression.
 * Only the custom types decl uses are resolved; what is wrong with the types
 * map itself (not a map, invalid names) is left to
 * kiln_simpleschema_to_openapi, which reports it once. */
int kiln_simpleschema_field(json_t **out, bool *required, const char *decl, const json_t *types,
                            const char *path, kiln_errs *errs);

#endif
