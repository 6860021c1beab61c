/* AVX-512 attention kernels, mirroring attention_avx2.c at 16 lanes. Every
 * width is handled with masked loads (zero where masked off), so there are
 * no scalar tails: a head of 8 (stories260K) is one half-masked vector.
 * Not run on hardware here: written to be obviously right. */
#include "kernels/attention.h"
#include "kernels/simd_avx512.h"

/* Lanes [0, r) of 16. */
static inline __mmask16 lanes(int r)
{
    return r >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (r > 0 ? r : 0)) - 1u);
}

static inline __m512 load_f32(__mmask16 m, const float *p)
{
    return _mm512_maskz_loadu_ps(m, p);
}

static inline __m512 load_f16(__mmask16 m, const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

static inline __m512 load_i8(__mmask16 m, const int8_t *p)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, p)));
}

static inline const void *at(const void *base, size_t stride, int p)
{
    return (const char *)base + (size_t)p * stride;
}

/* ---- q . K ---- */

void aellm_attn_scores_f32_avx512(int hd, const float *q, const void *k, size_t stride, int n,
                                  float scale, float *out)
{
    for (int p = 0; p < n; p++) {
        const float *kp = at(k, stride, p);
        __m512 acc = _mm512_setzero_ps();
        for (int i = 0; i < hd; i += 16) {
            __mmask16 m = lanes(hd - i);
            acc = _mm512_fmadd_ps(load_f32(m, q + i), load_f32(m, kp + i), acc);
        }
        out[p] = _mm512_reduce_add_ps(acc) * scale;
    }
}

void aellm_attn_scores_f16_avx512(int hd, const float *q, const void *k, size_t stride, int n,
                                  float scale, float *out)
{
    for (int p = 0; p < n; p++) {
        const uint16_t *kp = at(k, stride, p);
        __m512 acc = _mm512_setzero_ps();
        for (int i = 0; i < hd; i += 16) {
            __mmask16 m = lanes(hd - i);
            acc = _mm512_fmadd_ps(load_f32(m, q + i), load_f16(m, kp + i), acc);
        }
        out[p] = _mm512_reduce_add_ps(acc) * scale;
    }
}

void aellm_attn_scores_q8_0_avx512(int hd, const float *q, const void *k, size_t stride, int n,
                                   float scale, float *out)
{
    int qb = aellm_attn_q8_block(hd), nb = hd / qb;
    for (int p = 0; p < n; p++) {
        const uint8_t *blk = at(k, stride, p);
        __m512 acc = _mm512_setzero_ps();
        for (int b = 0; b < nb; b++, blk += 2 + qb) {
            const int8_t *qs = (const int8_t *)(blk + 2);
            const float *qq = q + b * qb;
            __m512 s = _mm512_setzero_ps();
            for (int j = 0; j < qb; j += 16) {
                __mmask16 m = lanes(qb - j);
                s = _mm512_fmadd_ps(load_f32(m, qq + j), load_i8(m, qs + j), s);
            }
            acc = _mm512_fmadd_ps(_mm512_set1_ps(f16_load(blk)), s, acc);
        }
        out[p] = _mm512_reduce_add_ps(acc) * scale;
    }
}

/* ---- sum_p a[p] V_p: 64 outputs (four masked vectors) per pass ---- */

/* V's elements: f32, or halves (`half` is a constant at each call). */
static inline __m512 load_v16(__mmask16 m, const void *row, int i, int half)
{
    return half ? load_f16(m, (const uint16_t *)row + i) : load_f32(m, (const float *)row + i);
}

static inline __attribute__((always_inline)) void
accum16(int hd, const float *a, const void *v, size_t stride, int n, float *out, int half)
{
    for (int i0 = 0; i0 < hd; i0 += 64) {
        __mmask16 m0 = lanes(hd - i0), m1 = lanes(hd - i0 - 16);
        __mmask16 m2 = lanes(hd - i0 - 32), m3 = lanes(hd - i0 - 48);
        __m512 o0 = _mm512_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
        for (int p = 0; p < n; p++) {
            const void *vp = at(v, stride, p);
            __m512 w = _mm512_set1_ps(a[p]);
            o0 = _mm512_fmadd_ps(w, load_v16(m0, vp, i0, half), o0);
            o1 = _mm512_fmadd_ps(w, load_v16(m1, vp, i0 + 16, half), o1);
            o2 = _mm512_fmadd_ps(w, load_v16(m2, vp, i0 + 32, half), o2);
            o3 = _mm512_fmadd_ps(w, load_v16(m3, vp, i0 + 48, half), o3);
        }
        _mm512_mask_storeu_ps(out + i0, m0, o0);
        _mm512_mask_storeu_ps(out + i0 + 16, m1, o1);
        _mm512_mask_storeu_ps(out + i0 + 32, m2, o2);
        _mm512_mask_storeu_ps(out + i0 + 48, m3, o3);
    }
}

void aellm_attn_accum_f32_avx512(int hd, const float *a, const void *v, size_t stride, int n,
                                 float *out)
{
    accum16(hd, a, v, stride, n, out, 0);
}

void aellm_attn_accum_f16_avx512(int hd, const float *a, const void *v, size_t stride, int n,
                                 float *out)
{
    accum16(hd, a, v, stride, n, out, 1);
}

/* One q8 block (qb <= 32 elements: two masked vectors) over all positions. */
void aellm_attn_accum_q8_0_avx512(int hd, const float *a, const void *v, size_t stride, int n,
                                  float *out)
{
    int qb = aellm_attn_q8_block(hd);
    __mmask16 m0 = lanes(qb), m1 = lanes(qb - 16);
    for (int b = 0; b < hd / qb; b++) {
        size_t off = (size_t)b * (2 + qb);
        __m512 o0 = _mm512_setzero_ps(), o1 = o0;
        for (int p = 0; p < n; p++) {
            const uint8_t *blk = (const uint8_t *)at(v, stride, p) + off;
            const int8_t *qs = (const int8_t *)(blk + 2);
            __m512 w = _mm512_set1_ps(a[p] * f16_load(blk));
            o0 = _mm512_fmadd_ps(w, load_i8(m0, qs), o0);
            o1 = _mm512_fmadd_ps(w, load_i8(m1, qs + 16), o1);
        }
        _mm512_mask_storeu_ps(out + b * qb, m0, o0);
        _mm512_mask_storeu_ps(out + b * qb + 16, m1, o1);
    }
}
