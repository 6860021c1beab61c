/* `aellm bench`: llama-bench's two tests — prompt processing (pp: N tokens in
 * one batch from an empty cache) and text generation (tg: N tokens one at a
 * time) — in tokens/s, mean ± standard deviation over repetitions after a
 * warm-up, plus the measured memory bandwidth and the decode roofline. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aellm/dtype.h"
#include "aellm/latency.h"
#include "aellm/memory.h"
#include "cli/cli.h"
#include "core/membw.h"
#include "core/rng.h"
#include "core/timer.h"
#include "kernels/kernels.h"

typedef struct {
    double mean, sd;
} stat;

static stat summarize(const double *v, int n)
{
    stat s = {0, 0};
    for (int i = 0; i < n; i++) s.mean += v[i] / n;
    for (int i = 0; i < n && n > 1; i++) s.sd += (v[i] - s.mean) * (v[i] - s.mean) / (n - 1);
    s.sd = sqrt(s.sd);
    return s;
}

static void random_tokens(int32_t *ids, int n, int vocab, uint64_t seed)
{
    aellm_rng r;
    aellm_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) ids[i] = (int32_t)(aellm_rng_u64(&r) % (uint64_t)vocab);
}

/* One run of a test: tokens/s. pp evaluates n tokens in one batch from an
 * empty cache; tg decodes n tokens one at a time at positions depth.. (the
 * first `depth` positions were filled by run_test). */
static double run_once(aellm_engine *e, const int32_t *ids, int n, int pp, int depth, float *logits)
{
    double t0 = aellm_time_s();
    if (pp) { /* the last token's logits, as a request (and llama-bench) computes them */
        if (aellm_engine_eval(e, ids, n, 0, logits, 0)) return -1;
    } else
        for (int i = 0; i < n; i++)
            if (aellm_engine_eval(e, ids + depth + i, 1, depth + i, logits, 0)) return -1;
    return n / (aellm_time_s() - t0);
}

/* Bandwidth read between the timed runs of a test: readings[0] before the
 * first run, readings[r + 1] after run r. Each reading streams for
 * BW_READ_S, long enough to see the VM's dips at about the rate a run does
 * (a 1 GiB pass takes 15-60 ms here). */
#define BW_READ_S 0.3

typedef struct {
    aellm_membw *buf; /* NULL: not measured */
    aellm_membw_reading *readings;
    int n;
} bw_probe;

static void probe(bw_probe *p)
{
    if (p && p->buf) aellm_membw_read_for(p->buf, BW_READ_S, &p->readings[p->n++]);
}

#define TG_WARMUP 16

/* pp (depth < 0) or tg after a context of depth tokens; *per_run gets
 * each run's tokens/s when not NULL. */
static int run_test(aellm_engine *e, int vocab, int n, int depth, int reps, stat *out, bw_probe *bw,
                    double *per_run)
{
    int pp = depth < 0, d = pp ? 0 : depth;
    int32_t *ids = malloc((size_t)(d + n) * sizeof(int32_t));
    double *tps = malloc((size_t)reps * sizeof(double));
    float *logits = malloc((size_t)vocab * sizeof(float));
    int rc = !ids || !tps || !logits;
    if (!rc) random_tokens(ids, d + n, vocab, 1234);
    if (!rc && d > 0 && aellm_engine_eval(e, ids, d, 0, NULL, 0)) rc = 1;
    /* warm-up: the whole batch for pp; for tg a few tokens, which read every
     * weight as many times (and keep one repetition of a 1.1B F32 tg128
     * from costing a minute of warm-up) */
    if (!rc && run_once(e, ids, pp ? n : n < TG_WARMUP ? n : TG_WARMUP, pp, d, logits) < 0) rc = 1;
    if (!rc) probe(bw);
    for (int r = 0; r < reps && !rc; r++) {
        if ((tps[r] = run_once(e, ids, n, pp, d, logits)) < 0) rc = 1;
        probe(bw);
    }
    if (!rc) *out = summarize(tps, reps);
    if (!rc && per_run) memcpy(per_run, tps, (size_t)reps * sizeof(double));
    free(ids);
    free(tps);
    free(logits);
    return rc;
}

