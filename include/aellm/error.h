/* Error codes and the per-thread last-error message (libgit2's habit).
 * Every public function returns 0 or one of these negative codes; the one-line
 * message describing the failure is set once, where it was found. */
#ifndef AELLM_ERROR_H
#define AELLM_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

enum {
    AELLM_OK = 0,
    AELLM_ERROR = -1,     /* generic failure */
    AELLM_ENOTFOUND = -2, /* file, key or tensor absent */
    AELLM_EFORMAT = -3,   /* malformed or unsupported file contents */
    AELLM_ESHAPE = -4,    /* dimensions that do not fit together */
    AELLM_ENOMEM = -5,    /* allocation failed */
    AELLM_EIO = -6,       /* read/write/mmap failure */
    AELLM_EINVAL = -7,    /* bad argument from the caller */
    AELLM_EFAILED = -8,   /* an evaluation that failed, recorded as failed in the store */
};

/* The message of the last failure on this thread; never NULL (empty if none).
 * Borrowed: valid until the next failing call on this thread. */
const char *aellm_error_last(void);

/* Clears the message of this thread. */
void aellm_error_clear(void);

#ifdef __cplusplus
}
#endif
#endif
