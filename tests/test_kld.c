/* The kld task: against a naive reference written here (a mock model whose
 * logits are a formula, softmax and KL divergence in long double straight from
 * their definitions, the windows cut by hand); the base file's round trip and
 * its errors; on the bundled stories260K, KLD 0 and top-1 agreement 1 for the
 * model against itself, Q8_0 below INT4, and the evaluation pipeline's cache. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "aellm/aellm.h"
#include "aellm/config.h"
#include "aellm/evaluate.h"
#include "aellm/quantize.h"
#include "aellm/task.h"
#include "test_tmpdir.h"

#define STORIES      AELLM_SOURCE_DIR "/models/stories260K/stories260K.bin"
#define STORIES_TOK  AELLM_SOURCE_DIR "/models/stories260K/tok512.bin"
#define STORIES_TEXT AELLM_SOURCE_DIR "/tasks/data/stories_eval.txt"

/* ---- the mock: bytes are tokens, BOS = 256; logits a formula of the
 * previous token, bent by `warp` (0: the base) ---- */
#define M_BOS   256
#define M_VOCAB 258

typedef struct {
    double warp;
    int n_ctx;
} mock;

static double mock_logit(const mock *m, int prev, int v)
{
    double z = 2.5 * sin(0.37 * v + 0.11 * prev) + (v == 'e' || v == ' ' ? 1.5 : 0.0);
    return z * (1.0 + m->warp) + m->warp * 1.7 * cos(0.5 * v + 0.03 * prev);
}

static int mock_encode(void *user, const char *text, size_t len, int bos, int32_t **ids, size_t *n)
{
    (void)user;
    *ids = malloc((len + 1) * sizeof(int32_t));
    *n = 0;
    if (bos) (*ids)[(*n)++] = M_BOS;
    for (size_t i = 0; i < len; i++) (*ids)[(*n)++] = (unsigned char)text[i];
    return 0;
}

static int mock_distributions(void *user, const int32_t *tok, int n, int n_cond, float *rows)
{
    const mock *m = user;
    if (n_cond < 1 || n_cond >= n || n > m->n_ctx) return AELLM_EINVAL;
    for (int i = n_cond; i < n; i++) {
        float *row = rows + (size_t)(i - n_cond) * M_VOCAB;
        double z[M_VOCAB], max = -1e300, sum = 0;
        for (int v = 0; v < M_VOCAB; v++)
            z[v] = mock_logit(m, tok[i - 1], v), max = fmax(max, z[v]);
        for (int v = 0; v < M_VOCAB; v++) sum += exp(z[v] - max);
        for (int v = 0; v < M_VOCAB; v++) row[v] = (float)(z[v] - max - log(sum));
    }
    return 0;
}

static aellm_lm mock_lm(mock *m)
{
    return (aellm_lm){.user = m,
                      .n_ctx = m->n_ctx,
                      .encode = mock_encode,
                      .distributions = mock_distributions,
                      .n_vocab = M_VOCAB};
}

static const char mock_text[] =
    "Once upon a time a small bird sat in a tall tree. She sang every morning, and the "
    "children below stopped to listen. One day the wind was cold and the bird was quiet. "
    "A boy named Sam climbed up with a warm scarf and put it on the branch. The bird sang "
    "again, and Sam smiled all the way home. ";

static aellm_task *text_task(const char *kind, const char *data, int n_ctx, int max_chunks)
{
    char json[1024];
    snprintf(json, sizeof(json), "{\"kind\": \"%s\", \"data\": \"%s\", \"n_ctx\": %d%s%.0d}", kind,
             data, n_ctx, max_chunks ? ", \"max_chunks\": " : "", max_chunks);
    aellm_task *t = NULL;
    if (aellm_task_parse(&t, json, NULL, NULL)) fail_msg("task: %s", aellm_error_last());
    return t;
}

static const char *mock_text_file(void)
{
    const char *path = tmp_path("mock.txt");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(mock_text, f);
    fclose(f);
    return path;
}

/* ---- the naive reference ---- */
typedef struct {
    double kld, se, top1, median, p99, max, rms_dp, ppl, ppl_base;
    int64_t n;
} reference;

static long double softmax_p(const mock *m, int prev, int v)
{
    long double sum = 0;
    for (int u = 0; u < M_VOCAB; u++) sum += expl((long double)mock_logit(m, prev, u));
    return expl((long double)mock_logit(m, prev, v)) / sum;
}