/* Bytes one decode step reads: the weights a token reads, each in its stored
 * type (aellm_model_active_bytes: one embedding row, the routed experts
 * only), plus the KV cache up to the current position (averaged over a tg
 * run of n tokens), in the cache's own type. */
static double decode_bytes(const aellm_model *m, const aellm_engine *e, int depth, int n)
{
    double per_pos = (double)aellm_engine_kv_bytes(e) / aellm_engine_n_ctx(e);
    return (double)aellm_model_active_bytes(m) + (depth + n / 2.0) * per_pos;
}

typedef struct {
    const char *label, *type, *kv_type;
    int threads, pp, tg, depth, kv_heads;
    int repacked; /* q4_0 matrices in the decode layout (aellm_model_repack) */
    double kv_bytes;
    stat pp_s, tg_s;
    double bw, roof, bytes, params, size; /* bw: median sustained reading */
    double bw_min, bw_max;                /* over the readings interleaved with tg's runs */
    double bw_best;                       /* median of the readings' best single passes */
    double frac_best;                     /* tg's mean tokens/s over the best-pass roofline */
    double frac_min, frac_max;            /* per run: its tokens/s over its own roofline */
    int bw_n;
    double peak_mem; /* the allocator's high-water mark: weights, KV cache, activations, scratch */
    aellm_engine_decode_stats dec; /* over tg's runs, its warm-up included */
} report;

static double wait_fraction(const aellm_engine_decode_stats *d)
{
    return d->decode_s > 0 ? d->wait_s / (d->decode_s * d->threads) : 0.0;
}

static double stolen_fraction(const aellm_engine_decode_stats *d)
{
    return d->steps ? (double)d->stolen / (double)d->steps : 0.0;
}

/* A token's count of products (per_token(d, d->products)), or of fused ones. */
static double per_token(const aellm_engine_decode_stats *d, unsigned long long n)
{
    return d->tokens && d->threads ? (double)n / d->threads / (double)d->tokens : 0.0;
}

static void print_table(const report *r)
{
    printf("| model | size | params | type | threads | test | t/s |\n"
           "| --- | ---: | ---: | --- | ---: | --- | ---: |\n");
    if (r->pp > 0)
        printf("| %s | %.2f MiB | %.2f M | %s | %d | pp%d | %.2f ± %.2f |\n", r->label,
               r->size / 1048576.0, r->params / 1e6, r->type, r->threads, r->pp, r->pp_s.mean,
               r->pp_s.sd);
    if (r->tg > 0) {
        char test[48];
        if (r->depth > 0)
            snprintf(test, sizeof(test), "tg%d @ d%d", r->tg, r->depth);
        else
            snprintf(test, sizeof(test), "tg%d", r->tg);
        printf("| %s | %.2f MiB | %.2f M | %s | %d | %s | %.2f ± %.2f |\n", r->label,
               r->size / 1048576.0, r->params / 1e6, r->type, r->threads, test, r->tg_s.mean,
               r->tg_s.sd);
    }
    printf("\nkernels: %s (AELLM_ISA caps it)\n", aellm_isa_name(aellm_cpu_isa()));
    if (r->repacked)
        printf("weights: %d q4_0 matrices in the decode layout q4_0_r16 (AELLM_REPACK=0 keeps the "
               "file's)\n",
               r->repacked);
    if (r->tg > 0 && r->dec.decode_s > 0)
        printf("decode threads: %.1f %% of their time waiting at barriers; %.1f %% of the "
               "product steps taken from another thread's share (AELLM_DECODE_SPLIT=%s)\n",
               100.0 * wait_fraction(&r->dec), 100.0 * stolen_fraction(&r->dec),
               r->dec.steal ? "steal" : "static");
    if (r->tg > 0 && r->dec.tokens)
        printf("decode products: %.0f a token, %.0f of them matrices that lie back to back read as "
               "one (AELLM_DECODE_FUSE=%d)\n",
               per_token(&r->dec, r->dec.products), per_token(&r->dec, r->dec.fused), r->dec.fuse);
    printf("KV cache %s, %d KV heads: %.2f MiB; peak memory %.2f MiB (weights, KV cache, "
           "activations, scratch)\n",
           r->kv_type, r->kv_heads, r->kv_bytes / 1048576.0, r->peak_mem / 1048576.0);
    if (r->bw > 0 && r->tg > 0)
        printf("\nmemory bandwidth %.1f GB/s sustained (median of %d readings of %.1f s between "
               "the tg runs, %.1f-%.1f; best single pass %.1f; %d threads); decode reads %.1f "
               "MiB/token -> roofline %.1f t/s; tg%d reaches %.1f %% of it (per run %.1f-%.1f "
               "%%; %.1f %% of the best-pass roofline)\n",
               r->bw / 1e9, r->bw_n, BW_READ_S, r->bw_min / 1e9, r->bw_max / 1e9, r->bw_best / 1e9,
               r->threads, r->bytes / 1048576.0, r->roof, r->tg, 100.0 * r->tg_s.mean / r->roof,
               100.0 * r->frac_min, 100.0 * r->frac_max, 100.0 * r->frac_best);
}

