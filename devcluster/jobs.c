/* devcluster/jobs.c: validation Jobs that really run.
 *
 * A Job whose pod template's first container runs the kiln-gpucheck image is
 * handled here instead of being marked succeeded: as the Job controller, one
 * Pod is created (name, labels, ownerReference and status as kube-controller-
 * manager writes them); as the kubelet, the pod's container is the local
 * kiln-gpucheck binary, started with posix_spawn on the node the pod is bound
 * to, with --simulate on simulated GPU nodes. The process is polled with
 * waitpid(WNOHANG) from the controller thread, never waited for while the
 * server lock is held, and its termination-log file becomes the container's
 * termination message, as the kubelet reads it.
 *
 * Everything runs on the controller thread under dc->mu. The module owns
 * the child processes and their temporary directories (one per run, holding
 * the output and the termination log): a process whose pod or Job goes away
 * or whose deadline passes is killed, reaped and its directory removed;
 * kiln_dc_jobs_stop does the same for all of them at shutdown.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/utf8.h"
#include "devcluster/internal.h"

extern char **environ;

#define GPUCHECK_IMAGE "kiln-gpucheck"
#define CONTAINER_ID_PREFIX "kiln://"
/* Kubelet limits (pkg/kubelet/container): the termination message keeps the
 * last 4096 bytes of the file; FallbackToLogsOnError takes the last 80 lines
 * of the log, at most 2048 bytes of them. */
#define MAX_TERMINATION_MESSAGE 4096
#define FALLBACK_LINES 80
#define FALLBACK_BYTES 2048
/* While a process runs, the controller thread looks at it this often. */
#define POLL_MS 10

typedef struct proc {
    pid_t pid;
    char *pod_key; /* "ns/name" (owned) */
    char *pod_uid; /* owned */
    char *dir;     /* temporary directory: output, termination-log (owned) */
    json_t *owner; /* the pod's Job ownerReference (owned) */
    char started[32];
    bool killed; /* the pod went away: reap without writing status */
    struct proc *next;
} proc;

struct kiln_dc_jobs {
    proc *procs;
    json_t *deadlines;  /* job key -> start (ms since the epoch) of Jobs with a deadline */
    json_t *waiting;    /* pod key -> true: pods whose node is missing or not ready */
    bool nodes_changed; /* a node was written: look at the waiting pods again */
};

/* ---------------- small helpers ---------------- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Seconds since the epoch of an RFC 3339 UTC time as the server writes them; -1 if not one. */
static int64_t parse_time(const char *s)
{
    struct tm tm = {0};
    if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm))
        return -1;
    return (int64_t)timegm(&tm);
}

static json_t *path_get(const json_t *obj, const char *a, const char *b)
{
    return json_object_get(json_object_get(obj, a), b);
}

static const json_t *first_container(const json_t *pod_spec)
{
    return json_array_get(json_object_get(pod_spec, "containers"), 0);
}

/* True when image names kiln-gpucheck: the last path component, without a
 * ":tag" or "@digest" (ghcr.io/kiln-dev/kiln-gpucheck:0.1.0). */
static bool is_gpucheck_image(const char *image)
{
    if (!image)
        return false;
    size_t n = strcspn(image, "@");
    const char *start = image;
    for (size_t i = 0; i < n; i++)
        if (image[i] == '/')
            start = image + i + 1;
    size_t len = (size_t)(image + n - start);
    const char *colon = memchr(start, ':', len);
    if (colon)
        len = (size_t)(colon - start);
    return len == strlen(GPUCHECK_IMAGE) && !memcmp(start, GPUCHECK_IMAGE, len);
}

static bool job_runs_gpucheck(const json_t *job)
{
    const json_t *tspec = path_get(json_object_get(job, "spec"), "template", "spec");
    const json_t *c = first_container(tspec);
    return is_gpucheck_image(json_string_value(json_object_get(c, "image")));
}

/* The Job controlling pod: {name, uid} of its controller ownerReference (borrowed), or NULL. */
static const json_t *job_owner(const json_t *pod)
{
    size_t i;
    json_t *ow;
    json_array_foreach(path_get(pod, "metadata", "ownerReferences"), i, ow)
    {
        const char *kind = json_string_value(json_object_get(ow, "kind"));
        const char *av = json_string_value(json_object_get(ow, "apiVersion"));
        if (json_is_true(json_object_get(ow, "controller")) && kind && !strcmp(kind, "Job") && av &&
            !strncmp(av, "batch/", 6))
            return ow;
    }
    return NULL;
}

static bool pod_runs_gpucheck(const json_t *pod)
{
    const json_t *c = first_container(json_object_get(pod, "spec"));
    return job_owner(pod) && is_gpucheck_image(json_string_value(json_object_get(c, "image")));
}

static bool has_condition(const json_t *status, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(status, "conditions"), i, c)
    {
        const char *t = json_string_value(json_object_get(c, "type"));
        const char *s = json_string_value(json_object_get(c, "status"));
        if (t && s && !strcmp(t, type) && !strcmp(s, "True"))
            return true;
    }
    return false;
}

