/* AVX2 dot products: one weight row (vec_dot) or four rows sharing one pass
 * over the activation (vec_dot_rows, the matvec hot path). Mirrors
 * vec_dot_scalar.c; conversions are in convert_avx2.c, prefill tiles in
 * gemm_avx2.c. */
#include "kernels/kernels_impl.h"

#include "core/blocks.h"
#include "kernels/simd_avx2.h"

/* The row kernels read four rows side by side, one from each of matvec's
 * four runs of consecutive rows, and prefetch AELLM_MV_PREFETCH_BYTES ahead
 * in each (kernels_impl.h). A software prefetch was first measured on Zen 3
 * with four adjacent rows, q4_0 2048 x 2048 streaming from DRAM: 3.5 -> 8
 * GB/s on one thread, 5.4 -> 14 on two. */

/* ---- float weights: f32, f16 (F16C), bf16 (a 16-bit shift) -------------- */

static inline __m256 load_f32(const void *p, int64_t i)
{
    return _mm256_loadu_ps((const float *)p + i);
}

static inline __m256 load_f16(const void *p, int64_t i)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
}

static inline __m256 load_bf16(const void *p, int64_t i)
{
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)p + i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* Four independent accumulators (32 elements a step) cover the FMA latency;
 * a scalar loop takes the last n % 8. */
#define FLOAT_DOT(name, load, scalar_of, esize, prefetch)                                          \
    void aellm_vec_dot_##name##_avx2(int64_t n, float *out, const void *w, const void *x)          \
    {                                                                                              \
        const float *xf = x;                                                                       \
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),            \
                         _mm256_setzero_ps()};                                                     \
        int64_t i = 0;                                                                             \
        for (; i + 32 <= n; i += 32)                                                               \
            for (int k = 0; k < 4; k++)                                                            \
                acc[k] =                                                                           \
                    _mm256_fmadd_ps(load(w, i + 8 * k), _mm256_loadu_ps(xf + i + 8 * k), acc[k]);  \
        for (; i + 8 <= n; i += 8)                                                                 \
            acc[0] = _mm256_fmadd_ps(load(w, i), _mm256_loadu_ps(xf + i), acc[0]);                 \
        float sum =                                                                                \
            hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));  \
        for (; i < n; i++) sum += scalar_of(w, i) * xf[i];                                         \
        *out = sum;                                                                                \
    }                                                                                              \
    /* Four rows, two accumulators each: eight FMA chains, one x load per 8.                       \
     * The software prefetch helped the 16-bit types (+10 % tg at 110M on                          \
     * Zen 3) and cost f32, whose four plain streams the hardware                                  \
     * prefetcher already covered (-7 % at 110M, -15 % at 1.1B). */                                \
    void aellm_vec_dot_rows_##name##_avx2(int64_t n, float *out, const void *w, size_t row_bytes,  \
                                          const void *x)                                           \
    {                                                                                              \
        const float *xf = x;                                                                       \
        const char *wr[4];                                                                         \
        __m256 acc[4][2];                                                                          \
        for (int r = 0; r < 4; r++) {                                                              \
            wr[r] = (const char *)w + r * row_bytes;                                               \
            acc[r][0] = acc[r][1] = _mm256_setzero_ps();                                           \
        }                                                                                          \
        int64_t i = 0;                                                                             \
        for (; i + 16 <= n; i += 16) {                                                             \
            __m256 x0 = _mm256_loadu_ps(xf + i), x1 = _mm256_loadu_ps(xf + i + 8);                 \
            for (int r = 0; r < 4; r++) {                                                          \
                if (prefetch) aellm_prefetch_ahead(wr[r] + i * (esize), AELLM_MV_PREFETCH_AVX2);   \
                acc[r][0] = _mm256_fmadd_ps(load(wr[r], i), x0, acc[r][0]);                        \
                acc[r][1] = _mm256_fmadd_ps(load(wr[r], i + 8), x1, acc[r][1]);                    \
            }                                                                                      \
        }                                                                                          \
        for (int r = 0; r < 4; r++) {                                                              \
            float sum = hsum_ps(_mm256_add_ps(acc[r][0], acc[r][1]));                              \
            for (int64_t j = i; j < n; j++) sum += scalar_of(wr[r], j) * xf[j];                    \
            out[r] = sum;                                                                          \
        }                                                                                          \
    }

