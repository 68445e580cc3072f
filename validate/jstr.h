/* validate/jstr.h: JSON strings from text that may have been cut short.
 *
 * Reasons are formatted into fixed buffers, so a long product or node name can
 * be cut in the middle of a UTF-8 sequence, and jansson refuses such a string
 * (json_string returns NULL, and the field would silently vanish). These
 * helpers keep the valid prefix instead.
 */
#ifndef KILN_VALIDATE_JSTR_H
#define KILN_VALIDATE_JSTR_H

#include <jansson.h>
#include <stddef.h>

/* A new JSON string holding the longest valid UTF-8 prefix of s (NULL: ""). */
json_t *kiln_validate_jstr(const char *s);

/* Like kiln_validate_jstr, but keeps at most max bytes; a cut string ends in
 * "...". max must be at least 4. */
json_t *kiln_validate_jstr_max(const char *s, size_t max);

#endif
