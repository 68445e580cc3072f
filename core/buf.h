/* core/buf.h: bounded, growable byte buffers.
 *
 * Everything sized by outside input is collected in a kiln_buf with a limit;
 * crossing it fails with KILN_ELIMIT instead of growing without bound. The data
 * is always NUL-terminated (the terminator is not counted in len). The buffer
 * owns data; kiln_buf_steal hands it to the caller.
 */
#ifndef KILN_CORE_BUF_H
#define KILN_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "core/err.h"

typedef struct kiln_buf {
    char *data; /* NUL-terminated once anything was added; NULL before */
    size_t len;
    size_t cap;
    size_t limit; /* most bytes len may reach */
} kiln_buf;

/* 64 MiB: the default bound for a document kiln reads or writes. */
#define KILN_BUF_DEFAULT_LIMIT ((size_t)64 << 20)

void kiln_buf_init(kiln_buf *b, size_t limit);
int kiln_buf_append(kiln_buf *b, const void *data, size_t n, kiln_err *err);
int kiln_buf_puts(kiln_buf *b, const char *s, kiln_err *err);
int kiln_buf_printf(kiln_buf *b, kiln_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int kiln_buf_vprintf(kiln_buf *b, kiln_err *err, const char *fmt, va_list ap);
/* Empties the buffer, keeping its memory. */
void kiln_buf_reset(kiln_buf *b);
/* Returns the data (new, caller frees; "" when empty) and leaves b empty. */
char *kiln_buf_steal(kiln_buf *b);
void kiln_buf_free(kiln_buf *b);

/* Reads a whole file (at most limit bytes) into b. */
int kiln_buf_read_file(kiln_buf *b, const char *path, kiln_err *err);

#endif
