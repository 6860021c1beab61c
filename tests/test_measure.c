/* Measurement: latency statistics against a naive reference (sorting, the
 * numpy "linear" quantile and exact integer binomial sums), the repetition
 * loop with synthetic run functions, the engine run on a tiny random model;
 * hardware detection and the profile files; the energy meter's power model
 * and RAPL arithmetic on a fake powercap tree. No timing asserts. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "aellm/aellm.h"
#include "aellm/energy.h"
#include "aellm/hardware.h"
#include "aellm/latency.h"
#include "core/membw.h"
#include "core/rng.h"
#include "core/timer.h"
#include "measure/measure_internal.h"
#include "test_tmpdir.h"

/* ================= latency: reference statistics ================= */

static void ref_sort(double *x, int n)
{
    for (int i = 1; i < n; i++)
        for (int k = i; k > 0 && x[k - 1] > x[k]; k--) {
            double t = x[k];
            x[k] = x[k - 1];
            x[k - 1] = t;
        }
}

/* numpy.quantile(x, q) with method="linear" (its default). */
static double ref_quantile(const double *s, int n, double q)
{
    double h = (n - 1) * q;
    int lo = (int)h;
    int hi = lo + 1 < n ? lo + 1 : n - 1;
    return s[lo] + (h - lo) * (s[hi] - s[lo]);
}

/* Largest j with 1 - 2 P(B <= j-1) >= 0.95, B ~ Bin(n, 1/2), in exact
 * integers: 2 S / 2^n <= 0.05  <=>  40 S <= 2^n, S = sum_{i<j} C(n, i). */
static int ref_rank(int n)
{
    assert_true(n <= 62);
    unsigned __int128 c = 1, sum = 0, two_n = (unsigned __int128)1 << n;
    int j = 0;
    for (int k = 1; k <= n / 2; k++) {
        sum += c;                                    /* adds C(n, k-1) */
        c = c * (unsigned)(n - k + 1) / (unsigned)k; /* C(n, k) */
        if (40 * sum > two_n) break;
        j = k;
    }
    return j;
}

static void ref_summary(const double *x, int n, aellm_latency_summary *out)
{
    double s[64];
    memcpy(s, x, n * sizeof(double));
    ref_sort(s, n);
    out->median = ref_quantile(s, n, 0.5);
    out->p10 = ref_quantile(s, n, 0.1);
    out->p90 = ref_quantile(s, n, 0.9);
    int j = ref_rank(n);
    if (j > 0) {
        out->ci_lo = s[j - 1];
        out->ci_hi = s[n - j];
    } else if (n == 1) {
        out->ci_lo = -INFINITY;
        out->ci_hi = INFINITY;
    } else {
        double m = 0, v = 0;
        for (int i = 0; i < n; i++) m += s[i] / n;
        for (int i = 0; i < n; i++) v += (s[i] - m) * (s[i] - m) / (n - 1);
        double half = 1.96 * 1.2533 * sqrt(v) / sqrt(n);
        out->ci_lo = out->median - half;
        out->ci_hi = out->median + half;
    }
}

static void assert_close(double a, double b)
{
    if (isinf(a) || isinf(b)) {
        assert_true(a == b);
        return;
    }
    assert_true(fabs(a - b) <= 1e-12 * (1 + fabs(b)));
}

static void summary_matches_reference(void **state)
{
    (void)state;
    static const int ns[] = {1, 2, 3, 4, 5, 6, 7, 10, 20, 31};
    aellm_rng rng;
    aellm_rng_seed(&rng, 42);
    double worst = 0;
    for (size_t t = 0; t < sizeof(ns) / sizeof(ns[0]); t++) {
        for (int trial = 0; trial < 20; trial++) {
            int n = ns[t];
            double x[64];
            for (int i = 0; i < n; i++) x[i] = 0.01 + aellm_rng_f32(&rng);
            if (trial == 1) /* ties */
                for (int i = 0; i < n; i++) x[i] = 0.5 + 0.25 * (i % 2);
            aellm_latency_summary got, want;
            aellm_latency_summarize(x, n, &got);
            ref_summary(x, n, &want);
            assert_close(got.median, want.median);
            assert_close(got.p10, want.p10);
            assert_close(got.p90, want.p90);
            assert_close(got.ci_lo, want.ci_lo);
            assert_close(got.ci_hi, want.ci_hi);
            if (isfinite(want.ci_lo)) worst = fmax(worst, fabs(got.ci_lo - want.ci_lo));
            assert_true(got.p10 <= got.median && got.median <= got.p90);
        }
    }
    printf("summary vs reference: max |ci_lo diff| %.3g\n", worst);
}

