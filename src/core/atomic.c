/* Atomic file writes (atomic.h). */
#include "core/atomic.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

/* "<name>.tmp-<pid>-XXXXXX": the writer's process id in the name, so that
 * the temporary of a writer that was killed (SIGKILL, power) can be told
 * from one being written now, and removed by the next writer. */
static int dead_writers_temporary(const char *entry, const char *base)
{
    size_t n = strlen(base);
    if (strncmp(entry, base, n) || strncmp(entry + n, ".tmp-", 5)) return 0;
    char *end;
    long pid = strtol(entry + n + 5, &end, 10);
    if (end == entry + n + 5 || *end != '-' || strlen(end + 1) != 6 || pid <= 0) return 0;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static void remove_dead_temporaries(const char *path)
{
    char *copy = strdup(path), *slash = copy ? strrchr(copy, '/') : NULL;
    if (!copy) return;
    const char *dir = slash ? (slash == copy ? "/" : copy) : ".", *base = slash ? slash + 1 : copy;
    if (slash) *slash = '\0';
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!dead_writers_temporary(e->d_name, base)) continue;
        char full[PATH_MAX];
        if (snprintf(full, sizeof(full), "%s/%s", dir, e->d_name) < (int)sizeof(full)) unlink(full);
    }
    if (d) closedir(d);
    free(copy);
}

int aellm_atomic_open(aellm_atomic *a, const char *path)
{
    memset(a, 0, sizeof(*a));
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return aellm_error_set(AELLM_EIO, "%s: exists and is not a regular file", path);
    remove_dead_temporaries(path);
    size_t n = strlen(path) + 32;
    a->tmp = malloc(n);
    a->path = strdup(path);
    if (!a->tmp || !a->path) {
        free(a->tmp), free(a->path);
        return aellm_error_oom("a file name", n);
    }
    /* unique: two processes may write one file */
    snprintf(a->tmp, n, "%s.tmp-%ld-XXXXXX", path, (long)getpid());
    int fd = mkstemp(a->tmp);
    if (fd >= 0) fchmod(fd, 0644); /* mkstemp's 0600 would hide a shared cache */
    a->f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!a->f) {
        int rc =
            aellm_error_set(AELLM_EIO, "%s: cannot write a file there: %s", path, strerror(errno));
        if (fd >= 0) close(fd), unlink(a->tmp);
        free(a->tmp), free(a->path);
        return rc;
    }
    return 0;
}

void aellm_atomic_write(aellm_atomic *a, const void *p, size_t n)
{
    if (!a->failed && fwrite(p, 1, n, a->f) != n) a->failed = 1;
}

void aellm_atomic_abort(aellm_atomic *a)
{
    if (a->f) fclose(a->f);
    if (a->tmp) unlink(a->tmp);
    free(a->tmp);
    free(a->path);
    memset(a, 0, sizeof(*a));
}

int aellm_atomic_check(const char *path)
{
    aellm_atomic a;
    int rc = aellm_atomic_open(&a, path);
    if (!rc) aellm_atomic_abort(&a);
    return rc;
}

int aellm_atomic_commit(aellm_atomic *a)
{
    int rc = 0;
    if (a->failed || fflush(a->f) || ferror(a->f) || fsync(fileno(a->f)))
        rc = aellm_error_set(AELLM_EIO, "%s: write failed: %s", a->tmp, strerror(errno));
    if (fclose(a->f) && !rc) rc = aellm_error_set(AELLM_EIO, "%s: close failed", a->tmp);
    if (!rc && rename(a->tmp, a->path))
        rc = aellm_error_set(AELLM_EIO, "%s: cannot rename into place: %s", a->path,
                             strerror(errno));
    if (rc) unlink(a->tmp);
    free(a->tmp);
    free(a->path);
    memset(a, 0, sizeof(*a));
    return rc;
}
