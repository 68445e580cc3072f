#include "core/log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

kiln_log_level kiln_log_threshold = KILN_LOG_INFO;

static kiln_log_sink log_sink;
static void *log_userdata;
/* One line at a time, whatever thread writes it. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void kiln_log_set_sink(kiln_log_sink sink, void *userdata)
{
    log_sink = sink;
    log_userdata = userdata;
}

void kiln_log_set_level(kiln_log_level level)
{
    kiln_log_threshold = level;
}

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

int kiln_log_parse_level(const char *name)
{
    for (int i = 0; i <= KILN_LOG_OFF; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

const char *kiln_log_level_name(kiln_log_level level)
{
    if ((int)level < 0 || level > KILN_LOG_OFF)
        return "?";
    return level_names[level];
}

void kiln_log_write(kiln_log_level level, const char *file, int line, const char *fmt, ...)
{
    if (!log_sink)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&log_lock);
    log_sink(level, file, line, msg, log_userdata);
    pthread_mutex_unlock(&log_lock);
}

static void timestamp(char *out, size_t n)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + k, n - k, ".%03ldZ", ts.tv_nsec / 1000000);
}

void kiln_log_sink_text(kiln_log_level level, const char *file, int line, const char *msg,
                        void *userdata)
{
    FILE *f = userdata ? userdata : stderr;
    fprintf(f, "kiln: %s: %s\n", kiln_log_level_name(level), msg);
    fflush(f);
}

void kiln_log_sink_json(kiln_log_level level, const char *file, int line, const char *msg,
                        void *userdata)
{
    FILE *f = userdata ? userdata : stderr;
    char ts[40], caller[160];
    timestamp(ts, sizeof(ts));
    const char *base = strrchr(file, '/');
    snprintf(caller, sizeof(caller), "%s:%d", base ? base + 1 : file, line);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "ts", ts, "level", kiln_log_level_name(level),
                          "msg", msg, "caller", caller);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (s) {
        fprintf(f, "%s\n", s);
        fflush(f);
        free(s);
    }
    json_decref(o);
}