/* A condition; lastTransitionTime kept from old_status when the status did not change. */
static json_t *condition(const json_t *old_status, const char *type, const char *status,
                         const char *reason, const char *message, bool probe_time)
{
    char ts[32];
    kiln_dc_timestamp(ts);
    const char *lt = ts;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(old_status, "conditions"), i, c)
    {
        const char *t = json_string_value(json_object_get(c, "type"));
        const char *s = json_string_value(json_object_get(c, "status"));
        if (t && s && !strcmp(t, type) && !strcmp(s, status))
            lt = json_string_value(json_object_get(c, "lastTransitionTime")) ?: ts;
    }
    json_t *out = json_pack("{s:s,s:s}", "type", type, "status", status);
    if (probe_time)
        json_object_set_new(out, "lastProbeTime", json_null());
    json_object_set_new(out, "lastTransitionTime", json_string(lt));
    if (reason)
        json_object_set_new(out, "reason", json_string(reason));
    if (message)
        json_object_set_new(out, "message", json_string(message));
    return out;
}

/* Writes status (taken) onto the stored object at key, when it differs. */
static void write_status(kiln_devcluster *dc, kiln_dc_resource *r, const char *ns, const char *name,
                         json_t *status)
{
    kiln_dc_object *o = kiln_dc_store_get(r, ns, name);
    if (!o) {
        json_decref(status);
        return;
    }
    json_t *obj = kiln_dc_store_load(o);
    if (json_equal(json_object_get(obj, "status"), status)) {
        json_decref(status);
        json_decref(obj);
        return;
    }
    json_object_set_new(obj, "status", status);
    kiln_dc_write_internal(dc, r, obj, true);
}

static proc *find_proc(kiln_dc_jobs *j, const char *pod_uid)
{
    for (proc *p = j->procs; p; p = p->next)
        if (!strcmp(p->pod_uid, pod_uid))
            return p;
    return NULL;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char *path = kiln_xasprintf("%s/%s", dir, e->d_name);
            unlink(path);
            kiln_xfree(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

static void proc_free(proc *p)
{
    if (p->dir)
        remove_dir(p->dir);
    kiln_xfree(p->dir);
    kiln_xfree(p->pod_key);
    kiln_xfree(p->pod_uid);
    json_decref(p->owner);
    kiln_xfree(p);
}

/* ---------------- the pod's command line and environment ---------------- */

/* $(VAR) references as the kubelet expands them (third_party/forked/golang/
 * expansion): "$$" is a literal "$", "$(NAME)" of a defined variable is its
 * value, anything else (an undefined name, no closing parenthesis) stays as
 * written. vars: name -> string (borrowed). New string. */
static char *expand(const char *in, const json_t *vars)
{
    kiln_buf b;
    kiln_buf_init(&b, 0);
    for (const char *p = in; *p;) {
        if (p[0] != '$' || !p[1]) {
            kiln_buf_append(&b, p, 1, NULL);
            p++;
            continue;
        }
        if (p[1] == '$') {
            kiln_buf_append(&b, "$", 1, NULL);
            p += 2;
            continue;
        }
        const char *close = p[1] == '(' ? strchr(p + 2, ')') : NULL;
        if (!close) {
            kiln_buf_append(&b, p, 2, NULL);
            p += 2;
            continue;
        }
        char *name = kiln_xstrndup(p + 2, (size_t)(close - p - 2));
        const char *v = json_string_value(json_object_get(vars, name));
        if (v)
            kiln_buf_puts(&b, v, NULL);
        else
            kiln_buf_append(&b, p, (size_t)(close - p + 1), NULL);
        kiln_xfree(name);
        p = close + 1;
    }
    char *out = kiln_buf_steal(&b);
    return out ? out : kiln_xstrdup("");
}

/* The container's environment as the kubelet builds it: literal values
 * (expanded with the variables defined before them) and the downward API's
 * fieldRefs. secretKeyRef, configMapKeyRef and resourceFieldRef are not
 * resolved. New object name -> string. */
static json_t *container_env(const json_t *pod, const json_t *container)
{
    json_t *vars = json_object();
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(container, "env"), i, e)
    {
        const char *name = json_string_value(json_object_get(e, "name"));
        if (!name)
            continue;
        const char *value = json_string_value(json_object_get(e, "value"));
        const char *field =
            json_string_value(path_get(json_object_get(e, "valueFrom"), "fieldRef", "fieldPath"));
        if (value) {
            char *v = expand(value, vars);
            json_object_set_new(vars, name, json_string(v));
            kiln_xfree(v);
        } else if (field) {
            const char *v = NULL;
            if (!strcmp(field, "spec.nodeName"))
                v = json_string_value(path_get(pod, "spec", "nodeName"));
            else if (!strcmp(field, "spec.serviceAccountName"))
                v = json_string_value(path_get(pod, "spec", "serviceAccountName"));
            else if (!strncmp(field, "metadata.", 9) && strchr("nu", field[9]))
                v = kiln_dc_meta_str(pod, field + 9); /* name, namespace, uid */
            json_object_set_new(vars, name, json_string(v ? v : ""));
        } else if (!json_object_get(e, "valueFrom")) {
            json_object_set_new(vars, name, json_string(""));
        }
    }
    return vars;
}

/* The fault checks that --checks in args (borrowed) leaves in; new string or NULL. */
static char *fail_checks_within(const char *fail, const json_t *args)
{
    const char *checks = NULL;
    for (size_t i = 0; i + 1 < json_array_size(args); i++)
        if (!strcmp(json_string_value(json_array_get(args, i)) ?: "", "--checks"))
            checks = json_string_value(json_array_get(args, i + 1));
    kiln_buf b;
    kiln_buf_init(&b, 0);
    char *copy = kiln_xstrdup(fail);
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        bool in = !checks || strstr(checks, "all");
        if (!in) {
            size_t n = strlen(t);
            for (const char *c = checks; (c = strstr(c, t)) != NULL; c += n)
                if ((c == checks || c[-1] == ',') && (c[n] == ',' || !c[n]))
                    in = true;
        }
        if (in)
            kiln_buf_printf(&b, NULL, "%s%s", b.len ? "," : "", t);
    }
    kiln_xfree(copy);
    return kiln_buf_steal(&b);
}

