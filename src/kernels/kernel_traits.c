/* The kernel traits table: per weight type, its activation type and the dot,
 * quantize and dequantize kernels of each ISA, with the run-time pick of the
 * best one. Block geometry and reference conversions are in src/core/dtype.c. */
#include "kernels/kernels_impl.h"

#include "core/blocks.h"

/* A kernel of every ISA; aellm_cpu_isa() decides which may run. */
#define PER_ISA(name)                                                                              \
    {                                                                                              \
        name##_scalar, name##_avx2, name##_avx512                                                  \
    }

static const aellm_kernel_traits traits[AELLM_DTYPE_MAX] = {
    [AELLM_DTYPE_F32] = {.vec_dot_type = AELLM_DTYPE_F32,
                         .vec_dot = PER_ISA(aellm_vec_dot_f32),
                         .from_float = PER_ISA(aellm_from_float_f32),
                         .to_float = PER_ISA(aellm_to_float_f32)},
    [AELLM_DTYPE_F16] = {.vec_dot_type = AELLM_DTYPE_F32,
                         .vec_dot = PER_ISA(aellm_vec_dot_f16),
                         .from_float = PER_ISA(aellm_from_float_f16),
                         .to_float = PER_ISA(aellm_to_float_f16)},
    [AELLM_DTYPE_BF16] = {.vec_dot_type = AELLM_DTYPE_F32,
                          .vec_dot = PER_ISA(aellm_vec_dot_bf16),
                          .from_float = PER_ISA(aellm_from_float_bf16),
                          .to_float = PER_ISA(aellm_to_float_bf16)},
    [AELLM_DTYPE_Q8_0] = {.vec_dot_type = AELLM_DTYPE_Q8_0,
                          .vec_dot = PER_ISA(aellm_vec_dot_q8_0),
                          .from_float = PER_ISA(aellm_from_float_q8_0),
                          .to_float = PER_ISA(aellm_to_float_q8_0)},
    /* Q8_1 is an activation type; its self-dot exists so that every type with
     * kernels has one, and only the scalar one is worth having. */
    [AELLM_DTYPE_Q8_1] = {.vec_dot_type = AELLM_DTYPE_Q8_1,
                          .vec_dot = {aellm_vec_dot_q8_1_scalar},
                          .from_float = PER_ISA(aellm_from_float_q8_1),
                          .to_float = PER_ISA(aellm_to_float_q8_1)},
    /* Weight-only quantizers run at model conversion, off the hot path. */
    [AELLM_DTYPE_Q4_0] = {.vec_dot_type = AELLM_DTYPE_Q8_0,
                          .vec_dot = PER_ISA(aellm_vec_dot_q4_0),
                          .from_float = {aellm_from_float_q4_0_scalar},
                          .to_float = PER_ISA(aellm_to_float_q4_0)},
    [AELLM_DTYPE_Q4_1] = {.vec_dot_type = AELLM_DTYPE_Q8_1,
                          .vec_dot = PER_ISA(aellm_vec_dot_q4_1),
                          .from_float = {aellm_from_float_q4_1_scalar},
                          .to_float = PER_ISA(aellm_to_float_q4_1)},
    /* aellm's own formats. The g32 types are q4_0 / q4_1 / q8_0's blocks and
     * take their dots (which run over ceil(n / 32) blocks); only their
     * dequantizers differ, stopping at n. */
    [AELLM_DTYPE_INT4S_G32] = {.vec_dot_type = AELLM_DTYPE_Q8_0,
                               .vec_dot = PER_ISA(aellm_vec_dot_q4_0),
                               .from_float = {aellm_from_float_int4s_g32_scalar},
                               .to_float = PER_ISA(aellm_to_float_int4s_g32)},
    [AELLM_DTYPE_INT4S_G64] = {.vec_dot_type = AELLM_DTYPE_Q8_0,
                               .vec_dot = PER_ISA(aellm_vec_dot_int4s_g64),
                               .from_float = {aellm_from_float_int4s_g64_scalar},
                               .to_float = PER_ISA(aellm_to_float_int4s_g64)},
    [AELLM_DTYPE_INT4S_G128] = {.vec_dot_type = AELLM_DTYPE_Q8_0,
                                .vec_dot = PER_ISA(aellm_vec_dot_int4s_g128),
                                .from_float = {aellm_from_float_int4s_g128_scalar},
                                .to_float = PER_ISA(aellm_to_float_int4s_g128)},
    [AELLM_DTYPE_INT4A_G32] = {.vec_dot_type = AELLM_DTYPE_Q8_1,
                               .vec_dot = PER_ISA(aellm_vec_dot_q4_1),
                               .from_float = {aellm_from_float_int4a_g32_scalar},
                               .to_float = PER_ISA(aellm_to_float_int4a_g32)},
    [AELLM_DTYPE_INT4A_G64] = {.vec_dot_type = AELLM_DTYPE_Q8_1,
                               .vec_dot = PER_ISA(aellm_vec_dot_int4a_g64),
                               .from_float = {aellm_from_float_int4a_g64_scalar},
                               .to_float = PER_ISA(aellm_to_float_int4a_g64)},
    [AELLM_DTYPE_INT4A_G128] = {.vec_dot_type = AELLM_DTYPE_Q8_1,
                                .vec_dot = PER_ISA(aellm_vec_dot_int4a_g128),
                                .from_float = {aellm_from_float_int4a_g128_scalar},
                                .to_float = PER_ISA(aellm_to_float_int4a_g128)},
    [AELLM_DTYPE_NF4] = {.vec_dot_type = AELLM_DTYPE_F32,
                         .vec_dot = PER_ISA(aellm_vec_dot_nf4),
                         .from_float = {aellm_from_float_nf4_scalar},
                         .to_float = PER_ISA(aellm_to_float_nf4)},
    [AELLM_DTYPE_FP8_E4M3] = {.vec_dot_type = AELLM_DTYPE_F32,
                              .vec_dot = PER_ISA(aellm_vec_dot_fp8_e4m3),
                              .from_float = {aellm_from_float_fp8_e4m3_scalar},
                              .to_float = PER_ISA(aellm_to_float_fp8_e4m3)},
    /* INT8 is its own activation type: W8A8, activations quantized per token. */
    [AELLM_DTYPE_INT8] = {.vec_dot_type = AELLM_DTYPE_INT8,
                          .vec_dot = PER_ISA(aellm_vec_dot_int8),
                          .from_float = PER_ISA(aellm_from_float_int8),
                          .to_float = PER_ISA(aellm_to_float_int8)},
    [AELLM_DTYPE_INT8_G32] = {.vec_dot_type = AELLM_DTYPE_Q8_0,
                              .vec_dot = PER_ISA(aellm_vec_dot_q8_0),
                              .from_float = {aellm_from_float_int8_g32_scalar},
                              .to_float = PER_ISA(aellm_to_float_int8_g32)},
    /* q4_0 in the engine's decode layout (aellm_model_repack): products only,
     * through its row kernel (matvec) and the x8 tiles (matmul). */
    [AELLM_DTYPE_Q4_0_R16] = {.vec_dot_type = AELLM_DTYPE_Q8_0},
};

