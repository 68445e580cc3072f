#include "core/err.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"

void kiln_utf8_clean(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t len = *p < 0x80         ? 1
                     : (*p >> 5) == 6  ? 2
                     : (*p >> 4) == 14 ? 3
                     : (*p >> 3) == 30 ? 4
                                       : 0;
        unsigned long cp = len == 1   ? *p
                           : len == 2 ? *p & 0x1Fu
                           : len == 3 ? *p & 0x0Fu
                                      : *p & 0x07u;
        size_t i = 1;
        for (; len && i < len && (p[i] & 0xC0) == 0x80; i++)
            cp = (cp << 6) | (p[i] & 0x3Fu);
        /* Overlong forms, surrogates and values past U+10FFFF are invalid too. */
        bool ok = len && i == len &&
                  (len == 1 || (len == 2 && cp >= 0x80) ||
                   (len == 3 && cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) ||
                   (len == 4 && cp >= 0x10000 && cp <= 0x10FFFF));
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += len;
    }
}

int kiln_err_vset(kiln_err *err, int code, const char *fmt, va_list ap)
{
    if (err) {
        err->code = code;
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        kiln_utf8_clean(err->msg);
    }
    return code;
}

int kiln_err_set(kiln_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kiln_err_vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

void kiln_err_prefix(kiln_err *err, const char *fmt, ...)
{
    if (!err)
        return;
    char old[KILN_ERR_MSG_MAX];
    memcpy(old, err->msg, sizeof(old));
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    /* Append ": <old message>" to whatever of the prefix fit. */
    size_t used = n < 0 ? 0 : (size_t)n < sizeof(err->msg) ? (size_t)n : sizeof(err->msg) - 1;
    size_t room = sizeof(err->msg) - used;
    if (room > 1) {
        size_t sep = room > 2 ? 2 : room - 1;
        memcpy(err->msg + used, ": ", sep);
        used += sep;
        room -= sep;
        size_t k = strnlen(old, room - 1);
        memcpy(err->msg + used, old, k);
        used += k;
    }
    err->msg[used] = '\0';
    kiln_utf8_clean(err->msg);
}

void kiln_err_clear(kiln_err *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}

const char *kiln_err_name(int code)
{
    switch (code) {
    case KILN_OK:
        return "OK";
    case KILN_EINVAL:
        return "EINVAL";
    case KILN_ENOTFOUND:
        return "ENOTFOUND";
    case KILN_ECONFLICT:
        return "ECONFLICT";
    case KILN_ELIMIT:
        return "ELIMIT";
    case KILN_ESCRIPT:
        return "ESCRIPT";
    case KILN_EIO:
        return "EIO";
    case KILN_ETIMEOUT:
        return "ETIMEOUT";
    case KILN_ENOMEM:
        return "ENOMEM";
    case KILN_EPENDING:
        return "EPENDING";
    }
    return "EUNKNOWN";
}

static kiln_err *errs_grow(kiln_errs *errs)
{
    if (errs->len == errs->cap) {
        errs->cap = errs->cap ? errs->cap * 2 : 8;
        errs->items = kiln_xrealloc(errs->items, errs->cap * sizeof(*errs->items));
    }
    return &errs->items[errs->len++];
}

int kiln_errs_add(kiln_errs *errs, int code, const char *fmt, ...)
{
    kiln_err *e = errs_grow(errs);
    va_list ap;
    va_start(ap, fmt);
    kiln_err_vset(e, code, fmt, ap);
    va_end(ap);
    return code;
}

void kiln_errs_push(kiln_errs *errs, const kiln_err *err)
{
    *errs_grow(errs) = *err;
}

int kiln_errs_code(const kiln_errs *errs)
{
    return errs->len ? errs->items[0].code : 0;
}

void kiln_errs_free(kiln_errs *errs)
{
    if (!errs)
        return;
    kiln_xfree(errs->items);
    errs->items = NULL;
    errs->len = errs->cap = 0;
}