static void push(char ***v, size_t *n, char *s)
{
    *v = kiln_xrealloc(*v, (*n + 2) * sizeof **v);
    (*v)[(*n)++] = s;
    (*v)[*n] = NULL;
}

static void free_vec(char **v)
{
    for (char **p = v; p && *p; p++)
        kiln_xfree(*p);
    kiln_xfree(v);
}

static bool executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* Where kiln-gpucheck is: --gpucheck (a path, or a name looked up on PATH),
 * else beside this program (/proc/self/exe), else on PATH. New string or NULL;
 * *why says where it looked. */
char *kiln_dc_gpucheck_find(const char *opt, char *why, size_t whyn)
{
    const char *name = opt && *opt ? opt : GPUCHECK_IMAGE;
    if (strchr(name, '/')) {
        snprintf(why, whyn, "--gpucheck %s is not an executable file", name);
        return executable(name) ? kiln_xstrdup(name) : NULL;
    }
    char self[4096];
    ssize_t n = opt && *opt ? -1 : readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            char *p = kiln_xasprintf("%s/%s", self, name);
            if (executable(p))
                return p;
            kiln_xfree(p);
        }
    }
    const char *path = getenv("PATH");
    char *copy = kiln_xstrdup(path ? path : "/usr/local/bin:/usr/bin:/bin");
    char *save = NULL, *found = NULL;
    for (char *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        char *p = kiln_xasprintf("%s/%s", *d ? d : ".", name);
        if (executable(p))
            found = p;
        else
            kiln_xfree(p);
    }
    kiln_xfree(copy);
    if (n > 0)
        snprintf(why, whyn, "%s was not found beside %.400s/ nor on PATH", name, self);
    else
        snprintf(why, whyn, "%s was not found on PATH", name);
    return found;
}

/* Starts argv with stdout and stderr appended to out_path, or with stdout on
 * out_fd (when >= 0) and stderr left as ours. The child gets
 * default signal handling and an empty mask (the dev cluster blocks SIGTERM
 * and SIGINT in every thread and ignores SIGPIPE, which exec would keep),
 * its own process group (a Ctrl-C meant for the dev cluster does not reach
 * it: the dev cluster ends it) and no descriptor beyond 0, 1 and 2. */
int kiln_dc_spawn(pid_t *pid, char **argv, char **envp, const char *out_path, int out_fd)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (out_fd >= 0) {
        posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    } else {
        posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
    }
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_init(&at);
    sigset_t mask, dflt;
    sigemptyset(&mask);
    sigemptyset(&dflt);
    int sigs[] = {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGALRM, SIGCHLD};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(&dflt, sigs[i]);
    posix_spawnattr_setsigmask(&at, &mask);
    posix_spawnattr_setsigdefault(&at, &dflt);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_SETPGROUP);
    int rc = posix_spawn(pid, argv[0], &fa, &at, argv, envp);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

/* ---------------- pod status ---------------- */

static json_t *pod_conditions(const json_t *old, const char *phase)
{
    bool running = !strcmp(phase, "Running");
    const char *done = !strcmp(phase, "Succeeded") ? "PodCompleted" : "PodFailed";
    return json_pack(
        "[o,o,o,o,o]",
        condition(old, "PodReadyToStartContainers", running ? "True" : "False", NULL, NULL, true),
        condition(old, "Initialized", "True", running ? NULL : "PodCompleted", NULL, true),
        condition(old, "Ready", running ? "True" : "False", running ? NULL : done, NULL, true),
        condition(old, "ContainersReady", running ? "True" : "False", running ? NULL : done, NULL,
                  true),
        condition(old, "PodScheduled", "True", NULL, NULL, true));
}

/* The status of a pod whose container runs (started set) or has ended
 * (terminated set: {exitCode, reason, message?, startedAt, finishedAt}). */
static json_t *pod_status(const json_t *pod, const char *started, json_t *terminated)
{
    const json_t *old = json_object_get(pod, "status");
    const char *uid = kiln_dc_meta_str(pod, "uid") ?: "";
    const json_t *c = first_container(json_object_get(pod, "spec"));
    const char *phase = "Running";
    if (terminated)
        phase = json_integer_value(json_object_get(terminated, "exitCode")) == 0 ? "Succeeded"
                                                                                 : "Failed";
    char cid[96], ip[32];
    snprintf(cid, sizeof cid, CONTAINER_ID_PREFIX "%.36s-0", uid);
    unsigned long long h = 0;
    for (const char *p = uid; *p; p++)
        h = h * 31 + (unsigned char)*p;
    snprintf(ip, sizeof ip, "10.244.%llu.%llu", (h >> 8) % 250, h % 250 + 2);
    json_t *state;
    if (terminated) {
        json_object_set_new(terminated, "containerID", json_string(cid));
        state = json_pack("{s:o}", "terminated", terminated);
    } else {
        state = json_pack("{s:{s:s}}", "running", "startedAt", started);
    }
    json_t *cs = json_pack("{s:s,s:s,s:s,s:s,s:b,s:b,s:i,s:o,s:{}}", "name",
                           json_string_value(json_object_get(c, "name")) ?: "", "image",
                           json_string_value(json_object_get(c, "image")) ?: "", "imageID", "",
                           "containerID", cid, "ready", !terminated, "started", !terminated,
                           "restartCount", 0, "state", state, "lastState");
    const char *start = json_string_value(json_object_get(old, "startTime")) ?: started;
    json_t *st = json_pack("{s:s,s:o,s:s,s:[{s:s}],s:s,s:s,s:s,s:[o]}", "phase", phase,
                           "conditions", pod_conditions(old, phase), "hostIP", "10.0.0.1",
                           "hostIPs", "ip", "10.0.0.1", "podIP", ip, "startTime", start, "qosClass",
                           "BestEffort", "containerStatuses", cs);
    json_object_set_new(st, "podIPs", json_pack("[{s:s}]", "ip", ip));
    return st;
}

