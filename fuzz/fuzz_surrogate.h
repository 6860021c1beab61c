/* The true surrogate fuzz_surrogate.c frames its inputs with, shared with
 * fuzz_mkseeds.c (which writes its header as a seed): two members of three
 * depth-2 trees on three features, saved by aellm_surrogate_save_buffer. */
#ifndef AELLM_FUZZ_SURROGATE_H
#define AELLM_FUZZ_SURROGATE_H

#include "aellm/surrogate.h"
#include "fuzz_util.h"

/* The saved file (borrowed; made on first use). */
static inline const uint8_t *fz_true_surrogate(size_t *len)
{
    static void *buf;
    static size_t n;
    if (!buf) {
        aellm_surrogate_params p;
        aellm_surrogate_params_default(&p);
        p.members = 2, p.num_rounds = 3, p.max_depth = 2;
        float X[16 * 3], y[16];
        for (int i = 0; i < 16; i++) {
            for (int j = 0; j < 3; j++) X[3 * i + j] = (float)((i * (j + 3)) % 7);
            y[i] = X[3 * i] - 0.5f * X[3 * i + 2];
        }
        aellm_surrogate *s = NULL;
        FZ_CHECK(aellm_surrogate_new(&s, &p) == 0);
        FZ_CHECK(aellm_surrogate_fit(s, X, 16, 3, y) == 0);
        FZ_CHECK(aellm_surrogate_save_buffer(s, &buf, &n) == 0);
        aellm_surrogate_free(s);
    }
    *len = n;
    return buf;
}

/* Where its members start: after the magic (8), the header length (4) and
 * the header. */
static inline size_t fz_true_surrogate_members(const uint8_t *buf)
{
    uint32_t hlen;
    memcpy(&hlen, buf + 8, 4);
    return 12 + (size_t)hlen;
}

#endif