/* A shuffled 1..n: the interval's ends are the ranks themselves. */
static void ci_ranks(int n, double *lo, double *hi)
{
    double x[64];
    for (int i = 0; i < n; i++) x[i] = (double)((i * 7) % n + 1); /* 7 is prime to n here */
    aellm_latency_summary s;
    aellm_latency_summarize(x, n, &s);
    *lo = s.ci_lo;
    *hi = s.ci_hi;
}

static void binomial_ranks_by_hand(void **state)
{
    (void)state;
    double lo, hi;
    /* n = 6: j = 1 covers 1 - 2/64 = 0.96875; j = 2 only 1 - 2*7/64 = 0.78125 */
    ci_ranks(6, &lo, &hi);
    assert_true(lo == 1 && hi == 6);
    /* n = 10: j = 2 covers 1 - 2*11/1024 = 0.978515625; j = 3: 1 - 2*56/1024 = 0.890625 */
    ci_ranks(10, &lo, &hi);
    assert_true(lo == 2 && hi == 9);
    /* n = 20: P(B <= 5) = 21700/2^20 -> 0.958611 (j = 6); P(B <= 6) = 60460/2^20 -> 0.884682 */
    ci_ranks(20, &lo, &hi);
    assert_true(lo == 6 && hi == 15);
    /* n = 31: j = 10 covers 0.970551, j = 11 only 0.929244 */
    ci_ranks(31, &lo, &hi);
    assert_true(lo == 10 && hi == 22);
    assert_int_equal(ref_rank(5), 0); /* 1 - 2/32 = 0.9375 < 0.95: normal approximation */
    assert_int_equal(ref_rank(6), 1);
    assert_int_equal(ref_rank(10), 2);
    assert_int_equal(ref_rank(20), 6);
    assert_int_equal(ref_rank(31), 10);
}

/* ================= latency: the loop ================= */

typedef struct {
    int calls;
    int warmup; /* the first calls return 1000 s: must not reach the statistics */
    int mode;   /* 0 constant, 1 low-discrepancy noise, 2 alternating 1/100 */
    int timed;
} synth;

static double noise(int k, double phi)
{
    double f = fmod(k * phi, 1.0);
    return 1.0 + 0.1 * f; /* uniform-ish in [1, 1.1], deterministic */
}

static int synth_run(void *user, double *prefill, double *decode)
{
    synth *s = user;
    s->calls++;
    if (s->calls <= s->warmup) {
        *prefill = *decode = 1000.0;
        return 0;
    }
    int k = s->timed++;
    switch (s->mode) {
    case 0:
        *prefill = 0.25, *decode = 2.0;
        break;
    case 1:
        *prefill = noise(k, 0.6180339887), *decode = 2 * noise(k, 0.4142135624);
        break;
    default:
        *prefill = *decode = k % 2 ? 100.0 : 1.0;
        break;
    }
    return 0;
}

static int progress_calls;
static void count_progress(int rep, const aellm_latency_result *r, void *user)
{
    (void)user;
    progress_calls++;
    assert_int_equal(rep, progress_calls);
    assert_int_equal(r->reps, rep);
}

static aellm_latency_params loop_params(int warmup, int min_reps, int max_reps)
{
    aellm_latency_params p;
    aellm_latency_params_default(&p);
    p.n_prompt = 8;
    p.n_gen = 4;
    p.warmup = warmup;
    p.min_reps = min_reps;
    p.max_reps = max_reps;
    return p;
}

static int ref_precise(const aellm_latency_summary *s, double rel)
{
    return fmax(s->median - s->ci_lo, s->ci_hi - s->median) <= rel * s->median;
}

static void constant_times_stop_at_min_reps(void **state)
{
    (void)state;
    synth s = {.warmup = 2, .mode = 0};
    aellm_latency_params p = loop_params(2, 3, 30);
    aellm_latency_result r;
    progress_calls = 0;
    assert_int_equal(aellm_latency_measure(synth_run, &s, &p, count_progress, NULL, &r), 0);
    assert_int_equal(r.reps, 3);
    assert_int_equal(r.converged, 1);
    assert_int_equal(s.calls, 2 + 3); /* warm-up calls run but are not counted as reps */
    assert_int_equal(progress_calls, 3);
    assert_true(r.prefill.median == 0.25 && r.decode.median == 2.0 && r.total.median == 2.25);
    assert_true(fabs(r.prefill_tps - 8 / 0.25) < 1e-9 && fabs(r.decode_tps - 4 / 2.0) < 1e-9);
}