/* Reads at most max bytes from the end of path into a new string (NUL bytes
 * and invalid UTF-8 become '?', as JSON needs). */
static char *read_tail(const char *path, size_t max)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return kiln_xstrdup("");
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)max ? size - (off_t)max : 0;
    char *buf = kiln_xmalloc(max + 1);
    size_t n = 0;
    if (size > 0 && lseek(fd, from, SEEK_SET) == from) {
        while (n < max) {
            ssize_t r = read(fd, buf + n, max - n);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            n += (size_t)r;
        }
    }
    close(fd);
    buf[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (!buf[i])
            buf[i] = '?';
    kiln_utf8_clean(buf);
    return buf;
}

/* The container's termination message, as the kubelet makes it. */
static char *termination_message(const json_t *container, const char *dir, int exit_code)
{
    char *path = kiln_xasprintf("%s/termination-log", dir);
    char *msg = read_tail(path, MAX_TERMINATION_MESSAGE);
    kiln_xfree(path);
    const char *policy = json_string_value(json_object_get(container, "terminationMessagePolicy"));
    if (msg[0] || exit_code == 0 || !policy || strcmp(policy, "FallbackToLogsOnError"))
        return msg;
    kiln_xfree(msg);
    /* The last 80 lines, then at most 2048 bytes of them from their start
     * (PodLogOptions{TailLines: 80, LimitBytes: 2048}). */
    path = kiln_xasprintf("%s/output", dir);
    char *log = read_tail(path, 1 << 20);
    kiln_xfree(path);
    size_t len = strlen(log);
    size_t start = len, lines = 0;
    if (start > 0 && log[start - 1] == '\n')
        start--;
    while (start > 0) {
        if (log[start - 1] == '\n' && ++lines == FALLBACK_LINES)
            break;
        start--;
    }
    size_t n = len - start < FALLBACK_BYTES ? len - start : FALLBACK_BYTES;
    msg = kiln_xstrndup(log + start, n);
    kiln_xfree(log);
    kiln_utf8_clean(msg);
    return msg;
}

static json_t *terminated(int exit_code, const char *reason, const char *message,
                          const char *started)
{
    char ts[32];
    kiln_dc_timestamp(ts);
    json_t *t = json_pack("{s:i,s:s,s:s,s:s}", "exitCode", exit_code, "reason", reason, "startedAt",
                          started, "finishedAt", ts);
    if (message && *message)
        json_object_set_new(t, "message", json_string(message));
    return t;
}

/* ---------------- the Job controller ---------------- */

static kiln_dc_resource *pods_of(kiln_devcluster *dc)
{
    return kiln_dc_kinds_find(dc, "", "v1", "pods");
}

static kiln_dc_resource *jobs_of(kiln_devcluster *dc)
{
    return kiln_dc_kinds_find(dc, "batch", "v1", "jobs");
}

/* The pod the Job with uid controls in ns: new reference or NULL. */
static json_t *find_pod(kiln_devcluster *dc, const char *ns, const char *uid)
{
    kiln_dc_resource *r = pods_of(dc);
    size_t nl = strlen(ns);
    for (size_t b = 0; r && b < r->objects.nbuckets; b++)
        for (kiln_dc_object *o = r->objects.buckets[b]; o; o = o->next) {
            if (strncmp(o->key, ns, nl) || o->key[nl] != '/' || !strstr(o->json, uid))
                continue;
            json_t *pod = kiln_dc_store_load(o);
            const json_t *ow = job_owner(pod);
            if (ow && !strcmp(json_string_value(json_object_get(ow, "uid")) ?: "", uid))
                return pod;
            json_decref(pod);
        }
    return NULL;
}

