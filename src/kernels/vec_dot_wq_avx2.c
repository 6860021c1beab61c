/* AVX2 dots of aellm's own weight formats: one row (vec_dot) or four rows
 * sharing one pass over the activation (vec_dot_rows, the matvec hot path).
 * Mirrors vec_dot_wq_scalar.c; conversions are in convert_wq_avx2.c. The
 * g32 types run q4_0 / q4_1 / q8_0's kernels (vec_dot_avx2.c). */
#include "kernels/kernels_impl.h"

#include "core/blocks.h"
#include "kernels/simd_avx2.h"

/* As in vec_dot_avx2.c, the row kernels prefetch ahead in each row's run
 * (aellm_prefetch_ahead, kernels_impl.h). */

/* ---- INT4 groups x Q8_0 / Q8_1 ----------------------------------------------
 * A group's sub-blocks k and k+1 are 32 consecutive nibble bytes: one load,
 * low nibbles = elements 0..15 of each, high = 16..31, against activation
 * blocks b and b+1 loaded the same way (as q4_rows in vec_dot_avx2.c).
 * Groups hold an even number of sub-blocks (g64, g128), so pairs never
 * straddle two groups; activations are padded to whole groups. */

typedef struct {
    __m256i lo, hi; /* first halves of blocks b and b+1, second halves */
    __m256i x8;     /* 8 sum x as int16 pairs (symmetric types), else 0 */
    __m256 dx;      /* [dx_b x4, dx_b+1 x4], matching the madd lanes */
    float s;        /* Q8_1: s_b + s_b+1 */
} act_pair;

static inline act_pair load_act_pair(const void *x, int64_t b, int asym)
{
    const size_t xbytes = asym ? sizeof(aellm_block_q8_1) : sizeof(aellm_block_q8_0);
    const size_t xoff = asym ? offsetof(aellm_block_q8_1, qs) : offsetof(aellm_block_q8_0, qs);
    const uint8_t *x0 = (const uint8_t *)x + b * xbytes, *x1 = x0 + xbytes;
    act_pair a;
    a.lo = _mm256_loadu2_m128i((const __m128i *)(x1 + xoff), (const __m128i *)(x0 + xoff));
    a.hi =
        _mm256_loadu2_m128i((const __m128i *)(x1 + xoff + 16), (const __m128i *)(x0 + xoff + 16));
    const __m256i eights = _mm256_set1_epi8(8);
    a.x8 = asym ? _mm256_setzero_si256()
                : _mm256_add_epi16(_mm256_maddubs_epi16(eights, a.lo),
                                   _mm256_maddubs_epi16(eights, a.hi));
    float dx0 = f16_load(x0), dx1 = f16_load(x1);
    a.dx = _mm256_setr_ps(dx0, dx0, dx0, dx0, dx1, dx1, dx1, dx1);
    a.s = asym ? f16_load(x0 + 2) + f16_load(x1 + 2) : 0.0f;
    return a;
}

/* sum (q - 8) x (or sum q x) of two sub-blocks as int32 lanes 0..3 / 4..7.
 * int16 sums stay below 2 * 2 * 15 * 127 + 2 * 2 * 8 * 127 < 2^15. */
static inline __m256i int4_pair_dot(const uint8_t *qs, const act_pair *a)
{
    const __m256i nib = _mm256_set1_epi8(0x0f);
    __m256i v = _mm256_loadu_si256((const __m256i *)qs);
    __m256i lo = _mm256_and_si256(v, nib), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);
    __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, a->lo), _mm256_maddubs_epi16(hi, a->hi));
    return _mm256_madd_epi16(_mm256_sub_epi16(p, a->x8), _mm256_set1_epi16(1));
}

