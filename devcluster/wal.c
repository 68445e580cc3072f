/* devcluster/wal.c: durability for --data-dir.
 *
 * A write-ahead log of whole objects: one line per write,
 *   P <rv> <group|-> <version> <plural> <key> <json>\n   (put)
 *   D <rv> <group|-> <version> <plural> <key>\n          (delete)
 * appended under the server lock and made durable with fdatasync before the
 * request is acknowledged; concurrent requests share one fdatasync (group
 * commit). On start the log is replayed (a torn last line from a crash is
 * dropped: it was never acknowledged), then rewritten as a compact snapshot
 * through a temporary file, fsync and rename, so it does not grow across runs.
 * While running, the log is rewritten the same way once it holds more than
 * opts.wal_compact bytes of records beyond the last snapshot and at least as
 * many as the snapshot itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"
#include "devcluster/internal.h"

struct kiln_dc_wal {
    int fd;
    char *path;
    uint64_t written; /* bytes in the file (atomic) */
    uint64_t synced;  /* bytes known durable, under smu */
    uint64_t base;    /* size right after the last snapshot */
    pthread_mutex_t smu;
    kiln_buf rec;
};

static int snapshot(kiln_devcluster *dc, const char *path, kiln_err *err);

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void format_record(kiln_buf *b, uint64_t rv, const kiln_dc_resource *r, const char *key,
                          const char *json, size_t len, bool del)
{
    kiln_buf_reset(b);
    kiln_buf_printf(b, NULL, "%c %llu %s %s %s ", del ? 'D' : 'P', (unsigned long long)rv,
                    r->group[0] ? r->group : "-", r->version, r->plural);
    /* Keys never contain '%' (names forbid it), so %20 is unambiguous. */
    for (const char *k = key; *k; k++) {
        if (*k == ' ')
            kiln_buf_puts(b, "%20", NULL);
        else
            kiln_buf_append(b, k, 1, NULL);
    }
    if (!del) {
        kiln_buf_puts(b, " ", NULL);
        kiln_buf_append(b, json, len, NULL);
    }
    kiln_buf_puts(b, "\n", NULL);
}