/* Creates the Job's one pod, as the Job controller does. */
static void create_pod(kiln_devcluster *dc, const json_t *job)
{
    static const char alnum[] = "bcdfghjklmnpqrstvwxz2456789"; /* k8s utilrand */
    const char *name = kiln_dc_meta_str(job, "name");
    const char *uid = kiln_dc_meta_str(job, "uid");
    const json_t *tmpl = path_get(job, "spec", "template");
    char suffix[6];
    for (int i = 0; i < 5; i++)
        suffix[i] = alnum[rand() % (int)(sizeof alnum - 1)];
    suffix[5] = '\0';
    char pod_name[320];
    snprintf(pod_name, sizeof pod_name, "%.57s-%s", name, suffix);
    json_t *md = json_deep_copy(json_object_get(tmpl, "metadata"));
    if (!json_is_object(md)) {
        json_decref(md);
        md = json_object();
    }
    json_object_del(md, "name");
    json_object_del(md, "generateName");
    json_object_set_new(md, "name", json_string(pod_name));
    json_object_set_new(md, "namespace", json_string(kiln_dc_meta_str(job, "namespace")));
    json_t *labels = json_object_get(md, "labels");
    if (!json_is_object(labels)) {
        labels = json_object();
        json_object_set_new(md, "labels", labels);
    }
    json_object_set_new(labels, "batch.kubernetes.io/controller-uid", json_string(uid));
    json_object_set_new(labels, "batch.kubernetes.io/job-name", json_string(name));
    json_object_set_new(labels, "controller-uid", json_string(uid));
    json_object_set_new(labels, "job-name", json_string(name));
    json_object_set_new(md, "ownerReferences",
                        json_pack("[{s:s,s:s,s:s,s:s,s:b,s:b}]", "apiVersion", "batch/v1", "kind",
                                  "Job", "name", name, "uid", uid, "controller", 1,
                                  "blockOwnerDeletion", 1));
    json_t *spec = json_deep_copy(json_object_get(tmpl, "spec"));
    json_t *pod = json_pack("{s:s,s:s,s:o,s:o}", "apiVersion", "v1", "kind", "Pod", "metadata", md,
                            "spec", json_is_object(spec) ? spec : json_object());
    if (!json_is_object(spec))
        json_decref(spec);
    if (kiln_dc_write_internal(dc, pods_of(dc), pod, false) < 0)
        KILN_LOG(KILN_LOG_WARN, "job %s/%s: cannot create pod %s",
                 kiln_dc_meta_str(job, "namespace"), name, pod_name);
    else
        KILN_LOG(KILN_LOG_DEBUG, "job %s/%s: created pod %s", kiln_dc_meta_str(job, "namespace"),
                 name, pod_name);
}

static void kill_pod_proc(kiln_devcluster *dc, const char *pod_uid)
{
    proc *p = pod_uid ? find_proc(dc->jobs, pod_uid) : NULL;
    if (p && !p->killed) {
        kill(p->pid, SIGKILL);
        p->killed = true;
    }
}

static void sync_pod(kiln_devcluster *dc, const json_t *pod);

/* Moves a gpucheck Job toward its state: pod created, active, then Complete
 * or Failed from its pod's phase, or DeadlineExceeded. */
static void sync_job(kiln_devcluster *dc, const json_t *job)
{
    const char *ns = kiln_dc_meta_str(job, "namespace") ?: "";
    const char *name = kiln_dc_meta_str(job, "name") ?: "";
    const char *uid = kiln_dc_meta_str(job, "uid") ?: "";
    const json_t *old = json_object_get(job, "status");
    char key[600];
    snprintf(key, sizeof key, "%s/%s", ns, name);
    if (json_is_true(path_get(job, "spec", "suspend")) || has_condition(old, "Complete") ||
        has_condition(old, "Failed")) {
        json_object_del(dc->jobs->deadlines, key);
        return;
    }
    char ts[32];
    kiln_dc_timestamp(ts);
    const char *start = json_string_value(json_object_get(old, "startTime"));
    json_t *pod = find_pod(dc, ns, uid);
    if (!start && !pod) {
        create_pod(dc, job);
        json_object_set_new(dc->jobs->deadlines, key, json_integer(wall_ms()));
        /* The kubelet's turn at once: the pod's own write is only seen by
         * the next pass, which may be a deadline away. */
        pod = find_pod(dc, ns, uid);
        if (pod) {
            sync_pod(dc, pod);
            json_decref(pod);
            pod = find_pod(dc, ns, uid);
        }
    }
    json_t *st = json_pack("{s:s,s:i,s:i,s:{}}", "startTime", start ? start : ts, "ready", 0,
                           "terminating", 0, "uncountedTerminatedPods");
    const char *phase = json_string_value(path_get(pod, "status", "phase")) ?: "Pending";
    json_t *ads = path_get(job, "spec", "activeDeadlineSeconds");
    json_t *since = json_object_get(dc->jobs->deadlines, key);
    int64_t begun = since ? json_integer_value(since) : parse_time(start) * 1000;
    bool pod_done = pod && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"));
    const char *why = NULL, *msg = NULL;
    if (json_is_integer(ads) && !pod_done && begun > 0 &&
        wall_ms() >= begun + json_integer_value(ads) * 1000) {
        why = "DeadlineExceeded";
        msg = "Job was active longer than specified deadline";
        if (pod) {
            kill_pod_proc(dc, kiln_dc_meta_str(pod, "uid"));
            kiln_dc_delete_internal(dc, pods_of(dc), ns, kiln_dc_meta_str(pod, "name"),
                                    "Background");
        }
    } else if (pod && !strcmp(phase, "Succeeded")) {
        json_object_set_new(st, "succeeded", json_integer(1));
        json_object_set_new(st, "completionTime", json_string(ts));
        const char *m = "Reached expected number of succeeded pods";
        json_object_set_new(
            st, "conditions",
            json_pack("[o,o]",
                      condition(old, "SuccessCriteriaMet", "True", "CompletionsReached", m, true),
                      condition(old, "Complete", "True", "CompletionsReached", m, true)));
    } else if ((pod && !strcmp(phase, "Failed")) || (!pod && start)) {
        /* backoffLimit 0: the first failed (or vanished) pod fails the Job. */
        why = "BackoffLimitExceeded";
        msg = "Job has reached the specified backoff limit";
    } else {
        json_object_set_new(st, "active", json_integer(1));
        if (!strcmp(phase, "Running") && has_condition(json_object_get(pod, "status"), "Ready"))
            json_object_set_new(st, "ready", json_integer(1));
    }
    if (why) {
        json_object_set_new(st, "failed", json_integer(1));
        json_object_set_new(st, "conditions",
                            json_pack("[o,o]",
                                      condition(old, "FailureTarget", "True", why, msg, true),
                                      condition(old, "Failed", "True", why, msg, true)));
    }
    if (why || json_object_get(st, "succeeded"))
        json_object_del(dc->jobs->deadlines, key);
    else if (json_is_integer(ads) && !since)
        json_object_set_new(dc->jobs->deadlines, key, json_integer(begun > 0 ? begun : wall_ms()));
    json_decref(pod);
    write_status(dc, jobs_of(dc), ns, name, st);
}

