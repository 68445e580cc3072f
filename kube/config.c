#include "kube/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/yaml.h"

extern char **environ;

/* Token files and certificates are small; a kubeconfig may hold many clusters. */
#define SMALL_FILE_LIMIT ((size_t)1 << 20)
#define KUBECONFIG_LIMIT ((size_t)16 << 20)
/* An exec plugin's stdout is one ExecCredential. */
#define EXEC_OUTPUT_LIMIT ((size_t)1 << 20)
/* client-go's cached file token source: period 1 minute less a 10 s leeway
 * (transport/token_source.go), so a rotated bound token is picked up in time. */
#define TOKEN_FILE_REREAD_MS 50000
#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
/* Longest an exec credential plugin may take unless the config says. */
#define EXEC_TIMEOUT_MS 60000

struct kiln_kube_auth_state {
    pthread_mutex_t mu;
    char *file_token;
    int64_t file_read_ms;
    bool have_file_token;
    char *exec_token;
    char *exec_cert;
    size_t exec_cert_len;
    char *exec_key;
    size_t exec_key_len;
    int64_t exec_expiry_s; /* 0: never expires */
    int64_t exec_got_ms;
    bool have_exec;
};

/* ------------------------------------------------------------------------ */
/* Clock                                                                      */

int64_t kiln_kube_clock_mono_ms(const kiln_kube_clock *clock)
{
    if (clock && clock->mono_ms)
        return clock->mono_ms(clock->ctx);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t kiln_kube_clock_wall_s(const kiln_kube_clock *clock)
{
    if (clock && clock->wall_s)
        return clock->wall_s(clock->ctx);
    return (int64_t)time(NULL);
}

void kiln_kube_clock_sleep_ms(const kiln_kube_clock *clock, int64_t ms)
{
    if (clock && clock->sleep_ms) {
        clock->sleep_ms(clock->ctx, ms);
        return;
    }
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* ------------------------------------------------------------------------ */
/* Small helpers                                                              */

static int64_t mono_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int kiln_kube_base64_decode(char **out, size_t *out_len, const char *in, size_t in_len,
                            kiln_err *err)
{
    char *buf = kiln_xmalloc(in_len / 4 * 3 + 4);
    size_t n = 0, pad = 0, quad = 0;
    unsigned acc = 0;
    *out = NULL;
    *out_len = 0;
    for (size_t i = 0; i < in_len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (isspace(c))
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64_value(c);
        if (v < 0 || pad) {
            kiln_xfree(buf);
            return kiln_err_set(err, KILN_EINVAL, "invalid base64 at offset %zu", i);
        }
        acc = (acc << 6) | (unsigned)v;
        if (++quad == 4) {
            buf[n++] = (char)(acc >> 16);
            buf[n++] = (char)(acc >> 8);
            buf[n++] = (char)acc;
            acc = 0;
            quad = 0;
        }
    }
    if (quad == 1 || pad > 2 || (pad && (quad + pad) != 4)) {
        kiln_xfree(buf);
        return kiln_err_set(err, KILN_EINVAL, "invalid base64: truncated input");
    }
    if (quad == 2) {
        buf[n++] = (char)(acc >> 4);
    } else if (quad == 3) {
        buf[n++] = (char)(acc >> 10);
        buf[n++] = (char)(acc >> 2);
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return 0;
}

/* Reads path (at most limit bytes) into a new string. */
static int read_small(char **out, size_t *len, const char *path, size_t limit, kiln_err *err)
{
    kiln_buf b;
    kiln_buf_init(&b, limit);
    int rc = kiln_buf_read_file(&b, path, err);
    if (rc) {
        kiln_buf_free(&b);
        return rc;
    }
    if (len)
        *len = b.len;
    *out = kiln_buf_steal(&b);
    return 0;
}

static char *trim_dup(const char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    return kiln_xstrndup(s, n);
}

/* Relative paths in a kubeconfig resolve against that file's folder
 * (client-go loader.go ResolvePaths). New string. */
static char *resolve_path(const char *dir, const char *p)
{
    if (p[0] == '/' || !dir || !*dir)
        return kiln_xstrdup(p);
    return kiln_xasprintf("%s/%s", dir, p);
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return kiln_xstrdup(".");
    if (slash == path)
        return kiln_xstrdup("/");
    return kiln_xstrndup(path, (size_t)(slash - path));
}

static void free_strv(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        kiln_xfree(*p);
    kiln_xfree(v);
}

static void exec_free(kiln_kube_exec *e)
{
    if (!e)
        return;
    kiln_xfree(e->api_version);
    kiln_xfree(e->command);
    free_strv(e->argv);
    free_strv(e->env);
    kiln_xfree(e);
}

static kiln_kube_auth_state *auth_new(void)
{
    kiln_kube_auth_state *a = kiln_xcalloc(1, sizeof(*a));
    pthread_mutex_init(&a->mu, NULL);
    return a;
}

static void auth_drop_exec(kiln_kube_auth_state *a)
{
    kiln_xfree(a->exec_token);
    kiln_xfree(a->exec_cert);
    kiln_xfree(a->exec_key);
    a->exec_token = a->exec_cert = a->exec_key = NULL;
    a->exec_cert_len = a->exec_key_len = 0;
    a->have_exec = false;
}

kiln_kube_config *kiln_kube_config_new(const char *server)
{
    kiln_kube_config *cfg = kiln_xcalloc(1, sizeof(*cfg));
    cfg->server = kiln_xstrdup(server ? server : "");
    cfg->namespace = kiln_xstrdup("default");
    cfg->auth = auth_new();
    return cfg;
}

void kiln_kube_config_free(kiln_kube_config *cfg)
{
    if (!cfg)
        return;
    kiln_xfree(cfg->server);
    kiln_xfree(cfg->namespace);
    kiln_xfree(cfg->context);
    kiln_xfree(cfg->source);
    kiln_xfree(cfg->tls_server_name);
    kiln_xfree(cfg->proxy_url);
    kiln_xfree(cfg->ca_pem);
    kiln_xfree(cfg->cert_pem);
    if (cfg->key_pem)
        memset(cfg->key_pem, 0, cfg->key_len);
    kiln_xfree(cfg->key_pem);
    kiln_xfree(cfg->token);
    kiln_xfree(cfg->token_file);
    exec_free(cfg->exec);
    free_strv(cfg->impersonate);
    if (cfg->auth) {
        kiln_xfree(cfg->auth->file_token);
        auth_drop_exec(cfg->auth);
        pthread_mutex_destroy(&cfg->auth->mu);
        kiln_xfree(cfg->auth);
    }
    kiln_xfree(cfg);
}

/* ------------------------------------------------------------------------ */
/* kubeconfig                                                                 */

typedef struct kcfile {
    char *path;
    char *dir;
    json_t *doc; /* the file's top-level object */
} kcfile;

typedef struct kcset {
    kcfile *files;
    size_t n;
} kcset;

static void kcset_free(kcset *s)
{
    for (size_t i = 0; i < s->n; i++) {
        kiln_xfree(s->files[i].path);
        kiln_xfree(s->files[i].dir);
        json_decref(s->files[i].doc);
    }
    kiln_xfree(s->files);
    s->files = NULL;
    s->n = 0;
}

static int load_one(kcset *s, const char *path, kiln_err *err)
{
    kiln_buf b;
    json_t *docs = NULL, *doc = NULL;
    int rc;
    kiln_buf_init(&b, KUBECONFIG_LIMIT);
    if ((rc = kiln_buf_read_file(&b, path, err)))
        goto out;
    /* JSON is valid YAML, so one reader covers both kubeconfig spellings. */
    if ((rc = kiln_yaml_load(&docs, b.data, b.len, path, NULL, err)))
        goto out;
    doc = json_array_size(docs) ? json_incref(json_array_get(docs, 0)) : json_object();
    if (!json_is_object(doc)) {
        rc = kiln_err_set(err, KILN_EINVAL, "%s: expected a Config object, got %s", path,
                          kiln_json_type_name(doc));
        goto out;
    }
    s->files = kiln_xrealloc(s->files, (s->n + 1) * sizeof(*s->files));
    s->files[s->n].path = kiln_xstrdup(path);
    s->files[s->n].dir = dir_of(path);
    s->files[s->n].doc = doc;
    s->n++;
    doc = NULL;
out:
    json_decref(doc);
    json_decref(docs);
    kiln_buf_free(&b);
    return rc;
}

/* The first file (in KUBECONFIG order) whose list `section` has an entry
 * named name wins, as client-go's merge does. *body is borrowed. */
static const kcfile *find_named(const kcset *s, const char *section, const char *field,
                                const char *name, json_t **body, kiln_err *err)
{
    for (size_t i = 0; i < s->n; i++) {
        json_t *list = json_object_get(s->files[i].doc, section);
        if (!list || json_is_null(list))
            continue;
        if (!json_is_array(list)) {
            kiln_err_set(err, KILN_EINVAL, "%s: %s: expected a list, got %s", s->files[i].path,
                         section, kiln_json_type_name(list));
            return NULL;
        }
        size_t k;
        json_t *item;
        json_array_foreach(list, k, item)
        {
            const char *n = json_string_value(json_object_get(item, "name"));
            if (n && strcmp(n, name) == 0) {
                json_t *b = json_object_get(item, field);
                if (b && !json_is_object(b)) {
                    kiln_err_set(err, KILN_EINVAL, "%s: %s[%zu].%s: expected an object, got %s",
                                 s->files[i].path, section, k, field, kiln_json_type_name(b));
                    return NULL;
                }
                *body = b;
                return &s->files[i];
            }
        }
    }
    kiln_err_set(err, KILN_ENOTFOUND, "%s \"%s\" not found in kubeconfig %s", field, name,
                 s->n ? s->files[0].path : "");
    return NULL;
}

/* Reads an optional string field; *out borrowed or NULL. */
static int get_str(const char **out, const json_t *obj, const char *key, const kcfile *f,
                   const char *where, kiln_err *err)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return kiln_err_set(err, KILN_EINVAL, "%s: %s.%s: expected a string, got %s", f->path,
                            where, key, kiln_json_type_name(v));
    *out = json_string_value(v);
    if (!**out)
        *out = NULL;
    return 0;
}

/* A PEM blob from `<key>-data` (base64) or `<key>` (a path). */
static int get_pem(char **out, size_t *len, const json_t *obj, const char *key, const kcfile *f,
                   const char *where, kiln_err *err)
{
    char data_key[64];
    const char *data, *path;
    int rc;
    snprintf(data_key, sizeof(data_key), "%s-data", key);
    if ((rc = get_str(&data, obj, data_key, f, where, err)) ||
        (rc = get_str(&path, obj, key, f, where, err)))
        return rc;
    if (data) {
        rc = kiln_kube_base64_decode(out, len, data, strlen(data), err);
        if (rc)
            kiln_err_prefix(err, "%s: %s.%s", f->path, where, data_key);
        return rc;
    }
    if (path) {
        char *full = resolve_path(f->dir, path);
        rc = read_small(out, len, full, SMALL_FILE_LIMIT, err);
        if (rc)
            kiln_err_prefix(err, "%s: %s.%s", f->path, where, key);
        kiln_xfree(full);
        return rc;
    }
    return 0;
}

static char **strv_push(char **v, size_t *n, char *s)
{
    v = kiln_xrealloc(v, (*n + 2) * sizeof(*v));
    v[(*n)++] = s;
    v[*n] = NULL;
    return v;
}

static int parse_exec(kiln_kube_exec **out, const json_t *ex, const kcfile *f, const char *where,
                      kiln_err *err)
{
    kiln_kube_exec *e = kiln_xcalloc(1, sizeof(*e));
    const char *api, *cmd, *mode;
    size_t nargv = 0, nenv = 0;
    int rc;
    if ((rc = get_str(&api, ex, "apiVersion", f, where, err)) ||
        (rc = get_str(&cmd, ex, "command", f, where, err)) ||
        (rc = get_str(&mode, ex, "interactiveMode", f, where, err)))
        goto out;
    if (!api || (strcmp(api, "client.authentication.k8s.io/v1") != 0 &&
                 strcmp(api, "client.authentication.k8s.io/v1beta1") != 0)) {
        rc = kiln_err_set(err, KILN_EINVAL,
                          "%s: %s.apiVersion: \"%s\" is not supported (use "
                          "client.authentication.k8s.io/v1 or v1beta1)",
                          f->path, where, api ? api : "");
        goto out;
    }
    if (!cmd) {
        rc = kiln_err_set(err, KILN_EINVAL, "%s: %s.command: required", f->path, where);
        goto out;
    }
    /* client-go requires interactiveMode for v1; kiln never has a terminal, so
     * a plugin that insists on one cannot work. */
    if (!mode && strcmp(api, "client.authentication.k8s.io/v1") == 0) {
        rc = kiln_err_set(err, KILN_EINVAL, "%s: %s.interactiveMode: required for %s", f->path,
                          where, api);
        goto out;
    }
    if (mode && strcmp(mode, "Always") == 0) {
        rc = kiln_err_set(err, KILN_EINVAL,
                          "%s: %s.interactiveMode: Always needs a terminal, which kiln does not "
                          "have",
                          f->path, where);
        goto out;
    }
    e->api_version = kiln_xstrdup(api);
    /* A bare name is looked up in PATH; a relative path with a slash is
     * relative to the kubeconfig's folder (client-go ResolvePaths). */
    e->command = strchr(cmd, '/') ? resolve_path(f->dir, cmd) : kiln_xstrdup(cmd);
    e->argv = strv_push(NULL, &nargv, kiln_xstrdup(e->command));
    json_t *args = json_object_get(ex, "args");
    if (args && !json_is_null(args)) {
        if (!json_is_array(args)) {
            rc = kiln_err_set(err, KILN_EINVAL, "%s: %s.args: expected a list", f->path, where);
            goto out;
        }
        size_t i;
        json_t *a;
        json_array_foreach(args, i, a)
        {
            if (!json_is_string(a)) {
                rc = kiln_err_set(err, KILN_EINVAL, "%s: %s.args[%zu]: expected a string", f->path,
                                  where, i);
                goto out;
            }
            e->argv = strv_push(e->argv, &nargv, kiln_xstrdup(json_string_value(a)));
        }
    }
    json_t *env = json_object_get(ex, "env");
    if (env && !json_is_null(env)) {
        if (!json_is_array(env)) {
            rc = kiln_err_set(err, KILN_EINVAL, "%s: %s.env: expected a list", f->path, where);
            goto out;
        }
        size_t i;
        json_t *kv;
        json_array_foreach(env, i, kv)
        {
            const char *name = json_string_value(json_object_get(kv, "name"));
            const char *value = json_string_value(json_object_get(kv, "value"));
            if (!name || !*name || strchr(name, '=') || !value) {
                rc = kiln_err_set(err, KILN_EINVAL,
                                  "%s: %s.env[%zu]: needs a name and a string value", f->path,
                                  where, i);
                goto out;
            }
            e->env = strv_push(e->env, &nenv, kiln_xasprintf("%s=%s", name, value));
        }
    }
    if (!e->env)
        e->env = kiln_xcalloc(1, sizeof(char *));
    e->provide_cluster_info = json_is_true(json_object_get(ex, "provideClusterInfo"));
    *out = e;
    e = NULL;
out:
    exec_free(e);
    return rc;
}

/* A header value must stay on one line. */
static bool header_safe(const char *s)
{
    return !strpbrk(s, "\r\n");
}

/* Impersonate-User / -Uid / -Group (one per group) / -Extra-<key> (one per
 * value), as client-go's round_trippers.go sends them. */
static int parse_impersonation(kiln_kube_config *cfg, const json_t *user, const kcfile *f,
                               const char *where, kiln_err *err)
{
    const char *as, *uid;
    size_t n = 0;
    int rc;
    if ((rc = get_str(&as, user, "as", f, where, err)) ||
        (rc = get_str(&uid, user, "as-uid", f, where, err)))
        return rc;
    json_t *groups = json_object_get(user, "as-groups");
    json_t *extra = json_object_get(user, "as-user-extra");
    if (!as && !uid && !json_array_size(groups) && !json_object_size(extra))
        return 0;
    if (!as)
        return kiln_err_set(err, KILN_EINVAL, "%s: %s.as: required when impersonating", f->path,
                            where);
    if (!header_safe(as) || (uid && !header_safe(uid)))
        return kiln_err_set(err, KILN_EINVAL, "%s: %s: line breaks in as/as-uid", f->path, where);
    cfg->impersonate = strv_push(cfg->impersonate, &n, kiln_xasprintf("Impersonate-User: %s", as));
    if (uid)
        cfg->impersonate =
            strv_push(cfg->impersonate, &n, kiln_xasprintf("Impersonate-Uid: %s", uid));
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g)
    {
        if (!json_is_string(g) || !header_safe(json_string_value(g)))
            return kiln_err_set(err, KILN_EINVAL, "%s: %s.as-groups[%zu]: expected a string",
                                f->path, where, i);
        cfg->impersonate = strv_push(cfg->impersonate, &n,
                                     kiln_xasprintf("Impersonate-Group: %s", json_string_value(g)));
    }
    const char *key;
    json_t *vals;
    json_object_foreach(extra, key, vals)
    {
        json_t *v;
        json_array_foreach(vals, i, v)
        {
            if (!json_is_string(v) || !header_safe(json_string_value(v)))
                return kiln_err_set(err, KILN_EINVAL,
                                    "%s: %s.as-user-extra.%s[%zu]: expected a string", f->path,
                                    where, key, i);
            /* Header names allow only token characters: percent-encode
             * the rest of the key, as client-go's headerKeyEscape does. */
            char esc[256];
            size_t o = 0;
            for (const unsigned char *p = (const unsigned char *)key; *p && o < sizeof(esc) - 4;
                 p++) {
                if (isalnum(*p) || strchr("!#$&'*+-.^_`|~", *p))
                    esc[o++] = (char)*p;
                else
                    o += (size_t)snprintf(esc + o, sizeof(esc) - o, "%%%02X", *p);
            }
            esc[o] = '\0';
            cfg->impersonate =
                strv_push(cfg->impersonate, &n,
                          kiln_xasprintf("Impersonate-Extra-%s: %s", esc, json_string_value(v)));
        }
    }
    return 0;
}

static int split_paths(char ***out, size_t *n, const char *paths)
{
    char **v = NULL;
    *n = 0;
    const char *p = paths;
    while (*p) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len) {
            char *one = kiln_xstrndup(p, len);
            bool dup = false;
            for (size_t i = 0; i < *n; i++)
                dup = dup || strcmp(v[i], one) == 0;
            if (dup)
                kiln_xfree(one);
            else
                v = strv_push(v, n, one);
        }
        p += len + (end ? 1 : 0);
    }
    *out = v;
    return 0;
}

