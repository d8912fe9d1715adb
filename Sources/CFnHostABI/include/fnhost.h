/*
 * fnhost.h: the task plugin contract, ABI version 1.
 *
 * This header is the whole public contract between fnhost and the task plugins in its
 * functions directory (see plugin-abi.md). A plugin links against nothing of fnhost's: the host
 * hands it the table below at load time, the SQLite loadable-extension pattern.
 *
 *     cc -shared -fPIC $(fnhost cflags) -o functions/libmath.so math.c
 *
 * Compatibility: fields are only ever appended to fnhost_api; check struct_size before using a
 * field added after version 1.
 */
#ifndef FNHOST_H
#define FNHOST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FNHOST_ABI_VERSION 1

typedef struct fnhost_call fnhost_call;         /* one task execution, opaque */
typedef struct fnhost_registry fnhost_registry; /* registration handle, valid during init */

typedef enum { FNHOST_OK = 0, FNHOST_ERROR = 1, FNHOST_RETRY = 2 } fnhost_status;

typedef fnhost_status (*fnhost_task_fn)(fnhost_call *call, void *userdata);

typedef struct fnhost_api {
    uint32_t abi_version;          /* FNHOST_ABI_VERSION of the host */
    uint32_t struct_size;          /* sizeof(fnhost_api) in the host: fields past it are absent */

    /* registration, valid only inside fnhost_plugin_init */
    int  (*register_task)(fnhost_registry *, const char *name, fnhost_task_fn fn,
                          void *userdata, const char *options_json);
    int  (*register_native)(fnhost_registry *, const char *name, void *symbol,
                            const char *signature, const char *options_json);
    void (*set_init_error)(fnhost_registry *, const char *message);

    /* the call's input, as the producer sent it */
    const char *(*args_json)(fnhost_call *, size_t *len);   /* JSON array, never NULL */
    const char *(*kwargs_json)(fnhost_call *, size_t *len); /* JSON object, never NULL */

    /* the call's outcome: set one, then return the matching status */
    void (*set_result_json)(fnhost_call *, const char *json, size_t len); /* FNHOST_OK */
    void (*set_error)(fnhost_call *, const char *exc_type, const char *message); /* FNHOST_ERROR */
    void (*set_retry)(fnhost_call *, double countdown_seconds, const char *reason); /* FNHOST_RETRY */

    /* the call's context */
    const char *(*task_id)(fnhost_call *);
    const char *(*task_name)(fnhost_call *);
    int  (*retries)(fnhost_call *);            /* 0 on the first attempt */
    int  (*should_stop)(fnhost_call *);        /* 1 once the soft time limit passed or the task was revoked */
    void (*log)(fnhost_call *, int level, const char *message); /* level: 10 debug .. 50 critical */
} fnhost_api;

/* Required: called once per process that loads the plugin, before any of its tasks runs.
 * Register tasks through api; return 0 to accept the load, non-zero to refuse it. */
int fnhost_plugin_init(const fnhost_api *api, fnhost_registry *registry);

/* Optional: called before a worker process that loaded the plugin exits normally. */
void fnhost_plugin_fini(void);

#ifdef __cplusplus
}
#endif

#endif /* FNHOST_H */
