/* Writing a file so that a crash never leaves half of it: the bytes go to a
 * unique temporary file beside the target, which is flushed, synced and then
 * renamed over it. A target that exists and is not a regular file (a
 * directory, /dev/null) is refused rather than replaced. */
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
/* Writes n bytes (a failure is remembered for commit). */
void aellm_atomic_write(aellm_atomic *a, const void *p, size_t n);
/* Syncs, closes and renames into place; on any failure the temporary file is
 * removed and the target left as it was. Frees a's names either way. */
int aellm_atomic_commit(aellm_atomic *a);

#endif