int kiln_kube_config_from_kubeconfig(kiln_kube_config **out, const char *paths, const char *context,
                                     kiln_err *err)
{
    kcset s = {0};
    char **list = NULL;
    size_t nlist = 0;
    kiln_kube_config *cfg = NULL;
    int rc = 0;
    *out = NULL;
    split_paths(&list, &nlist, paths ? paths : "");
    if (!nlist) {
        rc = kiln_err_set(err, KILN_EINVAL, "no kubeconfig path given");
        goto out;
    }
    for (size_t i = 0; i < nlist; i++) {
        /* client-go skips KUBECONFIG entries that do not exist; a file that
         * exists but cannot be read or parsed is an error. */
        struct stat st;
        if (nlist > 1 && stat(list[i], &st) != 0 && errno == ENOENT)
            continue;
        if ((rc = load_one(&s, list[i], err)))
            goto out;
    }
    if (!s.n) {
        rc = kiln_err_set(err, KILN_ENOTFOUND, "none of the kubeconfig files exist: %s", paths);
        goto out;
    }
    const char *ctx_name = context && *context ? context : NULL;
    for (size_t i = 0; !ctx_name && i < s.n; i++) {
        const char *cc = json_string_value(json_object_get(s.files[i].doc, "current-context"));
        if (cc && *cc)
            ctx_name = cc;
    }
    if (!ctx_name) {
        rc = kiln_err_set(err, KILN_EINVAL, "%s: current-context is not set and no context given",
                          s.files[0].path);
        goto out;
    }
    json_t *ctx = NULL, *cluster = NULL, *user = NULL;
    const kcfile *cf = find_named(&s, "contexts", "context", ctx_name, &ctx, err);
    if (!cf) {
        rc = err ? err->code : KILN_ENOTFOUND;
        goto out;
    }
    char where[192];
    const char *cluster_name, *user_name, *ns;
    snprintf(where, sizeof(where), "contexts[name=%s].context", ctx_name);
    if ((rc = get_str(&cluster_name, ctx, "cluster", cf, where, err)) ||
        (rc = get_str(&user_name, ctx, "user", cf, where, err)) ||
        (rc = get_str(&ns, ctx, "namespace", cf, where, err)))
        goto out;
    if (!cluster_name) {
        rc = kiln_err_set(err, KILN_EINVAL, "%s: %s.cluster: required", cf->path, where);
        goto out;
    }
    cfg = kiln_kube_config_new(NULL);
    cfg->context = kiln_xstrdup(ctx_name);
    cfg->source = kiln_xasprintf("kubeconfig %s", cf->path);
    if (ns) {
        kiln_xfree(cfg->namespace);
        cfg->namespace = kiln_xstrdup(ns);
    }

    const kcfile *clf = find_named(&s, "clusters", "cluster", cluster_name, &cluster, err);
    if (!clf) {
        rc = err ? err->code : KILN_ENOTFOUND;
        goto out;
    }
    snprintf(where, sizeof(where), "clusters[name=%s].cluster", cluster_name);
    const char *server, *sni, *proxy;
    if ((rc = get_str(&server, cluster, "server", clf, where, err)) ||
        (rc = get_str(&sni, cluster, "tls-server-name", clf, where, err)) ||
        (rc = get_str(&proxy, cluster, "proxy-url", clf, where, err)))
        goto out;
    if (!server) {
        rc = kiln_err_set(err, KILN_EINVAL, "%s: %s.server: required", clf->path, where);
        goto out;
    }
    if (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0) {
        rc = kiln_err_set(err, KILN_EINVAL, "%s: %s.server: \"%s\" is not an http(s) URL",
                          clf->path, where, server);
        goto out;
    }
    kiln_xfree(cfg->server);
    cfg->server = kiln_xstrdup(server);
    for (size_t n = strlen(cfg->server); n && cfg->server[n - 1] == '/'; n--)
        cfg->server[n - 1] = '\0';
    cfg->tls_server_name = sni ? kiln_xstrdup(sni) : NULL;
    cfg->proxy_url = proxy ? kiln_xstrdup(proxy) : NULL;
    cfg->insecure = json_is_true(json_object_get(cluster, "insecure-skip-tls-verify"));
    if ((rc = get_pem(&cfg->ca_pem, &cfg->ca_len, cluster, "certificate-authority", clf, where,
                      err)))
        goto out;
    /* client-go transport.go: a CA together with the insecure flag is refused,
     * because the user cannot have meant both. */
    if (cfg->insecure && cfg->ca_pem) {
        rc = kiln_err_set(err, KILN_EINVAL,
                          "%s: %s: specifying a root certificates file with the insecure flag is "
                          "not allowed",
                          clf->path, where);
        goto out;
    }

    if (user_name) {
        const kcfile *uf = find_named(&s, "users", "user", user_name, &user, err);
        if (!uf) {
            rc = err ? err->code : KILN_ENOTFOUND;
            goto out;
        }
        snprintf(where, sizeof(where), "users[name=%s].user", user_name);
        const char *token, *token_file;
        if ((rc = get_str(&token, user, "token", uf, where, err)) ||
            (rc = get_str(&token_file, user, "tokenFile", uf, where, err)))
            goto out;
        cfg->token = token ? kiln_xstrdup(token) : NULL;
        /* token wins over tokenFile (client-go), so the file is only used
         * when no token is given. */
        cfg->token_file = token_file && !token ? resolve_path(uf->dir, token_file) : NULL;
        if ((rc = get_pem(&cfg->cert_pem, &cfg->cert_len, user, "client-certificate", uf, where,
                          err)) ||
            (rc = get_pem(&cfg->key_pem, &cfg->key_len, user, "client-key", uf, where, err)))
            goto out;
        if (!cfg->cert_pem != !cfg->key_pem) {
            rc = kiln_err_set(err, KILN_EINVAL,
                              "%s: %s: client-certificate and client-key must be given together",
                              uf->path, where);
            goto out;
        }
        json_t *ex = json_object_get(user, "exec");
        if (ex && !json_is_null(ex)) {
            char ewhere[224];
            snprintf(ewhere, sizeof(ewhere), "%s.exec", where);
            if (!json_is_object(ex)) {
                rc = kiln_err_set(err, KILN_EINVAL, "%s: %s: expected an object", uf->path, ewhere);
                goto out;
            }
            if ((rc = parse_exec(&cfg->exec, ex, uf, ewhere, err)))
                goto out;
        }
        if ((rc = parse_impersonation(cfg, user, uf, where, err)))
            goto out;
        if (json_object_get(user, "auth-provider")) {
            rc = kiln_err_set(err, KILN_EINVAL,
                              "%s: %s.auth-provider: legacy auth providers are not supported; "
                              "use an exec plugin",
                              uf->path, where);
            goto out;
        }
    }
    *out = cfg;
    cfg = NULL;
out:
    kiln_kube_config_free(cfg);
    kcset_free(&s);
    free_strv(list);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* In-cluster                                                                 */

int kiln_kube_config_in_cluster(kiln_kube_config **out, const char *root, kiln_err *err)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    kiln_kube_config *cfg = NULL;
    char *path = NULL, *ns = NULL;
    int rc = 0;
    *out = NULL;
    if (!root)
        root = "";
    if (!host || !*host || !port || !*port)
        return kiln_err_set(err, KILN_ENOTFOUND,
                            "not running in a cluster: KUBERNETES_SERVICE_HOST and "
                            "KUBERNETES_SERVICE_PORT must be set");
    cfg = kiln_kube_config_new(NULL);
    kiln_xfree(cfg->server);
    /* net.JoinHostPort: an IPv6 address needs brackets in a URL. */
    cfg->server = strchr(host, ':') ? kiln_xasprintf("https://[%s]:%s", host, port)
                                    : kiln_xasprintf("https://%s:%s", host, port);
    cfg->source = kiln_xstrdup("in-cluster");
    cfg->token_file = kiln_xasprintf("%s" SA_DIR "/token", root);
    /* Read the token once now so a pod without one fails at start, not on the
     * first request. */
    if ((rc = read_small(&path, NULL, cfg->token_file, SMALL_FILE_LIMIT, err)))
        goto out;
    kiln_xfree(path);
    path = kiln_xasprintf("%s" SA_DIR "/ca.crt", root);
    if ((rc = read_small(&cfg->ca_pem, &cfg->ca_len, path, SMALL_FILE_LIMIT, err)))
        goto out;
    kiln_xfree(path);
    path = kiln_xasprintf("%s" SA_DIR "/namespace", root);
    if (read_small(&ns, NULL, path, SMALL_FILE_LIMIT, NULL) == 0) {
        char *t = trim_dup(ns);
        if (*t) {
            kiln_xfree(cfg->namespace);
            cfg->namespace = t;
        } else {
            kiln_xfree(t);
        }
    }
    *out = cfg;
    cfg = NULL;
out:
    kiln_xfree(path);
    kiln_xfree(ns);
    kiln_kube_config_free(cfg);
    return rc;
}

