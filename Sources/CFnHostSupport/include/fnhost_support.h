/* Small C helpers the host needs that Swift cannot import directly: variadic calls and
 * function-like macros. Not part of the plugin contract (that is CFnHostABI's fnhost.h). */
#ifndef FNHOST_SUPPORT_H
#define FNHOST_SUPPORT_H

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

/* Ask the kernel to kill this process when its parent (the host) dies. */
static inline int fnhost_set_parent_death_signal(int sig) { return prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0); }

static inline int fnhost_wifexited(int status) { return WIFEXITED(status); }
static inline int fnhost_wexitstatus(int status) { return WEXITSTATUS(status); }
static inline int fnhost_wifsignaled(int status) { return WIFSIGNALED(status); }
static inline int fnhost_wtermsig(int status) { return WTERMSIG(status); }

#endif
