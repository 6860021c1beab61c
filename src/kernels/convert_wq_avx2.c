/* AVX2 conversions of aellm's own weight formats: exact dequantizers (the
 * prefill path dequantizes a row at a time), and the INT8 activation
 * quantizer of W8A8, byte-identical to the reference in src/core/dtype.c.
 * Weight quantizers stay scalar: they run once, offline. */
#include "kernels/kernels_impl.h"

#include "core/blocks.h"
#include "core/half.h"
#include "kernels/simd_avx2.h"

/* Bytes 8k..8k+7 of q, sign-extended, as floats (exact). */
static inline __m256 i8_group_ps(__m256i q, int k)
{
    __m128i half = k < 2 ? _mm256_castsi256_si128(q) : _mm256_extracti128_si256(q, 1);
    if (k & 1) half = _mm_srli_si128(half, 8);
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(half));
}

/* One INT4 group of g elements. The asymmetric q d + m is a multiply then
 * an add, as in the reference: the empty asm keeps them from fusing into an
 * FMA (one rounding instead of two). */
static inline void int4_group(const uint8_t *blk, float *dst, int64_t g, int asym)
{
    __m256 dv = _mm256_set1_ps(f16_load(blk)), mv = _mm256_set1_ps(asym ? f16_load(blk + 2) : 0);
    for (int64_t k = 0; k < g / 32; k++) {
        __m256i q = unpack_nibbles(blk + aellm_int4_qoff(asym) + k * 16);
        if (!asym) q = _mm256_sub_epi8(q, _mm256_set1_epi8(8));
        for (int j = 0; j < 4; j++) {
            __m256 f = _mm256_mul_ps(i8_group_ps(q, j), dv);
            if (asym) {
                __asm__("" : "+x"(f));
                f = _mm256_add_ps(f, mv);
            }
            _mm256_storeu_ps(dst + k * 32 + 8 * j, f);
        }
    }
}

static inline void nf4_group(const uint8_t *blk, float *dst)
{
    const aellm_block_nf4 *b = (const aellm_block_nf4 *)blk;
    const __m256 lo8 = _mm256_loadu_ps(aellm_nf4_codebook);
    const __m256 hi8 = _mm256_loadu_ps(aellm_nf4_codebook + 8);
    __m256 dv = _mm256_set1_ps(f16_load(&b->d));
    for (int k = 0; k < QK_NF4 / 32; k++)
        for (int h = 0; h < 2; h++) {
            __m256i c =
                _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b->qs + k * 16 + h * 8)));
            __m256i lo = _mm256_and_si256(c, _mm256_set1_epi32(0x0f));
            __m256i hi = _mm256_srli_epi32(c, 4);
            _mm256_storeu_ps(dst + k * 32 + h * 8, _mm256_mul_ps(nf4_lookup(lo, lo8, hi8), dv));
            _mm256_storeu_ps(dst + k * 32 + 16 + h * 8,
                             _mm256_mul_ps(nf4_lookup(hi, lo8, hi8), dv));
        }
}

/* Whole groups straight into dst; a partial last group through a buffer,
 * so that nothing is written past n. */
#define GROUPS_TO_FLOAT(src, dst, n, g, bytes, group_call)                                         \
    do {                                                                                           \
        const uint8_t *blk_ = (const uint8_t *)(src);                                              \
        int64_t i_ = 0;                                                                            \
        for (; (i_ + 1) * (g) <= (n); i_++, blk_ += (bytes)) {                                     \
            float *out_ = (dst) + i_ * (g);                                                        \
            group_call;                                                                            \
        }                                                                                          \
        if (i_ * (g) < (n)) {                                                                      \
            float out_[AELLM_INT4_MAX_GROUP];                                                      \
            group_call;                                                                            \
            memcpy((dst) + i_ * (g), out_, (size_t)((n)-i_ * (g)) * sizeof(float));                \
        }                                                                                          \
    } while (0)

#define INT4_TO_FLOAT(name, g, asym)                                                               \
    void aellm_to_float_##name##_avx2(const void *src, float *dst, int64_t n)                      \
    {                                                                                              \
        GROUPS_TO_FLOAT(src, dst, n, g, (size_t)aellm_int4_block_bytes(g, asym),                   \
                        int4_group(blk_, out_, g, asym));                                          \
    }

