/* Quantized block layouts, byte-identical to llama.cpp's (ggml-common.h) so
 * that GGUF tensors interoperate. Scales are IEEE half. */
#ifndef AELLM_CORE_BLOCKS_H
#define AELLM_CORE_BLOCKS_H

#include <assert.h>
#include <stdint.h>

#define QK4_0 32
#define QK4_1 32
#define QK8_0 32
#define QK8_1 32

/* x[j] = (nibble - 8) * d; qs[j] low nibble holds x[j], high nibble x[j + 16]. */
typedef struct {
    uint16_t d;
    uint8_t qs[QK4_0 / 2];
} aellm_block_q4_0;
static_assert(sizeof(aellm_block_q4_0) == 18, "q4_0 block is 18 bytes");

/* q4_0 for decode (AELLM_DTYPE_Q4_0_R16): 16 rows' blocks b side by side,
 * their scales first, then 4-byte runs of quants, q[64 k + 4 r + j] = row
 * r's qs[4 k + j] (k < 4), so that one 64-byte load holds 4 bytes of each
 * row, a lane per row. A group of 16 rows keeps the bytes of 16 plain rows
 * (16 x 18 per block), so repacking is in place. */
#define AELLM_Q4_0_R16_ROWS 16
typedef struct {
    uint16_t d[AELLM_Q4_0_R16_ROWS];
    uint8_t q[AELLM_Q4_0_R16_ROWS * QK4_0 / 2];
} aellm_block_q4_0_r16;
static_assert(sizeof(aellm_block_q4_0_r16) == 16 * sizeof(aellm_block_q4_0),
              "a q4_0_r16 block holds 16 q4_0 blocks");

/* x[j] = nibble * d + m; nibble order as in q4_0. */
typedef struct {
    uint16_t d, m;
    uint8_t qs[QK4_1 / 2];
} aellm_block_q4_1;
static_assert(sizeof(aellm_block_q4_1) == 20, "q4_1 block is 20 bytes");

/* x[j] = qs[j] * d. */
typedef struct {
    uint16_t d;
    int8_t qs[QK8_0];
} aellm_block_q8_0;
static_assert(sizeof(aellm_block_q8_0) == 34, "q8_0 block is 34 bytes");

/* Q8_0 plus s = d * sum(qs): lets a Q4_1 dot add its offset term cheaply. */
typedef struct {
    uint16_t d, s;
    int8_t qs[QK8_1];
} aellm_block_q8_1;
static_assert(sizeof(aellm_block_q8_1) == 36, "q8_1 block is 36 bytes");

/* aellm's INT4 groups (dtype.h): a scale (and a minimum) per group of G
 * elements, then G/32 sub-blocks of 16 bytes, each in q4_0's nibble order.
 * The g32 groups are q4_0's and q4_1's blocks; a row may end in a partial
 * group, padded with the code of zero. */
#define AELLM_INT4_MAX_GROUP 128
typedef struct {
    uint16_t d;
    uint8_t qs[32];
} aellm_block_int4s_g64;
static_assert(sizeof(aellm_block_int4s_g64) == 34, "int4s_g64 block is 34 bytes");
typedef struct {
    uint16_t d;
    uint8_t qs[64];
} aellm_block_int4s_g128;
static_assert(sizeof(aellm_block_int4s_g128) == 66, "int4s_g128 block is 66 bytes");
typedef struct {
    uint16_t d, m;
    uint8_t qs[32];
} aellm_block_int4a_g64;
static_assert(sizeof(aellm_block_int4a_g64) == 36, "int4a_g64 block is 36 bytes");
typedef struct {
    uint16_t d, m;
    uint8_t qs[64];
} aellm_block_int4a_g128;
static_assert(sizeof(aellm_block_int4a_g128) == 68, "int4a_g128 block is 68 bytes");

/* Bytes of a group of g elements, and where its nibbles start: the symmetric
 * groups hold d, the asymmetric ones d and m (all IEEE half). */
static inline int aellm_int4_qoff(int asym)
{
    return asym ? 4 : 2;
}
static inline int aellm_int4_block_bytes(int64_t g, int asym)
{
    return aellm_int4_qoff(asym) + (int)(g / 2);
}

/* NF4: x[j] = aellm_nf4_codebook[code] * d, d = the group's absmax; codes in
 * q4_0's nibble order, 64 per group. */
#define QK_NF4 64
typedef struct {
    uint16_t d;
    uint8_t qs[QK_NF4 / 2];
} aellm_block_nf4;
static_assert(sizeof(aellm_block_nf4) == 34, "nf4 block is 34 bytes");
/* QLoRA's NormalFloat4 values, ascending; defined in src/core/dtype.c. */
extern const float aellm_nf4_codebook[16];

#endif
