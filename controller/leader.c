/* controller/leader.c: the Lease elector (reference/kubeapi.md section 8.1). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "controller/leader.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"

struct kiln_leader {
    kiln_kube_client *c;
    char *ns, *name, *identity;
    pthread_t thread;
    atomic_int stop;
    atomic_int leader;
    atomic_int lost;
    char *observed_record; /* canonical JSON of the spec last seen */
    int64_t observed_ms;
    int64_t last_renew_ms;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* MicroTime: RFC 3339 with exactly six fractional digits. */
static void micro_now(char out[40])
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char base[24];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 40, "%s.%06ldZ", base, (long)tv.tv_usec);
}

bool kiln_leader_can_acquire(const json_t *spec, const char *identity, int64_t observed_ms,
                             int64_t now_ms)
{
    const char *holder = json_string_value(json_object_get(spec, "holderIdentity"));
    if (!holder || !*holder || strcmp(holder, identity) == 0)
        return true;
    json_int_t dur = json_integer_value(json_object_get(spec, "leaseDurationSeconds"));
    if (dur <= 0)
        dur = KILN_LEADER_LEASE_S;
    return observed_ms + dur * 1000 <= now_ms;
}

static bool try_acquire_or_renew(kiln_leader *l)
{
    kiln_kube_ref ref = {.group = "coordination.k8s.io",
                         .version = "v1",
                         .resource = "leases",
                         .namespace = l->ns,
                         .name = l->name};
    json_t *cur = NULL, *out = NULL;
    kiln_err err = {0};
    char now[40];
    bool ok = false;
    micro_now(now);
    int rc = kiln_kube_get(&cur, l->c, &ref, &err);
    if (rc == KILN_ENOTFOUND) {
        json_t *lease = json_pack(
            "{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:i, s:s, s:s, s:i}}", "apiVersion",
            "coordination.k8s.io/v1", "kind", "Lease", "metadata", "name", l->name, "namespace",
            l->ns, "spec", "holderIdentity", l->identity, "leaseDurationSeconds",
            KILN_LEADER_LEASE_S, "acquireTime", now, "renewTime", now, "leaseTransitions", 0);
        rc = kiln_kube_create(&out, l->c, &ref, lease, NULL, &err);
        json_decref(lease);
        ok = rc == 0;
        goto done;
    }
    if (rc < 0)
        goto done;
    json_t *spec = json_object_get(cur, "spec");
    char *canon = kiln_json_canonical(spec);
    int64_t t = mono_ms();
    if (!l->observed_record || !canon || strcmp(canon, l->observed_record) != 0) {
        kiln_xfree(l->observed_record);
        l->observed_record = canon;
        l->observed_ms = t;
    } else {
        kiln_xfree(canon);
    }
    if (!kiln_leader_can_acquire(spec, l->identity, l->observed_ms, t))
        goto done;
    const char *holder = json_string_value(json_object_get(spec, "holderIdentity"));
    bool mine = holder && strcmp(holder, l->identity) == 0;
    json_t *next = json_deep_copy(cur);
    json_t *ns = json_object_get(next, "spec");
    if (!json_is_object(ns)) {
        ns = json_object();
        json_object_set_new(next, "spec", ns);
    }
    json_object_set_new(ns, "holderIdentity", json_string(l->identity));
    json_object_set_new(ns, "leaseDurationSeconds", json_integer(KILN_LEADER_LEASE_S));
    json_object_set_new(ns, "renewTime", json_string(now));
    if (!mine) {
        json_object_set_new(ns, "acquireTime", json_string(now));
        json_int_t tr = json_integer_value(json_object_get(ns, "leaseTransitions"));
        json_object_set_new(ns, "leaseTransitions", json_integer(tr + 1));
    }
    /* PUT with the resourceVersion we read: a racing candidate gets 409. */
    rc = kiln_kube_update(&out, l->c, &ref, next, NULL, &err);
    json_decref(next);
    ok = rc == 0;
done:
    if (ok) {
        kiln_xfree(l->observed_record);
        l->observed_record = kiln_json_canonical(json_object_get(out, "spec"));
        l->observed_ms = mono_ms();
    } else if (rc < 0 && rc != KILN_ECONFLICT) {
        KILN_LOG(KILN_LOG_DEBUG, "lease %s/%s: %s", l->ns, l->name, err.msg);
    }
    json_decref(cur);
    json_decref(out);
    return ok;
}

