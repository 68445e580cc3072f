/* core/yaml.h: YAML <-> JSON (libyaml <-> jansson) with Kubernetes semantics.
 *
 * jansson's json_t is kiln's one document model; YAML is converted at the edges.
 * Scalars resolve as Kubernetes' YAML reader (sigs.k8s.io/yaml) does for the
 * cases that matter: integers stay exact 64-bit integers, `1.0` is a real,
 * quoted scalars (`"1.0"`, `"0755"`, `"true"`) are strings, `~`/`null`/empty
 * are null, `{}` and `[]` keep their shapes. Anchors and aliases are expanded
 * (bounded, against "billion laughs"); tags other than the core ones are errors.
 * Errors name the source, line and column: `rgd.yaml:12:5: ...`.
 *
 * Output is deterministic: object keys sorted, two-space indent, strings quoted
 * whenever a plain scalar would read back as something else.
 */
#ifndef KILN_CORE_YAML_H
#define KILN_CORE_YAML_H

#include <jansson.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"

typedef struct kiln_yaml_limits {
    size_t max_depth;     /* nesting of maps and lists; default 128 */
    size_t max_nodes;     /* scalars + collections after alias expansion; default 4,000,000 */
    size_t max_documents; /* default 10,000 */
} kiln_yaml_limits;

/* Parses every document of text (len bytes, need not be NUL-terminated) into
 * *out, a new JSON array with one element per non-empty document. source names
 * the input in messages ("rgd.yaml"; NULL means "<input>"). limits may be NULL. */
int kiln_yaml_load(json_t **out, const char *text, size_t len, const char *source,
                   const kiln_yaml_limits *limits, kiln_err *err);

/* Reads and parses a file ("-" is stdin). */
int kiln_yaml_load_file(json_t **out, const char *path, const kiln_yaml_limits *limits,
                        kiln_err *err);

/* Appends one document (borrowed) as YAML, without a leading "---". */
int kiln_yaml_dump(kiln_buf *out, const json_t *doc, kiln_err *err);

/* Appends every element of the array docs as a YAML stream, "---" between. */
int kiln_yaml_dump_all(kiln_buf *out, const json_t *docs, kiln_err *err);

#endif
