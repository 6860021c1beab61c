/* The surrogate's file: "AESURRG1", a u32 length and a JSON header
 * {"version":1,"members":K,"features":d,"target_shift":..,"target_scale":..,
 * "params":{...}} (the target scaling absent in older files: 0 and 1), then K members,
 * each a u64 length and XGBoost's UBJSON model. Integers little-endian. The
 * header carries the training parameters because XGBoost's model does not.
 * Not a general model store: the evaluation store keeps data, not models. */
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/atomic.h"
#include "core/error.h"
#include "core/file.h"
#include "core/hash.h"
#include "optimize/surrogate_internal.h"

#define MAGIC "AESURRG1"
/* 2: the header holds the SHA-256 of the members, checked before XGBoost
 * parses them (its UBJSON reader overruns its buffer on damaged lengths) */
#define FORMAT_VERSION 2
/* The largest surrogate written here is a few megabytes of trees. */
#define SURROGATE_MAX_BYTES ((size_t)256 << 20)

/* ---- parameters as JSON, through one table ---- */

typedef struct {
    const char *key;
    char type; /* 'i' int, 'd' double, 's' char array */
    size_t off, size;
} param_field;

#define F(key, type)                                                                               \
    {                                                                                              \
#key, type, offsetof(aellm_surrogate_params, key),                                         \
            sizeof(((aellm_surrogate_params *)0)->key)                                             \
    }
static const param_field fields[] = {
    F(members, 'i'),     F(num_rounds, 'i'),       F(max_depth, 'i'),        F(eta, 'd'),
    F(subsample, 'd'),   F(colsample_bytree, 'd'), F(min_child_weight, 'd'), F(lambda, 'd'),
    F(nthread, 'i'),     F(bootstrap, 'i'),        F(transfer_rounds, 'i'),  F(objective, 's'),
    F(tree_method, 's'),
};
#undef F

static cJSON *params_json(const aellm_surrogate_params *p)
{
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const char *at = (const char *)p + fields[i].off;
        cJSON *v = fields[i].type == 's'   ? cJSON_CreateString(at)
                   : fields[i].type == 'i' ? cJSON_CreateNumber(*(const int *)at)
                                           : cJSON_CreateNumber(*(const double *)at);
        if (!v || !cJSON_AddItemToObject(j, fields[i].key, v)) goto fail;
    }
    /* The seed as a decimal string: a JSON number would round above 2^53. */
    char seed[24];
    snprintf(seed, sizeof(seed), "%llu", (unsigned long long)p->seed);
    if (!cJSON_AddStringToObject(j, "seed", seed)) goto fail;
    return j;
fail:
    cJSON_Delete(j);
    return NULL;
}

static int params_field_from(aellm_surrogate_params *p, const param_field *f, const cJSON *v)
{
    char *at = (char *)p + f->off;
    if (f->type == 's') {
        if (!cJSON_IsString(v) || strlen(v->valuestring) >= f->size) return -1;
        strcpy(at, v->valuestring);
    } else if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
        return -1;
    } else if (f->type == 'i') {
        /* in range before the cast: a double beyond int is undefined behaviour cast */
        if (!(fabs(v->valuedouble) <= INT_MAX) || v->valuedouble != (double)(int)v->valuedouble)
            return -1;
        *(int *)at = (int)v->valuedouble;
    } else {
        *(double *)at = v->valuedouble;
    }
    return 0;
}

/* Fields absent from the header keep their defaults (a later version may add some). */
static int params_from_json(aellm_surrogate_params *p, const cJSON *j)
{
    aellm_surrogate_params_default(p);
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, fields[i].key);
        if (v && params_field_from(p, &fields[i], v))
            return aellm_error_set(AELLM_EFORMAT, "surrogate file: bad parameter %s",
                                   fields[i].key);
    }
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(j, "seed");
    if (seed) {
        char *end = NULL;
        if (!cJSON_IsString(seed))
            return aellm_error_set(AELLM_EFORMAT, "surrogate file: bad parameter seed");
        p->seed = strtoull(seed->valuestring, &end, 10);
        if (!*seed->valuestring || *end)
            return aellm_error_set(AELLM_EFORMAT, "surrogate file: bad parameter seed");
    }
    int rc = aellm_surr_params_check(p);
    if (!rc) return 0;
    char why[256]; /* the message is rewritten from itself: copy first */
    snprintf(why, sizeof(why), "%s", aellm_error_last());
    return aellm_error_set(AELLM_EFORMAT, "surrogate file: %s", why);
}

