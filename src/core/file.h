/* Reading the files a user names. Only a regular file is read: a directory
 * opens fine and reports a size of LONG_MAX on ext4, and a FIFO or device has
 * no size at all, so each is refused by name before anything is allocated.
 * A file larger than the caller's limit is refused with both numbers. */
#ifndef AELLM_CORE_FILE_H
#define AELLM_CORE_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Opens path for reading ("rb") and gives its size. Errors: AELLM_ENOTFOUND
 * (absent), AELLM_EINVAL (not a regular file), AELLM_EIO; each names path. */
int aellm_file_open(FILE **f, const char *path, int64_t *size);

/* Reads up to max_bytes (0: all) from byte `offset` of a regular file into a
 * NUL-terminated buffer the caller frees with free(). */
int aellm_file_read_range(char **out, size_t *len, const char *path, int64_t offset,
                          size_t max_bytes);

/* The whole file, NUL-terminated (caller frees with free()). A file of more
 * than `limit` bytes (0: no limit) is refused before allocation; `what`
 * names the file's role in that message ("configuration JSON"). */
int aellm_file_read(char **out, size_t *len, const char *path, size_t limit, const char *what);

#endif