static inline float f32_at(const void *p, int64_t i)
{
    return ((const float *)p)[i];
}
static inline float f16_at(const void *p, int64_t i)
{
    return f16_load((const uint16_t *)p + i);
}
static inline float bf16_at(const void *p, int64_t i)
{
    uint32_t u = (uint32_t)((const uint16_t *)p)[i] << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

FLOAT_DOT(f32, load_f32, f32_at, 4, 0)
FLOAT_DOT(f16, load_f16, f16_at, 2, 1)
FLOAT_DOT(bf16, load_bf16, bf16_at, 2, 1)

/* ---- q8_0 x q8_0 ---------------------------------------------------------- */

/* One block's integer dot as 8 lanes, scaled by dw * dx, into acc. */
static inline __m256 q8_0_block(const aellm_block_q8_0 *a, const aellm_block_q8_0 *b, __m256 acc)
{
    __m256i p = dot_s8s8(_mm256_loadu_si256((const __m256i *)a->qs),
                         _mm256_loadu_si256((const __m256i *)b->qs));
    __m256 d = _mm256_set1_ps(f16_load(&a->d) * f16_load(&b->d));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), d, acc);
}

void aellm_vec_dot_q8_0_avx2(int64_t n, float *out, const void *w, const void *x)
{
    const aellm_block_q8_0 *a = w, *b = x;
    int64_t nb = (n + QK8_0 - 1) / QK8_0, i = 0;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    for (; i + 2 <= nb; i += 2) {
        acc0 = q8_0_block(a + i, b + i, acc0);
        acc1 = q8_0_block(a + i + 1, b + i + 1, acc1);
    }
    if (i < nb) acc0 = q8_0_block(a + i, b + i, acc0);
    *out = hsum_ps(_mm256_add_ps(acc0, acc1));
}

void aellm_vec_dot_rows_q8_0_avx2(int64_t n, float *out, const void *w, size_t row_bytes,
                                  const void *x)
{
    const aellm_block_q8_0 *b = x, *a[4];
    __m256 acc[4];
    for (int r = 0; r < 4; r++) {
        a[r] = (const aellm_block_q8_0 *)((const char *)w + r * row_bytes);
        acc[r] = _mm256_setzero_ps();
    }
    for (int64_t i = 0; i < (n + QK8_0 - 1) / QK8_0; i++) {
        __m256i xv = _mm256_loadu_si256((const __m256i *)b[i].qs);
        float dx = f16_load(&b[i].d);
        for (int r = 0; r < 4; r++) {
            aellm_prefetch_ahead(&a[r][i], AELLM_MV_PREFETCH_AVX2);
            __m256i p = dot_s8s8(_mm256_loadu_si256((const __m256i *)a[r][i].qs), xv);
            __m256 d = _mm256_set1_ps(f16_load(&a[r][i].d) * dx);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), d, acc[r]);
        }
    }
    for (int r = 0; r < 4; r++) out[r] = hsum_ps(acc[r]);
}

/* ---- q4_0 x q8_0 ---------------------------------------------------------- */

/* sum (q - 8) x = sum q x - 8 sum x, all in int16 pairs: the nibbles stay
 * unsigned for maddubs, and 8 sum x is one more maddubs, shared by all rows
 * of a multi-row step. |q x pair - 8 x pair| <= 2 * 15 * 127 + 2 * 8 * 127. */
static inline __m256i q4_dot(const uint8_t *qs, __m256i xv, __m256i x8)
{
    __m256i p = _mm256_maddubs_epi16(unpack_nibbles(qs), xv);
    return _mm256_madd_epi16(_mm256_sub_epi16(p, x8), _mm256_set1_epi16(1));
}

static inline __m256i sum8_x(__m256i xv)
{
    return _mm256_maddubs_epi16(_mm256_set1_epi8(8), xv);
}

static inline __m256 q4_0_block(const aellm_block_q4_0 *a, const aellm_block_q8_0 *b, __m256 acc)
{
    __m256i xv = _mm256_loadu_si256((const __m256i *)b->qs);
    __m256i p = q4_dot(a->qs, xv, sum8_x(xv));
    __m256 d = _mm256_set1_ps(f16_load(&a->d) * f16_load(&b->d));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), d, acc);
}

void aellm_vec_dot_q4_0_avx2(int64_t n, float *out, const void *w, const void *x)
{
    const aellm_block_q4_0 *a = w;
    const aellm_block_q8_0 *b = x;
    int64_t nb = (n + QK4_0 - 1) / QK4_0, i = 0;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    for (; i + 2 <= nb; i += 2) {
        acc0 = q4_0_block(a + i, b + i, acc0);
        acc1 = q4_0_block(a + i + 1, b + i + 1, acc1);
    }
    if (i < nb) acc0 = q4_0_block(a + i, b + i, acc0);
    *out = hsum_ps(_mm256_add_ps(acc0, acc1));
}

/* ---- q4_1 x q8_1 ---------------------------------------------------------- */