static void print_json(const report *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", r->label);
    cJSON_AddStringToObject(o, "type", r->type);
    cJSON_AddNumberToObject(o, "size_bytes", r->size);
    cJSON_AddNumberToObject(o, "params", r->params);
    cJSON_AddNumberToObject(o, "threads", r->threads);
    cJSON_AddStringToObject(o, "kernel_isa", aellm_isa_name(aellm_cpu_isa()));
    cJSON_AddNumberToObject(o, "q4_0_repacked", r->repacked);
    cJSON_AddStringToObject(o, "kv_type", r->kv_type);
    cJSON_AddNumberToObject(o, "kv_heads", r->kv_heads);
    cJSON_AddNumberToObject(o, "kv_bytes", r->kv_bytes);
    cJSON_AddNumberToObject(o, "peak_mem_bytes", r->peak_mem);
    if (r->pp > 0) {
        cJSON_AddNumberToObject(o, "pp_tokens", r->pp);
        cJSON_AddNumberToObject(o, "pp_tps", r->pp_s.mean);
        cJSON_AddNumberToObject(o, "pp_tps_sd", r->pp_s.sd);
    }
    if (r->tg > 0) {
        cJSON_AddNumberToObject(o, "tg_tokens", r->tg);
        cJSON_AddNumberToObject(o, "tg_depth", r->depth);
        cJSON_AddNumberToObject(o, "tg_tps", r->tg_s.mean);
        cJSON_AddNumberToObject(o, "tg_tps_sd", r->tg_s.sd);
        cJSON_AddStringToObject(o, "decode_split", r->dec.steal ? "steal" : "static");
        cJSON_AddNumberToObject(o, "decode_wait_fraction", wait_fraction(&r->dec));
        cJSON_AddNumberToObject(o, "decode_stolen_fraction", stolen_fraction(&r->dec));
        cJSON_AddNumberToObject(o, "decode_products_per_token",
                                per_token(&r->dec, r->dec.products));
        cJSON_AddNumberToObject(o, "decode_fused_per_token", per_token(&r->dec, r->dec.fused));
    }
    if (r->bw > 0) {
        cJSON_AddNumberToObject(o, "mem_bw_bytes_per_s", r->bw);
        cJSON_AddNumberToObject(o, "mem_bw_min", r->bw_min);
        cJSON_AddNumberToObject(o, "mem_bw_max", r->bw_max);
        cJSON_AddNumberToObject(o, "mem_bw_samples", r->bw_n);
        cJSON_AddNumberToObject(o, "mem_bw_read_s", BW_READ_S);
        cJSON_AddNumberToObject(o, "mem_bw_best_pass", r->bw_best);
        cJSON_AddNumberToObject(o, "decode_bytes_per_token", r->bytes);
        cJSON_AddNumberToObject(o, "tg_roofline_tps", r->roof);
        cJSON_AddNumberToObject(o, "tg_roofline_fraction", r->tg_s.mean / r->roof);
        cJSON_AddNumberToObject(o, "tg_roofline_fraction_min", r->frac_min);
        cJSON_AddNumberToObject(o, "tg_roofline_fraction_max", r->frac_max);
        cJSON_AddNumberToObject(o, "tg_best_pass_fraction", r->frac_best);
    }
    cJSON_AddStringToObject(o, "source", "measured");
    cli_print_json(o);
}

