/* core/utf8.c: UTF-8 decoding, cleaning and counting (see core/utf8.h). */
#include "core/utf8.h"

#include <string.h>

size_t kiln_utf8_decode(uint32_t *cp, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned char c;
    size_t len;
    uint32_t v;
    if (n == 0)
        return 0;
    c = u[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2;
        v = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        v = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if (!kiln_utf8_is_continuation(u[k]))
            return 0;
        v = (v << 6) | (u[k] & 0x3F);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are invalid too. */
    if ((len == 2 && v < 0x80) || (len == 3 && v < 0x800) || (len == 4 && v < 0x10000) ||
        v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

void kiln_utf8_clean(char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = kiln_utf8_decode(&cp, s + i, n - i);
        if (k == 0) {
            s[i++] = '?';
            continue;
        }
        i += k;
    }
}

size_t kiln_utf8_count(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (!kiln_utf8_is_continuation((unsigned char)*s))
            n++;
    return n;
}
