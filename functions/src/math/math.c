/*
 * math.c: the example C plugin for fnhost.
 *
 *     cc -O2 -Wall -Werror -shared -fPIC $(fnhost cflags) -o functions/libmath.so math.c
 *
 * It shows both ways to write a task:
 *   - register_task: the function gets the call's arguments as JSON and sets a JSON result
 *     (math.add, math.div, math.slow, math.xsum);
 *   - register_native: any plain C function; the host converts the JSON arguments and the
 *     return value by a signature (math.mul).
 *
 * From Python:  app.send_task("math.add", args=[2, 3]).get()  ->  5
 *
 * Only fnhost_plugin_init and fnhost_plugin_fini are exported; everything else is static.
 */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fnhost.h"

/* The host's API table; it stays valid for as long as the plugin is loaded. */
static const fnhost_api *api;

/* strtod() and printf() follow the process's LC_NUMERIC, but JSON always writes numbers with
 * '.', so conversions run under this "C" locale (made in init, freed in fini). */
static locale_t c_locale;

/* ---------------------------------------------------------------------------------------- */
/* A small JSON reader: an array of numbers, e.g. "[2,3]" or "[2, 3.5e1]".                  */

typedef struct {
    int is_int;    /* written without '.', 'e' or 'E': a JSON integer */
    long long i;   /* the value, when is_int */
    double d;      /* the value, always */
} number;

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Reads one JSON number at *pp (grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?).
 * Returns 0 and advances *pp on success; -1 if it is not a number; -2 if it is an integer
 * too large for 64 bits. */
static int scan_number(const char **pp, const char *end, number *out) {
    const char *p = *pp, *start = *pp;
    int is_int = 1;

    if (p < end && *p == '-')
        p++;
    if (p < end && *p == '0')
        p++;
    else if (p < end && is_digit(*p))
        while (p < end && is_digit(*p)) p++;
    else
        return -1;
    if (p < end && *p == '.') {
        is_int = 0;
        p++;
        if (p >= end || !is_digit(*p)) return -1;
        while (p < end && is_digit(*p)) p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        is_int = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || !is_digit(*p)) return -1;
        while (p < end && is_digit(*p)) p++;
    }

    /* The host's strings carry a length and need not end in NUL: copy the token out. */
    char token[128];
    size_t n = (size_t)(p - start);
    if (n >= sizeof token)
        return -1;
    memcpy(token, start, n);
    token[n] = '\0';

    errno = 0;
    out->is_int = is_int;
    if (is_int) {
        out->i = strtoll(token, NULL, 10);
        if (errno == ERANGE)
            return -2;
        out->d = (double)out->i;
    } else {
        out->d = strtod(token, NULL); /* overflow gives +-HUGE_VAL, caught by the caller */
    }
    *pp = p;
    return 0;
}

/* Parses the call's args as an array of exactly `count` numbers. On failure it sets the
 * call's error (TypeError or OverflowError) and returns -1. */
static int parse_numbers(fnhost_call *call, number *out, int count, const char *usage) {
    size_t len;
    const char *json = api->args_json(call, &len);
    const char *p = json, *end = json + len;
    int n = 0, rc = -1;

    p = skip_ws(p, end);
    if (p < end && *p == '[') {
        p = skip_ws(p + 1, end);
        if (p < end && *p == ']') {
            p++;
            rc = 0;
        }
        while (rc != 0) {
            number x;
            if ((rc = scan_number(&p, end, &x)) != 0) break;
            if (n < count) out[n] = x;
            n++;
            p = skip_ws(p, end);
            if (p < end && *p == ',') { p = skip_ws(p + 1, end); rc = -1; continue; }
            if (p < end && *p == ']') { p++; rc = 0; break; }
            rc = -1;
            break;
        }
        if (rc == 0 && skip_ws(p, end) != end) rc = -1; /* junk after the array */
    }

    char msg[256];
    if (rc == -2) {
        snprintf(msg, sizeof msg, "%s: integer does not fit in 64 bits", usage);
        api->set_error(call, "OverflowError", msg);
        return -1;
    }
    if (rc != 0 || n != count) {
        /* Show (the start of) what was sent: it makes the producer's error obvious. */
        snprintf(msg, sizeof msg, "%s, got %.*s%s", usage, len > 80 ? 80 : (int)len, json,
                 len > 80 ? "..." : "");
        api->set_error(call, "TypeError", msg);
        return -1;
    }
    return 0;
}

