/* core/utf8.h: UTF-8 text as the API server and JSON see it.
 *
 * Strict decoding (no overlong forms, no surrogates, nothing past U+10FFFF),
 * the cleaning every kiln_err setter applies, and character counts for
 * lengths and columns. Nothing here allocates; strings are borrowed.
 */
#ifndef KILN_CORE_UTF8_H
#define KILN_CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decodes the one sequence at the start of s (n bytes available) into *cp.
 * Returns its length in bytes (1 to 4), or 0 when it is invalid or cut short. */
size_t kiln_utf8_decode(uint32_t *cp, const char *s, size_t n);

/* Replaces every byte of s that is not part of a valid UTF-8 sequence with '?'.
 * Messages quote user input clipped at a byte count and end up in JSON status
 * conditions, which must be valid UTF-8; every kiln_err setter applies it. */
void kiln_utf8_clean(char *s);

/* True for a continuation byte (10xxxxxx), which does not start a character. */
static inline bool kiln_utf8_is_continuation(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

/* Characters in s, counting every byte that is not a continuation byte (a
 * stray byte counts as one character, as in the API server's length checks). */
size_t kiln_utf8_count(const char *s);

#endif