static double median_of(double *v, int n)
{
    aellm_latency_summary s;
    aellm_latency_summarize(v, n, &s);
    return s.median;
}

/* The roofline from the median sustained reading (aellm_latency_summarize's
 * median, as the latency measurements take theirs), and each run against
 * the mean of the two readings around it. */
static void roofline(report *r, const bw_probe *bw, const double *per_run, double bytes)
{
    int n = bw->n;
    if (n < 2) return;
    double *sus = malloc(2 * (size_t)n * sizeof(double));
    if (!sus) return; /* no roofline printed, as without readings */
    double *best = sus + n;
    for (int i = 0; i < n; i++) sus[i] = bw->readings[i].sustained, best[i] = bw->readings[i].best;
    r->bw_min = r->bw_max = sus[0];
    for (int i = 1; i < n; i++) {
        r->bw_min = fmin(r->bw_min, sus[i]);
        r->bw_max = fmax(r->bw_max, sus[i]);
    }
    r->frac_min = 1e30, r->frac_max = 0.0;
    for (int i = 0; i + 1 < n; i++) {
        double f = per_run[i] * bytes / (0.5 * (sus[i] + sus[i + 1]));
        r->frac_min = fmin(r->frac_min, f);
        r->frac_max = fmax(r->frac_max, f);
    }
    r->bw = median_of(sus, n), r->bw_best = median_of(best, n), r->bw_n = n;
    r->bytes = bytes;
    r->roof = r->bw / bytes;
    r->frac_best = r->tg_s.mean * bytes / r->bw_best;
    free(sus);
}