/* Per group: sum over pairs of float(idot) dx, then times the group's d. */
static inline __attribute__((always_inline)) void int4_dot(int64_t n, float *out, const void *w,
                                                           const void *x, int64_t g, int asym)
{
    const size_t bytes = (size_t)aellm_int4_block_bytes(g, asym);
    const int qoff = aellm_int4_qoff(asym);
    const uint8_t *blk = w;
    __m256 acc = _mm256_setzero_ps();
    float ms = 0.0f;
    for (int64_t i = 0; i * g < n; i++, blk += bytes) {
        __m256 gacc = _mm256_setzero_ps();
        float gs = 0.0f;
        for (int64_t k = 0; k < g / 32; k += 2) {
            act_pair a = load_act_pair(x, i * (g / 32) + k, asym);
            gacc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(int4_pair_dot(blk + qoff + k * 16, &a)), a.dx,
                                   gacc);
            gs += a.s;
        }
        acc = _mm256_fmadd_ps(gacc, _mm256_set1_ps(f16_load(blk)), acc);
        if (asym) ms += f16_load(blk + 2) * gs;
    }
    *out = hsum_ps(acc) + ms;
}

static inline __attribute__((always_inline)) void int4_rows(int64_t n, float *out, const void *w,
                                                            size_t row_bytes, const void *x,
                                                            int64_t g, int asym)
{
    const size_t bytes = (size_t)aellm_int4_block_bytes(g, asym);
    const int qoff = aellm_int4_qoff(asym);
    const uint8_t *rows[4];
    __m256 acc[4];
    float ms[4] = {0};
    for (int r = 0; r < 4; r++) {
        rows[r] = (const uint8_t *)w + r * row_bytes;
        acc[r] = _mm256_setzero_ps();
    }
    for (int64_t i = 0; i * g < n; i++) {
        __m256 gacc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                          _mm256_setzero_ps()};
        float gs = 0.0f;
        for (int64_t k = 0; k < g / 32; k += 2) {
            act_pair a = load_act_pair(x, i * (g / 32) + k, asym);
            for (int r = 0; r < 4; r++) {
                const uint8_t *q = rows[r] + i * bytes + qoff + k * 16;
                aellm_prefetch_ahead(q, AELLM_MV_PREFETCH_AVX2);
                gacc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(int4_pair_dot(q, &a)), a.dx, gacc[r]);
            }
            gs += a.s;
        }
        for (int r = 0; r < 4; r++) {
            const uint8_t *blk = rows[r] + i * bytes;
            acc[r] = _mm256_fmadd_ps(gacc[r], _mm256_set1_ps(f16_load(blk)), acc[r]);
            if (asym) ms[r] += f16_load(blk + 2) * gs;
        }
    }
    for (int r = 0; r < 4; r++) out[r] = hsum_ps(acc[r]) + ms[r];
}

#define INT4_KERNELS(name, g, asym)                                                                \
    void aellm_vec_dot_##name##_avx2(int64_t n, float *out, const void *w, const void *x)          \
    {                                                                                              \
        int4_dot(n, out, w, x, g, asym);                                                           \
    }                                                                                              \
    void aellm_vec_dot_rows_##name##_avx2(int64_t n, float *out, const void *w, size_t row_bytes,  \
                                          const void *x)                                           \
    {                                                                                              \
        int4_rows(n, out, w, row_bytes, x, g, asym);                                               \
    }

INT4_KERNELS(int4s_g64, 64, 0)
INT4_KERNELS(int4s_g128, 128, 0)
INT4_KERNELS(int4a_g64, 64, 1)
INT4_KERNELS(int4a_g128, 128, 1)

/* ---- NF4 x f32 ---------------------------------------------------------------
 * Eight nibble bytes give 8 codes of elements j..j+7 (low nibbles) and
 * j+16..j+23 (high); each goes through the 16-entry lookup and one FMA. */