/* ---- a growing byte buffer ---- */

typedef struct {
    unsigned char *p;
    size_t len, cap;
} bytes;

static int bytes_put(bytes *b, const void *src, size_t n)
{
    if (n > SIZE_MAX / 2 - b->len) return aellm_error_oom("surrogate buffer", n);
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) return aellm_error_oom("surrogate buffer", cap);
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
    return 0;
}

static int bytes_put_le(bytes *b, uint64_t v, int width)
{
    unsigned char le[8];
    for (int i = 0; i < width; i++) le[i] = (unsigned char)(v >> (8 * i));
    return bytes_put(b, le, (size_t)width);
}

static uint64_t get_le(const unsigned char *p, int width)
{
    uint64_t v = 0;
    for (int i = width - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* ---- saving ---- */

static int put_header(bytes *b, const aellm_surrogate *s, const char *members_sha256)
{
    cJSON *h = cJSON_CreateObject();
    cJSON *p = params_json(&s->p);
    char *text = NULL;
    int rc = 0;
    if (!h || !p || !cJSON_AddNumberToObject(h, "version", FORMAT_VERSION) ||
        !cJSON_AddNumberToObject(h, "members", s->k) ||
        !cJSON_AddStringToObject(h, "members_sha256", members_sha256) ||
        !cJSON_AddNumberToObject(h, "features", (double)s->d) ||
        !cJSON_AddNumberToObject(h, "target_shift", s->y_shift) ||
        !cJSON_AddNumberToObject(h, "target_scale", s->y_scale) ||
        !cJSON_AddItemToObject(h, "params", p)) {
        if (!cJSON_GetObjectItemCaseSensitive(h, "params")) cJSON_Delete(p);
        rc = aellm_error_oom("surrogate header", 0);
        goto done;
    }
    text = cJSON_PrintUnformatted(h);
    if (!text) {
        rc = aellm_error_oom("surrogate header", 0);
        goto done;
    }
    size_t len = strlen(text);
    rc = bytes_put(b, MAGIC, 8);
    if (!rc) rc = bytes_put_le(b, len, 4);
    if (!rc) rc = bytes_put(b, text, len);
done:
    free(text);
    cJSON_Delete(h);
    return rc;
}

static int put_member(bytes *b, BoosterHandle m)
{
    bst_ulong len = 0;
    const char *raw = NULL;
    int rc = aellm_surr_xgb(XGBoosterSaveModelToBuffer(m, "{\"format\":\"ubj\"}", &len, &raw),
                            "saving model");
    if (!rc) rc = bytes_put_le(b, len, 8);
    if (!rc) rc = bytes_put(b, raw, len); /* copied before the booster's next call */
    return rc;
}

int aellm_surrogate_save_buffer(const aellm_surrogate *s, void **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (!s->k) return aellm_error_set(AELLM_EINVAL, "surrogate: save before training");
    bytes b = {0}, members = {0};
    char digest[AELLM_HASH_HEX] = "";
    int rc = 0;
    for (int m = 0; m < s->k && !rc; m++) rc = put_member(&members, s->b[m]);
    if (!rc) aellm_hash_bytes(members.p, members.len, digest);
    if (!rc && !digest[0]) rc = aellm_error_oom("a surrogate digest", 0);
    if (!rc) rc = put_header(&b, s, digest);
    if (!rc) rc = bytes_put(&b, members.p, members.len);
    free(members.p);
    if (rc) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

int aellm_surrogate_save(const aellm_surrogate *s, const char *path)
{
    void *buf = NULL;
    size_t len = 0;
    int rc = aellm_surrogate_save_buffer(s, &buf, &len);
    if (rc) return rc;
    aellm_atomic a;
    rc = aellm_atomic_open(&a, path);
    if (!rc) {
        aellm_atomic_write(&a, buf, len);
        rc = aellm_atomic_commit(&a);
    }
    free(buf);
    return rc;
}

/* ---- loading ---- */

typedef struct {
    int k;
    size_t d;
    aellm_surrogate_params p;
    double y_shift, y_scale; /* absent in files from before scaling: 0 and 1 */
    char members_sha256[AELLM_HASH_HEX];
} header;

static int parse_header(header *h, const char *text, size_t len)
{
    cJSON *j = cJSON_ParseWithLength(text, len);
    if (!j) return aellm_error_set(AELLM_EFORMAT, "surrogate file: header is not JSON");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "version");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(j, "members");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "features");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "params");
    int rc = 0;
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(j, "members_sha256");
    if (cJSON_IsNumber(v) && v->valuedouble == 1)
        rc = aellm_error_set(AELLM_EFORMAT, "surrogate file: version 1, without a digest of its "
                                            "members: save it again with this aellm");
    else if (!cJSON_IsNumber(v) || v->valuedouble != FORMAT_VERSION)
        rc = aellm_error_set(AELLM_EFORMAT, "surrogate file: unsupported version");
    else if (!cJSON_IsString(sha) || strlen(sha->valuestring) != AELLM_HASH_HEX - 1)
        rc = aellm_error_set(AELLM_EFORMAT, "surrogate file: no members_sha256");
    else if (!cJSON_IsNumber(k) || !(k->valuedouble >= 1 && k->valuedouble <= 1024) ||
             k->valuedouble != floor(k->valuedouble))
        rc = aellm_error_set(AELLM_EFORMAT, "surrogate file: bad member count");
    else if (!cJSON_IsNumber(d) || !(d->valuedouble >= 1 && d->valuedouble <= 1e9) ||
             d->valuedouble != floor(d->valuedouble))
        rc = aellm_error_set(AELLM_EFORMAT, "surrogate file: bad feature count");
    else if (!cJSON_IsObject(p))
        rc = aellm_error_set(AELLM_EFORMAT, "surrogate file: no params");
    else
        rc = params_from_json(&h->p, p);
    const cJSON *shift = cJSON_GetObjectItemCaseSensitive(j, "target_shift");
    const cJSON *scale = cJSON_GetObjectItemCaseSensitive(j, "target_scale");
    h->y_shift = cJSON_IsNumber(shift) ? shift->valuedouble : 0;
    h->y_scale = cJSON_IsNumber(scale) ? scale->valuedouble : 1;
    if (!rc && (!isfinite(h->y_shift) || !(h->y_scale > 0) || !isfinite(h->y_scale)))
        rc = aellm_error_set(AELLM_EFORMAT, "surrogate file: bad target scaling");
    if (!rc) {
        h->k = (int)k->valuedouble;
        h->d = (size_t)d->valuedouble;
        memcpy(h->members_sha256, sha->valuestring, AELLM_HASH_HEX);
    }
    cJSON_Delete(j);
    return rc;
}