static void sync_owner_job(kiln_devcluster *dc, const char *ns, const json_t *owner)
{
    const char *name = json_string_value(json_object_get(owner, "name"));
    const char *uid = json_string_value(json_object_get(owner, "uid"));
    kiln_dc_resource *r = jobs_of(dc);
    kiln_dc_object *o = r && name ? kiln_dc_store_get(r, ns, name) : NULL;
    if (!o)
        return;
    json_t *job = kiln_dc_store_load(o);
    if (uid && !strcmp(kiln_dc_meta_str(job, "uid") ?: "", uid) && job_runs_gpucheck(job))
        sync_job(dc, job);
    json_decref(job);
}

/* ---------------- the kubelet ---------------- */

/* Ready, missing or not ready; *node_out gets the node (new reference) when it exists. */
static bool node_ready(kiln_devcluster *dc, const char *name, json_t **node_out)
{
    *node_out = NULL;
    kiln_dc_resource *r = kiln_dc_kinds_find(dc, "", "v1", "nodes");
    kiln_dc_object *o = r && name ? kiln_dc_store_get(r, "", name) : NULL;
    if (!o)
        return false;
    *node_out = kiln_dc_store_load(o);
    size_t i;
    json_t *c;
    json_array_foreach(path_get(*node_out, "status", "conditions"), i, c)
    {
        const char *t = json_string_value(json_object_get(c, "type"));
        const char *s = json_string_value(json_object_get(c, "status"));
        if (t && !strcmp(t, "Ready"))
            return s && !strcmp(s, "True");
    }
    return false;
}

/* The command line: the local binary, command[1:] + args expanded, then what
 * the node adds (--simulate on simulated GPU nodes) and the termination log. */
static char **build_argv(const char *binary, const json_t *container, const json_t *vars,
                         const json_t *node, const char *dir)
{
    char **argv = NULL;
    size_t n = 0;
    push(&argv, &n, kiln_xstrdup(binary));
    json_t *args = json_array();
    json_t *cmd = json_object_get(container, "command");
    for (size_t i = 1; i < json_array_size(cmd); i++)
        json_array_append(args, json_array_get(cmd, i));
    json_array_extend(args, json_object_get(container, "args"));
    json_t *expanded = json_array();
    size_t i;
    json_t *a;
    json_array_foreach(args, i, a)
    {
        char *s = expand(json_string_value(a) ?: "", vars);
        json_array_append_new(expanded, json_string(s));
        push(&argv, &n, s);
    }
    json_t *ann = path_get(node, "metadata", "annotations");
    const char *model = json_string_value(json_object_get(ann, KILN_DC_ANN_GPU_MODEL));
    if (model) {
        push(&argv, &n, kiln_xstrdup("--simulate"));
        push(&argv, &n, kiln_xstrdup(model));
        const char *lim = json_string_value(
            path_get(json_object_get(container, "resources"), "limits", "nvidia.com/gpu"));
        json_t *lim_int =
            path_get(json_object_get(container, "resources"), "limits", "nvidia.com/gpu");
        const char *cap = json_string_value(
            path_get(json_object_get(node, "status"), "capacity", "nvidia.com/gpu"));
        push(&argv, &n, kiln_xstrdup("--gpus"));
        if (json_is_integer(lim_int))
            push(&argv, &n, kiln_xasprintf("%lld", (long long)json_integer_value(lim_int)));
        else
            push(&argv, &n, kiln_xstrdup(lim ? lim : cap ? cap : "1"));
        const char *fail = json_string_value(json_object_get(ann, KILN_DC_ANN_SIMULATE_FAIL));
        char *within = fail ? fail_checks_within(fail, expanded) : NULL;
        if (within && *within) {
            push(&argv, &n, kiln_xstrdup("--simulate-fail"));
            push(&argv, &n, within);
        } else {
            kiln_xfree(within);
        }
    }
    push(&argv, &n, kiln_xstrdup("--termination-log"));
    push(&argv, &n, kiln_xasprintf("%s/termination-log", dir));
    json_decref(expanded);
    json_decref(args);
    return argv;
}

/* This process's environment with the container's on top. */
static char **build_envp(const json_t *vars)
{
    char **envp = NULL;
    size_t n = 0;
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (eq) {
            char *name = kiln_xstrndup(*e, (size_t)(eq - *e));
            if (!json_object_get(vars, name))
                push(&envp, &n, kiln_xstrdup(*e));
            kiln_xfree(name);
        }
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)vars, k, v)
        push(&envp, &n, kiln_xasprintf("%s=%s", k, json_string_value(v)));
    return envp;
}