static int argmax_of(const mock *m, int prev)
{
    int best = 0;
    for (int v = 1; v < M_VOCAB; v++)
        if (mock_logit(m, prev, v) > mock_logit(m, prev, best)) best = v;
    return best;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static reference naive(const mock *base, const mock *q, const char *text, int n_ctx)
{
    size_t len = strlen(text);
    int n = (int)len + 1, chunks = n / n_ctx, first = n_ctx / 2;
    int *ids = malloc((size_t)n * sizeof(int));
    ids[0] = M_BOS;
    for (size_t i = 0; i < len; i++) ids[i + 1] = (unsigned char)text[i];
    double *each = malloc((size_t)n * sizeof(double));
    reference r = {0};
    long double sum = 0, sum2 = 0, nll = 0, nll_base = 0, dp2 = 0;
    for (int c = 0; c < chunks; c++)
        for (int j = first + 1; j < n_ctx; j++) {
            int prev = j == 1 ? M_BOS : ids[c * n_ctx + j - 1], target = ids[c * n_ctx + j];
            long double kl = 0;
            for (int v = 0; v < M_VOCAB; v++) {
                long double p = softmax_p(base, prev, v), pq = softmax_p(q, prev, v);
                kl += p * logl(p / pq);
            }
            each[r.n++] = (double)kl;
            sum += kl, sum2 += kl * kl;
            r.top1 += argmax_of(base, prev) == argmax_of(q, prev);
            long double pt = softmax_p(q, prev, target), pb = softmax_p(base, prev, target);
            nll -= logl(pt), nll_base -= logl(pb), dp2 += (pt - pb) * (pt - pb);
        }
    r.kld = (double)(sum / r.n);
    r.se = sqrt((double)(sum2 / r.n - (sum / r.n) * (sum / r.n)) / (double)(r.n - 1));
    r.top1 /= (double)r.n;
    qsort(each, (size_t)r.n, sizeof(double), cmp);
    r.median = each[(int64_t)ceil(0.5 * (double)r.n) - 1];
    r.p99 = each[(int64_t)ceil(0.99 * (double)r.n) - 1];
    r.max = each[r.n - 1];
    r.rms_dp = sqrt((double)(dp2 / r.n));
    r.ppl = exp((double)(nll / r.n));
    r.ppl_base = exp((double)(nll_base / r.n));
    free(ids);
    free(each);
    return r;
}

static double metric(const aellm_task_result *r, const char *name)
{
    for (int i = 0; i < r->n_metrics; i++)
        if (!strcmp(r->metrics[i].name, name)) return r->metrics[i].value;
    fail_msg("no metric %s", name);
    return NAN;
}

#define assert_close(a, b, tol)                                                                    \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= (tol) * (1 + fabs(b_))))                                            \
            fail_msg("%s = %.10g, reference %.10g", #a, a_, b_);                                   \
    } while (0)

static void test_against_naive_reference(void **state)
{
    (void)state;
    const char *path = mock_text_file();
    mock base = {0, 64}, q = {0.15, 64};
    aellm_lm lb = mock_lm(&base), lq = mock_lm(&q);
    aellm_task *t = text_task("kld", path, 64, 0);
    aellm_kld_base *b = NULL;
    aellm_task_result r;
    assert_int_equal(aellm_kld_base_compute(&b, t, &lb, NULL, NULL), 0);
    assert_int_equal(aellm_task_run_kld(t, &lq, b, NULL, NULL, &r), 0);
    reference ref = naive(&base, &q, mock_text, 64);
    assert_string_equal(r.metrics[0].name, "kld");
    assert_int_equal(r.higher_is_better, 0);
    assert_int_equal(r.n_items, ref.n);
    assert_true(ref.kld > 0.01); /* a real difference, not a trivial zero */
    assert_close(r.metrics[0].value, ref.kld, 1e-5);
    assert_close(r.metrics[0].stderr_, ref.se, 1e-4);
    assert_close(metric(&r, "top1_agree"), ref.top1, 1e-12);
    assert_close(metric(&r, "kld_median"), ref.median, 1e-5);
    assert_close(metric(&r, "kld_p99"), ref.p99, 1e-5);
    assert_close(metric(&r, "kld_max"), ref.max, 1e-5);
    assert_close(metric(&r, "rms_dp"), ref.rms_dp, 1e-5);
    assert_close(metric(&r, "ppl"), ref.ppl, 1e-5);
    assert_close(metric(&r, "ppl_base"), ref.ppl_base, 1e-5);
    printf("kld %.6f +- %.6f (naive %.6f +- %.6f), top-1 %.4f over %lld tokens\n",
           r.metrics[0].value, r.metrics[0].stderr_, ref.kld, ref.se, ref.top1, (long long)ref.n);
    aellm_task_result_free(&r);
    /* the base against itself */
    assert_int_equal(aellm_task_run_kld(t, &lb, b, NULL, NULL, &r), 0);
    assert_true(r.metrics[0].value == 0.0);
    assert_true(metric(&r, "top1_agree") == 1.0);
    assert_true(metric(&r, "kld_max") == 0.0);
    aellm_task_result_free(&r);
    /* aellm_task_run refuses the kind: the base is needed */
    assert_int_not_equal(aellm_task_run(t, &lq, NULL, NULL, &r), 0);
    assert_non_null(strstr(aellm_error_last(), "unmodified model"));
    aellm_kld_base_free(b);
    aellm_task_free(t);
}

static void test_base_file(void **state)
{
    (void)state;
    const char *path = mock_text_file(), *file = tmp_path("base.bin");
    mock base = {0, 64}, q = {0.3, 64};
    aellm_lm lb = mock_lm(&base), lq = mock_lm(&q);
    aellm_task *t = text_task("kld", path, 64, 0);
    aellm_kld_base *b = NULL, *back = NULL;
    aellm_task_result r1, r2;
    assert_int_equal(aellm_kld_base_compute(&b, t, &lb, NULL, NULL), 0);
    assert_int_equal(aellm_kld_base_save(b, file), 0);
    assert_int_equal(aellm_kld_base_load(&back, file), 0);
    assert_int_equal(aellm_kld_base_n_tokens(back), aellm_kld_base_n_tokens(b));
    assert_int_equal(aellm_task_run_kld(t, &lq, b, NULL, NULL, &r1), 0);
    assert_int_equal(aellm_task_run_kld(t, &lq, back, NULL, NULL, &r2), 0);
    for (int i = 0; i < r1.n_metrics; i++) assert_true(r1.metrics[i].value == r2.metrics[i].value);
    aellm_task_result_free(&r1);
    aellm_task_result_free(&r2);
    aellm_kld_base_free(back);
    /* a target that is not a regular file is refused, not replaced */
    assert_int_equal(aellm_kld_base_save(b, tmp_dir), AELLM_EIO);
    assert_non_null(strstr(aellm_error_last(), "not a regular file"));
    /* missing, truncated, foreign */
    assert_int_equal(aellm_kld_base_load(&back, tmp_path("none.bin")), AELLM_ENOTFOUND);
    assert_int_equal(truncate(file, 200), 0);
    assert_int_equal(aellm_kld_base_load(&back, file), AELLM_EFORMAT);
    assert_non_null(strstr(aellm_error_last(), "base.bin"));
    assert_null(back);
    assert_int_equal(aellm_kld_base_load(&back, path), AELLM_EFORMAT);
    assert_int_equal(aellm_kld_base_load(&back, tmp_dir), AELLM_EIO);
    /* a base of another text (windows of another length) is refused */
    aellm_task *other = text_task("kld", path, 32, 0);
    assert_int_equal(aellm_task_run_kld(other, &lq, b, NULL, NULL, &r1), AELLM_EINVAL);
    assert_non_null(strstr(aellm_error_last(), "another text"));
    aellm_task_free(other);
    aellm_kld_base_free(b);
    aellm_task_free(t);
}

/* ---- the real model ---- */
static aellm_model *stories;

static double engine_kld(const aellm_task *t, const aellm_kld_base *b, const aellm_model *m,
                         double *top1)
{
    aellm_engine *e = NULL;
    aellm_lm *lm = NULL;
    aellm_task_result r;
    assert_int_equal(aellm_engine_new(&e, m, NULL), 0);
    assert_int_equal(aellm_lm_engine_new(&lm, e, aellm_model_tokenizer(stories)), 0);
    if (aellm_task_run_kld(t, lm, b, NULL, NULL, &r)) fail_msg("kld: %s", aellm_error_last());
    double kld = r.metrics[0].value;
    *top1 = metric(&r, "top1_agree");
    aellm_task_result_free(&r);
    aellm_lm_engine_free(lm);
    aellm_engine_free(e);
    return kld;
}

static aellm_model *quantized(int type)
{
    aellm_quantize_params p;
    aellm_quantize_params_default(&p);
    p.type = type;
    p.method = AELLM_QUANT_RTN;
    aellm_model *q = NULL;
    if (aellm_quantize_model(&q, stories, &p, NULL)) fail_msg("quantize: %s", aellm_error_last());
    return q;
}

static void test_stories_q8_below_int4(void **state)
{
    (void)state;
    aellm_task *t = text_task("kld", STORIES_TEXT, 256, 8);
    aellm_engine *e = NULL;
    aellm_lm *lm = NULL;
    aellm_kld_base *b = NULL;
    assert_int_equal(aellm_engine_new(&e, stories, NULL), 0);
    assert_int_equal(aellm_lm_engine_new(&lm, e, aellm_model_tokenizer(stories)), 0);
    assert_int_equal(aellm_kld_base_compute(&b, t, lm, NULL, NULL), 0);
    aellm_lm_engine_free(lm);
    aellm_engine_free(e);
    double top_self, top_q8, top_q4;
    double self = engine_kld(t, b, stories, &top_self);
    aellm_model *q8 = quantized(AELLM_DTYPE_Q8_0), *q4 = quantized(AELLM_DTYPE_Q4_0);
    double k8 = engine_kld(t, b, q8, &top_q8), k4 = engine_kld(t, b, q4, &top_q4);
    printf("stories260K: KLD self %.3g (top-1 %.4f), Q8_0 %.6f (%.4f), Q4_0 %.6f (%.4f)\n", self,
           top_self, k8, top_q8, k4, top_q4);
    assert_true(self == 0.0 && top_self == 1.0);
    assert_true(k8 > 0 && k8 < k4);
    assert_true(k8 < 0.01 && top_q8 > top_q4);
    aellm_model_free(q8);
    aellm_model_free(q4);
    aellm_kld_base_free(b);
    aellm_task_free(t);
}

/* The pipeline computes the base once and reads it from the cache after. */
static const cJSON *reference_of(cJSON *rec)
{
    return cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "accuracy"), "reference");
}