int kiln_kube_config_load(kiln_kube_config **out, const kiln_kube_load_opts *opts, kiln_err *err)
{
    kiln_kube_load_opts none = {0};
    if (!opts)
        opts = &none;
    if (opts->kubeconfig && *opts->kubeconfig)
        return kiln_kube_config_from_kubeconfig(out, opts->kubeconfig, opts->context, err);
    const char *env = getenv("KUBECONFIG");
    if (env && *env)
        return kiln_kube_config_from_kubeconfig(out, env, opts->context, err);
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    if (host && *host && !(opts->context && *opts->context))
        return kiln_kube_config_in_cluster(out, opts->in_cluster_root, err);
    const char *home = getenv("HOME");
    if (!home || !*home) {
        *out = NULL;
        return kiln_err_set(err, KILN_ENOTFOUND,
                            "no kubeconfig: KUBECONFIG and HOME are unset and not in a cluster");
    }
    char *path = kiln_xasprintf("%s/.kube/config", home);
    int rc = kiln_kube_config_from_kubeconfig(out, path, opts->context, err);
    kiln_xfree(path);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Exec credential plugins                                                    */

/* "2026-01-01T00:00:00Z", fractions and numeric offsets allowed (RFC 3339). */
static int parse_rfc3339(int64_t *out, const char *s)
{
    struct tm tm = {0};
    int n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &n) != 6 ||
        n != 19)
        return -1;
    const char *p = s + n;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        while (isdigit((unsigned char)*p))
            p++;
    }
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh, mm, k = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &k) != 2 || k != 5)
            return -1;
        off = (int64_t)(hh * 3600 + mm * 60) * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = (int64_t)timegm(&tm) - off;
    return 0;
}

