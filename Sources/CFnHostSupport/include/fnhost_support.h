/* Small C helpers the host needs that Swift cannot import directly: variadic calls and
 * function-like macros. Not part of the plugin contract (that is CFnHostABI's fnhost.h). */
#ifndef FNHOST_SUPPORT_H
#define FNHOST_SUPPORT_H

#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/wait.h>

/* Ask the kernel to kill this process when its parent (the host) dies. */
static inline int fnhost_set_parent_death_signal(int sig) { return prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0); }

/* Neither this process nor anything it executes can gain privileges (setuid bits, file caps). */
static inline int fnhost_set_no_new_privs(void) { return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); }

/* Names the calling thread (`top -H`, /proc/PID/task/TID/comm); the kernel keeps 15 bytes. */
static inline int fnhost_set_thread_name(const char *name) { return prctl(PR_SET_NAME, name, 0, 0, 0); }

static inline int fnhost_wifexited(int status) { return WIFEXITED(status); }
static inline int fnhost_wexitstatus(int status) { return WEXITSTATUS(status); }
static inline int fnhost_wifsignaled(int status) { return WIFSIGNALED(status); }
static inline int fnhost_wtermsig(int status) { return WTERMSIG(status); }

/* posix_spawn_file_actions_addclosefrom_np (glibc 2.34+): close every descriptor >= from in the child. */
int fnhost_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from);

/* setrlimit/getrlimit with plain integers (RLIM_INFINITY is ~0UL). */
static const int fnhost_rlimit_core = RLIMIT_CORE;
static const int fnhost_rlimit_as = RLIMIT_AS;
static const unsigned long fnhost_rlim_infinity = RLIM_INFINITY;
int fnhost_set_rlimit(int resource, unsigned long soft, unsigned long hard);
int fnhost_get_rlimit(int resource, unsigned long *soft, unsigned long *hard);

#endif