static void noisy_times_need_more_reps(void **state)
{
    (void)state;
    synth s = {.warmup = 1, .mode = 1};
    aellm_latency_params p = loop_params(1, 3, 60);
    aellm_latency_result r;
    assert_int_equal(aellm_latency_measure(synth_run, &s, &p, NULL, NULL, &r), 0);
    assert_true(r.reps > p.min_reps && r.reps <= p.max_reps);
    assert_int_equal(s.calls, 1 + r.reps);
    printf("noisy sequence: %d reps, converged %d\n", r.reps, r.converged);
    /* the stopping rule, replayed with the reference statistics */
    double pre[64], dec[64];
    for (int k = 0; k < r.reps; k++) {
        pre[k] = noise(k, 0.6180339887);
        dec[k] = 2 * noise(k, 0.4142135624);
    }
    for (int n = p.min_reps; n <= r.reps; n++) {
        aellm_latency_summary a, b;
        ref_summary(pre, n, &a);
        ref_summary(dec, n, &b);
        int ok = ref_precise(&a, p.rel_ci) && ref_precise(&b, p.rel_ci);
        assert_int_equal(ok, n == r.reps && r.converged);
    }
    aellm_latency_summary a;
    ref_summary(pre, r.reps, &a);
    assert_close(r.prefill.median, a.median);
}

static void alternating_times_never_converge(void **state)
{
    (void)state;
    synth s = {.warmup = 0, .mode = 2};
    aellm_latency_params p = loop_params(0, 3, 17);
    aellm_latency_result r;
    assert_int_equal(aellm_latency_measure(synth_run, &s, &p, NULL, NULL, &r), 0);
    assert_int_equal(r.reps, 17);
    assert_int_equal(r.converged, 0);
    assert_int_equal(s.calls, 17);
    p.min_reps = 0;
    assert_int_equal(aellm_latency_measure(synth_run, &s, &p, NULL, NULL, &r), AELLM_EINVAL);
}

static void engine_latency_on_tiny_model(void **state)
{
    (void)state;
    aellm_model_config cfg;
    assert_int_equal(aellm_model_shape(&cfg, "260K"), 0);
    aellm_model *m = NULL;
    assert_int_equal(aellm_model_random(&m, &cfg, AELLM_DTYPE_F32, 3), 0);
    aellm_engine_params ep;
    aellm_engine_params_default(&ep);
    ep.n_ctx = 16;
    aellm_engine *e = NULL;
    assert_int_equal(aellm_engine_new(&e, m, &ep), 0);
    assert_int_equal(aellm_engine_vocab_size(e), cfg.vocab_size);

    aellm_latency_params p = loop_params(1, 2, 6);
    aellm_latency_result r;
    progress_calls = 0;
    assert_int_equal(aellm_latency_engine(e, &p, count_progress, NULL, &r), 0);
    assert_int_equal(r.n_prompt, 8);
    assert_int_equal(r.n_gen, 4);
    assert_true(r.reps >= 2 && r.reps <= 6);
    assert_int_equal(progress_calls, r.reps);
    assert_true(r.prefill.median > 0 && r.decode.median > 0 && r.total.median > 0);
    assert_true(r.prefill_tps > 0 && r.decode_tps > 0);
    printf("260K random f32: prefill %.3g ms (8 tok), decode %.3g ms (4 tok), %d reps\n",
           r.prefill.median * 1e3, r.decode.median * 1e3, r.reps);

    /* clipping to the context of 16: the prompt gives way, then the generation */
    p.n_prompt = 600;
    assert_int_equal(aellm_latency_engine(e, &p, NULL, NULL, &r), 0);
    assert_int_equal(r.n_prompt, 12);
    assert_int_equal(r.n_gen, 4);
    p.n_gen = 100;
    assert_int_equal(aellm_latency_engine(e, &p, NULL, NULL, &r), 0);
    assert_int_equal(r.n_prompt, 1);
    assert_int_equal(r.n_gen, 15);
    aellm_engine_free(e);
    aellm_model_free(m);
}

/* Paired runs under a drift that swamps the difference: the configuration
 * takes 1.05 x the reference's time at each moment, while the moment's
 * speed wanders over 4x. The ratio is exact and stops at min_reps; the raw
 * medians carry the drift. */
typedef struct {
    int calls, order[64];
    double factor;
} drift_run;
static drift_run drift_self = {.factor = 1.05}, drift_ref = {.factor = 1.0};
static int drift_clock;
static int drift_rep(void *user, double *prefill, double *decode)
{
    drift_run *d = user;
    double speed = 1.0 + 3.0 * fabs(sin(0.7 * (drift_clock / 2))); /* same for both of a pair */
    d->order[d->calls++] = drift_clock++;
    *prefill = 0.2 * speed * d->factor;
    *decode = 0.8 * speed * d->factor;
    return 0;
}

