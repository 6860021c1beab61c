#include "core/hash.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static void to_hex(const unsigned char *d, unsigned n, char out[AELLM_HASH_HEX])
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < n && i < 32; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[64] = 0;
}

void aellm_hash_bytes(const void *data, size_t len, char out[AELLM_HASH_HEX])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_Digest(data, len, d, &n, EVP_sha256(), NULL);
    to_hex(d, n, out);
}

void aellm_hash_str(const char *s, char out[AELLM_HASH_HEX])
{
    aellm_hash_bytes(s, strlen(s), out);
}

int aellm_hash_file(const char *path, char out[AELLM_HASH_HEX])
{
    FILE *f = fopen(path, "rb");
    if (!f) return aellm_error_set(AELLM_EIO, "%s: cannot open: %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t cap = 1 << 20, got;
    unsigned char *buf = malloc(cap);
    int rc = 0;
    if (!ctx || !buf) {
        rc = aellm_error_oom("a file hash buffer", cap);
        goto done;
    }
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    while ((got = fread(buf, 1, cap, f)) > 0) EVP_DigestUpdate(ctx, buf, got);
    if (ferror(f)) {
        rc = aellm_error_set(AELLM_EIO, "%s: read error while hashing", path);
        goto done;
    }
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_DigestFinal_ex(ctx, d, &n);
    to_hex(d, n, out);
done:
    free(buf);
    EVP_MD_CTX_free(ctx);
    fclose(f);
    return rc;
}
