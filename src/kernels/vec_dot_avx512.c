/* AVX-512 dot products, mirroring vec_dot_avx2.c at twice the width: float
 * weights 16 lanes at a time (masked tails), quantized weights two blocks
 * per zmm with VNNI (vpdpbusd). Conversions: convert_avx512.c; prefill
 * tiles: gemm_avx512.c. Measured on Zen 5 (bench/bench_kernels.c). */
#include "kernels/kernels_impl.h"

#include <string.h>

#include "core/blocks.h"
#include "kernels/simd_avx512.h"

/* As in vec_dot_avx2.c, each step of a row kernel but the f32 one prefetches
 * ahead in each of its rows' runs (aellm_prefetch_ahead), one line per 64
 * bytes, 2 KiB ahead where AVX2 looks 1 KiB ahead (kernels_impl.h). */

/* ---- float weights ------------------------------------------------------- */

/* The f32 row kernel reads AELLM_MV_F32_ROWS rows and leaves the prefetching
 * to the hardware; f16 and bf16 read four with the prefetch (kernels_impl.h:
 * each was the faster of the two on Zen 5 at 1.1B). Both keep the activation
 * in registers for all their rows: GCC otherwise folds its load into every
 * FMA, once per row (f32 read 3-9 % slower so, in an A/B of two builds). */

/* Loads of 16 weights as f32; `m` masks a tail (masked-off lanes read as
 * zero and never fault). */
static inline __m512 load_f32(const void *p, int64_t i, __mmask16 m)
{
    return _mm512_maskz_loadu_ps(m, (const float *)p + i);
}

static inline __m512 load_f16(const void *p, int64_t i, __mmask16 m)
{
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i));
}

static inline __m512 load_bf16(const void *p, int64_t i, __mmask16 m)
{
    __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

#define ALL 0xffff

static inline __mmask16 tail_mask(int64_t left)
{
    return (__mmask16)((1u << left) - 1);
}

#define FLOAT_DOT(name, load, rows, prefetch)                                                      \
    void aellm_vec_dot_##name##_avx512(int64_t n, float *out, const void *w, const void *x)        \
    {                                                                                              \
        const float *xf = x;                                                                       \
        __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),            \
                         _mm512_setzero_ps()};                                                     \
        int64_t i = 0;                                                                             \
        for (; i + 64 <= n; i += 64)                                                               \
            for (int k = 0; k < 4; k++)                                                            \
                acc[k] = _mm512_fmadd_ps(load(w, i + 16 * k, ALL),                                 \
                                         _mm512_loadu_ps(xf + i + 16 * k), acc[k]);                \
        for (; i < n; i += 16) {                                                                   \
            __mmask16 m = n - i >= 16 ? ALL : tail_mask(n - i);                                    \
            acc[0] = _mm512_fmadd_ps(load(w, i, m), _mm512_maskz_loadu_ps(m, xf + i), acc[0]);     \
        }                                                                                          \
        *out = _mm512_reduce_add_ps(                                                               \
            _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));          \
    }                                                                                              \
    void aellm_vec_dot_rows_##name##_avx512(int64_t n, float *out, const void *w,                  \
                                            size_t row_bytes, const void *x)                       \
    {                                                                                              \
        enum { R = rows };                                                                         \
        const float *xf = x;                                                                       \
        const char *wr[R];                                                                         \
        __m512 acc[R][2];                                                                          \
        for (int r = 0; r < R; r++) {                                                              \
            wr[r] = (const char *)w + r * row_bytes;                                               \
            acc[r][0] = acc[r][1] = _mm512_setzero_ps();                                           \
        }                                                                                          \
        int64_t i = 0;                                                                             \
        for (; i + 32 <= n; i += 32) {                                                             \
            __m512 x0 = _mm512_loadu_ps(xf + i), x1 = _mm512_loadu_ps(xf + i + 16);                \
            __asm__("" : "+v"(x0), "+v"(x1)); /* loaded once for all rows */                       \
            for (int r = 0; r < R; r++) {                                                          \
                if (prefetch)                                                                      \
                    aellm_prefetch_ahead(wr[r] + i * 2,                                            \
                                         AELLM_MV_PREFETCH_AVX512); /* 16-bit: one line a step */  \
                acc[r][0] = _mm512_fmadd_ps(load(wr[r], i, ALL), x0, acc[r][0]);                   \
                acc[r][1] = _mm512_fmadd_ps(load(wr[r], i + 16, ALL), x1, acc[r][1]);              \
            }                                                                                      \
        }                                                                                          \
        for (; i < n; i += 16) {                                                                   \
            __mmask16 m = n - i >= 16 ? ALL : tail_mask(n - i);                                    \
            __m512 x0 = _mm512_maskz_loadu_ps(m, xf + i);                                          \
            for (int r = 0; r < R; r++)                                                            \
                acc[r][0] = _mm512_fmadd_ps(load(wr[r], i, m), x0, acc[r][0]);                     \
        }                                                                                          \
        for (int r = 0; r < R; r++)                                                                \
            out[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]));                    \
    }