static int pair_calls[2], pair_warmups;
static void count_pairs(int rep, int side, void *user)
{
    (void)user;
    pair_calls[side]++;
    pair_warmups += rep == 0;
}

static void paired_ratio_cancels_drift(void **state)
{
    (void)state;
    aellm_latency_params p = loop_params(1, 4, 30);
    aellm_latency_paired_result r;
    drift_clock = drift_self.calls = drift_ref.calls = 0;
    pair_calls[0] = pair_calls[1] = pair_warmups = 0;
    assert_int_equal(aellm_latency_measure_paired(drift_rep, &drift_self, drift_rep, &drift_ref, &p,
                                                  count_pairs, NULL, &r),
                     0);
    assert_int_equal(r.reps, 4);
    assert_int_equal(r.converged, 1);
    assert_true(fabs(r.ratio_total.median - 1.05) < 1e-12);
    assert_true(fabs(r.ratio_prefill.ci_lo - 1.05) < 1e-12 &&
                fabs(r.ratio_decode.ci_hi - 1.05) < 1e-12);
    assert_int_equal(drift_self.calls, 1 + 4);
    assert_int_equal(drift_ref.calls, 1 + 4);
    assert_int_equal(pair_calls[0], 5);
    assert_int_equal(pair_calls[1], 5);
    assert_int_equal(pair_warmups, 2);
    /* the order alternates: self first in the warm-up and in pairs 2 and 4 */
    int self_first[5];
    for (int i = 0; i < 5; i++) self_first[i] = drift_self.order[i] < drift_ref.order[i];
    assert_int_equal(self_first[0], 1);
    assert_int_equal(self_first[1], 0);
    assert_int_equal(self_first[2], 1);
    assert_int_equal(self_first[3], 0);
    /* the raw medians still see the drift: the reference's own spread is wide */
    assert_true(r.reference.total.p90 / r.reference.total.p10 > 1.5);
    assert_true(r.self.total.median > 0 && r.reference.total.median > 0);
}

static void paired_on_two_engines(void **state)
{
    (void)state;
    aellm_model_config cfg;
    assert_int_equal(aellm_model_shape(&cfg, "260K"), 0);
    aellm_model *m = NULL;
    assert_int_equal(aellm_model_random(&m, &cfg, AELLM_DTYPE_F32, 3), 0);
    aellm_engine_params ep;
    aellm_engine_params_default(&ep);
    ep.n_ctx = 16;
    aellm_engine *a = NULL, *b = NULL;
    assert_int_equal(aellm_engine_new(&a, m, &ep), 0);
    ep.n_ctx = 12; /* the shorter context clips both */
    assert_int_equal(aellm_engine_new(&b, m, &ep), 0);
    aellm_latency_params p = loop_params(1, 2, 6);
    p.n_prompt = 600;
    aellm_latency_paired_result r;
    assert_int_equal(aellm_latency_engine_paired(a, b, &p, NULL, NULL, &r), 0);
    assert_int_equal(r.n_prompt, 8);
    assert_int_equal(r.n_gen, 4);
    assert_true(r.reps >= 2 && r.reps <= 6);
    assert_true(r.ratio_total.median > 0.2 && r.ratio_total.median < 5); /* same model */
    aellm_engine_free(a);
    aellm_engine_free(b);
    aellm_model_free(m);
}

/* ================= hardware ================= */

/* Unique (physical id, core id) pairs counted by awk, or -1 if none. */
static int shell_core_count(void)
{
    FILE *f = popen("awk -F: '/^physical id/{p=$2} /^core id/{print p\":\"$2}' /proc/cpuinfo "
                    "2>/dev/null | sort -u | wc -l",
                    "r");
    int n = -1;
    if (f) {
        if (fscanf(f, "%d", &n) != 1) n = -1;
        pclose(f);
    }
    return n > 0 ? n : -1;
}

static void detect_fills_the_profile(void **state)
{
    (void)state;
    aellm_hw_profile p;
    assert_int_equal(aellm_hw_detect(&p, 0, 0), 0);
    assert_true(p.cores > 0 && p.threads >= p.cores && p.mem_bytes > 0);
    assert_string_equal(p.kind, "cpu");
    assert_true(p.isa[0] && p.name[0] && p.source[0]);
    assert_int_equal(p.detected, 1);
    assert_true(p.mem_bw == 0 && p.peak_f32 == 0); /* not measured */
    assert_int_equal(p.threads, (int)sysconf(_SC_NPROCESSORS_ONLN));
    int shell = shell_core_count();
    if (shell > 0) assert_int_equal(p.cores, shell);
#if defined(__x86_64__)
    __builtin_cpu_init();
    assert_int_equal(strstr(p.isa, "avx2") != NULL, __builtin_cpu_supports("avx2") != 0);
#endif
    /* the power model's parts add up to the limit */
    assert_true(p.power_limit_w > 0);
    assert_true(fabs(p.idle_w - 0.3 * p.power_limit_w) < 1e-9);
    assert_true(fabs(p.idle_w + p.cores * p.active_w_per_core - p.power_limit_w) < 1e-9);
}