/* Sets a JSON float result: the shortest "%.Ng" that reads back as the same double, with
 * ".0" appended when it would otherwise look like an integer (2.0 stays a float). JSON has no
 * inf or nan, so those fail the call with OverflowError, as Python's float ops mostly do. */
static fnhost_status set_float_result(fnhost_call *call, double d) {
    if (!isfinite(d)) {
        api->set_error(call, "OverflowError", "numerical result out of range");
        return FNHOST_ERROR;
    }
    char buf[64];
    for (int precision = 15; precision <= 17; precision++) {
        snprintf(buf, sizeof buf, "%.*g", precision, d);
        if (strtod(buf, NULL) == d) break;
    }
    if (!strpbrk(buf, ".eE"))
        strcat(buf, ".0");
    api->set_result_json(call, buf, strlen(buf));
    return FNHOST_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* The tasks. Each sets one outcome (result, error or retry) and returns the matching status. */

/* math.add(a, b): int + int is an int, anything else a float, as in Python. */
static fnhost_status math_add_impl(fnhost_call *call) {
    number x[2];
    if (parse_numbers(call, x, 2, "math.add() takes 2 numbers, e.g. [2, 3]") != 0)
        return FNHOST_ERROR;

    if (x[0].is_int && x[1].is_int) {
        long long sum;
        if (__builtin_add_overflow(x[0].i, x[1].i, &sum)) {
            api->set_error(call, "OverflowError", "math.add(): sum does not fit in 64 bits");
            return FNHOST_ERROR;
        }
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%lld", sum);
        api->set_result_json(call, buf, (size_t)n);
        return FNHOST_OK;
    }
    return set_float_result(call, x[0].d + x[1].d);
}

/* math.div(a, b): true division, always a float, as Python's a / b. */
static fnhost_status math_div_impl(fnhost_call *call) {
    number x[2];
    if (parse_numbers(call, x, 2, "math.div() takes 2 numbers, e.g. [5, 2]") != 0)
        return FNHOST_ERROR;
    if (x[1].d == 0) {
        api->set_error(call, "ZeroDivisionError", "division by zero");
        return FNHOST_ERROR;
    }
    return set_float_result(call, x[0].d / x[1].d);
}

static double epoch_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* math.slow(seconds): sleeps, waking every 10 ms to honour should_stop (soft time limit or
 * revoke), and returns {"pid": ..., "start": ..., "end": ...} so that a caller can see which
 * process ran it and when. */
static fnhost_status math_slow_impl(fnhost_call *call) {
    number secs;
    if (parse_numbers(call, &secs, 1, "math.slow() takes 1 number of seconds, e.g. [0.5]") != 0)
        return FNHOST_ERROR;
    if (!(secs.d >= 0) || secs.d > 86400) {
        api->set_error(call, "ValueError", "math.slow(): seconds must be between 0 and 86400");
        return FNHOST_ERROR;
    }

    char msg[96];
    snprintf(msg, sizeof msg, "math.slow: sleeping %.3f s in pid %d", secs.d, (int)getpid());
    api->log(call, 10 /* debug */, msg);

    double start = epoch_now();
    struct timespec now, deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    long long ns = deadline.tv_nsec + (long long)(secs.d * 1e9);
    deadline.tv_sec += (time_t)(ns / 1000000000);
    deadline.tv_nsec = (long)(ns % 1000000000);

    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long left = (long long)(deadline.tv_sec - now.tv_sec) * 1000000000LL
                         + (deadline.tv_nsec - now.tv_nsec);
        if (left <= 0 || api->should_stop(call))
            break;
        struct timespec step = {0, left < 10000000 ? (long)left : 10000000}; /* <= 10 ms */
        nanosleep(&step, NULL); /* an early wake-up (EINTR) just loops */
    }

    char buf[128];
    int n = snprintf(buf, sizeof buf, "{\"pid\": %d, \"start\": %.6f, \"end\": %.6f}",
                     (int)getpid(), start, epoch_now());
    api->set_result_json(call, buf, (size_t)n);
    return FNHOST_OK;
}

/* math.xsum(numbers): the sum of a list of numbers, an int when all are ints (Python's
 * sum()). The chord body of `chord(header, xsum.s())`, which is called with the list of the
 * header's results: args [[1, 2, 3]]. */