static inline __m256 nf4_group_dot(const aellm_block_nf4 *b, const float *x, __m256 lo8, __m256 hi8)
{
    __m256 g0 = _mm256_setzero_ps(), g1 = _mm256_setzero_ps();
    const __m256i nib = _mm256_set1_epi32(0x0f);
    for (int k = 0; k < QK_NF4 / 32; k++)
        for (int h = 0; h < 2; h++) {
            const float *xs = x + k * 32 + h * 8;
            __m256i c =
                _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b->qs + k * 16 + h * 8)));
            __m256i lo = _mm256_and_si256(c, nib), hi = _mm256_srli_epi32(c, 4);
            g0 = _mm256_fmadd_ps(nf4_lookup(lo, lo8, hi8), _mm256_loadu_ps(xs), g0);
            g1 = _mm256_fmadd_ps(nf4_lookup(hi, lo8, hi8), _mm256_loadu_ps(xs + 16), g1);
        }
    return _mm256_add_ps(g0, g1);
}

void aellm_vec_dot_nf4_avx2(int64_t n, float *out, const void *w, const void *x)
{
    const aellm_block_nf4 *b = w;
    const __m256 lo8 = _mm256_loadu_ps(aellm_nf4_codebook),
                 hi8 = _mm256_loadu_ps(aellm_nf4_codebook + 8);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i * QK_NF4 < n; i++)
        acc = _mm256_fmadd_ps(nf4_group_dot(b + i, (const float *)x + i * QK_NF4, lo8, hi8),
                              _mm256_set1_ps(f16_load(&b[i].d)), acc);
    *out = hsum_ps(acc);
}

void aellm_vec_dot_rows_nf4_avx2(int64_t n, float *out, const void *w, size_t row_bytes,
                                 const void *x)
{
    const __m256 lo8 = _mm256_loadu_ps(aellm_nf4_codebook),
                 hi8 = _mm256_loadu_ps(aellm_nf4_codebook + 8);
    for (int r = 0; r < 4; r++) {
        const aellm_block_nf4 *b = (const aellm_block_nf4 *)((const char *)w + r * row_bytes);
        __m256 acc = _mm256_setzero_ps();
        for (int64_t i = 0; i * QK_NF4 < n; i++) {
            aellm_prefetch_ahead(b + i, AELLM_MV_PREFETCH_AVX2);
            acc = _mm256_fmadd_ps(nf4_group_dot(b + i, (const float *)x + i * QK_NF4, lo8, hi8),
                                  _mm256_set1_ps(f16_load(&b[i].d)), acc);
        }
        out[r] = hsum_ps(acc);
    }
}

/* ---- FP8 E4M3 x f32 --------------------------------------------------------
 * 16 elements a step; a last partial step goes through zero-padded copies.
 * The decoded values are e4m3 / 256, so the sum is scaled by 256 s. */

static inline void fp8_step(const uint8_t *q, const float *x, __m256 *a0, __m256 *a1)
{
    __m256 f0, f1;
    fp8_decode16(_mm_loadu_si128((const __m128i *)q), &f0, &f1);
    *a0 = _mm256_fmadd_ps(f0, _mm256_loadu_ps(x), *a0);
    *a1 = _mm256_fmadd_ps(f1, _mm256_loadu_ps(x + 8), *a1);
}

static inline void fp8_tail(const uint8_t *q, const float *x, int64_t left, __m256 *a0, __m256 *a1)
{
    uint8_t qb[16] = {0};
    float xb[16] = {0};
    memcpy(qb, q, (size_t)left);
    memcpy(xb, x, (size_t)left * sizeof(float));
    fp8_step(qb, xb, a0, a1);
}

static inline float fp8_scale(const void *w)
{
    float s;
    memcpy(&s, w, sizeof(s));
    return s * 256.0f;
}

void aellm_vec_dot_fp8_e4m3_avx2(int64_t n, float *out, const void *w, const void *x)
{
    const uint8_t *q = (const uint8_t *)w + sizeof(float);
    const float *xf = x;
    __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        fp8_step(q + i, xf + i, &a[0], &a[1]);
        fp8_step(q + i + 16, xf + i + 16, &a[2], &a[3]);
    }
    for (; i + 16 <= n; i += 16) fp8_step(q + i, xf + i, &a[0], &a[1]);
    if (i < n) fp8_tail(q + i, xf + i, n - i, &a[2], &a[3]);
    __m256 sum = _mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3]));
    *out = hsum_ps(sum) * fp8_scale(w);
}

