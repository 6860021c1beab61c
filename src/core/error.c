/* Per-thread last-error message. Not a logging facility: one message, the
 * first place that detected the failure writes it, callers pass the code up. */
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_message[512];

const char *aellm_error_last(void)
{
    return last_message;
}

void aellm_error_clear(void)
{
    last_message[0] = '\0';
}

int aellm_error_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof(last_message), fmt, ap);
    va_end(ap);
    return code;
}

int aellm_error_oom(const char *what, unsigned long long bytes)
{
    return aellm_error_set(AELLM_ENOMEM, "out of memory allocating %llu bytes for %s", bytes, what);
}
