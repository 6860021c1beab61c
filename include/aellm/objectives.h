/* Objectives, preferences and constraints (DESIGN.md §1): accuracy
 * (maximised), latency, peak memory and energy (minimised), their
 * normalisation over a reference range, the user's utility U, the hardware
 * constraints, and the efficiency score against the default configuration. */
#ifndef AELLM_OBJECTIVES_H
#define AELLM_OBJECTIVES_H

#ifdef __cplusplus
extern "C" {
#endif

/* The four objectives of the front (accuracy, latency, memory, energy),
 * then the cost of making the configuration's model (seconds of conversion,
 * uptraining, fine-tuning and calibrated quantization): a fifth objective
 * the user may weigh (--weights tune=...; default 0), which the surrogates
 * learn and the front takes in only when it is weighed. */
enum {
    AELLM_OBJ_ACC,
    AELLM_OBJ_LAT,
    AELLM_OBJ_MEM,
    AELLM_OBJ_ENERGY,
    AELLM_OBJ_COUNT,
    AELLM_OBJ_TUNE = AELLM_OBJ_COUNT,
    AELLM_OBJ_ALL
};

/* One configuration's objectives. acc is oriented so that higher is better:
 * the task's metric when it is (accuracy), exp(-KLD) for a KL divergence
 * from the unmodified model, the inverse of other lower-is-better metrics
 * (1/perplexity), so that ratios of acc read the same way for all. */
typedef struct {
    /* acc, latency s, peak memory bytes, energy J per request; tune s */
    double v[AELLM_OBJ_ALL];
    double power_w; /* energy / latency */
} aellm_objectives;

/* From an evaluation record (aellm_evaluate's JSON): latency and energy
 * from its "paired" sections when it has them (the default's figures times
 * the measured ratios), else as timed; tune the sum of its stages' wall_s
 * (0 when no stage ran). AELLM_EFORMAT if a field is missing. */
int aellm_objectives_from_record(const char *record_json, aellm_objectives *out);

/* The minimisation form used by NSGA-II and the hypervolume: -acc, lat, mem,
 * energy, and tune when n == AELLM_OBJ_ALL (n is AELLM_OBJ_COUNT or that). */
void aellm_objectives_minimized(const aellm_objectives *o, double *out, int n);

/* Preferences: "acc=1,lat=0.5,mem=0.2,energy=0.3,tune=0.1" (missing names
 * weigh 0; when `text` is NULL the four front objectives 1 and tune 0).
 * AELLM_EINVAL naming a bad entry. */
int aellm_weights_parse(double w[AELLM_OBJ_ALL], const char *text);

/* Reference range of each objective over n points: lo/hi per objective. */
void aellm_objectives_range(const aellm_objectives *pts, int n, double lo[AELLM_OBJ_ALL],
                            double hi[AELLM_OBJ_ALL]);

/* n(x) = (x - lo) / (hi - lo) clipped to [0, 1] (0 when hi == lo), and
 * U = w_acc n(acc) - w_lat n(lat) - w_mem n(mem) - w_en n(energy) - w_tune n(tune). */
double aellm_utility(const aellm_objectives *o, const double w[AELLM_OBJ_ALL],
                     const double lo[AELLM_OBJ_ALL], const double hi[AELLM_OBJ_ALL]);

/* The geometric mean of lat0/lat, mem0/mem, en0/en, times min(1, acc/acc0)
 * (paper §4.2); c0 is the default configuration. Printed beside the number:
 * aellm_efficiency_definition(). */
double aellm_efficiency_score(const aellm_objectives *c, const aellm_objectives *c0);
const char *aellm_efficiency_definition(void);

/* Total constraint violation (0 = feasible): memory over max_mem_bytes and
 * power over max_power_w, each relative to its limit; a limit <= 0 is off. */
double aellm_constraint_violation(const aellm_objectives *o, double max_mem_bytes,
                                  double max_power_w);

/* The same plus an accuracy floor: accuracy below min_acc adds
 * (min_acc - acc) / min_acc (min_acc <= 0 is off). A search sets the floor
 * from the default configuration's accuracy, so that a technique that
 * breaks the model (one KV head for a model trained with four: perplexity
 * 3.9 -> 190) is not offered however small and fast it is. */
double aellm_violation_with_floor(const aellm_objectives *o, double max_mem_bytes,
                                  double max_power_w, double min_acc);

#ifdef __cplusplus
}
#endif
#endif