/* dw dx sum q p + m s: the integer part as lanes, m s collected as a scalar. */
static inline __m256 q4_1_block(const aellm_block_q4_1 *a, const aellm_block_q8_1 *b, __m256 acc,
                                float *ms)
{
    __m256i p = dot_u8s8(unpack_nibbles(a->qs), _mm256_loadu_si256((const __m256i *)b->qs));
    __m256 d = _mm256_set1_ps(f16_load(&a->d) * f16_load(&b->d));
    *ms += f16_load(&a->m) * f16_load(&b->s);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), d, acc);
}

void aellm_vec_dot_q4_1_avx2(int64_t n, float *out, const void *w, const void *x)
{
    const aellm_block_q4_1 *a = w;
    const aellm_block_q8_1 *b = x;
    int64_t nb = (n + QK4_1 - 1) / QK4_1, i = 0;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    float ms0 = 0.0f, ms1 = 0.0f;
    for (; i + 2 <= nb; i += 2) {
        acc0 = q4_1_block(a + i, b + i, acc0, &ms0);
        acc1 = q4_1_block(a + i + 1, b + i + 1, acc1, &ms1);
    }
    if (i < nb) acc0 = q4_1_block(a + i, b + i, acc0, &ms0);
    *out = hsum_ps(_mm256_add_ps(acc0, acc1)) + (ms0 + ms1);
}

/* ---- q4 rows, two blocks a step (the decode hot path) ----------------------
 * Blocks i and i+1 of a row are 16 + 16 nibble bytes that one 256-bit load
 * pair brings in: low nibbles are elements 0..15 of each block, high ones
 * 16..31. The activation is loaded the same way (its first halves, then its
 * second halves), once for the four rows, so a step costs per row: two
 * maddubs, one madd and one FMA for 64 weights. After the madd, lanes 0..3
 * belong to block i and 4..7 to block i+1; the scale vector matches. */

/* 8 halves [r0 blk i, r0 blk i+1, r1 blk i, ...] from the four rows at byte
 * offset `off` of block i, as floats. */
static inline __m256 gather_halves(const uint8_t *const rows[4], size_t i_off, size_t bbytes,
                                   size_t off)
{
    __m128i h = _mm_setzero_si128();
    uint16_t v;
#define INS(k, r, j)                                                                               \
    memcpy(&v, rows[r] + i_off + (j)*bbytes + off, 2);                                             \
    h = _mm_insert_epi16(h, v, k)
    INS(0, 0, 0);
    INS(1, 0, 1);
    INS(2, 1, 0);
    INS(3, 1, 1);
    INS(4, 2, 0);
    INS(5, 2, 1);
    INS(6, 3, 0);
    INS(7, 3, 1);
#undef INS
    return _mm256_cvtph_ps(h);
}

/* Lanes 2r and 2r+1 of v spread to [v[2r] x4, v[2r+1] x4]. */
static inline __m256 spread_row(__m256 v, int r)
{
    return _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(2 * r, 2 * r, 2 * r, 2 * r, 2 * r + 1,
                                                         2 * r + 1, 2 * r + 1, 2 * r + 1));
}

