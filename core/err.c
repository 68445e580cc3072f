#include "core/err.h"

#include <stdio.h>
#include <string.h>

#include "core/mem.h"

int kiln_err_vset(kiln_err *err, int code, const char *fmt, va_list ap)
{
    if (err) {
        err->code = code;
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
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
    char prefix[KILN_ERR_MSG_MAX];
    char old[KILN_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
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
