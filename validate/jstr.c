#include "validate/jstr.h"

#include <string.h>

#include "core/mem.h"

/* Length of the longest prefix of s (at most n bytes) that is valid UTF-8. */
static size_t valid_prefix(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        if (c < 0x80)
            len = 1;
        else if (c >= 0xc2 && c <= 0xdf)
            len = 2;
        else if (c >= 0xe0 && c <= 0xef)
            len = 3;
        else if (c >= 0xf0 && c <= 0xf4)
            len = 4;
        else
            break;
        if (i + len > n)
            break;
        size_t k;
        for (k = 1; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                break;
        if (k < len)
            break;
        i += len;
    }
    return i;
}

json_t *kiln_validate_jstr(const char *s)
{
    if (!s)
        return json_string("");
    size_t n = valid_prefix((const unsigned char *)s, strlen(s));
    json_t *j = json_stringn(s, n);
    /* Overlong forms and surrogates pass the cheap check above but not
     * jansson's; an empty string is better than a missing field. */
    return j ? j : json_string("");
}

json_t *kiln_validate_jstr_max(const char *s, size_t max)
{
    if (!s)
        return json_string("");
    size_t len = strlen(s);
    if (len <= max || max < 4)
        return kiln_validate_jstr(s);
    size_t keep = valid_prefix((const unsigned char *)s, max - 3);
    char *tmp = kiln_xmalloc(keep + 4);
    memcpy(tmp, s, keep);
    memcpy(tmp + keep, "...", 4);
    json_t *j = kiln_validate_jstr(tmp);
    kiln_xfree(tmp);
    return j;
}
