/* AVX-512 (VNNI) dots of aellm's own weight formats, mirroring
 * vec_dot_wq_avx2.c at twice the width: INT4 sub-block pairs in one zmm
 * with vpdpbusd, NF4 through one 16-entry permute, FP8 16 elements a step,
 * INT8 with vpdpbusd on w + 128. Checked against the scalar reference on
 * Zen 5 (tests/test_kernels.c). */
#include "kernels/kernels_impl.h"

#include "core/blocks.h"
#include "kernels/simd_avx512.h"

/* ---- INT4 groups x Q8_0 / Q8_1 ----------------------------------------------
 * Sub-blocks k, k+1 of a group (g64, g128: pairs never straddle groups)
 * against activation blocks b, b+1: lanes 0..7 are block b, 8..15 b+1. */

typedef struct {
    __m512i xv, x8; /* quants of blocks b, b+1; 8 sum x per lane (symmetric), else 0 */
    __m512 dx;
    float s; /* Q8_1: s_b + s_b+1 */
} act_pair;

static inline act_pair load_act_pair(const void *x, int64_t b, int asym)
{
    act_pair a;
    if (asym) {
        const aellm_block_q8_1 *xb = (const aellm_block_q8_1 *)x + b;
        a.xv = pair_si512(load_si256(xb[0].qs), load_si256(xb[1].qs));
        a.dx = pair_ps(f16_load(&xb[0].d), f16_load(&xb[1].d));
        a.s = f16_load(&xb[0].s) + f16_load(&xb[1].s);
        a.x8 = _mm512_setzero_si512();
    } else {
        const aellm_block_q8_0 *xb = (const aellm_block_q8_0 *)x + b;
        a.xv = pair_si512(load_si256(xb[0].qs), load_si256(xb[1].qs));
        a.dx = pair_ps(f16_load(&xb[0].d), f16_load(&xb[1].d));
        a.s = 0.0f;
        a.x8 = dot_u8s8(_mm512_set1_epi8(8), a.xv);
    }
    return a;
}

static inline __m512 int4_pair(const uint8_t *qs, const act_pair *a)
{
    __m512i q = pair_si512(unpack_nibbles_256(qs), unpack_nibbles_256(qs + 16));
    return _mm512_cvtepi32_ps(_mm512_sub_epi32(dot_u8s8(q, a->xv), a->x8));
}

static inline __attribute__((always_inline)) void int4_dot(int64_t n, float *out, const void *w,
                                                           const void *x, int64_t g, int asym)
{
    const size_t bytes = (size_t)aellm_int4_block_bytes(g, asym);
    const int qoff = aellm_int4_qoff(asym);
    const uint8_t *blk = w;
    __m512 acc = _mm512_setzero_ps();
    float ms = 0.0f;
    for (int64_t i = 0; i * g < n; i++, blk += bytes) {
        __m512 gacc = _mm512_setzero_ps();
        float gs = 0.0f;
        for (int64_t k = 0; k < g / 32; k += 2) {
            act_pair a = load_act_pair(x, i * (g / 32) + k, asym);
            gacc = _mm512_fmadd_ps(int4_pair(blk + qoff + k * 16, &a), a.dx, gacc);
            gs += a.s;
        }
        acc = _mm512_fmadd_ps(gacc, _mm512_set1_ps(f16_load(blk)), acc);
        if (asym) ms += f16_load(blk + 2) * gs;
    }
    *out = _mm512_reduce_add_ps(acc) + ms;
}

static inline __attribute__((always_inline)) void int4_rows(int64_t n, float *out, const void *w,
                                                            size_t row_bytes, const void *x,
                                                            int64_t g, int asym)
{
    const size_t bytes = (size_t)aellm_int4_block_bytes(g, asym);
    const int qoff = aellm_int4_qoff(asym);
    const uint8_t *rows[4];
    __m512 acc[4];
    float ms[4] = {0};
    for (int r = 0; r < 4; r++) {
        rows[r] = (const uint8_t *)w + r * row_bytes;
        acc[r] = _mm512_setzero_ps();
    }
    for (int64_t i = 0; i * g < n; i++) {
        __m512 gacc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                          _mm512_setzero_ps()};
        float gs = 0.0f;
        for (int64_t k = 0; k < g / 32; k += 2) {
            act_pair a = load_act_pair(x, i * (g / 32) + k, asym);
            for (int r = 0; r < 4; r++) {
                const uint8_t *q = rows[r] + i * bytes + qoff + k * 16;
                aellm_prefetch_ahead(q, AELLM_MV_PREFETCH_AVX512);
                gacc[r] = _mm512_fmadd_ps(int4_pair(q, &a), a.dx, gacc[r]);
            }
            gs += a.s;
        }
        for (int r = 0; r < 4; r++) {
            const uint8_t *blk = rows[r] + i * bytes;
            acc[r] = _mm512_fmadd_ps(gacc[r], _mm512_set1_ps(f16_load(blk)), acc[r]);
            if (asym) ms[r] += f16_load(blk + 2) * gs;
        }
    }
    for (int r = 0; r < 4; r++) out[r] = _mm512_reduce_add_ps(acc[r]) + ms[r];
}