/* One member from its UBJSON bytes; its feature count must be the header's. */
static int load_member(BoosterHandle *out, const void *raw, size_t len, size_t d)
{
    int rc = aellm_surr_xgb(XGBoosterCreate(NULL, 0, out), "creating booster");
    if (!rc) rc = aellm_surr_xgb(XGBoosterLoadModelFromBuffer(*out, raw, len), "loading model");
    bst_ulong nf = 0;
    if (!rc) rc = aellm_surr_xgb(XGBoosterGetNumFeature(*out, &nf), "reading feature count");
    if (!rc && nf != d)
        rc = aellm_error_set(AELLM_EFORMAT, "surrogate file: member has %llu features, header %zu",
                             (unsigned long long)nf, d);
    return rc;
}

static int load_members(aellm_surrogate *s, const unsigned char *p, size_t left, const header *h)
{
    s->b = calloc((size_t)h->k, sizeof(*s->b));
    if (!s->b)
        return aellm_error_oom("surrogate members", (unsigned long long)h->k * sizeof(*s->b));
    s->k = h->k; /* the handles, NULL or not, are now s's to free */
    s->d = h->d;
    s->y_shift = h->y_shift;
    s->y_scale = h->y_scale;
    for (int m = 0; m < h->k; m++) {
        if (left < 8)
            return aellm_error_set(AELLM_EFORMAT, "surrogate file: truncated at member %d", m);
        uint64_t len = get_le(p, 8);
        p += 8, left -= 8;
        if (len > left)
            return aellm_error_set(AELLM_EFORMAT, "surrogate file: member %d overruns the file", m);
        int rc = load_member(&s->b[m], p, (size_t)len, h->d), start = 0;
        if (!rc) rc = aellm_surr_xgb(XGBoosterBoostedRounds(s->b[m], &start), "counting rounds");
        if (!rc) rc = aellm_surr_set_params(s->b[m], &s->p, m, start);
        if (rc) {
            char why[256]; /* the message is rewritten from itself: copy first */
            snprintf(why, sizeof(why), "%s", aellm_error_last());
            return aellm_error_set(rc == AELLM_ERROR ? AELLM_EFORMAT : rc,
                                   "surrogate file: member %d: %s", m, why);
        }
        p += len, left -= (size_t)len;
    }
    if (left)
        return aellm_error_set(AELLM_EFORMAT, "surrogate file: %zu bytes after the last member",
                               left);
    return 0;
}