static inline __attribute__((always_inline)) void
q4_rows(int64_t n, float *out, const void *w, size_t row_bytes, const void *x, int is_q4_1)
{
    const size_t bbytes = is_q4_1 ? sizeof(aellm_block_q4_1) : sizeof(aellm_block_q4_0);
    const size_t qoff = is_q4_1 ? offsetof(aellm_block_q4_1, qs) : offsetof(aellm_block_q4_0, qs);
    const size_t xbytes = is_q4_1 ? sizeof(aellm_block_q8_1) : sizeof(aellm_block_q8_0);
    const size_t xoff = is_q4_1 ? offsetof(aellm_block_q8_1, qs) : offsetof(aellm_block_q8_0, qs);
    const uint8_t *rows[4];
    __m256 acc[4], msacc = _mm256_setzero_ps();
    for (int r = 0; r < 4; r++) {
        rows[r] = (const uint8_t *)w + r * row_bytes;
        acc[r] = _mm256_setzero_ps();
    }
    const __m256i nib = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    const __m256i eights = _mm256_set1_epi8(8);
    int64_t nb = (n + 31) / 32, i = 0;
    for (; i + 2 <= nb; i += 2) {
        const uint8_t *x0 = (const uint8_t *)x + i * xbytes, *x1 = x0 + xbytes;
        __m256i xlo =
            _mm256_loadu2_m128i((const __m128i *)(x1 + xoff), (const __m128i *)(x0 + xoff));
        __m256i xhi = _mm256_loadu2_m128i((const __m128i *)(x1 + xoff + 16),
                                          (const __m128i *)(x0 + xoff + 16));
        /* q4_0: 8 sum x, subtracted in int16 (|sum q x - 8 sum x| < 2^14). */
        __m256i x8 = is_q4_1 ? _mm256_setzero_si256()
                             : _mm256_add_epi16(_mm256_maddubs_epi16(eights, xlo),
                                                _mm256_maddubs_epi16(eights, xhi));
        float dx0 = f16_load(x0), dx1 = f16_load(x1);
        __m256 dx = _mm256_setr_ps(dx0, dx1, dx0, dx1, dx0, dx1, dx0, dx1);
        __m256 d = _mm256_mul_ps(gather_halves(rows, i * bbytes, bbytes, 0), dx);
        if (is_q4_1) {
            float s0 = f16_load(x0 + 2), s1 = f16_load(x1 + 2);
            __m256 sx = _mm256_setr_ps(s0, s1, s0, s1, s0, s1, s0, s1);
            msacc = _mm256_fmadd_ps(gather_halves(rows, i * bbytes, bbytes, 2), sx, msacc);
        }
        for (int r = 0; r < 4; r++) {
            const uint8_t *q = rows[r] + i * bbytes + qoff;
            aellm_prefetch_ahead(q, AELLM_MV_PREFETCH_AVX2);
            __m256i v = _mm256_loadu2_m128i((const __m128i *)(q + bbytes), (const __m128i *)q);
            __m256i lo = _mm256_and_si256(v, nib),
                    hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);
            __m256i p =
                _mm256_add_epi16(_mm256_maddubs_epi16(lo, xlo), _mm256_maddubs_epi16(hi, xhi));
            p = _mm256_madd_epi16(_mm256_sub_epi16(p, x8), ones);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), spread_row(d, r), acc[r]);
        }
    }
    float tail[4];
    for (int r = 0; r < 4; r++) {
        /* An odd last block goes through the one-row kernel. */
        tail[r] = 0.0f;
        if (i < nb) {
            const void *wr = rows[r] + i * bbytes, *xr = (const uint8_t *)x + i * xbytes;
            if (is_q4_1)
                aellm_vec_dot_q4_1_avx2(32, &tail[r], wr, xr);
            else
                aellm_vec_dot_q4_0_avx2(32, &tail[r], wr, xr);
        }
    }
    float ms[8];
    _mm256_storeu_ps(ms, msacc);
    for (int r = 0; r < 4; r++) out[r] = hsum_ps(acc[r]) + tail[r] + (ms[2 * r] + ms[2 * r + 1]);
}

void aellm_vec_dot_rows_q4_0_avx2(int64_t n, float *out, const void *w, size_t row_bytes,
                                  const void *x)
{
    q4_rows(n, out, w, row_bytes, x, 0);
}

void aellm_vec_dot_rows_q4_1_avx2(int64_t n, float *out, const void *w, size_t row_bytes,
                                  const void *x)
{
    q4_rows(n, out, w, row_bytes, x, 1);
}

/* A q4_0_r16 group (core/blocks.h) as two halves of 8 rows, a lane per row:
 * per block each 32-byte load holds 4 bytes of 8 rows, low nibbles against
 * the activation's quants 4k..4k+3 broadcast, high nibbles against 16+4k..
 * maddubs pairs stay in int16 over the whole block (8 pairs of at most
 * 2 * 15 * 127: 30480 < 32767), then one madd widens them. */
static inline __m256i q4_0_r16_half(const uint8_t *q, const int32_t *xs)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256i s16 = _mm256_setzero_si256();
    for (int k = 0; k < 4; k++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(q + 64 * k));
        s16 = _mm256_add_epi16(
            s16, _mm256_maddubs_epi16(_mm256_and_si256(v, m4), _mm256_set1_epi32(xs[k])));
        s16 = _mm256_add_epi16(s16,
                               _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4),
                                                    _mm256_set1_epi32(xs[4 + k])));
    }
    return _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
}

void aellm_vec_dot_rows_q4_0_r16_avx2(int64_t n, float *out, const void *w, size_t row_bytes,
                                      const void *x)
{
    (void)row_bytes;
    const aellm_block_q4_0_r16 *a = w;
    const aellm_block_q8_0 *b = x;
    int64_t nb = n / QK4_0;
    const int32_t *sums = aellm_act_q8_0_sums(x, nb);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        int32_t xs[8];
        memcpy(xs, b[i].qs, sizeof(xs));
        __m256i off = _mm256_set1_epi32(-8 * sums[i]);
        __m256 dx = _mm256_set1_ps(f16_load(&b[i].d));
        __m256i p0 = _mm256_add_epi32(off, q4_0_r16_half(a[i].q, xs));
        __m256i p1 = _mm256_add_epi32(off, q4_0_r16_half(a[i].q + 32, xs));
        __m256 d0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)a[i].d));
        __m256 d1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a[i].d + 8)));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_mul_ps(d0, dx), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_mul_ps(d1, dx), acc1);
    }
    _mm256_storeu_ps(out, acc0);
    _mm256_storeu_ps(out + 8, acc1);
}
