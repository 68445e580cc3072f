/* core/schema.h: validation, defaulting and pruning of a JSON value against an
 * OpenAPI v3 structural schema, as the Kubernetes API server does for custom
 * resources.
 *
 * The dev cluster runs these on every custom resource write (prune, then
 * default, then validate, the API server's order) and turns the errors into a
 * 422 Status whose details.causes are the kiln_schema_error items; the
 * controller uses them to check rendered objects. Messages have the API
 * server's shapes (k8s.io/apimachinery field.Error and kube-openapi):
 *
 *   spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"
 *   spec.name: Required value
 *   spec.mode: Unsupported value: "x": supported values: "a", "b"
 *
 * Supported keywords: type (integer vs number: an integer, or a real with an
 * integral value, is a valid integer; any number is a valid number), nullable,
 * required, enum, minimum/maximum (+ exclusiveMinimum/exclusiveMaximum),
 * multipleOf, pattern (see kiln_schema_regcomp; a pattern kiln cannot compile
 * is not enforced), minLength/maxLength (counted in runes), minItems/maxItems,
 * uniqueItems, minProperties/maxProperties, properties, additionalProperties
 * (schema or bool), items,
 * x-kubernetes-preserve-unknown-fields, x-kubernetes-int-or-string,
 * x-kubernetes-list-type (set / map with x-kubernetes-list-map-keys: duplicates
 * are errors), x-kubernetes-embedded-resource (apiVersion and kind required;
 * apiVersion, kind and metadata kept by pruning). Not evaluated:
 * x-kubernetes-validations (CEL rules: kiln has no CEL), format, allOf/anyOf/
 * oneOf/not. Array items use Kubernetes field paths (`spec.ports[1].name`).
 * Bad values print as Go prints JSON-decoded data (strings quoted, numbers
 * bare, null as "null"), except objects and arrays, which print as compact
 * JSON; too-long strings read "Too long: may not be longer than N" (the
 * wording of Kubernetes before 1.30).
 *
 * Ownership: values and schemas are borrowed; errors appended to a
 * kiln_schema_errors are owned by it (kiln_schema_errors_free).
 */
#ifndef KILN_CORE_SCHEMA_H
#define KILN_CORE_SCHEMA_H

#include <jansson.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

/* Causes of a 422 Invalid Status (metav1.CauseType values). */
#define KILN_SCHEMA_INVALID "FieldValueInvalid"
#define KILN_SCHEMA_TYPE_INVALID "FieldValueTypeInvalid"
#define KILN_SCHEMA_REQUIRED "FieldValueRequired"
#define KILN_SCHEMA_NOT_SUPPORTED "FieldValueNotSupported"
#define KILN_SCHEMA_DUPLICATE "FieldValueDuplicate"
#define KILN_SCHEMA_TOO_LONG "FieldValueTooLong"
#define KILN_SCHEMA_TOO_MANY "FieldValueTooMany"

typedef struct kiln_schema_error {
    char *field;        /* owned: "spec.replicas", "spec.ports[1].name"; "" for the root */
    const char *reason; /* static: one of the KILN_SCHEMA_* causes above */
    char *message;      /* owned: the cause message, without the field:
                           `Invalid value: "string": spec.replicas in body must be ...` */
} kiln_schema_error;

typedef struct kiln_schema_errors {
    kiln_schema_error *items; /* owned, in the order found (see kiln_schema_validate) */
    size_t len;
    size_t cap;
} kiln_schema_errors;

/* Compiles an OpenAPI "pattern" into re. Kubernetes evaluates patterns with
 * Go's RE2; kiln uses POSIX extended expressions (regcomp) and translates RE2
 * first: \d \D \s \S \w \W become classes (also inside [...]), \t \n \r \f
 * \v \a \xHH become the character, an escaped punctuation character becomes
 * that literal character, \b \B stay word boundaries, (?: ...) becomes a
 * plain group, a leading (?i) sets REG_ICASE, and ] - ^ escaped inside [...]
 * move where POSIX reads them literally. Any other escaped letter or digit
 * (\A \z \pL \Q \1 ...) is refused ("unsupported escape \A"), and RE2-only
 * groups ((?P<n>...)) fail in regcomp. Returns 0 (the caller calls
 * regfree(re)), or KILN_EINVAL with the reason in why (why_len bytes; why may
 * be NULL). */
int kiln_schema_regcomp(regex_t *re, const char *pattern, char *why, size_t why_len);

/* Frees the items and empties the list (it can be reused). Accepts NULL. */
void kiln_schema_errors_free(kiln_schema_errors *errs);

/* "field: message" of one error, as the API server prints a field.Error.
 * New string. */
char *kiln_schema_error_string(const kiln_schema_error *e);

/* The message of a 422 Status, as the API server writes it (new string):
 * `<kind> "<name>" is invalid: <error>` for one error and
 * `<kind> "<name>" is invalid: [<error>, <error>]` for several. kind is the
 * qualified kind ("WebApp.kiln.dev"), name the object's name; both borrowed. */
char *kiln_schema_errors_format(const kiln_schema_errors *errs, const char *kind, const char *name);

/* Validates value against schema; appends every problem to out (may be NULL to
 * only ask). root_path prefixes the field paths ("spec" when validating the
 * spec alone; NULL or "" at the root). Order: at each object, type problems,
 * then required fields in the schema's order, then properties in key order;
 * arrays by index. Returns 0 when valid, KILN_EINVAL when anything was
 * appended. */
int kiln_schema_validate(const json_t *value, const json_t *schema, const char *root_path,
                         kiln_schema_errors *out);

/* Applies defaults in place, as the API server does: a missing property with
 * a default gets a deep copy of it, recursively (inside newly defaulted
 * objects too), in array items and additionalProperties values. A null where
 * the schema is not nullable is replaced by the default, or removed when
 * there is none. */
void kiln_schema_default(json_t *value, const json_t *schema);

/* Drops object members the schema does not declare, unless an object has
 * x-kubernetes-preserve-unknown-fields (pruning resumes inside the
 * properties it does declare) or additionalProperties. resource_root: value is
 * a whole object, so apiVersion, kind and metadata are kept at the top (as in
 * an x-kubernetes-embedded-resource). */
void kiln_schema_prune(json_t *value, const json_t *schema, bool resource_root);

#endif
