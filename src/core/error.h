/* Setting errors, for library code. Callers of the library read them with
 * aellm_error_last() (include/aellm/error.h). */
#ifndef AELLM_CORE_ERROR_H
#define AELLM_CORE_ERROR_H

#include "aellm/error.h"

/* Formats the thread's message and returns `code`, so that a failure reads
 * `return aellm_error_set(AELLM_EFORMAT, "%s: bad magic", path);`. */
int aellm_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sets an out-of-memory message naming what was being allocated. */
int aellm_error_oom(const char *what, unsigned long long bytes);

#endif