#define INT4_KERNELS(name, g, asym)                                                                \
    void aellm_vec_dot_##name##_avx512(int64_t n, float *out, const void *w, const void *x)        \
    {                                                                                              \
        int4_dot(n, out, w, x, g, asym);                                                           \
    }                                                                                              \
    void aellm_vec_dot_rows_##name##_avx512(int64_t n, float *out, const void *w,                  \
                                            size_t row_bytes, const void *x)                       \
    {                                                                                              \
        int4_rows(n, out, w, row_bytes, x, g, asym);                                               \
    }

INT4_KERNELS(int4s_g64, 64, 0)
INT4_KERNELS(int4s_g128, 128, 0)
INT4_KERNELS(int4a_g64, 64, 1)
INT4_KERNELS(int4a_g128, 128, 1)

/* ---- NF4 x f32: 16 codes a step (a sub-block's low or high nibbles) ---- */

static inline __m512 nf4_group_dot(const aellm_block_nf4 *b, const float *x, __m512 table)
{
    __m512 g0 = _mm512_setzero_ps(), g1 = _mm512_setzero_ps();
    for (int k = 0; k < QK_NF4 / 32; k++) {
        __m512i c = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b->qs + k * 16)));
        __m512i lo = _mm512_and_si512(c, _mm512_set1_epi32(0x0f)), hi = _mm512_srli_epi32(c, 4);
        g0 = _mm512_fmadd_ps(nf4_lookup(lo, table), _mm512_loadu_ps(x + k * 32), g0);
        g1 = _mm512_fmadd_ps(nf4_lookup(hi, table), _mm512_loadu_ps(x + k * 32 + 16), g1);
    }
    return _mm512_add_ps(g0, g1);
}

void aellm_vec_dot_nf4_avx512(int64_t n, float *out, const void *w, const void *x)
{
    const aellm_block_nf4 *b = w;
    const __m512 table = _mm512_loadu_ps(aellm_nf4_codebook);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i * QK_NF4 < n; i++)
        acc = _mm512_fmadd_ps(nf4_group_dot(b + i, (const float *)x + i * QK_NF4, table),
                              _mm512_set1_ps(f16_load(&b[i].d)), acc);
    *out = _mm512_reduce_add_ps(acc);
}

void aellm_vec_dot_rows_nf4_avx512(int64_t n, float *out, const void *w, size_t row_bytes,
                                   const void *x)
{
    const __m512 table = _mm512_loadu_ps(aellm_nf4_codebook);
    for (int r = 0; r < 4; r++) {
        const aellm_block_nf4 *b = (const aellm_block_nf4 *)((const char *)w + r * row_bytes);
        __m512 acc = _mm512_setzero_ps();
        for (int64_t i = 0; i * QK_NF4 < n; i++) {
            aellm_prefetch_ahead(b + i, AELLM_MV_PREFETCH_AVX512);
            acc = _mm512_fmadd_ps(nf4_group_dot(b + i, (const float *)x + i * QK_NF4, table),
                                  _mm512_set1_ps(f16_load(&b[i].d)), acc);
        }
        out[r] = _mm512_reduce_add_ps(acc);
    }
}

/* ---- FP8 E4M3 x f32: 16 a step, a masked tail (masked lanes read zero) ---- */

static inline __mmask16 mask16(int64_t left)
{
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

static inline __m512 fp8_step(const uint8_t *q, const float *x, int64_t left, __m512 acc)
{
    __mmask16 m = mask16(left);
    __m512 f = fp8_decode16(_mm_maskz_loadu_epi8(m, q));
    return _mm512_fmadd_ps(f, _mm512_maskz_loadu_ps(m, x), acc);
}

static inline float row_scale(const void *row)
{
    float s;
    memcpy(&s, row, sizeof(s));
    return s;
}

void aellm_vec_dot_fp8_e4m3_avx512(int64_t n, float *out, const void *w, const void *x)
{
    const uint8_t *q = (const uint8_t *)w + sizeof(float);
    const float *xf = x;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = fp8_step(q + i, xf + i, 16, a0);
        a1 = fp8_step(q + i + 16, xf + i + 16, 16, a1);
    }
    for (; i < n; i += 16) a0 = fp8_step(q + i, xf + i, n - i, a0);
    *out = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) * (row_scale(w) * 256.0f);
}