FLOAT_DOT(f32, load_f32, AELLM_MV_F32_ROWS, 0)
FLOAT_DOT(f16, load_f16, AELLM_MV_ROWS, 1)
FLOAT_DOT(bf16, load_bf16, AELLM_MV_ROWS, 1)

/* ---- quantized weights: two blocks per step -------------------------------
 * A step covers blocks i and i+1 (the second one absent, hence zero, at an
 * odd tail): quants side by side in a zmm, one scale per 256-bit half. */

static inline __m512i q8_pair(const int8_t *qs0, const int8_t *qs1)
{
    return pair_si512(load_si256(qs0), qs1 ? load_si256(qs1) : _mm256_setzero_si256());
}

static inline __m512i q4_pair(const uint8_t *qs0, const uint8_t *qs1)
{
    return pair_si512(unpack_nibbles_256(qs0),
                      qs1 ? unpack_nibbles_256(qs1) : _mm256_setzero_si256());
}

/* sum (q - 8) x = sum q x - 8 sum x, both exact with VNNI. */
static inline __m512i q4_0_dot(__m512i q, __m512i xv)
{
    return _mm512_sub_epi32(dot_u8s8(q, xv), dot_u8s8(_mm512_set1_epi8(8), xv));
}

void aellm_vec_dot_q8_0_avx512(int64_t n, float *out, const void *w, const void *x)
{
    const aellm_block_q8_0 *a = w, *b = x;
    int64_t nb = (n + QK8_0 - 1) / QK8_0;
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i += 2) {
        int two = i + 1 < nb;
        __m512i p = dot_s8s8(q8_pair(a[i].qs, two ? a[i + 1].qs : NULL),
                             q8_pair(b[i].qs, two ? b[i + 1].qs : NULL));
        __m512 d = pair_ps(f16_load(&a[i].d) * f16_load(&b[i].d),
                           two ? f16_load(&a[i + 1].d) * f16_load(&b[i + 1].d) : 0.0f);
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), d, acc);
    }
    *out = _mm512_reduce_add_ps(acc);
}

/* Two consecutive blocks' f16 scales (`stride` bytes apart; the second 0
 * when absent) as f32 lanes 0 and 1, and those spread over a zmm of dot
 * sums, lanes 0..7 block i and 8..15 block i+1 (the q8_pair order). */
static inline __m128 scales_2(const void *d0, size_t stride, int two)
{
    uint16_t h0, h1 = 0;
    memcpy(&h0, d0, 2);
    if (two) memcpy(&h1, (const char *)d0 + stride, 2);
    return _mm_cvtph_ps(_mm_cvtsi32_si128((int)h0 | (int)h1 << 16));
}

static const int32_t pair_lane_block[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};

/* Four rows of q8_0, two blocks per step, for vpdpbusd's unsigned operand:
 * (w ^ 0x80) = w + 128, so the sum starts at -128 sum x (shared by the
 * rows); the scale pair is converted once and spread by a permute. */
