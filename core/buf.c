#include "core/buf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"

void kiln_buf_init(kiln_buf *b, size_t limit)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->limit = limit ? limit : KILN_BUF_DEFAULT_LIMIT;
}

static int reserve(kiln_buf *b, size_t extra, kiln_err *err)
{
    if (extra > b->limit - b->len)
        return kiln_err_set(err, KILN_ELIMIT, "buffer limit of %zu bytes exceeded", b->limit);
    size_t need = b->len + extra + 1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need)
            cap *= 2;
        b->data = kiln_xrealloc(b->data, cap);
        b->cap = cap;
    }
    return 0;
}

int kiln_buf_append(kiln_buf *b, const void *data, size_t n, kiln_err *err)
{
    int rc = reserve(b, n, err);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int kiln_buf_puts(kiln_buf *b, const char *s, kiln_err *err)
{
    return kiln_buf_append(b, s, strlen(s), err);
}

int kiln_buf_vprintf(kiln_buf *b, kiln_err *err, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return kiln_err_set(err, KILN_EINVAL, "bad format string");
    int rc = reserve(b, (size_t)n, err);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int kiln_buf_printf(kiln_buf *b, kiln_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = kiln_buf_vprintf(b, err, fmt, ap);
    va_end(ap);
    return rc;
}

void kiln_buf_reset(kiln_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *kiln_buf_steal(kiln_buf *b)
{
    char *p = b->data ? b->data : kiln_xstrdup("");
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void kiln_buf_free(kiln_buf *b)
{
    if (!b)
        return;
    kiln_xfree(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int kiln_buf_read_file(kiln_buf *b, const char *path, kiln_err *err)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return kiln_err_set(err, KILN_EIO, "%s: %s", path, strerror(errno));
    int rc = 0;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        rc = kiln_buf_append(b, chunk, n, err);
        if (rc) {
            kiln_err_prefix(err, "%s", path);
            goto out;
        }
    }
    if (ferror(f))
        rc = kiln_err_set(err, KILN_EIO, "%s: read error", path);
    if (!b->data)
        rc = rc ? rc : kiln_buf_append(b, "", 0, err);
out:
    if (f != stdin)
        fclose(f);
    return rc;
}
