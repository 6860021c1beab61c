/* What the harnesses share: a scratch folder per process for the loaders that
 * take a path, a cursor over the fuzz input for the structure-aware harnesses,
 * and a check that aborts (a crash libFuzzer keeps) when an invariant fails.
 * Header-only: each harness is its own program. Not a test framework. */
#ifndef AELLM_FUZZ_UTIL_H
#define AELLM_FUZZ_UTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A broken invariant is a finding, reported like a crash. */
#define FZ_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static char fz_dir_buf[256];

static inline void fz_cleanup(void)
{
    DIR *d = opendir(fz_dir_buf);
    if (!d) return;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof(path), "%s/%s", fz_dir_buf, e->d_name);
            unlink(path);
        }
    closedir(d);
    rmdir(fz_dir_buf);
}

/* The scratch folder, made on first use: under $AELLM_FUZZ_TMP (bench/fuzz.sh
 * points it into tmpfs and removes it, since a crash skips atexit), else
 * /dev/shm, else /tmp. A file written per execution then costs no disk. */
static inline const char *fz_dir(void)
{
    if (fz_dir_buf[0]) return fz_dir_buf;
    const char *base = getenv("AELLM_FUZZ_TMP");
    if (base && *base)
        mkdir(base, 0700);
    else
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(fz_dir_buf, sizeof(fz_dir_buf), "%s/aellm-fuzz-XXXXXX", base);
    if (!mkdtemp(fz_dir_buf)) {
        perror("fuzz: mkdtemp");
        abort();
    }
    atexit(fz_cleanup);
    return fz_dir_buf;
}

/* `name` in the scratch folder; four results stay valid at a time. */
static inline const char *fz_path(const char *name)
{
    static char path[4][320];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof(path[k]), "%s/%s", fz_dir(), name);
    return path[k];
}

/* Writes n bytes to `name` in the scratch folder (replacing it); its path. */
static inline const char *fz_write(const char *name, const void *data, size_t n)
{
    const char *path = fz_path(name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FZ_CHECK(fd >= 0);
    for (size_t o = 0; o < n;) {
        ssize_t w = write(fd, (const char *)data + o, n - o);
        FZ_CHECK(w > 0);
        o += (size_t)w;
    }
    close(fd);
    return path;
}

static inline const char *fz_write_str(const char *name, const char *s)
{
    return fz_write(name, s, strlen(s));
}

/* ---- reading the input as fields ---- */
typedef struct {
    const uint8_t *p;
    size_t n;
} fz_in;

/* The next byte, or 0 once the input is used up (a short input still runs). */
static inline uint8_t fz_u8(fz_in *in)
{
    if (!in->n) return 0;
    in->n--;
    return *in->p++;
}

static inline uint32_t fz_u32(fz_in *in)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)fz_u8(in) << (8 * i);
    return v;
}

#endif