void aellm_vec_dot_rows_q8_0_avx512(int64_t n, float *out, const void *w, size_t row_bytes,
                                    const void *x)
{
    const aellm_block_q8_0 *b = x, *a[4];
    __m512 acc[4];
    for (int r = 0; r < 4; r++) {
        a[r] = (const aellm_block_q8_0 *)((const char *)w + r * row_bytes);
        acc[r] = _mm512_setzero_ps();
    }
    const __m512i spread = _mm512_loadu_si512(pair_lane_block), bias = _mm512_set1_epi8(-128);
    int64_t nb = (n + QK8_0 - 1) / QK8_0;
    for (int64_t i = 0; i < nb; i += 2) {
        int two = i + 1 < nb;
        __m512i xv = q8_pair(b[i].qs, two ? b[i + 1].qs : NULL);
        __m512i neg128 = _mm512_sub_epi32(_mm512_setzero_si512(), dot_u8s8(bias, xv));
        __m128 dx = scales_2(&b[i].d, sizeof(aellm_block_q8_0), two);
        for (int r = 0; r < 4; r++) {
            aellm_prefetch_ahead(&a[r][i], AELLM_MV_PREFETCH_AVX512);
            aellm_prefetch_ahead(&a[r][i] + 1, AELLM_MV_PREFETCH_AVX512);
            __m512i q = _mm512_xor_si512(q8_pair(a[r][i].qs, two ? a[r][i + 1].qs : NULL), bias);
            __m512i p = _mm512_dpbusd_epi32(neg128, q, xv);
            __m128 d = _mm_mul_ps(scales_2(&a[r][i].d, sizeof(aellm_block_q8_0), two), dx);
            __m512 dv = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(d));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), dv, acc[r]);
        }
    }
    for (int r = 0; r < 4; r++) out[r] = _mm512_reduce_add_ps(acc[r]);
}

void aellm_vec_dot_q4_0_avx512(int64_t n, float *out, const void *w, const void *x)
{
    const aellm_block_q4_0 *a = w;
    const aellm_block_q8_0 *b = x;
    int64_t nb = (n + QK4_0 - 1) / QK4_0;
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i += 2) {
        int two = i + 1 < nb;
        __m512i p = q4_0_dot(q4_pair(a[i].qs, two ? a[i + 1].qs : NULL),
                             q8_pair(b[i].qs, two ? b[i + 1].qs : NULL));
        __m512 d = pair_ps(f16_load(&a[i].d) * f16_load(&b[i].d),
                           two ? f16_load(&a[i + 1].d) * f16_load(&b[i + 1].d) : 0.0f);
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), d, acc);
    }
    *out = _mm512_reduce_add_ps(acc);
}

/* Four rows of q4_0 against one q8_0 activation, two blocks per step, laid
 * out so that a row costs few instructions (decode of q4_0 is compute-bound
 * on two cores): the row's two 16-byte nibble runs u (block i), v (block
 * i+1) become [u, v, u >> 4, v >> 4] & 15 with one insert and one shift, so
 * the activation is permuted once per step, for all four rows, to
 * [x_i 0..15, x_i+1 0..15, x_i 16..31, x_i+1 16..31]; the -8 offset starts
 * each row's integer sum (-8 sum x, shared), and the two scales come as one
 * converted pair, spread by a permute. */
static const int32_t q4_lane_block[16] = {0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1};

static inline __m512i q4_0_nibbles_2(const aellm_block_q4_0 *a, int two)
{
    __m128i lo = _mm_loadu_si128((const __m128i *)a[0].qs);
    __m128i hi = two ? _mm_loadu_si128((const __m128i *)a[1].qs) : _mm_setzero_si128();
    __m256i uv = _mm256_set_m128i(hi, lo);
    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(uv), _mm256_srli_epi16(uv, 4), 1);
    return _mm512_and_si512(z, _mm512_set1_epi8(0x0f));
}

