/* Latency (DESIGN.md §4): a prompt of P tokens then G generated, warm-up
 * runs, then repetitions until the 95 % confidence interval of the median
 * is within +-rel_ci of it (for prefill and decode alike), between
 * min_reps and max_reps. */
#ifndef AELLM_LATENCY_H
#define AELLM_LATENCY_H

#include "aellm/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int n_prompt;            /* P (default 512; clipped so that P + G fits the context) */
    int n_gen;               /* G (default 128) */
    int warmup;              /* runs not timed (default 2) */
    int min_reps;            /* default 3 */
    int max_reps;            /* default 100 (DESIGN.md §4) */
    double rel_ci;           /* half-width of the median's 95 % CI over the median (default 0.02) */
    unsigned long long seed; /* prompt token ids */
} aellm_latency_params;

void aellm_latency_params_default(aellm_latency_params *p);

typedef struct {
    double median, p10, p90;
    double ci_lo, ci_hi; /* 95 % CI of the median; see aellm_latency_summarize */
} aellm_latency_summary;

/* Median, p10, p90 (linear interpolation between order statistics) and the
 * 95 % confidence interval of the median of x[0..n) (n >= 1): distribution
 * free from order statistics (binomial, the narrowest symmetric pair with
 * coverage >= 95 %) when n >= 6; for n < 6, where no such pair exists, the
 * normal approximation median +- 1.96 * 1.2533 * s / sqrt(n). */
void aellm_latency_summarize(const double *x, int n, aellm_latency_summary *out);

typedef struct {
    int n_prompt, n_gen; /* after clipping */
    int reps;            /* timed repetitions used */
    int converged;       /* 1 if the CI criterion was met before max_reps */
    aellm_latency_summary prefill, decode, total; /* seconds per repetition */
    double prefill_tps, decode_tps;               /* tokens/s at the medians */
} aellm_latency_result;

/* One repetition: fills its prefill and decode seconds. */
typedef int (*aellm_latency_run_fn)(void *user, double *prefill_s, double *decode_s);
/* Called after each timed repetition. */
typedef void (*aellm_latency_progress_fn)(int rep, const aellm_latency_result *sofar, void *user);

/* The repetition loop over any run function (tests give a synthetic one). */
int aellm_latency_measure(aellm_latency_run_fn run, void *user, const aellm_latency_params *p,
                          aellm_latency_progress_fn progress, void *progress_user,
                          aellm_latency_result *out);

/* The same on an engine: each repetition evaluates P prompt tokens (ids
 * drawn from `seed`, never BOS/EOS) in one prefill from position 0, then G
 * greedy decode steps of one token. */
int aellm_latency_engine(aellm_engine *e, const aellm_latency_params *p,
                         aellm_latency_progress_fn progress, void *progress_user,
                         aellm_latency_result *out);

/* ---- paired with a reference ----
 *
 * On a shared machine the speed drifts by more than the configurations
 * differ (20 % within minutes on the 2-core VM this was written on, against
 * 2-8 % between KV-cache types). Running the configuration and a reference
 * (the default configuration) interleaved, A B B A ..., puts both runs of a
 * pair under the same conditions, so the drift cancels in their ratio. The
 * repetitions continue until the ratio's median is known to +-rel_ci. */

typedef struct {
    int n_prompt, n_gen;
    int reps; /* pairs timed */
    int converged;
    aellm_latency_result self, reference;                           /* each side's own summaries */
    aellm_latency_summary ratio_prefill, ratio_decode, ratio_total; /* per pair, self/reference */
} aellm_latency_paired_result;

/* Called after every run, the warm-ups included (rep 0); side 0 = self,
 * 1 = reference. Lets a caller read an energy counter per run. */
typedef void (*aellm_latency_pair_progress_fn)(int rep, int side, void *user);

int aellm_latency_measure_paired(aellm_latency_run_fn run, void *user, aellm_latency_run_fn ref_run,
                                 void *ref_user, const aellm_latency_params *p,
                                 aellm_latency_pair_progress_fn progress, void *progress_user,
                                 aellm_latency_paired_result *out);

/* The same on two engines; the prompt is the same for both (the reference's
 * context limits it too). */
int aellm_latency_engine_paired(aellm_engine *e, aellm_engine *reference,
                                const aellm_latency_params *p,
                                aellm_latency_pair_progress_fn progress, void *progress_user,
                                aellm_latency_paired_result *out);

#ifdef __cplusplus
}
#endif
#endif
