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

#endif