INT4_TO_FLOAT(int4s_g32, 32, 0)
INT4_TO_FLOAT(int4s_g64, 64, 0)
INT4_TO_FLOAT(int4s_g128, 128, 0)
INT4_TO_FLOAT(int4a_g32, 32, 1)
INT4_TO_FLOAT(int4a_g64, 64, 1)
INT4_TO_FLOAT(int4a_g128, 128, 1)

void aellm_to_float_nf4_avx2(const void *src, float *dst, int64_t n)
{
    GROUPS_TO_FLOAT(src, dst, n, QK_NF4, sizeof(aellm_block_nf4), nf4_group(blk_, out_));
}

static inline void q8_group(const uint8_t *blk, float *dst)
{
    const aellm_block_q8_0 *b = (const aellm_block_q8_0 *)blk;
    __m256i q = _mm256_loadu_si256((const __m256i *)b->qs);
    __m256 dv = _mm256_set1_ps(f16_load(&b->d));
    for (int j = 0; j < 4; j++) _mm256_storeu_ps(dst + 8 * j, _mm256_mul_ps(i8_group_ps(q, j), dv));
}

void aellm_to_float_int8_g32_avx2(const void *src, float *dst, int64_t n)
{
    GROUPS_TO_FLOAT(src, dst, n, QK8_0, sizeof(aellm_block_q8_0), q8_group(blk_, out_));
}

/* ---- per-row scale types ---- */

static inline float row_scale(const void *row)
{
    float s;
    memcpy(&s, row, sizeof(s));
    return s;
}

/* s * e4m3 = s * (f16 value * 256): the * 256 is exact, as in the reference. */
static inline void fp8_16(const uint8_t *q, float *dst, __m256 sv)
{
    __m256 f0, f1;
    const __m256 k256 = _mm256_set1_ps(256.0f);
    fp8_decode16(_mm_loadu_si128((const __m128i *)q), &f0, &f1);
    _mm256_storeu_ps(dst, _mm256_mul_ps(sv, _mm256_mul_ps(f0, k256)));
    _mm256_storeu_ps(dst + 8, _mm256_mul_ps(sv, _mm256_mul_ps(f1, k256)));
}

void aellm_to_float_fp8_e4m3_avx2(const void *src, float *dst, int64_t n)
{
    const uint8_t *q = (const uint8_t *)src + sizeof(float);
    __m256 sv = _mm256_set1_ps(row_scale(src));
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) fp8_16(q + i, dst + i, sv);
    if (i < n) {
        uint8_t qb[16] = {0};
        float out[16];
        memcpy(qb, q + i, (size_t)(n - i));
        fp8_16(qb, out, sv);
        memcpy(dst + i, out, (size_t)(n - i) * sizeof(float));
    }
}

void aellm_to_float_int8_avx2(const void *src, float *dst, int64_t n)
{
    const int8_t *q = (const int8_t *)src + sizeof(float);
    float s = row_scale(src);
    __m256 sv = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i v = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + i)));
        _mm256_storeu_ps(dst + i, _mm256_mul_ps(_mm256_cvtepi32_ps(v), sv));
    }
    for (; i < n; i++) dst[i] = (float)q[i] * s;
}

/* W8A8 activations, per token: s = amax / 127, q = x * (1 / s) rounded to
 * nearest even (cvtps under the default rounding mode, as nearbyintf in the
 * reference), clamped to +-127. */
void aellm_from_float_int8_avx2(const float *src, void *dst, int64_t n)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(src + i)), m);
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    float amax = _mm_cvtss_f32(h);
    for (; i < n; i++) amax = fmaxf(amax, fabsf(src[i]));
    float s = amax / 127.0f, id = s != 0.0f ? 1.0f / s : 0.0f;
    memcpy(dst, &s, sizeof(s));
    int8_t *q = (int8_t *)dst + sizeof(float);
    const __m256 idv = _mm256_set1_ps(id);
    const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
    for (i = 0; i + 32 <= n; i += 32) {
        __m256i v[4];
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(src + i + 8 * k), idv));
            v[k] = _mm256_min_epi32(_mm256_max_epi32(v[k], lo), hi);
        }
        /* The packs interleave 128-bit lanes; the permute restores order. */
        __m256i p =
            _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(q + i), p);
    }
    for (; i < n; i++) {
        float v = src[i] * id; /* clamped as a float: NaN or inf cast to int is undefined */
        q[i] = (int8_t)(!(v > -127.0f) ? -127 : v > 127.0f ? 127 : (int)nearbyintf(v));
    }
}
