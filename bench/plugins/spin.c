/*
 * spin.c: the bench's CPU-bound task, bench.spin(us): busy-waits `us` microseconds on the
 * thread's CPU clock (work, not sleep), then returns `us`. bench/celery_tasks.py has the same
 * task for Celery. bench.py compiles it with `cc -O2 -shared -fPIC $(fnhost cflags)`.
 */
#include <stdint.h>
#include <time.h>

#include "fnhost.h"

static int64_t spin(int64_t us) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    int64_t end = (int64_t)t.tv_sec * 1000000000 + t.tv_nsec + us * 1000;
    for (;;) {
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
        if ((int64_t)t.tv_sec * 1000000000 + t.tv_nsec >= end)
            return us;
    }
}

int fnhost_plugin_init(const fnhost_api *host, fnhost_registry *registry) {
    if (host == NULL || host->abi_version < FNHOST_ABI_VERSION || host->struct_size < sizeof(fnhost_api))
        return 1;
    return host->register_native(registry, "bench.spin", (void *)spin, "i64(i64)", NULL) != 0;
}

void fnhost_plugin_fini(void) {}