static fnhost_status math_xsum_impl(fnhost_call *call) {
    size_t len;
    const char *json = api->args_json(call, &len);
    const char *p = json, *end = json + len;
    long long isum = 0;
    double dsum = 0;
    int all_int = 1, ok = 0;

    p = skip_ws(p, end);
    if (p < end && *p == '[') {
        p = skip_ws(p + 1, end);
        if (p < end && *p == '[') {
            p = skip_ws(p + 1, end);
            ok = 1;
            if (p < end && *p == ']') {
                p++;
            } else {
                for (;;) {
                    number x;
                    int rc = scan_number(&p, end, &x);
                    if (rc == -2) {
                        api->set_error(call, "OverflowError", "math.xsum(): an integer does not fit in 64 bits");
                        return FNHOST_ERROR;
                    }
                    if (rc != 0) { ok = 0; break; }
                    dsum += x.d;
                    if (x.is_int && all_int) {
                        if (__builtin_add_overflow(isum, x.i, &isum)) {
                            api->set_error(call, "OverflowError", "math.xsum(): sum does not fit in 64 bits");
                            return FNHOST_ERROR;
                        }
                    } else {
                        all_int = 0;
                    }
                    p = skip_ws(p, end);
                    if (p < end && *p == ',') { p = skip_ws(p + 1, end); continue; }
                    if (p < end && *p == ']') { p++; break; }
                    ok = 0;
                    break;
                }
            }
            p = skip_ws(p, end);
            if (ok && p < end && *p == ']') p = skip_ws(p + 1, end);
            else ok = 0;
            if (p != end) ok = 0;
        }
    }
    if (!ok) {
        char msg[256];
        snprintf(msg, sizeof msg, "math.xsum() takes 1 list of numbers, e.g. [[1, 2, 3]], got %.*s%s",
                 len > 80 ? 80 : (int)len, json, len > 80 ? "..." : "");
        api->set_error(call, "TypeError", msg);
        return FNHOST_ERROR;
    }
    if (all_int) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%lld", isum);
        api->set_result_json(call, buf, (size_t)n);
        return FNHOST_OK;
    }
    return set_float_result(call, dsum);
}

/* The host calls tasks with the process's locale; run each under the "C" locale. */
#define C_LOCALE_TASK(name)                                                           \
    static fnhost_status name(fnhost_call *call, void *userdata) {                    \
        (void)userdata;                                                               \
        locale_t saved = uselocale(c_locale);                                         \
        fnhost_status status = name##_impl(call);                                     \
        uselocale(saved);                                                             \
        return status;                                                                \
    }
C_LOCALE_TASK(math_add)
C_LOCALE_TASK(math_div)
C_LOCALE_TASK(math_slow)
C_LOCALE_TASK(math_xsum)

/* math.mul(a, b): a plain C function. It needs no fnhost code at all, and need not even be
 * exported: register_native takes its address and a signature. */
static int64_t mul(int64_t a, int64_t b) { return a * b; }

/* ---------------------------------------------------------------------------------------- */

int fnhost_plugin_init(const fnhost_api *host, fnhost_registry *registry) {
    /* Refuse a host older than the ABI this file was compiled against. The table only ever
     * grows, so a newer host (larger abi_version and struct_size) is fine. If the table is too
     * small we cannot rely on set_init_error being there, so we only return non-zero. */
    if (host == NULL || host->abi_version < FNHOST_ABI_VERSION ||
        host->struct_size < sizeof(fnhost_api))
        return 1;
    api = host;

    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (c_locale == (locale_t)0) {
        api->set_init_error(registry, "math: newlocale(\"C\") failed");
        return 1;
    }

    /* NULL options: the defaults apply (queue = task name, max_retries 3, ...). A non-zero
     * return means the host refused the registration (and logged why); refuse the load. */
    if (api->register_task(registry, "math.add", math_add, NULL, NULL) != 0 ||
        api->register_native(registry, "math.mul", (void *)mul, "i64(i64,i64)", NULL) != 0 ||
        api->register_task(registry, "math.div", math_div, NULL, NULL) != 0 ||
        api->register_task(registry, "math.slow", math_slow, NULL, NULL) != 0 ||
        api->register_task(registry, "math.xsum", math_xsum, NULL, NULL) != 0) {
        api->set_init_error(registry, "math: a task registration was refused (see the host's log)");
        return 1;
    }
    return 0;
}

/* Called before a worker process exits normally: release what init acquired. */
void fnhost_plugin_fini(void) {
    if (c_locale != (locale_t)0) {
        freelocale(c_locale);
        c_locale = (locale_t)0;
    }
}
