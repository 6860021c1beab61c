/* AVX2 attention kernels over an f32 / f16 / q8_0 KV cache (see
 * attention.h): 8 lanes, F16C for halves, int8 widened to float per block
 * with the f32 query kept exact (so decode reads the same values prefill
 * dequantizes). Heads whose width is not a multiple of 8 (or q8 blocks
 * smaller than 8) take the scalar kernels. */
#include "kernels/attention.h"
#include "kernels/simd_avx2.h"

static inline __m256 load_f16x8(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static inline __m256 load_i8x8(const int8_t *p)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

static inline const void *at(const void *base, size_t stride, int p)
{
    return (const char *)base + (size_t)p * stride;
}

/* ---- q . K ---- */

void aellm_attn_scores_f32_avx2(int hd, const float *q, const void *k, size_t stride, int n,
                                float scale, float *out)
{
    if (hd % 8) {
        aellm_attn_scores_f32_scalar(hd, q, k, stride, n, scale, out);
        return;
    }
    for (int p = 0; p < n; p++) {
        const float *kp = at(k, stride, p);
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        int i = 0;
        for (; i + 16 <= hd; i += 16) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(kp + i), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), _mm256_loadu_ps(kp + i + 8), a1);
        }
        if (i < hd) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(kp + i), a0);
        out[p] = hsum_ps(_mm256_add_ps(a0, a1)) * scale;
    }
}

void aellm_attn_scores_f16_avx2(int hd, const float *q, const void *k, size_t stride, int n,
                                float scale, float *out)
{
    if (hd % 8) {
        aellm_attn_scores_f16_scalar(hd, q, k, stride, n, scale, out);
        return;
    }
    for (int p = 0; p < n; p++) {
        const uint16_t *kp = at(k, stride, p);
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        int i = 0;
        for (; i + 16 <= hd; i += 16) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load_f16x8(kp + i), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), load_f16x8(kp + i + 8), a1);
        }
        if (i < hd) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load_f16x8(kp + i), a0);
        out[p] = hsum_ps(_mm256_add_ps(a0, a1)) * scale;
    }
}

/* Per block: s = q_b . qs (floats), then acc += d * s. */
void aellm_attn_scores_q8_0_avx2(int hd, const float *q, const void *k, size_t stride, int n,
                                 float scale, float *out)
{
    int qb = aellm_attn_q8_block(hd), nb = hd / qb;
    if (qb % 8) {
        aellm_attn_scores_q8_0_scalar(hd, q, k, stride, n, scale, out);
        return;
    }
    for (int p = 0; p < n; p++) {
        const uint8_t *blk = at(k, stride, p);
        __m256 acc = _mm256_setzero_ps();
        for (int b = 0; b < nb; b++, blk += 2 + qb) {
            const int8_t *qs = (const int8_t *)(blk + 2);
            const float *qq = q + b * qb;
            __m256 s = _mm256_mul_ps(_mm256_loadu_ps(qq), load_i8x8(qs));
            for (int j = 8; j < qb; j += 8)
                s = _mm256_fmadd_ps(_mm256_loadu_ps(qq + j), load_i8x8(qs + j), s);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_load(blk)), s, acc);
        }
        out[p] = hsum_ps(acc) * scale;
    }
}

/* ---- sum_p a[p] V_p: 32 outputs at a time stay in registers over all p ---- */

/* V's elements: f32, or halves widened with F16C (`half` is a constant at
 * each call, so each kernel compiles to its own loop). */
static inline __m256 load_v8(const void *row, int i, int half)
{
    return half ? load_f16x8((const uint16_t *)row + i) : _mm256_loadu_ps((const float *)row + i);
}