/* Environment for the plugin: ours, minus names the plugin's env overrides,
 * plus its env and KUBERNETES_EXEC_INFO. New vector of borrowed/new strings;
 * *owned collects what must be freed. */
static char **build_env(const kiln_kube_exec *e, const char *info, char ***owned)
{
    size_t n = 0, no = 0;
    char **v = NULL, **own = NULL;
    for (char **p = environ; p && *p; p++) {
        const char *eq = strchr(*p, '=');
        size_t klen = eq ? (size_t)(eq - *p) : strlen(*p);
        bool overridden = strncmp(*p, "KUBERNETES_EXEC_INFO=", 21) == 0;
        for (char **q = e->env; !overridden && *q; q++)
            overridden = strncmp(*q, *p, klen) == 0 && (*q)[klen] == '=';
        if (!overridden)
            v = strv_push(v, &n, *p);
    }
    for (char **q = e->env; *q; q++)
        v = strv_push(v, &n, *q);
    char *inf = kiln_xasprintf("KUBERNETES_EXEC_INFO=%s", info);
    own = strv_push(own, &no, inf);
    v = strv_push(v, &n, inf);
    *owned = own;
    return v;
}

static char *exec_info(const kiln_kube_config *cfg)
{
    json_t *info = json_pack("{s:s, s:s, s:{s:b}}", "kind", "ExecCredential", "apiVersion",
                             cfg->exec->api_version, "spec", "interactive", 0);
    if (cfg->exec->provide_cluster_info) {
        json_t *cluster = json_pack("{s:s, s:b}", "server", cfg->server, "insecure-skip-tls-verify",
                                    cfg->insecure);
        if (cfg->tls_server_name)
            json_object_set_new(cluster, "tls-server-name", json_string(cfg->tls_server_name));
        if (cfg->ca_pem) {
            /* []byte fields travel base64-encoded in JSON. */
            static const char tbl[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            const unsigned char *in = (const unsigned char *)cfg->ca_pem;
            size_t n = cfg->ca_len, o = 0;
            char *b = kiln_xmalloc((n + 2) / 3 * 4 + 1);
            for (size_t i = 0; i < n; i += 3) {
                unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
                             (i + 2 < n ? in[i + 2] : 0);
                b[o++] = tbl[(v >> 18) & 63];
                b[o++] = tbl[(v >> 12) & 63];
                b[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
                b[o++] = i + 2 < n ? tbl[v & 63] : '=';
            }
            b[o] = '\0';
            json_object_set_new(cluster, "certificate-authority-data", json_string(b));
            kiln_xfree(b);
        }
        json_object_set_new(json_object_get(info, "spec"), "cluster", cluster);
    }
    char *s = json_dumps(info, JSON_COMPACT);
    json_decref(info);
    return s;
}

/* Runs the plugin and parses its ExecCredential into the auth cache (locked
 * by the caller). */
static int run_exec(kiln_kube_config *cfg, kiln_err *err)
{
    const kiln_kube_exec *e = cfg->exec;
    kiln_kube_auth_state *a = cfg->auth;
    int pipefd[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    bool fa_init = false;
    char **envp = NULL, **owned = NULL;
    char *info = NULL;
    kiln_buf outb;
    json_t *doc = NULL;
    pid_t pid = -1;
    int rc = 0;
    kiln_buf_init(&outb, EXEC_OUTPUT_LIMIT);

    if (pipe(pipefd) != 0) {
        rc = kiln_err_set(err, KILN_EIO, "exec plugin \"%s\": pipe: %s", e->command,
                          strerror(errno));
        goto out;
    }
    info = exec_info(cfg);
    envp = build_env(e, info, &owned);
    posix_spawn_file_actions_init(&fa);
    fa_init = true;
    /* stdin is never a terminal for kiln (interactive mode is refused);
     * stderr passes through so the plugin's own messages reach the log. */
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_addclose(&fa, pipefd[0]);
    posix_spawn_file_actions_addclose(&fa, pipefd[1]);
    int serr = posix_spawnp(&pid, e->command, &fa, NULL, e->argv, envp);
    close(pipefd[1]);
    pipefd[1] = -1;
    if (serr != 0) {
        pid = -1;
        rc = kiln_err_set(err, KILN_EIO, "exec plugin \"%s\": %s", e->command, strerror(serr));
        goto out;
    }
    char chunk[4096];
    long timeout_ms = e->timeout_ms > 0 ? e->timeout_ms : EXEC_TIMEOUT_MS;
    int64_t deadline = mono_now_ms() + timeout_ms;
    for (;;) {
        /* Requests wait for the credential, so a plugin that hangs (a
         * browser login nobody completes) must not hang the controller. */
        int64_t left = deadline - mono_now_ms();
        struct pollfd pfd = {pipefd[0], POLLIN, 0};
        int pr = left > 0 ? poll(&pfd, 1, (int)left) : 0;
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0) {
            kill(pid, SIGKILL);
            if (!rc)
                rc = kiln_err_set(err, KILN_ETIMEOUT, "exec plugin \"%s\": no answer within %ld ms",
                                  e->command, timeout_ms);
            break;
        }
        ssize_t n = read(pipefd[0], chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (!rc && (rc = kiln_buf_append(&outb, chunk, (size_t)n, err)))
            kiln_err_prefix(err, "exec plugin \"%s\": output", e->command);
        /* keep draining so the child is not blocked on a full pipe */
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    pid = -1;
    if (rc)
        goto out;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        rc = kiln_err_set(err, KILN_EIO, "exec plugin \"%s\": %s %d", e->command,
                          WIFEXITED(status) ? "exited with status" : "killed by signal",
                          WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        goto out;
    }
    if ((rc = kiln_json_load(&doc, outb.data ? outb.data : "", outb.len, err))) {
        kiln_err_prefix(err, "exec plugin \"%s\": output", e->command);
        goto out;
    }
    const char *kind = kiln_json_get_string(doc, "kind");
    const char *api = kiln_json_get_string(doc, "apiVersion");
    if (!kind || strcmp(kind, "ExecCredential") != 0) {
        rc = kiln_err_set(err, KILN_EINVAL,
                          "exec plugin \"%s\": output kind is \"%s\", not "
                          "ExecCredential",
                          e->command, kind ? kind : "");
        goto out;
    }
    if (!api || strcmp(api, e->api_version) != 0) {
        rc = kiln_err_set(err, KILN_EINVAL,
                          "exec plugin \"%s\": output apiVersion \"%s\" does not match \"%s\"",
                          e->command, api ? api : "", e->api_version);
        goto out;
    }
    json_t *st = json_object_get(doc, "status");
    if (!json_is_object(st)) {
        rc = kiln_err_set(err, KILN_EINVAL, "exec plugin \"%s\": output has no status", e->command);
        goto out;
    }
    const char *token = kiln_json_get_string(st, "token");
    const char *cert = kiln_json_get_string(st, "clientCertificateData");
    const char *key = kiln_json_get_string(st, "clientKeyData");
    const char *exp = kiln_json_get_string(st, "expirationTimestamp");
    if (token && !*token)
        token = NULL;
    if (!cert != !key) {
        rc = kiln_err_set(err, KILN_EINVAL,
                          "exec plugin \"%s\": status.clientCertificateData and "
                          "status.clientKeyData must be given together",
                          e->command);
        goto out;
    }
    if (!token && !cert) {
        rc = kiln_err_set(err, KILN_EINVAL,
                          "exec plugin \"%s\": status has neither token nor "
                          "clientCertificateData and clientKeyData",
                          e->command);
        goto out;
    }
    int64_t expiry = 0;
    if (exp && parse_rfc3339(&expiry, exp) != 0) {
        rc = kiln_err_set(err, KILN_EINVAL,
                          "exec plugin \"%s\": status.expirationTimestamp: \"%s\" is not an "
                          "RFC 3339 time",
                          e->command, exp);
        goto out;
    }
    auth_drop_exec(a);
    a->exec_token = token ? kiln_xstrdup(token) : NULL;
    if (cert) {
        a->exec_cert = kiln_xstrdup(cert);
        a->exec_cert_len = strlen(cert);
        a->exec_key = kiln_xstrdup(key);
        a->exec_key_len = strlen(key);
    }
    a->exec_expiry_s = expiry;
    a->exec_got_ms = kiln_kube_clock_mono_ms(&cfg->clock);
    a->have_exec = true;
out:
    if (pid > 0)
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    if (fa_init)
        posix_spawn_file_actions_destroy(&fa);
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    kiln_xfree(envp);
    free_strv(owned);
    free(info);
    json_decref(doc);
    if (outb.data)
        memset(outb.data, 0, outb.len);
    kiln_buf_free(&outb);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Credentials per request                                                    */

static char *dup_blob(const char *p, size_t n)
{
    if (!p)
        return NULL;
    char *d = kiln_xmalloc(n + 1);
    memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

int kiln_kube_config_credentials(kiln_kube_credentials *out, kiln_kube_config *cfg, kiln_err *err)
{
    kiln_kube_auth_state *a = cfg->auth;
    int rc = 0;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&a->mu);
    if (cfg->exec) {
        int64_t now = kiln_kube_clock_wall_s(&cfg->clock);
        if (a->have_exec && a->exec_expiry_s && now >= a->exec_expiry_s)
            auth_drop_exec(a);
        if (!a->have_exec && (rc = run_exec(cfg, err)))
            goto out;
        out->token = a->exec_token ? kiln_xstrdup(a->exec_token) : NULL;
        if (a->exec_cert) {
            out->cert_pem = dup_blob(a->exec_cert, a->exec_cert_len);
            out->cert_len = a->exec_cert_len;
            out->key_pem = dup_blob(a->exec_key, a->exec_key_len);
            out->key_len = a->exec_key_len;
            goto out;
        }
    } else if (cfg->token) {
        out->token = kiln_xstrdup(cfg->token);
    } else if (cfg->token_file) {
        int64_t now = kiln_kube_clock_mono_ms(&cfg->clock);
        if (!a->have_file_token || now - a->file_read_ms >= TOKEN_FILE_REREAD_MS) {
            char *raw = NULL;
            kiln_err rerr = {0};
            if (read_small(&raw, NULL, cfg->token_file, SMALL_FILE_LIMIT, &rerr) == 0) {
                kiln_xfree(a->file_token);
                a->file_token = trim_dup(raw);
                kiln_xfree(raw);
                a->file_read_ms = now;
                a->have_file_token = true;
            } else if (!a->have_file_token) {
                rc = kiln_err_set(err, rerr.code, "tokenFile: %s", rerr.msg);
                goto out;
            }
            /* else: a token that was readable before stays usable while
             * kubelet swaps the file. */
        }
        out->token = kiln_xstrdup(a->file_token);
    }
    if (cfg->cert_pem) {
        out->cert_pem = dup_blob(cfg->cert_pem, cfg->cert_len);
        out->cert_len = cfg->cert_len;
        out->key_pem = dup_blob(cfg->key_pem, cfg->key_len);
        out->key_len = cfg->key_len;
    }
out:
    pthread_mutex_unlock(&a->mu);
    if (rc)
        kiln_kube_credentials_clear(out);
    return rc;
}

bool kiln_kube_config_invalidate(kiln_kube_config *cfg, int64_t started_ms)
{
    kiln_kube_auth_state *a = cfg->auth;
    bool dropped = false;
    pthread_mutex_lock(&a->mu);
    /* Only a credential at least as old as the failed request can be blamed
     * for it; a newer one was fetched by another thread already. */
    if (cfg->exec && a->have_exec && a->exec_got_ms <= started_ms) {
        auth_drop_exec(a);
        dropped = true;
    } else if (cfg->exec && !a->have_exec) {
        dropped = true;
    } else if (!cfg->exec && !cfg->token && cfg->token_file && a->have_file_token &&
               a->file_read_ms <= started_ms) {
        a->have_file_token = false;
        dropped = true;
    }
    pthread_mutex_unlock(&a->mu);
    return dropped;
}

void kiln_kube_credentials_clear(kiln_kube_credentials *c)
{
    if (!c)
        return;
    if (c->token)
        memset(c->token, 0, strlen(c->token));
    if (c->key_pem)
        memset(c->key_pem, 0, c->key_len);
    kiln_xfree(c->token);
    kiln_xfree(c->cert_pem);
    kiln_xfree(c->key_pem);
    memset(c, 0, sizeof(*c));
}
