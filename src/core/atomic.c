/* Atomic file writes (atomic.h). */
#include "core/atomic.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

int aellm_atomic_open(aellm_atomic *a, const char *path)
{
    memset(a, 0, sizeof(*a));
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return aellm_error_set(AELLM_EIO, "%s: exists and is not a regular file", path);
    size_t n = strlen(path) + 8;
    a->tmp = malloc(n);
    a->path = strdup(path);
    if (!a->tmp || !a->path) {
        free(a->tmp), free(a->path);
        return aellm_error_oom("a file name", n);
    }
    snprintf(a->tmp, n, "%s.XXXXXX", path); /* unique: two processes may write one file */
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
