/* Fault injection for tests/collector/test_faults.py, loaded with LD_PRELOAD: the process
 * kills itself (SIGKILL) instead of making its Nth rename whose source path contains
 * $KILL_ON_RENAME, N = $KILL_AFTER + 1. ClickHouse commits a freshly written part by
 * renaming its tmp_insert_ folder, so this stops it exactly between recording an insert's
 * deduplication token and committing the insert's rows. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

int rename(const char *from, const char *to) {
    static int (*real_rename)(const char *, const char *);
    static long allowed = -1;
    const char *pattern = getenv("KILL_ON_RENAME");
    if (real_rename == NULL) {
        real_rename = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    }
    if (pattern != NULL && strstr(from, pattern) != NULL) {
        if (allowed < 0) {
            const char *after = getenv("KILL_AFTER");
            allowed = after != NULL ? atol(after) : 0;
        }
        if (allowed-- == 0) {
            raise(SIGKILL);
        }
    }
    return real_rename(from, to);
}