static void release(kiln_leader *l)
{
    kiln_kube_ref ref = {.group = "coordination.k8s.io",
                         .version = "v1",
                         .resource = "leases",
                         .namespace = l->ns,
                         .name = l->name};
    json_t *cur = NULL;
    if (kiln_kube_get(&cur, l->c, &ref, NULL) == 0) {
        const char *holder = kiln_json_get_string(cur, "spec.holderIdentity");
        if (holder && strcmp(holder, l->identity) == 0) {
            json_t *spec = json_object_get(cur, "spec");
            json_object_set_new(spec, "holderIdentity", json_string(""));
            json_object_set_new(spec, "leaseDurationSeconds", json_integer(1));
            kiln_kube_update(NULL, l->c, &ref, cur, NULL, NULL);
        }
    }
    json_decref(cur);
}

static void nap(kiln_leader *l, long ms)
{
    /* Short steps so stop is seen quickly. */
    for (long left = ms; left > 0 && !atomic_load(&l->stop); left -= 50) {
        struct timespec ts = {0, (left < 50 ? left : 50) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void *run(void *arg)
{
    kiln_leader *l = arg;
    while (!atomic_load(&l->stop)) {
        bool ok = try_acquire_or_renew(l);
        int64_t t = mono_ms();
        if (ok) {
            if (!atomic_load(&l->leader))
                KILN_LOG(KILN_LOG_INFO, "acquired Lease %s/%s", l->ns, l->name);
            l->last_renew_ms = t;
            atomic_store(&l->leader, 1);
        } else if (atomic_load(&l->leader) &&
                   t - l->last_renew_ms > KILN_LEADER_RENEW_DEADLINE_MS) {
            KILN_LOG(KILN_LOG_ERROR, "lost Lease %s/%s: not renewed within %d ms", l->ns, l->name,
                     KILN_LEADER_RENEW_DEADLINE_MS);
            atomic_store(&l->leader, 0);
            atomic_store(&l->lost, 1);
            break;
        }
        nap(l, KILN_LEADER_RETRY_MS);
    }
    return NULL;
}

int kiln_leader_start(kiln_leader **out, kiln_kube_client *c, const char *ns, const char *name,
                      const char *identity, kiln_err *err)
{
    kiln_leader *l = kiln_xcalloc(1, sizeof(*l));
    l->c = c;
    l->ns = kiln_xstrdup(ns);
    l->name = kiln_xstrdup(name);
    l->identity = kiln_xstrdup(identity);
    if (pthread_create(&l->thread, NULL, run, l) != 0) {
        kiln_xfree(l->ns);
        kiln_xfree(l->name);
        kiln_xfree(l->identity);
        kiln_xfree(l);
        *out = NULL;
        return kiln_err_set(err, KILN_EIO, "cannot start the leader elector");
    }
    *out = l;
    return 0;
}

bool kiln_leader_is_leader(kiln_leader *l)
{
    return l && atomic_load(&l->leader);
}

bool kiln_leader_lost(kiln_leader *l)
{
    return l && atomic_load(&l->lost);
}

void kiln_leader_stop(kiln_leader *l)
{
    if (!l)
        return;
    atomic_store(&l->stop, 1);
    pthread_join(l->thread, NULL);
    if (atomic_load(&l->leader))
        release(l);
    kiln_xfree(l->observed_record);
    kiln_xfree(l->ns);
    kiln_xfree(l->name);
    kiln_xfree(l->identity);
    kiln_xfree(l);
}