static uint64_t file_size(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Rewrites the log as a snapshot of the current state (called under dc->mu,
 * so no record is being appended; smu keeps syncs off the fd being swapped).
 * Every record appended so far is in the fsynced snapshot, so waiting syncs
 * are satisfied. */
static void compact(kiln_devcluster *dc)
{
    kiln_dc_wal *w = dc->wal;
    kiln_err err = {0};
    pthread_mutex_lock(&w->smu);
    if (snapshot(dc, w->path, &err) < 0) {
        KILN_LOG(KILN_LOG_ERROR, "devcluster: compacting the log: %s", err.msg);
        pthread_mutex_unlock(&w->smu);
        return;
    }
    int fd = open(w->path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) {
        KILN_LOG(KILN_LOG_ERROR, "devcluster: %s: %s", w->path, strerror(errno));
        pthread_mutex_unlock(&w->smu);
        return;
    }
    close(w->fd);
    w->fd = fd;
    uint64_t size = file_size(fd);
    __atomic_store_n(&w->written, size, __ATOMIC_SEQ_CST);
    w->synced = size;
    w->base = size;
    pthread_mutex_unlock(&w->smu);
}

void kiln_dc_wal_append(kiln_devcluster *dc, const kiln_dc_resource *r, const char *key,
                        const char *json, size_t len, bool del)
{
    kiln_dc_wal *w = dc->wal;
    format_record(&w->rec, dc->rv, r, key, json, len, del);
    if (write_all(w->fd, w->rec.data, w->rec.len) < 0) {
        KILN_LOG(KILN_LOG_ERROR, "devcluster: write %s: %s", w->path, strerror(errno));
        return;
    }
    uint64_t written = __atomic_add_fetch(&w->written, w->rec.len, __ATOMIC_SEQ_CST);
    uint64_t limit = dc->opts.wal_compact ? dc->opts.wal_compact : (uint64_t)64 << 20;
    uint64_t grown = written - w->base;
    if (grown > limit && grown > w->base)
        compact(dc);
}

void kiln_dc_wal_sync(kiln_devcluster *dc)
{
    kiln_dc_wal *w = dc->wal;
    if (!w)
        return;
    pthread_mutex_lock(&w->smu);
    uint64_t target = __atomic_load_n(&w->written, __ATOMIC_SEQ_CST);
    if (w->synced < target) {
        if (fdatasync(w->fd) < 0)
            KILN_LOG(KILN_LOG_ERROR, "devcluster: fdatasync %s: %s", w->path, strerror(errno));
        else
            w->synced = target;
    }
    pthread_mutex_unlock(&w->smu);
}

static void replay_line(kiln_devcluster *dc, char *line)
{
    char op = line[0];
    char *save = NULL;
    strtok_r(line, " ", &save);
    char *rv = strtok_r(NULL, " ", &save);
    char *group = strtok_r(NULL, " ", &save);
    char *version = strtok_r(NULL, " ", &save);
    char *plural = strtok_r(NULL, " ", &save);
    char *key = strtok_r(NULL, op == 'P' ? " " : "\n", &save);
    char *json = op == 'P' ? save : NULL;
    if (!rv || !group || !version || !plural || !key || (op == 'P' && !json))
        return;
    kiln_dc_percent_decode(key, false);
    kiln_dc_resource *r = kiln_dc_kinds_find(dc, strcmp(group, "-") ? group : "", version, plural);
    if (!r)
        return;
    uint64_t v = strtoull(rv, NULL, 10);
    if (v > dc->rv)
        dc->rv = v;
    if (op == 'P') {
        json_t *obj = json_loads(json, 0, NULL);
        if (!obj)
            return;
        uint64_t saved = dc->rv;
        dc->rv = v;
        kiln_dc_store_put(dc, r, obj, false);
        dc->rv = saved;
        if (!strcmp(r->plural, "customresourcedefinitions") &&
            !strcmp(r->group, "apiextensions.k8s.io"))
            kiln_dc_crd_serve(dc, obj);
        json_decref(obj);
    } else {
        char ns[256];
        const char *name;
        kiln_dc_key_split(key, ns, sizeof ns, &name);
        kiln_dc_object *o = kiln_dc_store_get(r, ns, name);
        if (!o)
            return;
        json_t *obj = kiln_dc_store_load(o);
        bool crd = !strcmp(r->plural, "customresourcedefinitions");
        char *cname = crd ? kiln_xstrdup(name) : NULL;
        kiln_dc_store_delete(dc, r, obj);
        if (crd)
            kiln_dc_crd_unserve(dc, cname);
        kiln_xfree(cname);
        json_decref(obj);
    }
}

static int replay(kiln_devcluster *dc, const char *path, kiln_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : kiln_err_set(err, KILN_EIO, "%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    dc->replaying = true;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] != '\n')
            break; /* torn tail: never acknowledged */
        line[n - 1] = '\0';
        replay_line(dc, line);
    }
    dc->replaying = false;
    free(line);
    fclose(f);
    return 0;
}

static int snapshot(kiln_devcluster *dc, const char *path, kiln_err *err)
{
    char *tmp = kiln_xasprintf("%s.tmp", path);
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    kiln_buf b;
    kiln_buf_init(&b, (size_t)1 << 32);
    if (fd < 0) {
        rc = kiln_err_set(err, KILN_EIO, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    /* CRDs first so their kinds exist when their objects replay. */
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        for (size_t i = 0; i < dc->nres && rc == 0; i++) {
            kiln_dc_resource *r = dc->res[i];
            bool crd = !strcmp(r->plural, "customresourcedefinitions");
            if ((pass == 0) != crd)
                continue;
            size_t n = 0;
            kiln_dc_object **objs = kiln_dc_store_sorted(r, &n);
            for (size_t k = 0; k < n && rc == 0; k++) {
                format_record(&b, objs[k]->rv, r, objs[k]->key, objs[k]->json, objs[k]->len, false);
                if (write_all(fd, b.data, b.len) < 0)
                    rc = kiln_err_set(err, KILN_EIO, "%s: %s", tmp, strerror(errno));
            }
            kiln_xfree(objs);
        }
    }
    if (rc == 0 && dc->rv) {
        /* Keep the counter even when the newest write was a delete. */
        kiln_buf_reset(&b);
        kiln_buf_printf(&b, NULL, "D %llu - v1 namespaces /\n", (unsigned long long)dc->rv);
        if (write_all(fd, b.data, b.len) < 0)
            rc = kiln_err_set(err, KILN_EIO, "%s: %s", tmp, strerror(errno));
    }
    if (rc == 0 && fsync(fd) < 0)
        rc = kiln_err_set(err, KILN_EIO, "fsync %s: %s", tmp, strerror(errno));
    close(fd);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = kiln_err_set(err, KILN_EIO, "rename %s: %s", tmp, strerror(errno));
    if (rc == 0) {
        int dfd = open(dc->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
done:
    kiln_buf_free(&b);
    kiln_xfree(tmp);
    return rc;
}

int kiln_dc_wal_open(kiln_devcluster *dc, kiln_err *err)
{
    if (mkdir(dc->data_dir, 0700) < 0 && errno != EEXIST)
        return kiln_err_set(err, KILN_EIO, "%s: %s", dc->data_dir, strerror(errno));
    char *path = kiln_xasprintf("%s/wal.log", dc->data_dir);
    int rc = replay(dc, path, err);
    if (rc == 0)
        rc = snapshot(dc, path, err);
    if (rc < 0) {
        kiln_xfree(path);
        return rc;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) {
        rc = kiln_err_set(err, KILN_EIO, "%s: %s", path, strerror(errno));
        kiln_xfree(path);
        return rc;
    }
    kiln_dc_wal *w = kiln_xcalloc(1, sizeof *w);
    w->fd = fd;
    w->path = path;
    w->written = w->synced = w->base = file_size(fd);
    pthread_mutex_init(&w->smu, NULL);
    kiln_buf_init(&w->rec, (size_t)1 << 32);
    dc->wal = w;
    return 0;
}

void kiln_dc_wal_close(kiln_devcluster *dc)
{
    kiln_dc_wal *w = dc->wal;
    if (!w)
        return;
    kiln_dc_wal_sync(dc);
    close(w->fd);
    pthread_mutex_destroy(&w->smu);
    kiln_buf_free(&w->rec);
    kiln_xfree(w->path);
    kiln_xfree(w);
    dc->wal = NULL;
}