/* Starts the pod's container, or ends it at once when it cannot start. */
static void start_pod(kiln_devcluster *dc, const json_t *pod, const json_t *node)
{
    const char *ns = kiln_dc_meta_str(pod, "namespace") ?: "";
    const char *name = kiln_dc_meta_str(pod, "name") ?: "";
    const json_t *c = first_container(json_object_get(pod, "spec"));
    char ts[32], why[600];
    kiln_dc_timestamp(ts);
    char *binary = kiln_dc_gpucheck_find(dc->opts.gpucheck_path, why, sizeof why);
    if (!binary) {
        char *msg = kiln_xasprintf("kiln dev cluster: %s; build it (cmake --build <dir> --target "
                                   "kiln-gpucheck) or pass --gpucheck PATH to kiln dev or "
                                   "kiln-devcluster",
                                   why);
        write_status(dc, pods_of(dc), ns, name,
                     pod_status(pod, ts, terminated(127, "StartError", msg, ts)));
        kiln_xfree(msg);
        return;
    }
    const char *tmp = getenv("TMPDIR");
    char *dir = kiln_xasprintf("%s/kiln-gpucheck-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        char *msg = kiln_xasprintf("kiln dev cluster: cannot make a directory for the run: %s",
                                   strerror(errno));
        write_status(dc, pods_of(dc), ns, name,
                     pod_status(pod, ts, terminated(128, "StartError", msg, ts)));
        kiln_xfree(msg);
        kiln_xfree(dir);
        kiln_xfree(binary);
        return;
    }
    char *tl = kiln_xasprintf("%s/termination-log", dir);
    int fd = open(tl, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0)
        close(fd);
    kiln_xfree(tl);
    json_t *vars = container_env(pod, c);
    char **argv = build_argv(binary, c, vars, node, dir);
    char **envp = build_envp(vars);
    char *out = kiln_xasprintf("%s/output", dir);
    pid_t pid = 0;
    int rc = kiln_dc_spawn(&pid, argv, envp, out, -1);
    kiln_xfree(out);
    if (rc != 0) {
        char *msg = kiln_xasprintf("kiln dev cluster: cannot run %s: %s", binary, strerror(rc));
        write_status(
            dc, pods_of(dc), ns, name,
            pod_status(pod, ts, terminated(rc == ENOENT ? 127 : 128, "StartError", msg, ts)));
        kiln_xfree(msg);
        remove_dir(dir);
        kiln_xfree(dir);
    } else {
        proc *p = kiln_xcalloc(1, sizeof *p);
        p->pid = pid;
        p->pod_key = kiln_xasprintf("%s/%s", ns, name);
        p->pod_uid = kiln_xstrdup(kiln_dc_meta_str(pod, "uid") ?: "");
        p->dir = dir;
        p->owner = json_deep_copy(job_owner(pod));
        snprintf(p->started, sizeof p->started, "%s", ts);
        p->next = dc->jobs->procs;
        dc->jobs->procs = p;
        KILN_LOG(KILN_LOG_INFO, "pod %s/%s: started %s (pid %d)", ns, name, binary, (int)pid);
        write_status(dc, pods_of(dc), ns, name, pod_status(pod, ts, NULL));
    }
    free_vec(argv);
    free_vec(envp);
    json_decref(vars);
    kiln_xfree(binary);
}

