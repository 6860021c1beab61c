/* The tracking allocator: its counters equal the sum of the buffers it
 * handed out, per kind and in total, with high-water marks; the engine's
 * buffers and a model's weights are counted under their kinds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "aellm/aellm.h"
#include "aellm/memory.h"
#include "core/alloc.h"
#include "core/rng.h"

static size_t delta(const aellm_mem_stats *after, const aellm_mem_stats *before, int kind)
{
    return after->current[kind] - before->current[kind];
}

static void counters_equal_the_buffers(void **state)
{
    (void)state;
    enum { N = 200 };
    void *p[N];
    size_t want[AELLM_MEM_KINDS] = {0}, total = 0, peak = 0;
    aellm_mem_stats before, now;
    aellm_mem_stats_get(&before);
    aellm_rng rng;
    aellm_rng_seed(&rng, 7);
    for (int i = 0; i < N; i++) {
        size_t bytes = (size_t)(aellm_rng_u64(&rng) % 100000);
        int kind = (int)(aellm_rng_u64(&rng) % AELLM_MEM_KINDS);
        p[i] = aellm_mem_alloc(bytes, kind);
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t)p[i] % 64, 0);
        assert_int_equal(aellm_mem_size(p[i]), bytes);
        memset(p[i], 0xab, bytes); /* the whole buffer is usable */
        want[kind] += bytes;
        total += bytes;
        if (total > peak) peak = total;
        /* free every third one right away: the peak must remember */
        if (i % 3 == 2) {
            want[kind] -= bytes;
            total -= bytes;
            aellm_mem_free(p[i]);
            p[i] = NULL;
        }
    }
    aellm_mem_stats_get(&now);
    size_t sum = 0;
    for (int k = 0; k < AELLM_MEM_KINDS; k++) {
        assert_int_equal(delta(&now, &before, k), want[k]);
        sum += now.current[k];
    }
    assert_int_equal(now.current_total, sum);
    assert_int_equal(now.current_total - before.current_total, total);
    assert_int_equal(now.n_live - before.n_live, N - N / 3);
    assert_true(now.peak_total >= before.current_total + peak);
    for (int i = 0; i < N; i++) aellm_mem_free(p[i]);
    aellm_mem_stats_get(&now);
    assert_int_equal(now.current_total, before.current_total);
    assert_int_equal(now.n_live, before.n_live);

    aellm_mem_reset_peak();
    aellm_mem_stats_get(&now);
    assert_int_equal(now.peak_total, now.current_total);
    void *q = aellm_mem_alloc(12345, AELLM_MEM_SCRATCH);
    aellm_mem_free(q);
    aellm_mem_stats_get(&now);
    assert_int_equal(now.peak_total, now.current_total + 12345);
    assert_int_equal(now.peak[AELLM_MEM_SCRATCH], now.current[AELLM_MEM_SCRATCH] + 12345);
}

static void engine_and_model_are_counted(void **state)
{
    (void)state;
    aellm_mem_stats s0, s1, s2, s3;
    aellm_mem_stats_get(&s0);
    aellm_model_config cfg;
    assert_int_equal(aellm_model_shape(&cfg, "260K"), 0);
    aellm_model *m = NULL;
    assert_int_equal(aellm_model_random(&m, &cfg, AELLM_DTYPE_Q8_0, 1), 0);
    aellm_mem_stats_get(&s1);
    size_t weights = delta(&s1, &s0, AELLM_MEM_WEIGHTS);
    /* the model's one block: every tensor, each padded to 64 bytes */
    assert_true(weights >= aellm_model_weight_bytes(m));
    assert_true(weights < aellm_model_weight_bytes(m) + 64 * (3 + 9 * (size_t)cfg.n_layers));

    aellm_engine_params ep;
    aellm_engine_params_default(&ep);
    ep.kv_type = AELLM_DTYPE_F16;
    aellm_engine *e = NULL;
    assert_int_equal(aellm_engine_new(&e, m, &ep), 0);
    aellm_mem_stats_get(&s2);
    size_t kv = delta(&s2, &s1, AELLM_MEM_KV);
    assert_true(kv >= aellm_engine_kv_bytes(e) && kv < aellm_engine_kv_bytes(e) + 128);
    size_t all = delta(&s2, &s1, AELLM_MEM_KV) + delta(&s2, &s1, AELLM_MEM_ACTIVATIONS) +
                 delta(&s2, &s1, AELLM_MEM_SCRATCH);
    assert_true(delta(&s2, &s1, AELLM_MEM_ACTIVATIONS) > 0);
    assert_true(delta(&s2, &s1, AELLM_MEM_SCRATCH) > 0);
    /* what the engine reports = its three blocks + its own small struct */
    assert_true(aellm_engine_memory_bytes(e) >= all);
    assert_true(aellm_engine_memory_bytes(e) - all < 4096);
    assert_int_equal(delta(&s2, &s1, AELLM_MEM_WEIGHTS), 0);
    aellm_engine_free(e);
    aellm_model_free(m);
    aellm_mem_stats_get(&s3);
    for (int k = 0; k < AELLM_MEM_KINDS; k++) assert_int_equal(s3.current[k], s0.current[k]);
}

static void process_marks_are_read(void **state)
{
    (void)state;
    size_t peak, cur;
    aellm_mem_process_marks(&peak, &cur);
    assert_true(cur > 0);
    assert_true(peak >= cur);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counters_equal_the_buffers),
        cmocka_unit_test(engine_and_model_are_counted),
        cmocka_unit_test(process_marks_are_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