void aellm_vec_dot_rows_q4_0_avx512(int64_t n, float *out, const void *w, size_t row_bytes,
                                    const void *x)
{
    const aellm_block_q8_0 *b = x;
    const aellm_block_q4_0 *a[4];
    __m512 acc[4];
    for (int r = 0; r < 4; r++) {
        a[r] = (const aellm_block_q4_0 *)((const char *)w + r * row_bytes);
        acc[r] = _mm512_setzero_ps();
    }
    const __m512i spread = _mm512_loadu_si512(q4_lane_block);
    /* x's 32-byte halves swapped in the middle: [x_i lo, x_i+1 lo, x_i hi, x_i+1 hi] */
    const __m512i mid = _mm512_set_epi64(7, 6, 3, 2, 5, 4, 1, 0);
    int64_t nb = (n + QK4_0 - 1) / QK4_0;
    for (int64_t i = 0; i < nb; i += 2) {
        int two = i + 1 < nb;
        __m512i xv = _mm512_permutexvar_epi64(mid, q8_pair(b[i].qs, two ? b[i + 1].qs : NULL));
        __m512i neg8 = _mm512_sub_epi32(_mm512_setzero_si512(),
                                        dot_u8s8(_mm512_set1_epi8(8), xv)); /* -8 sum x */
        __m128 dx = scales_2(&b[i].d, sizeof(aellm_block_q8_0), two);
        for (int r = 0; r < 4; r++) {
            aellm_prefetch_ahead(&a[r][i], AELLM_MV_PREFETCH_AVX512);
            __m512i p = _mm512_dpbusd_epi32(neg8, q4_0_nibbles_2(&a[r][i], two), xv);
            __m128 d = _mm_mul_ps(scales_2(&a[r][i].d, sizeof(aellm_block_q4_0), two), dx);
            __m512 dv = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(d));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), dv, acc[r]);
        }
    }
    for (int r = 0; r < 4; r++) out[r] = _mm512_reduce_add_ps(acc[r]);
}

/* One block of a q4_0_r16 group (core/blocks.h) into its 16 row sums, a
 * lane per row: each 64-byte load holds 4 bytes of every row, its low
 * nibbles meet the activation's quants 4k..4k+3 broadcast (xl[k]), its high
 * nibbles quants 16+4k.. (xh[k]); the sums start at -8 sum(x) (`off`). */
static inline __m512i q4_0_r16_block(const aellm_block_q4_0_r16 *a, __m512i off, const __m512i *xl,
                                     const __m512i *xh)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    __m512i lo = off, hi = _mm512_setzero_si512();
    for (int k = 0; k < 4; k++) {
        __m512i v = _mm512_loadu_si512(a->q + 64 * k);
        lo = _mm512_dpbusd_epi32(lo, _mm512_and_si512(v, m4), xl[k]);
        hi = _mm512_dpbusd_epi32(hi, _mm512_and_si512(_mm512_srli_epi16(v, 4), m4), xh[k]);
    }
    return _mm512_add_epi32(lo, hi);
}

/* R16_STREAMS q4_0_r16 groups `dist` bytes apart (dist 0: one group read
 * as every stream), out[16 s + r]: no horizontal sums, and a block's 16
 * scales convert in one instruction. About 38 instructions per block of 16
 * rows where the four-row q4_0 kernel spends about 112: from the cache
 * 2.3-2.5x its rate. How it reads memory decided the rest, on Zen 5 in 1.1B
 * decode (bench/decode_ab.sh, two threads, medians of 5 pairs): one stream
 * without prefetch 0.95-0.98x the plain q4_0 kernel, and 0.85-0.88x with
 * it; two streams 1.036x one; two or four streams, each prefetched 2 KiB
 * ahead a line per 64 bytes, 1.07-1.25x the plain kernel (two and four
 * tied, 1.009x; 1 KiB ahead 0.967x 2 KiB). */
