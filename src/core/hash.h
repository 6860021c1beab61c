/* SHA-256 (OpenSSL's libcrypto) as lower-case hex: file and configuration
 * identities in the evaluation store. */
#ifndef AELLM_CORE_HASH_H
#define AELLM_CORE_HASH_H

#include <stddef.h>

#define AELLM_HASH_HEX 65 /* 64 hex digits and the terminator */

/* An empty string when the digest fails (OpenSSL out of memory): no key
 * matches it, and the store refuses it. */
void aellm_hash_bytes(const void *data, size_t len, char out[AELLM_HASH_HEX]);
void aellm_hash_str(const char *s, char out[AELLM_HASH_HEX]);
/* Hashes a whole file, streaming. AELLM_EIO naming the file on failure. */
int aellm_hash_file(const char *path, char out[AELLM_HASH_HEX]);

#endif
