/* core/mem.h: allocation for small, internally sized objects.
 *
 * These abort on out-of-memory, as Redis does: there is no sensible recovery
 * from failing to allocate a 40-byte node. Anything sized by outside input (API
 * bodies, YAML files, Lua results) goes through kiln_buf instead and fails with
 * KILN_ELIMIT when it exceeds its bound.
 */
#ifndef KILN_CORE_MEM_H
#define KILN_CORE_MEM_H

#include <stddef.h>

void *kiln_xmalloc(size_t n);
void *kiln_xcalloc(size_t count, size_t size);
void *kiln_xrealloc(void *p, size_t n);
char *kiln_xstrdup(const char *s);
char *kiln_xstrndup(const char *s, size_t n);
/* Returns a new string formatted like printf. */
char *kiln_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kiln_xfree(void *p);

#endif
