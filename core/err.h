/* core/err.h: kiln's error type.
 *
 * A function that can fail returns 0 or a negative KILN_E* code and writes a
 * reason into a caller-owned kiln_err passed last (NULL allowed). The message is
 * written for the person who will read it in a status condition or on stderr:
 * it names the place (`resources[2].template.spec.replicas: ...`).
 *
 * kiln_errs is a growable list of errors, for passes that report every problem
 * (lint, schema validation) instead of stopping at the first. It owns its items.
 *
 * Every setter cleans the message with kiln_utf8_clean (core/utf8.h): messages
 * quote user input and end up in JSON, which must be valid UTF-8.
 */
#ifndef KILN_CORE_ERR_H
#define KILN_CORE_ERR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/utf8.h"

enum {
    KILN_OK = 0,
    KILN_EINVAL = -1,    /* bad input: a user's file, an API body, a flag */
    KILN_ENOTFOUND = -2, /* the thing asked for does not exist */
    KILN_ECONFLICT = -3, /* someone else changed it or owns it */
    KILN_ELIMIT = -4,    /* a bound was hit: size, depth, instruction budget, memory */
    KILN_ESCRIPT = -5,   /* a Lua expression or script failed */
    KILN_EIO = -6,       /* file, socket or HTTP failure */
    KILN_ETIMEOUT = -7,  /* a deadline passed */
    KILN_ENOMEM = -8,    /* an allocation sized by outside input failed */
    KILN_EPENDING = -9,  /* data not available yet: retry when it arrives */
};

/* Long enough for an API server's 422 with its field causes, which users
 * read in a Stalled condition; 256 cut them mid-word. */
#define KILN_ERR_MSG_MAX 1024

typedef struct kiln_err {
    int code;
    char msg[KILN_ERR_MSG_MAX];
} kiln_err;

/* Stores code and the formatted message in err (if not NULL); returns code. */
int kiln_err_set(kiln_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int kiln_err_vset(kiln_err *err, int code, const char *fmt, va_list ap);

/* Prepends "<formatted>: " to err->msg, for facts the callee could not know
 * (a file name, an object key, a field path). No-op when err is NULL. */
void kiln_err_prefix(kiln_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void kiln_err_clear(kiln_err *err);

/* "EINVAL", "ELIMIT", ... for a code; "OK" for 0. Static string. */
const char *kiln_err_name(int code);

typedef struct kiln_errs {
    kiln_err *items;
    size_t len;
    size_t cap;
} kiln_errs;

/* Appends one error; returns code (so `return kiln_errs_add(...)` works). */
int kiln_errs_add(kiln_errs *errs, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends "<path>: <message>" (just the message when path is NULL or empty),
 * cut as a whole at KILN_ERR_MSG_MAX. errs may be NULL: then it only returns
 * code. */
int kiln_errs_vadd_at(kiln_errs *errs, int code, const char *path, const char *fmt, va_list ap);
/* Appends a copy of *err. */
void kiln_errs_push(kiln_errs *errs, const kiln_err *err);
/* The first error's code, or 0 when empty. */
int kiln_errs_code(const kiln_errs *errs);
void kiln_errs_free(kiln_errs *errs);

#endif
