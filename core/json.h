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
 * 64 bits are errors, not silently rounded. Depth is capped at 128.
 * Trailing text and duplicate object keys are errors; "\u0000" is allowed. */
int kiln_json_load(json_t **out, const char *text, size_t len, kiln_err *err);

/* Appends doc (borrowed) as JSON text, any value (scalars too), without a
 * trailing newline. Reals keep a fraction and use the shortest form that
 * reads back exactly (1.0, 0.1). Unsorted output keeps insertion order.
 * KILN_ELIMIT past 1,000 levels of nesting (or a cycle). */
int kiln_json_dump(kiln_buf *out, const json_t *doc, int flags, kiln_err *err);

/* Canonical form: compact, keys sorted, no trailing newline. New string, or
 * NULL when doc is NULL or nests deeper than 1,000 levels (or is cyclic). */
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

/* Longest text kiln_json_format_real writes, NUL included. */
#define KILN_JSON_REAL_MAX 32

/* Writes d (finite) in the shortest form that reads back as the same double,
 * keeping it a real: 1.0 -> "1.0", 0.1 -> "0.1", 1e300 -> "1e+300". */
void kiln_json_format_real(char out[KILN_JSON_REAL_MAX], double d);

/* Appends s (n bytes, may hold NUL) as a JSON string literal with quotes. */
int kiln_json_write_string(kiln_buf *out, const char *s, size_t n, kiln_err *err);

/* The keys of obj (borrowed) in byte order: a new array of n borrowed key
 * pointers, valid while obj is unchanged. Free the array with kiln_xfree. A
 * key's length is json_object_iter_key_len(json_object_key_to_iter(key)). */
const char **kiln_json_sorted_keys(size_t *n, const json_t *obj);

#endif
