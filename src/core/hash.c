#include "core/hash.h"

#include <errno.h>
#include <stdatomic.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"

static void to_hex(const unsigned char *d, unsigned n, char out[AELLM_HASH_HEX])
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < n && i < 32; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[64] = 0;
}

/* SHA-256 fetched once and kept: OpenSSL 3 otherwise looks it up in its
 * provider store at every call (slow, and a lookup that runs out of memory
 * leaves a partial cache entry behind). NULL after a failed fetch: the next
 * call tries again. */
static EVP_MD *sha256(void)
{
    static _Atomic(EVP_MD *) md;
    EVP_MD *m = atomic_load(&md), *none = NULL;
    if (m) return m;
    if (!(m = EVP_MD_fetch(NULL, "SHA256", NULL))) return NULL;
    if (atomic_compare_exchange_strong(&md, &none, m)) return m;
    EVP_MD_free(m); /* another thread was first */
    return none;
}

void aellm_hash_bytes(const void *data, size_t len, char out[AELLM_HASH_HEX])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    const EVP_MD *md = sha256();
    if (!md || !EVP_Digest(data, len, d, &n, md, NULL) || n != 32) {
        out[0] = '\0'; /* never a hash of whatever was in d */
        ERR_clear_error();
        return;
    }
    to_hex(d, n, out);
}

void aellm_hash_str(const char *s, char out[AELLM_HASH_HEX])
{
    aellm_hash_bytes(s, strlen(s), out);
}

int aellm_hash_file(const char *path, char out[AELLM_HASH_HEX])
{
    FILE *f;
    int64_t size;
    int rc = aellm_file_open(&f, path, &size);
    if (rc) return rc;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t cap = 1 << 16, got; /* small: ASan poisons a large buffer at every call */
    unsigned char *buf = malloc(cap);
    const EVP_MD *md = sha256();
    if (!ctx || !buf || !md || !EVP_DigestInit_ex(ctx, md, NULL)) {
        ERR_clear_error();
        rc = aellm_error_oom("a file hash", cap);
        goto done;
    }
    while ((got = fread(buf, 1, cap, f)) > 0) EVP_DigestUpdate(ctx, buf, got);
    if (ferror(f)) {
        rc = aellm_error_set(AELLM_EIO, "%s: read error while hashing", path);
        goto done;
    }
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    if (!EVP_DigestFinal_ex(ctx, d, &n) || n != 32) {
        ERR_clear_error();
        rc = aellm_error_oom("a file hash", 0);
        goto done;
    }
    to_hex(d, n, out);
done:
    free(buf);
    EVP_MD_CTX_free(ctx);
    fclose(f);
    return rc;
}