static void detect_measures(void **state)
{
    (void)state;
    aellm_hw_profile p;
    assert_int_equal(aellm_hw_detect(&p, 1, 0), 0);
    assert_true(p.mem_bw > 0 && p.peak_f32 > 0);
    assert_true(p.peak_f16 == p.peak_f32);
    assert_true(p.peak_int8 >= p.peak_f32 && p.peak_fp8 == 0 && p.peak_int4 == 0);
    if (strstr(p.isa, "avx2") && !strstr(p.isa, "vnni")) assert_true(p.peak_int8 == 2 * p.peak_f32);
    assert_true(strlen(p.source) < sizeof(p.source) - 1); /* not truncated */
    cJSON *j = aellm_hw_to_json(&p);
    char *text = cJSON_Print(j);
    printf("detected profile:\n%s\n", text);
    free(text);
    cJSON_Delete(j);
}

/* A reading streams for the time asked (two passes at least), and its
 * sustained rate, taken over the whole time, never exceeds the best pass. */
static void membw_reading_is_sustained(void **state)
{
    (void)state;
    aellm_membw *b = aellm_membw_new((size_t)16 << 20, 2);
    assert_non_null(b);
    aellm_membw_reading r;
    aellm_membw_read_for(b, 0.0, &r);
    assert_int_equal(r.passes, 2);
    assert_true(r.sustained > 0 && r.sustained <= r.best);
    double t0 = aellm_time_s();
    aellm_membw_read_for(b, 0.05, &r);
    assert_true(aellm_time_s() - t0 >= 0.05);
    assert_true(r.passes >= 2 && r.sustained > 0 && r.sustained <= r.best);
    aellm_membw_free(b);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void json_round_trip(void **state)
{
    (void)state;
    aellm_hw_profile p, q;
    assert_int_equal(aellm_hw_detect(&p, 0, 0), 0);
    p.mem_bw = 12.5e9;
    p.peak_f32 = 1e11;
    cJSON *j = aellm_hw_to_json(&p);
    char *text = cJSON_Print(j);
    write_text(tmp_path("me.json"), text);
    free(text);
    cJSON_Delete(j);
    assert_int_equal(aellm_hw_load(&q, tmp_path("me.json"), NULL), 0);
    assert_memory_equal(&p, &q, sizeof(p)); /* every field, strings zero-padded alike */
    /* by name from a given folder */
    assert_int_equal(aellm_hw_load(&q, "me", tmp_dir), 0);
    assert_string_equal(q.name, p.name);
}

static void profile_files_load(void **state)
{
    (void)state;
    static const char *const names[] = {"rtx4090", "a100-80gb", "h100-sxm", "h200", "l4"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        aellm_hw_profile p;
        int rc = aellm_hw_load(&p, names[i], NULL);
        if (rc) fail_msg("%s: %s", names[i], aellm_error_last());
        assert_string_equal(p.name, names[i]);
        assert_string_equal(p.kind, "gpu");
        assert_int_equal(p.threads, 0);
        assert_int_equal(p.detected, 0);
        assert_true(p.cores > 0 && p.mem_bytes > 0 && p.mem_bw > 0);
        assert_true(p.peak_f32 > 0 && p.peak_f16 > 0 && p.peak_bf16 > 0 && p.peak_int8 > 0);
        assert_true(p.power_limit_w > 0 && p.idle_w > 0 && p.idle_w < p.power_limit_w);
        assert_true(p.active_w_per_core > 0);
        /* tensor cores: narrower types are at least as fast */
        assert_true(p.peak_int8 >= p.peak_f16 && p.peak_f16 >= p.peak_f32);
        assert_true(p.peak_bf16 == p.peak_f16);
        assert_true(p.peak_fp8 == 0 || p.peak_fp8 >= p.peak_f16);
        assert_true(p.peak_int4 == 0 || p.peak_int4 >= p.peak_int8);
        assert_non_null(strstr(p.source, "nvidia"));
        /* the key figures are at most a little over the data sheets' scale */
        assert_true(p.mem_bytes < 200e9 && p.mem_bw < 10e12 && p.peak_f16 < 2e15);
    }
}

static void load_errors_name_the_key(void **state)
{
    (void)state;
    aellm_hw_profile p;
    cJSON *j = NULL;
    assert_int_equal(aellm_hw_load(&p, "h100-sxm", NULL), 0);
    /* a missing key */
    j = aellm_hw_to_json(&p);
    cJSON_DeleteItemFromObject(j, "peak_fp8");
    char *text = cJSON_Print(j);
    write_text(tmp_path("bad.json"), text);
    free(text);
    assert_int_equal(aellm_hw_load(&p, tmp_path("bad.json"), NULL), AELLM_EFORMAT);
    assert_non_null(strstr(aellm_error_last(), "peak_fp8"));
    assert_non_null(strstr(aellm_error_last(), "bad.json"));
    /* a wrong type */
    cJSON_AddStringToObject(j, "peak_fp8", "1979e12");
    text = cJSON_Print(j);
    write_text(tmp_path("bad.json"), text);
    free(text);
    assert_int_equal(aellm_hw_load(&p, tmp_path("bad.json"), NULL), AELLM_EFORMAT);
    assert_non_null(strstr(aellm_error_last(), "peak_fp8"));
    /* a misspelt key */
    cJSON_DeleteItemFromObject(j, "peak_fp8");
    cJSON_AddNumberToObject(j, "peak_fp08", 1);
    text = cJSON_Print(j);
    write_text(tmp_path("bad.json"), text);
    free(text);
    assert_int_equal(aellm_hw_load(&p, tmp_path("bad.json"), NULL), AELLM_EFORMAT);
    assert_non_null(strstr(aellm_error_last(), "peak_fp08"));
    cJSON_Delete(j);
    assert_int_equal(aellm_hw_load(&p, "no-such-gpu", NULL), AELLM_ENOTFOUND);
    assert_non_null(strstr(aellm_error_last(), "no-such-gpu.json"));
}

static void identity_excludes_measurements(void **state)
{
    (void)state;
    aellm_hw_profile p;
    memset(&p, 0, sizeof(p));
    strcpy(p.name, "x");
    strcpy(p.kind, "cpu");
    strcpy(p.isa, "avx2");
    p.cores = 2;
    p.threads = 4;
    p.mem_bytes = 1024;
    p.mem_bw = 5e9;
    char *a = aellm_hw_identity_json(&p);
    assert_string_equal(a, "{\"cores\":2,\"isa\":\"avx2\",\"kind\":\"cpu\",\"mem_bytes\":1024,"
                           "\"name\":\"x\",\"threads\":4}");
    p.mem_bw = 7e9;
    p.peak_f32 = 1e12;
    strcpy(p.source, "other");
    char *b = aellm_hw_identity_json(&p);
    assert_string_equal(a, b);
    p.cores = 3;
    char *c = aellm_hw_identity_json(&p);
    assert_string_not_equal(a, c);
    free(a);
    free(b);
    free(c);
    /* and a detected profile's identity is stable across detections */
    aellm_hw_profile d1, d2;
    assert_int_equal(aellm_hw_detect(&d1, 0, 0), 0);
    assert_int_equal(aellm_hw_detect(&d2, 0, 0), 0);
    a = aellm_hw_identity_json(&d1);
    b = aellm_hw_identity_json(&d2);
    assert_string_equal(a, b);
    assert_null(strstr(a, "mem_bw"));
    free(a);
    free(b);
}

/* ================= energy ================= */

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static volatile double busy_sink;
static void busy(double cpu_seconds)
{
    double t0 = cpu_now(), x = 1;
    while (cpu_now() - t0 < cpu_seconds)
        for (int i = 0; i < 10000; i++) x = x * 1.0000001 + 1e-9;
    busy_sink = x;
}

static void model_estimate_is_the_formula(void **state)
{
    (void)state;
    aellm_hw_profile hw;
    memset(&hw, 0, sizeof(hw));
    hw.idle_w = 7.5;
    hw.active_w_per_core = 2.25;
    aellm_energy_meter *m = NULL;
    assert_int_equal(aellm_energy_meter_new(&m, &hw, AELLM_ENERGY_MODEL), 0);
    assert_int_equal(aellm_energy_meter_sources(m), AELLM_ENERGY_MODEL);
    assert_string_equal(aellm_energy_meter_source_name(m), "model");
    for (int rep = 0; rep < 2; rep++) { /* start/stop pairs repeat */
        aellm_energy_reading r;
        assert_int_equal(aellm_energy_meter_start(m), 0);
        busy(0.05);
        assert_int_equal(aellm_energy_meter_stop(m, &r), 0);
        assert_true(r.cpu_s >= 0.05 && r.wall_s > 0);
        double want = 7.5 * r.wall_s + 2.25 * r.cpu_s;
        assert_true(fabs(r.joules - want) <= 1e-12 * want);
    }
    aellm_energy_reading r;
    assert_int_equal(aellm_energy_meter_stop(m, &r), AELLM_EINVAL); /* no start */
    aellm_energy_meter_free(m);
    aellm_energy_meter_free(NULL);
    assert_int_equal(aellm_energy_meter_new(&m, NULL, AELLM_ENERGY_MODEL), AELLM_EINVAL);
}

/* EfficientLLM's metrics against the formulas worked by hand: a 2-token
 * prompt and 3 generated tokens, 100 weight bytes per token, 10 KV bytes per
 * position, 50 FLOP per token, 4 per position pair. Bytes: the prompt reads
 * the weights once and writes 2 positions (100 + 20); the generated tokens
 * read the weights and 3, 4, 5 positions (3 x 100 + 120) = 540. Pairs: 3 in
 * the prompt, 3 + 4 + 5 after = 15; FLOPs 5 x 50 + 15 x 4 = 310. */
static void effllm_metrics_by_hand(void **state)
{
    (void)state;
    aellm_effllm_inputs in = {.weight_bytes_per_token = 100,
                              .kv_bytes_per_position = 10,
                              .flops_per_token = 50,
                              .attn_flops_per_pair = 4,
                              .n_prompt = 2,
                              .n_gen = 3,
                              .total_s = 2,
                              .joules = 7,
                              .weight_bytes = 250,
                              .default_weight_bytes = 1000,
                              .mem_bw = 27,
                              .peak_flops = 31,
                              .peaks_source = "test"};
    cJSON *j = aellm_effllm_json(&in);
    assert_non_null(j);
    double num[8];
    const char *keys[] = {
        "bytes_moved",      "flops",    "amu",      "pcu", "throughput_tokens_per_s",
        "compression_rate", "energy_j", "latency_s"};
    for (int i = 0; i < 8; i++) num[i] = cJSON_GetObjectItem(j, keys[i])->valuedouble;
    assert_true(fabs(num[0] - 540) < 1e-9 && fabs(num[1] - 310) < 1e-9);
    assert_true(fabs(num[2] - 540.0 / 2 / 27) < 1e-12 && fabs(num[3] - 310.0 / 2 / 31) < 1e-12);
    assert_true(fabs(num[4] - 2.5) < 1e-12 && fabs(num[5] - 4) < 1e-12);
    assert_true(num[6] == 7 && num[7] == 2);
    cJSON_Delete(j);
    in.mem_bw = 0; /* unknown bandwidth: no utilisation, not a made-up one */
    j = aellm_effllm_json(&in);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "amu")));
    cJSON_Delete(j);
}

