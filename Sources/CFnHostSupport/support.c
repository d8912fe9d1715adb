/* CFnHostSupport is mostly header-only; what needs _GNU_SOURCE declarations lives here. */
#define _GNU_SOURCE
#include <spawn.h>
#include <sys/resource.h>
#include "fnhost_support.h"

int fnhost_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

int fnhost_set_rlimit(int resource, unsigned long soft, unsigned long hard) {
    struct rlimit limit = { .rlim_cur = soft, .rlim_max = hard };
    return setrlimit(resource, &limit);
}

int fnhost_get_rlimit(int resource, unsigned long *soft, unsigned long *hard) {
    struct rlimit limit;
    int rc = getrlimit(resource, &limit);
    *soft = limit.rlim_cur;
    *hard = limit.rlim_max;
    return rc;
}
