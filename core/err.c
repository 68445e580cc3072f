#include "core/err.h"

#include <stdio.h>
#include <string.h>

#include "core/mem.h"

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

int kiln_errs_vadd_at(kiln_errs *errs, int code, const char *path, const char *fmt, va_list ap)
{
    if (!errs)
        return code;
    kiln_err *e = errs_grow(errs);
    size_t n = 0;
    e->code = code;
    e->msg[0] = '\0';
    if (path && path[0])
        n = (size_t)snprintf(e->msg, sizeof(e->msg), "%s: ", path);
    if (n < sizeof(e->msg))
        vsnprintf(e->msg + n, sizeof(e->msg) - n, fmt, ap);
    kiln_utf8_clean(e->msg);
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
