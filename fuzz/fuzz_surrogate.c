/* Fuzzes the surrogate model file (aellm_surrogate_load_buffer: magic, a JSON
 * header of counts, target scaling and training parameters, then each
 * member, a u64 length and XGBoost's UBJSON model; surrogate_io.c).
 *
 * The members' bytes go to XGBoost's own loader, which is not instrumented
 * and does not check its lengths: damaged UBJSON reads past the buffer inside
 * libxgboost (found by an earlier version of this harness that fuzzed whole
 * files; reported, not aellm's code). So the input is the header, and the
 * harness frames it with the true members of a real surrogate:
 *
 *   byte 0: flags. bit 0: drop the last member; bit 1: one byte after the
 *           last member; bit 2: the first member's length one too long (so
 *           the framing, not XGBoost, meets the damage); bit 3: header
 *           length field one too long.
 *   rest:   the JSON header.
 *
 * A surrogate that loads predicts two rows (when its feature count is
 * small), is saved and loaded again. */
#include "aellm/surrogate.h"
#include "fuzz_surrogate.h"
#include "fuzz_util.h"

static uint8_t *frame(fz_in *in, int flags, size_t *len)
{
    size_t true_len;
    const uint8_t *t = fz_true_surrogate(&true_len);
    size_t at = fz_true_surrogate_members(t), members = true_len - at, last = members;
    if (flags & 1) { /* the second member starts after the first's length and bytes */
        uint64_t n0;
        memcpy(&n0, t + at, 8);
        last = 8 + (size_t)n0;
    }
    size_t n = 12 + in->n + last + (flags & 2 ? 1 : 0);
    uint8_t *f = malloc(n);
    FZ_CHECK(f);
    uint32_t hlen = (uint32_t)in->n + (flags & 8 ? 1 : 0);
    memcpy(f, t, 8);
    memcpy(f + 8, &hlen, 4);
    memcpy(f + 12, in->p, in->n);
    memcpy(f + 12 + in->n, t + at, last);
    if (flags & 2) f[n - 1] = '{';
    if (flags & 4) f[12 + in->n]++; /* little-endian: the length's low byte */
    *len = n;
    return f;
}

static void exercise(aellm_surrogate *s)
{
    size_t d = aellm_surrogate_num_features(s);
    FZ_CHECK(aellm_surrogate_num_members(s) >= 1);
    FZ_CHECK(aellm_surrogate_get_params(s) != NULL);
    if (d <= 1024) {
        float *x = calloc(2 * d, sizeof(float)), mean[2], var[2];
        FZ_CHECK(x);
        x[d] = 1.0f;
        aellm_surrogate_predict(s, x, 2, d, mean, var);
        free(x);
    }
    void *buf = NULL;
    size_t len = 0;
    if (aellm_surrogate_save_buffer(s, &buf, &len)) return;
    aellm_surrogate *back = NULL;
    FZ_CHECK(aellm_surrogate_load_buffer(&back, buf, len, NULL) == 0);
    FZ_CHECK(aellm_surrogate_num_features(back) == d);
    aellm_surrogate_free(back);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    int flags = fz_u8(&in);
    size_t len;
    uint8_t *file = frame(&in, flags, &len);
    aellm_surrogate *s = NULL;
    if (aellm_surrogate_load_buffer(&s, file, len, NULL) == 0) {
        exercise(s);
        aellm_surrogate_free(s);
    }
    free(file);
    return 0;
}