static int open_bench_model(aellm_model **m, const char *path, const char *shape,
                            const char *type_name)
{
    if (path) return cli_open_model("bench", m, path, NULL);
    aellm_model_config cfg;
    int type = aellm_dtype_from_name(type_name);
    if (type < 0) return cli_fail("bench", "unknown type '%s'", type_name), -1;
    if (aellm_model_shape(&cfg, shape) || aellm_model_random(m, &cfg, type, 42))
        return cli_fail_last("bench"), -1;
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    const char *path = NULL, *shape = NULL, *type_name = "f32", *kv_type = NULL;
    int pp = 512, tg = 128, reps = 5, threads = 0, json = 0, no_bw = 0, kv_heads = 0, depth = 0;
    cli_opt opts[] = {
        {"model", 'm', OPT_STR, &path, "model file"},
        {"shape", 0, OPT_STR, &shape,
         "instead of -m: random weights of a shape (260K 15M 110M 1.1B)"},
        {"type", 0, OPT_STR, &type_name, "weight type of --shape (default f32)"},
        {"n-prompt", 'p', OPT_INT, &pp, "prompt tokens, 0 = skip (default 512)"},
        {"n-gen", 'n', OPT_INT, &tg, "generated tokens, 0 = skip (default 128)"},
        {"depth", 'd', OPT_INT, &depth,
         "tokens already in the KV cache when tg starts (default 0)"},
        {"repetitions", 'r', OPT_INT, &reps,
         "timed runs after one warm-up (pp: one batch; tg: 16 tokens) (default 5)"},
        {"threads", 't', OPT_INT, &threads, "threads (default: all cores)"},
        CLI_KV_OPTS(&kv_type, &kv_heads),
        {"no-bandwidth", 0, OPT_FLAG, &no_bw, "skip the memory-bandwidth measurement"},
        {"json", 0, OPT_FLAG, &json, "print as JSON"},
        {0}};
    cli_command cmd = {"bench",
                       "Measures prompt processing and generation speed (llama-bench's tests).",
                       "-m MODEL | --shape NAME [--type T] [options]", NULL, opts};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc) return rc < 0 ? 1 : 0;
    if (!path && !shape) return cli_fail("bench", "need -m MODEL or --shape NAME");
    if (pp < 0 || tg < 0 || depth < 0 || reps < 1)
        return cli_fail("bench", "need -p, -n, -d >= 0 and -r >= 1");
    aellm_model *m = NULL;
    aellm_engine *e = NULL;
    if (open_bench_model(&m, path, shape, type_name)) return 1;
    const aellm_model_config *c = aellm_model_config_get(m);
    aellm_engine_params ep;
    aellm_engine_params_default(&ep);
    ep.n_threads = threads;
    ep.n_ctx = pp > depth + tg ? pp : depth + tg;
    ep.n_ctx = ep.n_ctx > 0 ? ep.n_ctx : 1;
    ep.n_batch = pp > 0 ? pp : depth > 0 ? depth : 1;
    report r = {.label = shape ? shape : path, .pp = pp, .tg = tg, .depth = depth};
    bw_probe bw = {0};
    double *per_run = NULL;
    const aellm_dtype_traits *tr = aellm_dtype_traits_get(aellm_model_weight_type(m));
    r.type = tr ? tr->name : "?";
    int status = 1;
    if (cli_kv_apply("bench", m, kv_type, kv_heads, &ep)) goto done;
    if (cli_repack("bench", m, &r.repacked)) goto done;
    if (aellm_engine_new(&e, m, &ep)) {
        cli_fail_last("bench");
        goto done;
    }
    r.threads = aellm_engine_n_threads(e);
    r.kv_type = aellm_dtype_traits_get(aellm_engine_kv_type(e))->name;
    r.kv_heads = c->n_kv_heads;
    r.kv_bytes = (double)aellm_engine_kv_bytes(e);
    r.size = (double)aellm_model_weight_bytes(m);
    r.params = (double)aellm_model_n_params(m);
    if (!no_bw && tg > 0) {
        /* 1 GiB: several times any last-level cache; allocated before the
         * runs, outside the allocator whose peak is reported */
        bw.buf = aellm_membw_new((size_t)1 << 30, r.threads);
        bw.readings = malloc((size_t)(reps + 1) * sizeof(*bw.readings));
        per_run = malloc((size_t)reps * sizeof(double));
        if (!bw.buf || !bw.readings || !per_run) {
            cli_fail("bench", "out of memory for the bandwidth measurement (1 GiB)");
            goto done;
        }
    }
    if (pp > 0 && run_test(e, c->vocab_size, pp, -1, reps, &r.pp_s, NULL, NULL)) {
        cli_fail_last("bench");
        goto done;
    }
    aellm_engine_decode_stats_reset(e); /* a depth's prefill does no decode steps */
    if (tg > 0 && run_test(e, c->vocab_size, tg, depth, reps, &r.tg_s, &bw, per_run)) {
        cli_fail_last("bench");
        goto done;
    }
    aellm_engine_decode_stats_get(e, &r.dec);
    aellm_mem_stats ms;
    aellm_mem_stats_get(&ms);
    r.peak_mem = (double)ms.peak_total;
    if (bw.buf) roofline(&r, &bw, per_run, decode_bytes(m, e, depth, tg));
    if (json)
        print_json(&r);
    else
        print_table(&r);
    status = 0;
done:
    aellm_membw_free(bw.buf);
    free(bw.readings);
    free(per_run);
    aellm_engine_free(e);
    aellm_model_free(m);
    return status;
}
