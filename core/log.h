/* core/log.h: levelled logging through a host-installed sink.
 *
 * Library code never prints. It calls KILN_LOG, which checks the level before
 * formatting anything; the host (the CLI, the controller) installs a sink: the
 * readable text sink for people, the JSON-lines sink for the controller. With
 * no sink installed, messages are dropped.
 */
#ifndef KILN_CORE_LOG_H
#define KILN_CORE_LOG_H

#include <stdio.h>

typedef enum kiln_log_level {
    KILN_LOG_DEBUG = 0,
    KILN_LOG_INFO = 1,
    KILN_LOG_WARN = 2,
    KILN_LOG_ERROR = 3,
    KILN_LOG_OFF = 4,
} kiln_log_level;

/* msg is borrowed for the duration of the call. */
typedef void (*kiln_log_sink)(kiln_log_level level, const char *file, int line, const char *msg,
                              void *userdata);

extern kiln_log_level kiln_log_threshold;

void kiln_log_set_sink(kiln_log_sink sink, void *userdata);
void kiln_log_set_level(kiln_log_level level);
/* "debug", "info", "warn", "error", "off"; returns -1 for anything else. */
int kiln_log_parse_level(const char *name);
const char *kiln_log_level_name(kiln_log_level level);

void kiln_log_write(kiln_log_level level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Ready-made sinks; userdata is the FILE * to write to (stderr when NULL). */
void kiln_log_sink_text(kiln_log_level level, const char *file, int line, const char *msg,
                        void *userdata);
void kiln_log_sink_json(kiln_log_level level, const char *file, int line, const char *msg,
                        void *userdata);

#define KILN_LOG(level, ...)                                                                       \
    do {                                                                                           \
        if ((level) >= kiln_log_threshold)                                                         \
            kiln_log_write((level), __FILE__, __LINE__, __VA_ARGS__);                              \
    } while (0)

#endif