int aellm_surrogate_load_buffer(aellm_surrogate **out, const void *buf, size_t len,
                                const aellm_surrogate_params *p)
{
    *out = NULL;
    const unsigned char *at = buf;
    if (len < 12 || memcmp(at, MAGIC, 8))
        return aellm_error_set(AELLM_EFORMAT, "surrogate file: bad magic (not a surrogate)");
    uint64_t hlen = get_le(at + 8, 4);
    if (hlen > len - 12)
        return aellm_error_set(AELLM_EFORMAT, "surrogate file: header overruns the file");
    header h;
    int rc = parse_header(&h, (const char *)at + 12, (size_t)hlen);
    if (!rc && p) rc = aellm_surr_params_check(p);
    if (rc) return rc;
    char digest[AELLM_HASH_HEX];
    aellm_hash_bytes(at + 12 + hlen, len - 12 - (size_t)hlen, digest);
    if (!digest[0]) return aellm_error_oom("a surrogate digest", 0);
    if (strcmp(digest, h.members_sha256))
        return aellm_error_set(AELLM_EFORMAT, "surrogate file: its members are damaged (their "
                                              "SHA-256 is not the header's)");
    aellm_surrogate *s = NULL;
    rc = aellm_surrogate_new(&s, p ? p : &h.p);
    if (!rc) rc = load_members(s, at + 12 + hlen, len - 12 - (size_t)hlen, &h);
    if (rc) {
        aellm_surrogate_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

static int read_file(unsigned char **out, size_t *len, const char *path)
{
    return aellm_file_read((char **)out, len, path, SURROGATE_MAX_BYTES, "surrogate file");
}

int aellm_surrogate_load(aellm_surrogate **out, const char *path, const aellm_surrogate_params *p)
{
    *out = NULL;
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = read_file(&buf, &len, path);
    if (rc) return rc;
    rc = aellm_surrogate_load_buffer(out, buf, len, p);
    if (rc) {
        char why[256]; /* the message is rewritten from itself: copy first */
        snprintf(why, sizeof(why), "%s", aellm_error_last());
        rc = aellm_error_set(rc, "%s: %s", path, why);
    }
    free(buf);
    return rc;
}