void aellm_vec_dot_rows_fp8_e4m3_avx2(int64_t n, float *out, const void *w, size_t row_bytes,
                                      const void *x)
{
    const float *xf = x;
    const uint8_t *q[4];
    __m256 a[4][2];
    for (int r = 0; r < 4; r++) {
        q[r] = (const uint8_t *)w + r * row_bytes + sizeof(float);
        a[r][0] = a[r][1] = _mm256_setzero_ps();
    }
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int r = 0; r < 4; r++) fp8_step(q[r] + i, xf + i, &a[r][0], &a[r][1]);
    for (int r = 0; r < 4; r++) {
        if (i < n) fp8_tail(q[r] + i, xf + i, n - i, &a[r][0], &a[r][1]);
        out[r] =
            hsum_ps(_mm256_add_ps(a[r][0], a[r][1])) * fp8_scale((const char *)w + r * row_bytes);
    }
}

/* ---- INT8 x INT8 (W8A8) ------------------------------------------------------
 * Exact int32 sums (sign trick), then float(isum) s_w s_x as the scalar
 * reference computes it: the results are identical, not just close. */

static inline int32_t i8_tail(const int8_t *a, const int8_t *b, int64_t len)
{
    int32_t s = 0;
    for (int64_t j = 0; j < len; j++) s += a[j] * b[j];
    return s;
}

static inline float row_scale(const void *row)
{
    float s;
    memcpy(&s, row, sizeof(s));
    return s;
}

void aellm_vec_dot_int8_avx2(int64_t n, float *out, const void *w, const void *x)
{
    const int8_t *a = (const int8_t *)w + sizeof(float), *b = (const int8_t *)x + sizeof(float);
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        acc0 = _mm256_add_epi32(acc0, dot_s8s8(_mm256_loadu_si256((const __m256i *)(a + i)),
                                               _mm256_loadu_si256((const __m256i *)(b + i))));
        acc1 = _mm256_add_epi32(acc1, dot_s8s8(_mm256_loadu_si256((const __m256i *)(a + i + 32)),
                                               _mm256_loadu_si256((const __m256i *)(b + i + 32))));
    }
    for (; i + 32 <= n; i += 32)
        acc0 = _mm256_add_epi32(acc0, dot_s8s8(_mm256_loadu_si256((const __m256i *)(a + i)),
                                               _mm256_loadu_si256((const __m256i *)(b + i))));
    int32_t isum = hsum_epi32(_mm256_add_epi32(acc0, acc1)) + i8_tail(a + i, b + i, n - i);
    *out = (float)isum * (row_scale(w) * row_scale(x));
}

void aellm_vec_dot_rows_int8_avx2(int64_t n, float *out, const void *w, size_t row_bytes,
                                  const void *x)
{
    const int8_t *b = (const int8_t *)x + sizeof(float), *a[4];
    __m256i acc[4];
    for (int r = 0; r < 4; r++) {
        a[r] = (const int8_t *)w + r * row_bytes + sizeof(float);
        acc[r] = _mm256_setzero_si256();
    }
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i xv = _mm256_loadu_si256((const __m256i *)(b + i));
        for (int r = 0; r < 4; r++) {
            aellm_prefetch_ahead(a[r] + i, AELLM_MV_PREFETCH_AVX2);
            acc[r] = _mm256_add_epi32(
                acc[r], dot_s8s8(_mm256_loadu_si256((const __m256i *)(a[r] + i)), xv));
        }
    }
    float sx = row_scale(x);
    for (int r = 0; r < 4; r++) {
        int32_t isum = hsum_epi32(acc[r]) + i8_tail(a[r] + i, b + i, n - i);
        out[r] = (float)isum * (row_scale((const char *)w + r * row_bytes) * sx);
    }
}