static void sync_pod(kiln_devcluster *dc, const json_t *pod)
{
    const char *ns = kiln_dc_meta_str(pod, "namespace") ?: "";
    const char *name = kiln_dc_meta_str(pod, "name") ?: "";
    const char *uid = kiln_dc_meta_str(pod, "uid") ?: "";
    const json_t *old = json_object_get(pod, "status");
    const char *phase = json_string_value(json_object_get(old, "phase")) ?: "";
    char key[600];
    snprintf(key, sizeof key, "%s/%s", ns, name);
    json_object_del(dc->jobs->waiting, key);
    if (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed") || find_proc(dc->jobs, uid))
        return;
    if (!strcmp(phase, "Running")) {
        /* Running in the stored state but not here: the dev cluster was
         * restarted (--data-dir) and its processes ended with it. */
        json_t *running = path_get(json_array_get(json_object_get(old, "containerStatuses"), 0),
                                   "state", "running");
        const char *since = json_string_value(json_object_get(running, "startedAt")) ?: "";
        write_status(dc, pods_of(dc), ns, name,
                     pod_status(pod, since,
                                terminated(137, "Error",
                                           "kiln dev cluster: the dev cluster stopped while the "
                                           "container ran",
                                           since)));
        return;
    }
    json_t *node = NULL;
    const char *node_name = json_string_value(path_get(pod, "spec", "nodeName"));
    if (!node_ready(dc, node_name, &node)) {
        /* No kubelet is there to admit the pod: it stays Pending, with only
         * what kube-apiserver set on create. */
        json_object_set_new(dc->jobs->waiting, key, json_true());
        write_status(dc, pods_of(dc), ns, name,
                     json_pack("{s:s,s:s}", "phase", "Pending", "qosClass", "BestEffort"));
        json_decref(node);
        return;
    }
    start_pod(dc, pod, node);
    json_decref(node);
}

/* ---------------- entry points ---------------- */

void kiln_dc_jobs_init(kiln_devcluster *dc)
{
    dc->jobs = kiln_xcalloc(1, sizeof *dc->jobs);
    dc->jobs->deadlines = json_object();
    dc->jobs->waiting = json_object();
}

bool kiln_dc_jobs_sync(kiln_devcluster *dc, const kiln_dc_resource *r, const json_t *obj)
{
    if (!strcmp(r->group, "batch") && !strcmp(r->plural, "jobs")) {
        if (!job_runs_gpucheck(obj))
            return false;
        sync_job(dc, obj);
        return true;
    }
    if (r->group[0] || strcmp(r->plural, "pods") || !pod_runs_gpucheck(obj))
        return false;
    sync_pod(dc, obj);
    /* The Job follows its pod's phase. */
    const char *ns = kiln_dc_meta_str(obj, "namespace") ?: "";
    kiln_dc_resource *pr = pods_of(dc);
    kiln_dc_object *o = kiln_dc_store_get(pr, ns, kiln_dc_meta_str(obj, "name") ?: "");
    if (o) {
        json_t *now = kiln_dc_store_load(o);
        sync_owner_job(dc, ns, job_owner(now));
        json_decref(now);
    }
    return true;
}

void kiln_dc_jobs_note_node(kiln_devcluster *dc)
{
    if (dc->jobs)
        dc->jobs->nodes_changed = true;
}

/* Ends a reaped process: the pod's container terminated with status. */
static void finish(kiln_devcluster *dc, proc *p, int status)
{
    char ns[256];
    const char *name;
    kiln_dc_key_split(p->pod_key, ns, sizeof ns, &name);
    kiln_dc_object *o = kiln_dc_store_get(pods_of(dc), ns, name);
    json_t *pod = o ? kiln_dc_store_load(o) : NULL;
    if (!pod || strcmp(kiln_dc_meta_str(pod, "uid") ?: "", p->pod_uid)) {
        json_decref(pod);
        return;
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    const json_t *c = first_container(json_object_get(pod, "spec"));
    char *msg = termination_message(c, p->dir, code);
    KILN_LOG(KILN_LOG_INFO, "pod %s: kiln-gpucheck exited with %d", p->pod_key, code);
    write_status(dc, pods_of(dc), ns, name,
                 pod_status(pod, p->started,
                            terminated(code, code ? "Error" : "Completed", msg, p->started)));
    kiln_xfree(msg);
    sync_owner_job(dc, ns, job_owner(pod));
    json_decref(pod);
}

int64_t kiln_dc_jobs_tick(kiln_devcluster *dc)
{
    kiln_dc_jobs *j = dc->jobs;
    int64_t next = -1;
    for (proc **pp = &j->procs; *pp;) {
        proc *p = *pp;
        if (!p->killed) {
            /* A deleted pod (or one replaced under the same name) stops its container. */
            char ns[256];
            const char *name;
            kiln_dc_key_split(p->pod_key, ns, sizeof ns, &name);
            kiln_dc_object *o = kiln_dc_store_get(pods_of(dc), ns, name);
            if (!o || !strstr(o->json, p->pod_uid) || strstr(o->json, "\"deletionTimestamp\"")) {
                kill(p->pid, SIGKILL);
                p->killed = true;
                KILN_LOG(KILN_LOG_INFO, "pod %s deleted: killed its container (pid %d)", p->pod_key,
                         (int)p->pid);
                /* A pod gone before it finished fails its Job (backoffLimit 0). */
                sync_owner_job(dc, ns, p->owner);
            }
        }
        int status = 0;
        pid_t w = waitpid(p->pid, &status, WNOHANG);
        if (w == 0) {
            next = POLL_MS;
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        if (w == p->pid && !p->killed)
            finish(dc, p, status);
        proc_free(p);
    }
    /* Deadlines of active Jobs, including those whose pod never started. */
    int64_t now = wall_ms();
    json_t *due = json_array();
    const char *key;
    json_t *v;
    json_object_foreach(j->deadlines, key, v)
    {
        char ns[256];
        const char *name;
        kiln_dc_key_split(key, ns, sizeof ns, &name);
        kiln_dc_object *o = kiln_dc_store_get(jobs_of(dc), ns, name);
        json_t *job = o ? kiln_dc_store_load(o) : NULL;
        json_t *ads = path_get(job, "spec", "activeDeadlineSeconds");
        if (!json_is_integer(ads)) {
            json_array_append_new(due, json_string(key));
        } else {
            int64_t at = json_integer_value(v) + json_integer_value(ads) * 1000;
            if (at <= now)
                json_array_append_new(due, json_string(key));
            else if (next < 0 || at - now < next)
                next = at - now;
        }
        json_decref(job);
    }
    size_t i;
    json_array_foreach(due, i, v)
    {
        char ns[256];
        const char *name;
        kiln_dc_key_split(json_string_value(v), ns, sizeof ns, &name);
        kiln_dc_object *o = kiln_dc_store_get(jobs_of(dc), ns, name);
        json_t *job = o ? kiln_dc_store_load(o) : NULL;
        if (job && job_runs_gpucheck(job))
            sync_job(dc, job);
        else
            json_object_del(j->deadlines, json_string_value(v));
        json_decref(job);
    }
    json_decref(due);
    if (j->nodes_changed) {
        j->nodes_changed = false;
        json_t *keys = json_array();
        json_object_foreach(j->waiting, key, v) json_array_append_new(keys, json_string(key));
        json_array_foreach(keys, i, v)
        {
            char ns[256];
            const char *name;
            kiln_dc_key_split(json_string_value(v), ns, sizeof ns, &name);
            kiln_dc_object *o = kiln_dc_store_get(pods_of(dc), ns, name);
            json_t *pod = o ? kiln_dc_store_load(o) : NULL;
            if (pod)
                kiln_dc_jobs_sync(dc, pods_of(dc), pod);
            else
                json_object_del(j->waiting, json_string_value(v));
            json_decref(pod);
        }
        json_decref(keys);
    }
    return next;
}

void kiln_dc_jobs_stop(kiln_devcluster *dc)
{
    kiln_dc_jobs *j = dc->jobs;
    if (!j)
        return;
    for (proc *p = j->procs; p; p = p->next)
        kill(p->pid, SIGKILL);
    while (j->procs) {
        proc *p = j->procs;
        j->procs = p->next;
        while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        proc_free(p);
    }
    json_decref(j->deadlines);
    json_decref(j->waiting);
    kiln_xfree(j);
    dc->jobs = NULL;
}
