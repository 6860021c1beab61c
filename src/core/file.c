/* Reading user-named files (file.h). */
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

static const char *kind_of(mode_t m)
{
    return S_ISDIR(m)                 ? "a directory"
           : S_ISFIFO(m)              ? "a pipe"
           : S_ISCHR(m) || S_ISBLK(m) ? "a device"
           : S_ISSOCK(m)              ? "a socket"
                                      : "a special file";
}

int aellm_file_open(FILE **f, const char *path, int64_t *size)
{
    /* non-blocking, so that a FIFO is refused rather than waited on */
    *f = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return aellm_error_set(errno == ENOENT ? AELLM_ENOTFOUND : AELLM_EIO, "%s: cannot open: %s",
                               path, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st))
        rc = aellm_error_set(AELLM_EIO, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = aellm_error_set(AELLM_EINVAL, "%s: is %s, not a file", path, kind_of(st.st_mode));
    else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) || !(*f = fdopen(fd, "rb")))
        rc = aellm_error_set(AELLM_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (rc) {
        close(fd);
        return rc;
    }
    *size = (int64_t)st.st_size;
    return 0;
}

static int read_open(char **out, size_t *len, FILE *f, const char *path, int64_t offset, size_t n)
{
    char *s = malloc(n + 1);
    if (!s) return aellm_error_oom(path, (unsigned long long)n + 1);
    if ((offset && fseeko(f, (off_t)offset, SEEK_SET)) || fread(s, 1, n, f) != n) {
        free(s);
        return aellm_error_set(AELLM_EIO, "%s: read failed%s%s", path, errno ? ": " : "",
                               errno ? strerror(errno) : "");
    }
    s[n] = '\0';
    *out = s, *len = n;
    return 0;
}

int aellm_file_read_range(char **out, size_t *len, const char *path, int64_t offset,
                          size_t max_bytes)
{
    FILE *f;
    int64_t size;
    *out = NULL, *len = 0;
    int rc = aellm_file_open(&f, path, &size);
    if (rc) return rc;
    if (offset < 0 || (offset > 0 && offset >= size))
        rc = aellm_error_set(AELLM_EINVAL, "%s: offset %lld is past its end (%lld bytes)", path,
                             (long long)offset, (long long)size);
    size_t n = rc ? 0 : (size_t)(size - offset);
    if (max_bytes && max_bytes < n) n = max_bytes;
    errno = 0;
    if (!rc) rc = read_open(out, len, f, path, offset, n);
    fclose(f);
    return rc;
}

int aellm_file_read(char **out, size_t *len, const char *path, size_t limit, const char *what)
{
    FILE *f;
    int64_t size;
    *out = NULL, *len = 0;
    int rc = aellm_file_open(&f, path, &size);
    if (rc) return rc;
    if (limit && (uint64_t)size > limit)
        rc = aellm_error_set(AELLM_EFORMAT, "%s: %s of %lld bytes is over the limit of %zu bytes",
                             path, what, (long long)size, limit);
    errno = 0;
    if (!rc) rc = read_open(out, len, f, path, 0, (size_t)size);
    fclose(f);
    return rc;
}
