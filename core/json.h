/* core/json.h: JSON text in and out, bounded and deterministic, plus small
 * helpers for walking documents by path.
 */
#ifndef KILN_CORE_JSON_H
#define KILN_CORE_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"

enum {
    KILN_JSON_PRETTY = 1 << 0, /* two-space indent, one member per line */
    KILN_JSON_SORTED = 1 << 1, /* object keys in byte order */
};

/* Parses exactly one JSON value (new reference in *out). Integers beyond
 * 64 bits are errors, not silently rounded. Depth is capped at 128. */
int kiln_json_load(json_t **out, const char *text, size_t len, kiln_err *err);

/* Appends doc (borrowed) as JSON text. */
int kiln_json_dump(kiln_buf *out, const json_t *doc, int flags, kiln_err *err);

/* Canonical form: compact, keys sorted, no trailing newline. New string. */
char *kiln_json_canonical(const json_t *doc);

/* Follows a dotted path ("metadata.labels") through objects; borrowed result
 * or NULL. Path segments cannot contain dots; use json_object_get for those. */
json_t *kiln_json_get_path(const json_t *doc, const char *path);
/* The string at path, or NULL when absent or not a string. Borrowed. */
const char *kiln_json_get_string(const json_t *doc, const char *path);

/* Deep equality where 1 and 1.0 differ (Kubernetes does not coerce). */
bool kiln_json_equal(const json_t *a, const json_t *b);

/* "object", "array", "string", "integer", "number", "boolean", "null". */
const char *kiln_json_type_name(const json_t *v);

#endif