static void rapl_wrap_around(void **state)
{
    (void)state;
    assert_int_equal(aellm_rapl_delta(100, 250, 1000), 150);
    assert_int_equal(aellm_rapl_delta(5, 5, 1000), 0);
    /* counter runs 0..999: 900 -> 999 is 99, -> 0 one more, -> 100 another 100 */
    assert_int_equal(aellm_rapl_delta(900, 100, 999), 200);
    assert_int_equal(aellm_rapl_delta(999, 0, 999), 1);
    uint64_t range = 262143328850ull; /* a common max_energy_range_uj */
    assert_int_equal(aellm_rapl_delta(range - 10, 20, range), 31);
}

static void zone(const char *dir, const char *name, const char *energy, const char *range)
{
    char path[256];
    mkdir(dir, 0755);
    snprintf(path, sizeof(path), "%s/name", dir);
    write_text(path, name);
    snprintf(path, sizeof(path), "%s/energy_uj", dir);
    write_text(path, energy);
    snprintf(path, sizeof(path), "%s/max_energy_range_uj", dir);
    write_text(path, range);
}

static void rapl_on_a_fake_tree(void **state)
{
    (void)state;
    char root[128], dir[192];
    snprintf(root, sizeof(root), "%s/powercap", tmp_dir);
    mkdir(root, 0755);
    snprintf(dir, sizeof(dir), "%s/intel-rapl:0", root);
    zone(dir, "package-0\n", "999000000\n", "999999999\n");
    write_text(tmp_path("powercap/intel-rapl:0/constraint_0_max_power_uw"), "65000000\n");
    snprintf(dir, sizeof(dir), "%s/intel-rapl:0:0", root); /* sub-zone: inside package-0 */
    zone(dir, "core\n", "5\n", "999999999\n");
    snprintf(dir, sizeof(dir), "%s/intel-rapl:1", root);
    zone(dir, "package-1\n", "10000000\n", "999999999\n");
    write_text(tmp_path("powercap/intel-rapl:1/constraint_0_max_power_uw"), "0\n");
    write_text(tmp_path("powercap/intel-rapl:1/constraint_0_power_limit_uw"), "35000000\n");
    snprintf(dir, sizeof(dir), "%s/intel-rapl:2", root); /* psys would count twice */
    zone(dir, "psys\n", "0\n", "999999999\n");
    setenv("AELLM_POWERCAP_DIR", root, 1);

    aellm_energy_meter *m = NULL;
    assert_int_equal(aellm_energy_meter_new(&m, NULL, AELLM_ENERGY_RAPL), 0);
    assert_string_equal(aellm_energy_meter_source_name(m), "rapl");
    assert_int_equal(aellm_energy_meter_start(m), 0);
    write_text(tmp_path("powercap/intel-rapl:0/energy_uj"), "500000\n"); /* wrapped */
    write_text(tmp_path("powercap/intel-rapl:0:0/energy_uj"), "900000000\n");
    write_text(tmp_path("powercap/intel-rapl:1/energy_uj"), "12000000\n");
    write_text(tmp_path("powercap/intel-rapl:2/energy_uj"), "900000000\n");
    aellm_energy_reading r;
    assert_int_equal(aellm_energy_meter_stop(m, &r), 0);
    /* (999999999 - 999000000 + 500000 + 1) + (12000000 - 10000000) uJ */
    assert_true(fabs(r.joules - 3.5) < 1e-9);
    aellm_energy_meter_free(m);

    /* the profile's power limit comes from the same tree */
    aellm_hw_profile p;
    assert_int_equal(aellm_hw_detect(&p, 0, 0), 0);
    assert_true(fabs(p.power_limit_w - 100.0) < 1e-9);
    assert_non_null(strstr(p.source, "RAPL"));

    /* nothing readable: an error unless the model is allowed */
    snprintf(dir, sizeof(dir), "%s/empty", tmp_dir);
    mkdir(dir, 0755);
    setenv("AELLM_POWERCAP_DIR", dir, 1);
    assert_int_equal(aellm_energy_meter_new(&m, &p, AELLM_ENERGY_RAPL), AELLM_ENOTFOUND);
    assert_int_equal(aellm_energy_meter_new(&m, &p, AELLM_ENERGY_RAPL | AELLM_ENERGY_MODEL), 0);
    assert_string_equal(aellm_energy_meter_source_name(m), "model");
    aellm_energy_meter_free(m);
    unsetenv("AELLM_POWERCAP_DIR");
}

