/* Writing a file so that a crash never leaves half of it: the bytes go to a
 * unique temporary file beside the target, which is flushed, synced and then
 * renamed over it. A target that exists and is not a regular file (a
 * directory, /dev/null) is refused rather than replaced. The temporary is
 * "<path>.tmp-<pid>-XXXXXX"; one a killed writer left is removed by the
 * next writer of the same path. */
#ifndef AELLM_CORE_ATOMIC_H
#define AELLM_CORE_ATOMIC_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
    FILE *f;
    char *tmp, *path;
    int failed; /* a write went wrong: commit removes the temporary file */
} aellm_atomic;

/* Opens the temporary file (mode 0644). An error names the path. */
int aellm_atomic_open(aellm_atomic *a, const char *path);
/* Writes n bytes (a failure is remembered for commit). Writing to a->f
 * directly (fprintf) is fine too: commit checks the stream's error flag. */
void aellm_atomic_write(aellm_atomic *a, const void *p, size_t n);
/* Syncs, closes and renames into place; on any failure the temporary file is
 * removed and the target left as it was. Frees a's names either way. */
int aellm_atomic_commit(aellm_atomic *a);

/* Removes the temporary file and frees a's names: the target is untouched. */
void aellm_atomic_abort(aellm_atomic *a);

/* Whether path can be written by open/commit (the target absent or a regular
 * file, its folder writable), found by creating and removing the temporary
 * file: for checking a long job's outputs before the job. */
int aellm_atomic_check(const char *path);

#endif
