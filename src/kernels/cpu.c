/* Run-time choice of the SIMD path: what the CPU (and OS) supports, capped by
 * AELLM_ISA. Decided once and cached; not a general CPU-feature library. */
#include <cpuid.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

static const char *const isa_names[AELLM_ISA_COUNT] = {"scalar", "avx2", "avx512"};

const char *aellm_isa_name(aellm_isa isa)
{
    return (int)isa >= 0 && isa < AELLM_ISA_COUNT ? isa_names[isa] : "unknown";
}

/* F16C is CPUID leaf 1, ECX bit 29; read directly because clang 14's
 * __builtin_cpu_supports does not know "f16c" (a compile error there). */
static int has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

/* __builtin_cpu_supports also checks that the OS saves the wide registers
 * (XGETBV), so a feature reported here is usable. AVX-512 additionally asks
 * for VNNI: the quantized kernels use vpdpbusd, and every AVX-512 CPU since
 * Cascade Lake / Zen 4 has it; older Skylake-SP parts run the AVX2 path. */
static aellm_isa detect(void)
{
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
    int avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                 __builtin_cpu_supports("avx512vnni");
    return avx512 ? AELLM_ISA_AVX512 : avx2 ? AELLM_ISA_AVX2 : AELLM_ISA_SCALAR;
}

/* An unknown AELLM_ISA value is ignored rather than failing: the variable is
 * a debugging cap and never needed for correct results. */
static aellm_isa env_cap(aellm_isa isa)
{
    const char *env = getenv("AELLM_ISA");
    if (!env) return isa;
    for (int i = 0; i < AELLM_ISA_COUNT; i++)
        if (strcmp(env, isa_names[i]) == 0) return (aellm_isa)i < isa ? (aellm_isa)i : isa;
    return isa;
}

aellm_isa aellm_cpu_isa(void)
{
    /* Racing first callers compute the same value, so a relaxed cache is enough. */
    static atomic_int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v < 0) {
        v = (int)env_cap(detect());
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return (aellm_isa)v;
}