static void this_machine_meter(void **state)
{
    (void)state;
    aellm_hw_profile hw;
    assert_int_equal(aellm_hw_detect(&hw, 0, 0), 0);
    aellm_energy_meter *m = NULL;
    assert_int_equal(aellm_energy_meter_new(&m, &hw, 0), 0);
    aellm_energy_reading r;
    assert_int_equal(aellm_energy_meter_start(m), 0);
    busy(0.02);
    assert_int_equal(aellm_energy_meter_stop(m, &r), 0);
    assert_true(r.joules >= 0);
    printf("energy on this machine: source %s, %.3f J over %.3f s wall, %.3f s CPU\n",
           aellm_energy_meter_source_name(m), r.joules, r.wall_s, r.cpu_s);
    aellm_energy_meter_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(summary_matches_reference),
        cmocka_unit_test(binomial_ranks_by_hand),
        cmocka_unit_test(constant_times_stop_at_min_reps),
        cmocka_unit_test(noisy_times_need_more_reps),
        cmocka_unit_test(alternating_times_never_converge),
        cmocka_unit_test(engine_latency_on_tiny_model),
        cmocka_unit_test(paired_ratio_cancels_drift),
        cmocka_unit_test(paired_on_two_engines),
        cmocka_unit_test(detect_fills_the_profile),
        cmocka_unit_test(detect_measures),
        cmocka_unit_test(membw_reading_is_sustained),
        cmocka_unit_test(json_round_trip),
        cmocka_unit_test(profile_files_load),
        cmocka_unit_test(load_errors_name_the_key),
        cmocka_unit_test(identity_excludes_measurements),
        cmocka_unit_test(model_estimate_is_the_formula),
        cmocka_unit_test(effllm_metrics_by_hand),
        cmocka_unit_test(rapl_wrap_around),
        cmocka_unit_test(rapl_on_a_fake_tree),
        cmocka_unit_test(this_machine_meter),
    };
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