#define R16_STREAMS 2
void aellm_vec_dot_rows_q4_0_r16_avx512(int64_t n, float *out, const void *w, size_t dist,
                                        const void *x)
{
    const aellm_block_q4_0_r16 *a[R16_STREAMS];
    for (int s = 0; s < R16_STREAMS; s++)
        a[s] = (const aellm_block_q4_0_r16 *)((const char *)w + s * dist);
    const aellm_block_q8_0 *b = x;
    int64_t nb = n / QK4_0;
    const int32_t *sums = aellm_act_q8_0_sums(x, nb);
    __m512 acc[R16_STREAMS];
    for (int s = 0; s < R16_STREAMS; s++) acc[s] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        int32_t xs[8];
        memcpy(xs, b[i].qs, sizeof(xs));
        __m512i xl[4], xh[4];
        for (int k = 0; k < 4; k++)
            xl[k] = _mm512_set1_epi32(xs[k]), xh[k] = _mm512_set1_epi32(xs[4 + k]);
        __m512i off = _mm512_set1_epi32(-8 * sums[i]);
        __m512 dx = _mm512_set1_ps(f16_load(&b[i].d));
        for (int s = 0; s < R16_STREAMS; s++) {
            for (size_t l = 0; l < sizeof(a[s][i]); l += 64)
                aellm_prefetch_ahead((const char *)&a[s][i] + l, AELLM_MV_PREFETCH_AVX512);
            __m512i p = q4_0_r16_block(&a[s][i], off, xl, xh);
            __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(load_si256(a[s][i].d)), dx);
            acc[s] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), d, acc[s]);
        }
    }
    for (int s = 0; s < R16_STREAMS; s++) _mm512_storeu_ps(out + 16 * s, acc[s]);
}

/* dw dx sum q p + m s: the integer part in lanes, m s as a scalar. */
void aellm_vec_dot_q4_1_avx512(int64_t n, float *out, const void *w, const void *x)
{
    const aellm_block_q4_1 *a = w;
    const aellm_block_q8_1 *b = x;
    int64_t nb = (n + QK4_1 - 1) / QK4_1;
    __m512 acc = _mm512_setzero_ps();
    float ms = 0.0f;
    for (int64_t i = 0; i < nb; i += 2) {
        int two = i + 1 < nb;
        __m512i p = dot_u8s8(q4_pair(a[i].qs, two ? a[i + 1].qs : NULL),
                             q8_pair(b[i].qs, two ? b[i + 1].qs : NULL));
        __m512 d = pair_ps(f16_load(&a[i].d) * f16_load(&b[i].d),
                           two ? f16_load(&a[i + 1].d) * f16_load(&b[i + 1].d) : 0.0f);
        ms += f16_load(&a[i].m) * f16_load(&b[i].s);
        if (two) ms += f16_load(&a[i + 1].m) * f16_load(&b[i + 1].s);
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), d, acc);
    }
    *out = _mm512_reduce_add_ps(acc) + ms;
}

void aellm_vec_dot_rows_q4_1_avx512(int64_t n, float *out, const void *w, size_t row_bytes,
                                    const void *x)
{
    const aellm_block_q8_1 *b = x;
    const aellm_block_q4_1 *a[4];
    __m512 acc[4];
    float ms[4] = {0};
    for (int r = 0; r < 4; r++) {
        a[r] = (const aellm_block_q4_1 *)((const char *)w + r * row_bytes);
        acc[r] = _mm512_setzero_ps();
    }
    int64_t nb = (n + QK4_1 - 1) / QK4_1;
    for (int64_t i = 0; i < nb; i += 2) {
        int two = i + 1 < nb;
        __m512i xv = q8_pair(b[i].qs, two ? b[i + 1].qs : NULL);
        float dx0 = f16_load(&b[i].d), dx1 = two ? f16_load(&b[i + 1].d) : 0.0f;
        float sx0 = f16_load(&b[i].s), sx1 = two ? f16_load(&b[i + 1].s) : 0.0f;
        for (int r = 0; r < 4; r++) {
            aellm_prefetch_ahead(&a[r][i], AELLM_MV_PREFETCH_AVX512);
            aellm_prefetch_ahead(&a[r][i] + 1, AELLM_MV_PREFETCH_AVX512);
            __m512i p = dot_u8s8(q4_pair(a[r][i].qs, two ? a[r][i + 1].qs : NULL), xv);
            __m512 d =
                pair_ps(f16_load(&a[r][i].d) * dx0, two ? f16_load(&a[r][i + 1].d) * dx1 : 0.0f);
            ms[r] += f16_load(&a[r][i].m) * sx0;
            if (two) ms[r] += f16_load(&a[r][i + 1].m) * sx1;
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), d, acc[r]);
        }
    }
    for (int r = 0; r < 4; r++) out[r] = _mm512_reduce_add_ps(acc[r]) + ms[r];
}