void aellm_vec_dot_rows_fp8_e4m3_avx512(int64_t n, float *out, const void *w, size_t row_bytes,
                                        const void *x)
{
    const float *xf = x;
    const uint8_t *q[4];
    __m512 acc[4];
    for (int r = 0; r < 4; r++) {
        q[r] = (const uint8_t *)w + r * row_bytes + sizeof(float);
        acc[r] = _mm512_setzero_ps();
    }
    for (int64_t i = 0; i < n; i += 16)
        for (int r = 0; r < 4; r++) acc[r] = fp8_step(q[r] + i, xf + i, n - i, acc[r]);
    for (int r = 0; r < 4; r++)
        out[r] =
            _mm512_reduce_add_ps(acc[r]) * (row_scale((const char *)w + r * row_bytes) * 256.0f);
}

/* ---- INT8 x INT8 (W8A8) ------------------------------------------------------
 * vpdpbusd takes unsigned x signed: w ^ 0x80 is w + 128 as an unsigned byte,
 * so sum w x = dpbusd(w ^ 0x80, x) - 128 sum x, with sum x one more dpbusd
 * (shared by the rows of a multi-row step). Masked-off bytes load as zero,
 * and a zero x contributes nothing whatever w becomes. An int32 lane sums
 * n / 16 products below 2^15: exact for any n below 2^20. */

static inline __mmask64 mask64(int64_t left)
{
    return left >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << left) - 1);
}

static inline __m512i load_i8(const int8_t *p, int64_t left)
{
    return _mm512_maskz_loadu_epi8(mask64(left), p);
}

void aellm_vec_dot_int8_avx512(int64_t n, float *out, const void *w, const void *x)
{
    const int8_t *a = (const int8_t *)w + sizeof(float), *b = (const int8_t *)x + sizeof(float);
    const __m512i flip = _mm512_set1_epi8((char)0x80), ones = _mm512_set1_epi8(1);
    __m512i acc = _mm512_setzero_si512(), xs = _mm512_setzero_si512();
    for (int64_t i = 0; i < n; i += 64) {
        __m512i xv = load_i8(b + i, n - i);
        acc = _mm512_dpbusd_epi32(acc, _mm512_xor_si512(load_i8(a + i, n - i), flip), xv);
        xs = _mm512_dpbusd_epi32(xs, ones, xv);
    }
    int32_t isum = _mm512_reduce_add_epi32(acc) - 128 * _mm512_reduce_add_epi32(xs);
    *out = (float)isum * (row_scale(w) * row_scale(x));
}

void aellm_vec_dot_rows_int8_avx512(int64_t n, float *out, const void *w, size_t row_bytes,
                                    const void *x)
{
    const int8_t *b = (const int8_t *)x + sizeof(float), *a[4];
    const __m512i flip = _mm512_set1_epi8((char)0x80), ones = _mm512_set1_epi8(1);
    __m512i acc[4], xs = _mm512_setzero_si512();
    for (int r = 0; r < 4; r++) {
        a[r] = (const int8_t *)w + r * row_bytes + sizeof(float);
        acc[r] = _mm512_setzero_si512();
    }
    for (int64_t i = 0; i < n; i += 64) {
        __m512i xv = load_i8(b + i, n - i);
        xs = _mm512_dpbusd_epi32(xs, ones, xv);
        for (int r = 0; r < 4; r++) {
            aellm_prefetch_ahead(a[r] + i, AELLM_MV_PREFETCH_AVX512);
            acc[r] =
                _mm512_dpbusd_epi32(acc[r], _mm512_xor_si512(load_i8(a[r] + i, n - i), flip), xv);
        }
    }
    int32_t x128 = 128 * _mm512_reduce_add_epi32(xs);
    float sx = row_scale(x);
    for (int r = 0; r < 4; r++) {
        int32_t isum = _mm512_reduce_add_epi32(acc[r]) - x128;
        out[r] = (float)isum * (row_scale((const char *)w + r * row_bytes) * sx);
    }
}