static cJSON *evaluate(const aellm_task *t, const char *config_json)
{
    aellm_config c;
    cJSON *cj = cJSON_Parse(config_json);
    assert_int_equal(aellm_config_parse(&c, cj, "test config", NULL), 0);
    cJSON_Delete(cj);
    aellm_eval_request r;
    aellm_eval_request_default(&r);
    r.model_path = STORIES;
    r.tokenizer_path = STORIES_TOK;
    r.task = t;
    r.config = &c;
    r.cache_dir = tmp_path("cache");
    r.latency.n_prompt = 16;
    r.latency.n_gen = 4;
    r.latency.warmup = 0;
    r.latency.min_reps = 2;
    r.latency.max_reps = 3;
    char *json = NULL;
    int cached = 0;
    if (aellm_evaluate(&r, NULL, &json, &cached)) fail_msg("evaluate: %s", aellm_error_last());
    cJSON *rec = cJSON_Parse(json);
    free(json);
    return rec;
}

static void test_pipeline_caches_the_base(void **state)
{
    (void)state;
    aellm_task *t = text_task("kld", STORIES_TEXT, 128, 6);
    cJSON *a = evaluate(t, "{}"), *b = evaluate(t, "{\"inference\": {\"weights\": \"q8_0\"}}");
    const cJSON *ra = reference_of(a), *rb = reference_of(b);
    assert_string_equal(cJSON_GetObjectItem(ra, "obtained")->valuestring, "computed");
    assert_string_equal(cJSON_GetObjectItem(rb, "obtained")->valuestring, "read from the cache");
    const char *file = cJSON_GetObjectItem(rb, "cache")->valuestring;
    assert_true(access(file, R_OK) == 0);
    const cJSON *acc_a = cJSON_GetObjectItem(a, "accuracy"),
                *acc_b = cJSON_GetObjectItem(b, "accuracy");
    assert_string_equal(cJSON_GetObjectItem(acc_a, "metric")->valuestring, "kld");
    assert_true(cJSON_GetObjectItem(acc_a, "value")->valuedouble == 0.0);
    assert_true(cJSON_GetObjectItem(acc_b, "value")->valuedouble > 0.0);
    /* a damaged cache file is computed again, not trusted */
    assert_int_equal(truncate(file, 100), 0);
    cJSON *c = evaluate(t, "{\"inference\": {\"weights\": \"q8_0\"}}");
    assert_string_equal(cJSON_GetObjectItem(reference_of(c), "obtained")->valuestring, "computed");
    assert_true(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "accuracy"), "value")->valuedouble ==
                cJSON_GetObjectItem(acc_b, "value")->valuedouble);
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(c);
    aellm_task_free(t);
}

static int setup(void **state)
{
    if (tmpdir_setup(state)) return -1;
    if (aellm_model_load(&stories, STORIES, STORIES_TOK)) {
        fprintf(stderr, "bundled model: %s\n", aellm_error_last());
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    aellm_model_free(stories);
    return tmpdir_teardown(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_naive_reference),
        cmocka_unit_test(test_base_file),
        cmocka_unit_test(test_stories_q8_below_int4),
        cmocka_unit_test(test_pipeline_caches_the_base),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