/* Multi-row matvec kernels exist for the SIMD ISAs only (the scalar matvec
 * is row by row), each with the rows it reads side by side (avx2, avx512);
 * so do the integer prefill kernels, whose q4_0 and q4_1 panels are both
 * unsigned nibbles and share one tile. */
#define ROWS(name, avx2_rows, avx512_rows)                                                         \
    .vec_dot_rows = {NULL, aellm_vec_dot_rows_##name##_avx2, aellm_vec_dot_rows_##name##_avx512},  \
    .mv_rows = {0, avx2_rows, avx512_rows}
#define PACK(name)                                                                                 \
    {                                                                                              \
        NULL, aellm_gemm_pack_##name##_avx2, aellm_gemm_pack_##name##_avx512                       \
    }
#define TILE(sign)                                                                                 \
    {                                                                                              \
        NULL, aellm_gemm_tile_##sign##_avx2, aellm_gemm_tile_##sign##_avx512                       \
    }

#define FTILE                                                                                      \
    {                                                                                              \
        &aellm_ftile_kernel_scalar, &aellm_ftile_kernel_avx2, &aellm_ftile_kernel_avx512           \
    }

static const aellm_kernel_traits_ext traits_ext[AELLM_DTYPE_MAX] = {
    [AELLM_DTYPE_F32] = {ROWS(f32, 4, AELLM_MV_F32_ROWS), .ftile = FTILE},
    [AELLM_DTYPE_F16] = {ROWS(f16, 4, 4), .ftile = FTILE},
    [AELLM_DTYPE_BF16] = {ROWS(bf16, 4, 4), .ftile = FTILE},
    [AELLM_DTYPE_Q8_0] = {ROWS(q8_0, 4, 4), .gemm_pack = PACK(q8_0), .gemm_tile = TILE(s8),
                          .x8_tile = {aellm_x8_tile_q8_0_scalar, aellm_x8_tile_q8_0_avx2,
                                      aellm_x8_tile_q8_0_avx512}},
    [AELLM_DTYPE_Q4_0] = {ROWS(q4_0, 4, 4), .gemm_pack = PACK(q4_0), .gemm_tile = TILE(u8),
                          .x8_tile = {aellm_x8_tile_q4_0_scalar, aellm_x8_tile_q4_0_avx2,
                                      aellm_x8_tile_q4_0_avx512}},
    [AELLM_DTYPE_Q4_1] = {ROWS(q4_1, 4, 4), .gemm_pack = PACK(q4_1), .gemm_tile = TILE(u8)},
    /* Prefill of the new formats dequantizes (matmul.c), except W8A8's
     * integer GEMM; the g32 types take their GGML twin's integer paths when
     * rows are whole blocks (matmul.c maps them). */
    [AELLM_DTYPE_INT4S_G32] = {ROWS(q4_0, 4, 4)},
    [AELLM_DTYPE_INT4S_G64] = {ROWS(int4s_g64, 4, 4)},
    [AELLM_DTYPE_INT4S_G128] = {ROWS(int4s_g128, 4, 4)},
    [AELLM_DTYPE_INT4A_G32] = {ROWS(q4_1, 4, 4)},
    [AELLM_DTYPE_INT4A_G64] = {ROWS(int4a_g64, 4, 4)},
    [AELLM_DTYPE_INT4A_G128] = {ROWS(int4a_g128, 4, 4)},
    [AELLM_DTYPE_NF4] = {ROWS(nf4, 4, 4)},
    [AELLM_DTYPE_FP8_E4M3] = {ROWS(fp8_e4m3, 4, 4)},
    [AELLM_DTYPE_INT8] = {ROWS(int8, 4, 4), .i8 = {&aellm_i8_kernel_scalar, &aellm_i8_kernel_avx2,
                                                   &aellm_i8_kernel_avx512}},
    [AELLM_DTYPE_INT8_G32] = {ROWS(q8_0, 4, 4)},
    [AELLM_DTYPE_Q4_0_R16] = {.vec_dot_rows = PER_ISA(aellm_vec_dot_rows_q4_0_r16),
                              .mv_rows = {AELLM_Q4_0_R16_ROWS, AELLM_Q4_0_R16_ROWS,
                                          2 * AELLM_Q4_0_R16_ROWS},
                              .x8_tile = {aellm_x8_tile_q4_0_scalar, aellm_x8_tile_q4_0_avx2,
                                          aellm_x8_tile_q4_0_avx512}},
};

/* A type has kernels when it has a scalar dot, or (interleaved layouts) a
 * scalar row kernel. */
static int known(int type)
{
    return type >= 0 && type < AELLM_DTYPE_MAX &&
           (traits[type].vec_dot[AELLM_ISA_SCALAR] ||
            traits_ext[type].vec_dot_rows[AELLM_ISA_SCALAR]);
}

const aellm_kernel_traits *aellm_kernel_traits_get(int type)
{
    return known(type) ? &traits[type] : NULL;
}

const aellm_kernel_traits_ext *aellm_kernel_traits_ext_get(int type)
{
    return known(type) ? &traits_ext[type] : NULL;
}

aellm_vec_dot_fn aellm_kernel_vec_dot(int type)
{
    aellm_vec_dot_fn f = NULL;
    if (known(type)) AELLM_PICK_ISA(traits[type].vec_dot, f);
    return f;
}

aellm_from_float_fn aellm_kernel_from_float(int type)
{
    aellm_from_float_fn f = NULL;
    if (known(type)) AELLM_PICK_ISA(traits[type].from_float, f);
    return f;
}

aellm_to_float_fn aellm_kernel_to_float(int type)
{
    aellm_to_float_fn f = NULL;
    if (known(type)) AELLM_PICK_ISA(traits[type].to_float, f);
    return f;
}
