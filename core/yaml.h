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
 * Details that follow go-yaml v2 under sigs.k8s.io/yaml: YAML 1.1 booleans
 * (yes/no/on/off/y/n in their three spellings), Go integer syntax (`0755` is
 * octal 493, `0x`, `0o`, `0b`, signs, underscores dropped), timestamps stay
 * strings, non-string keys become strings (`1: a` -> "1", `true: x` ->
 * "true"), a null key is an error. Stricter than it: integers beyond int64,
 * `.inf`/`.nan` values and duplicate keys are errors (KILN_EINVAL). Merge keys
 * (`<<`) apply as go-yaml v2 applies them, so kiln reads a file as kubectl
 * does: in document order, a merge overrides keys written before it and keys
 * written after it override merged ones; in `<<: [*a, *b]` the earlier map
 * wins. Alias expansion is bounded by max_nodes and by go-yaml's aliasing
 * ratio ("excessive aliasing"), both KILN_ELIMIT; each alias is a deep copy.
 *
 * Output is deterministic: object keys sorted bytewise, two-space indent,
 * block style, sequences at their key's column as kubectl writes them
 * (`containers:\n- name: x`), `{}` and `[]` inline, multi-line strings as
 * literal blocks (`|`, `|-`) when that is exact, and strings double-quoted
 * (JSON-style escapes) whenever a plain scalar would read back as something
 * else. Reals always read back as reals (`1.0`). For every JSON value,
 * loading the dump gives the value back (kiln_json_equal).
 */
#ifndef KILN_CORE_YAML_H
#define KILN_CORE_YAML_H

#include <jansson.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"

/* A zero field means its default. */
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