static inline __attribute__((always_inline)) void accum8(int hd, const float *a, const void *v,
                                                         size_t stride, int n, float *out, int half)
{
    int i0 = 0;
    for (; i0 + 32 <= hd; i0 += 32) {
        __m256 o0 = _mm256_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
        for (int p = 0; p < n; p++) {
            const void *vp = at(v, stride, p);
            __m256 w = _mm256_set1_ps(a[p]);
            o0 = _mm256_fmadd_ps(w, load_v8(vp, i0, half), o0);
            o1 = _mm256_fmadd_ps(w, load_v8(vp, i0 + 8, half), o1);
            o2 = _mm256_fmadd_ps(w, load_v8(vp, i0 + 16, half), o2);
            o3 = _mm256_fmadd_ps(w, load_v8(vp, i0 + 24, half), o3);
        }
        _mm256_storeu_ps(out + i0, o0), _mm256_storeu_ps(out + i0 + 8, o1);
        _mm256_storeu_ps(out + i0 + 16, o2), _mm256_storeu_ps(out + i0 + 24, o3);
    }
    for (; i0 < hd; i0 += 8) {
        __m256 o = _mm256_setzero_ps();
        for (int p = 0; p < n; p++)
            o = _mm256_fmadd_ps(_mm256_set1_ps(a[p]), load_v8(at(v, stride, p), i0, half), o);
        _mm256_storeu_ps(out + i0, o);
    }
}

void aellm_attn_accum_f32_avx2(int hd, const float *a, const void *v, size_t stride, int n,
                               float *out)
{
    if (hd % 8)
        aellm_attn_accum_f32_scalar(hd, a, v, stride, n, out);
    else
        accum8(hd, a, v, stride, n, out, 0);
}

void aellm_attn_accum_f16_avx2(int hd, const float *a, const void *v, size_t stride, int n,
                               float *out)
{
    if (hd % 8)
        aellm_attn_accum_f16_scalar(hd, a, v, stride, n, out);
    else
        accum8(hd, a, v, stride, n, out, 1);
}

/* One q8 block of outputs over all positions: w = a[p] * d_p scales the
 * block's int8 values. */
static void accum_q8_block(int qb, int b, const float *a, const uint8_t *v, size_t stride, int n,
                           float *out)
{
    size_t off = (size_t)b * (2 + qb);
    if (qb == 32) {
        __m256 o0 = _mm256_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
        for (int p = 0; p < n; p++) {
            const uint8_t *blk = v + (size_t)p * stride + off;
            const int8_t *qs = (const int8_t *)(blk + 2);
            __m256 w = _mm256_set1_ps(a[p] * f16_load(blk));
            o0 = _mm256_fmadd_ps(w, load_i8x8(qs), o0);
            o1 = _mm256_fmadd_ps(w, load_i8x8(qs + 8), o1);
            o2 = _mm256_fmadd_ps(w, load_i8x8(qs + 16), o2);
            o3 = _mm256_fmadd_ps(w, load_i8x8(qs + 24), o3);
        }
        _mm256_storeu_ps(out, o0), _mm256_storeu_ps(out + 8, o1);
        _mm256_storeu_ps(out + 16, o2), _mm256_storeu_ps(out + 24, o3);
        return;
    }
    for (int j = 0; j < qb; j += 8) {
        __m256 o = _mm256_setzero_ps();
        for (int p = 0; p < n; p++) {
            const uint8_t *blk = v + (size_t)p * stride + off;
            __m256 w = _mm256_set1_ps(a[p] * f16_load(blk));
            o = _mm256_fmadd_ps(w, load_i8x8((const int8_t *)(blk + 2) + j), o);
        }
        _mm256_storeu_ps(out + j, o);
    }
}

void aellm_attn_accum_q8_0_avx2(int hd, const float *a, const void *v, size_t stride, int n,
                                float *out)
{
    int qb = aellm_attn_q8_block(hd);
    if (qb % 8) {
        aellm_attn_accum_q8_0_scalar(hd, a, v, stride, n, out);
        return;
    }
    for (int b = 0; b < hd / qb; b++) accum_q8_block(qb, b, a, v, stride, n, out + b * qb);
}
