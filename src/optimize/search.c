/* The surrogate-assisted search: seed sample, surrogates, NSGA-II on their
 * predictions, refinement on what is uncertain and not yet measured. */
#include "aellm/search.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aellm/indicators.h"
#include "core/error.h"
#include "core/rng.h"

void aellm_search_params_default(aellm_search_params *p)
{
    memset(p, 0, sizeof(*p));
    p->budget = 30;
    p->refine_rounds = 3;
    for (int k = 0; k < AELLM_OBJ_ALL; k++) p->weights[k] = k == AELLM_OBJ_TUNE ? 0 : 1;
    aellm_nsga2_params_default(&p->nsga2);
    aellm_surrogate_params_default(&p->surrogate);
    p->seed = 1;
}

typedef struct {
    const aellm_search_params *p;
    int n_knobs;
    aellm_feature_spec *schema;
    size_t width; /* one-hot row width */
    aellm_search_point *pts;
    int n, cap;
    char (*seen)[65]; /* identities measured or found unusable */
    int n_seen, cap_seen;
    aellm_surrogate *model[AELLM_OBJ_ALL]; /* every objective's, tune's included */
    int n_obj; /* objectives of the front: tune's joins only when it is weighed */
    aellm_rng rng;
    double min_acc; /* from the default's accuracy once it is measured */
    /* Kriging believer: points chosen for the batch being formed, with their
       predicted objectives taken as measured while the rest is chosen */
    double *lie_genes;
    aellm_objectives *lie_obj;
    int n_lie, cap_lie;
} search;

static double violation(const search *s, const aellm_objectives *o)
{
    return aellm_violation_with_floor(o, s->p->max_mem_bytes, s->p->max_power_w, s->min_acc);
}

static int seen_before(const search *s, const char *h)
{
    for (int i = 0; i < s->n_seen; i++)
        if (!strcmp(s->seen[i], h)) return 1;
    return 0;
}

static int remember(search *s, const char *h)
{
    if (s->n_seen == s->cap_seen) {
        int cap = s->cap_seen ? 2 * s->cap_seen : 64;
        void *q = realloc(s->seen, (size_t)cap * sizeof(*s->seen));
        if (!q) return aellm_error_oom("search identities", 0);
        s->seen = q;
        s->cap_seen = cap;
    }
    memcpy(s->seen[s->n_seen++], h, 65);
    return 0;
}

static int add_point(search *s, const double *genes, const aellm_objectives *o, int measured)
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 32;
        void *q = realloc(s->pts, (size_t)cap * sizeof(*s->pts));
        if (!q) return aellm_error_oom("search points", 0);
        s->pts = q;
        s->cap = cap;
    }
    aellm_search_point *pt = &s->pts[s->n];
    memset(pt, 0, sizeof(*pt));
    if (!(pt->genes = malloc((size_t)s->n_knobs * sizeof(double))))
        return aellm_error_oom("search genes", 0);
    memcpy(pt->genes, genes, (size_t)s->n_knobs * sizeof(double));
    pt->obj = *o;
    pt->measured = measured;
    if (s->n == 0 && measured && s->p->max_acc_drop > 0) /* the default comes first */
        s->min_acc = o->v[AELLM_OBJ_ACC] * (1 - s->p->max_acc_drop);
    pt->violation = violation(s, o);
    s->n++;
    return 0;
}

/* Measures a point unless it is invalid or known. 1 if measured, 0 if
 * skipped, < 0 on error. */
/* Canonicalizes; 1 if the point is valid in the space and for the model. */
static int usable(const search *s, double *genes)
{
    const aellm_search_params *p = s->p;
    aellm_space_canonicalize(p->space, genes);
    return !aellm_space_violates(p->space, genes, NULL, 0) &&
           (!p->applicable || p->applicable(p->user, genes));
}

/* Canonicalizes; 1 if the point is usable and neither measured nor taken,
 * with its identity in h. */
static int fresh(const search *s, double *genes, char h[65])
{
    if (!usable(s, genes)) return 0;
    aellm_space_hash(s->p->space, genes, h);
    return !seen_before(s, h);
}

/* Takes a point for measuring: 1 if it is fresh (its identity is then
 * remembered), 0 if not, < 0 on error. */
static int take(search *s, double *genes)
{
    char h[65];
    if (!fresh(s, genes, h)) return 0;
    int rc = remember(s, h);
    return rc < 0 ? rc : 1;
}

static int measure(search *s, double *genes, const char *phase)
{
    const aellm_search_params *p = s->p;
    int rc = take(s, genes);
    if (rc <= 0) return rc;
    aellm_objectives o;
    rc = p->evaluate(p->user, genes, &o);
    if (rc > 0) return 0; /* unusable here: remembered, not spent */
    if (rc < 0) return rc;
    if ((rc = add_point(s, genes, &o, 1))) return rc;
    if (p->progress) p->progress(s->n, p->budget, phase, p->progress_user);
    return 1;
}

static void random_point(search *s, double *g)
{
    const aellm_space *sp = s->p->space;
    aellm_space_defaults(sp, g);
    for (int k = 0; k < s->n_knobs; k++) {
        aellm_knob_info in;
        aellm_space_knob(sp, k, &in);
        if (!in.applies) continue;
        double u = aellm_rng_f32(&s->rng);
        if (in.type == AELLM_KNOB_REAL)
            g[k] = in.log_scale && in.lo > 0 ? in.lo * pow(in.hi / in.lo, u)
                                             : in.lo + u * (in.hi - in.lo);
        else
            g[k] = floor(in.lo + u * (in.hi - in.lo + 1));
    }
}

static int seed_sample(search *s, int n_seed)
{
    double *g = malloc((size_t)s->n_knobs * sizeof(double));
    if (!g) return aellm_error_oom("search genes", 0);
    aellm_space_defaults(s->p->space, g);
    aellm_error_clear();
    int rc = measure(s, g, "default");
    if (rc == 0) { /* every ratio and floor is relative to it: nothing to search against */
        char why[400];
        snprintf(why, sizeof(why), "%s", aellm_error_last()[0] ? aellm_error_last() : "no reason");
        rc = aellm_error_set(AELLM_EINVAL,
                             "search: the default configuration cannot be measured here (%s)", why);
    }
    for (int tries = 0; rc >= 0 && s->n < n_seed && tries < 100 * n_seed; tries++) {
        random_point(s, g);
        rc = measure(s, g, "seed");
    }
    free(g);
    return rc < 0 ? rc : 0;
}

/* ---- surrogates ---- */

/* The configuration's genes (one-hot), then the search's context. */
static int encode(const search *s, const double *genes, float *row)
{
    const aellm_search_params *p = s->p;
    int rc = aellm_surrogate_encode_row(row, s->schema, (size_t)s->n_knobs, genes);
    size_t w = s->width - (size_t)p->n_context;
    for (int c = 0; !rc && c < p->n_context; c++) row[w + (size_t)c] = (float)p->context[c];
    return rc;
}

/* A transferred surrogate warm-starts objective k (the four front objectives:
 * what making a model costs is the machine's and the data's, not the
 * configuration's alone). */
static aellm_surrogate *transferred(const search *s, int k)
{
    return s->p->transfer_from && k < AELLM_OBJ_COUNT ? s->p->transfer_from[k] : NULL;
}

static int fit(search *s, int k, const float *X, int n, const float *y)
{
    aellm_surrogate *src = transferred(s, k);
    if (!src) return aellm_surrogate_fit(s->model[k], X, (size_t)n, s->width, y);
    if (aellm_surrogate_num_features(src) != s->width)
        return aellm_error_set(AELLM_EINVAL,
                               "search: the surrogates to transfer from have %zu features, this "
                               "space and context %zu (another space or context layout?)",
                               aellm_surrogate_num_features(src), s->width);
    return aellm_surrogate_fit_transfer(s->model[k], src, X, (size_t)n, s->width, y, 0);
}

/* On the measured points, and the believed ones of a batch being chosen. */
static int train(search *s)
{
    int n = 0, rc = 0, rows = s->n + s->n_lie;
    float *X = malloc((size_t)rows * s->width * sizeof(float) + 1);
    float *y = malloc((size_t)rows * sizeof(float) + 1);
    if (!X || !y) rc = aellm_error_oom("surrogate training data", 0);
    for (int i = 0; !rc && i < s->n; i++)
        if (s->pts[i].measured) rc = encode(s, s->pts[i].genes, X + (size_t)n++ * s->width);
    for (int i = 0; !rc && i < s->n_lie; i++)
        rc = encode(s, s->lie_genes + (size_t)i * s->n_knobs, X + (size_t)n++ * s->width);
    for (int k = 0; !rc && k < AELLM_OBJ_ALL; k++) {
        int j = 0;
        for (int i = 0; i < s->n; i++)
            if (s->pts[i].measured) y[j++] = (float)s->pts[i].obj.v[k];
        for (int i = 0; i < s->n_lie; i++) y[j++] = (float)s->lie_obj[i].v[k];
        aellm_surrogate_free(s->model[k]);
        s->model[k] = NULL;
        rc = aellm_surrogate_new(&s->model[k], &s->p->surrogate);
        if (!rc) rc = fit(s, k, X, n, y);
    }
    free(X);
    free(y);
    return rc;
}

/* Means and variances of every objective for n points, AELLM_OBJ_ALL a point. */
static int predict(search *s, const double *genes, int n, double *mean, double *var)
{
    float *X = malloc((size_t)n * s->width * sizeof(float));
    float *m = malloc((size_t)n * 2 * sizeof(float)), *v = m ? m + n : NULL;
    int rc = X && m ? 0 : aellm_error_oom("surrogate predictions", 0);
    for (int i = 0; !rc && i < n; i++)
        rc = encode(s, genes + (size_t)i * s->n_knobs, X + (size_t)i * s->width);
    for (int k = 0; !rc && k < AELLM_OBJ_ALL; k++) {
        rc = aellm_surrogate_predict(s->model[k], X, (size_t)n, s->width, m, v);
        for (int i = 0; !rc && i < n; i++) {
            mean[(size_t)i * AELLM_OBJ_ALL + k] = m[i];
            if (var) var[(size_t)i * AELLM_OBJ_ALL + k] = v[i];
        }
    }
    free(X);
    free(m);
    return rc;
}

static aellm_objectives as_objectives(const double *mean)
{
    aellm_objectives o;
    for (int k = 0; k < AELLM_OBJ_ALL; k++) o.v[k] = mean[k];
    o.power_w = o.v[AELLM_OBJ_LAT] > 0 ? o.v[AELLM_OBJ_ENERGY] / o.v[AELLM_OBJ_LAT] : 0;
    return o;
}

/* ---- NSGA-II on the predictions ---- */

static int ga_evaluate(void *user, const double *genes, int n, double *objectives,
                       double *violations)
{
    search *s = user;
    double *mean = malloc((size_t)n * AELLM_OBJ_ALL * sizeof(double));
    if (!mean) return aellm_error_oom("predictions", 0);
    int rc = predict(s, genes, n, mean, NULL);
    for (int i = 0; !rc && i < n; i++) {
        aellm_objectives o = as_objectives(mean + (size_t)i * AELLM_OBJ_ALL);
        aellm_objectives_minimized(&o, objectives + (size_t)i * s->n_obj, s->n_obj);
        violations[i] = violation(s, &o);
    }
    free(mean);
    return rc;
}

static int ga_valid(void *user, double *genes)
{
    return usable(user, genes);
}

static int build_genes(const search *s, aellm_gene *genes)
{
    for (int k = 0; k < s->n_knobs; k++) {
        aellm_knob_info in;
        aellm_space_knob(s->p->space, k, &in);
        genes[k] = (aellm_gene){.kind = in.type == AELLM_KNOB_CATEGORICAL ? AELLM_GENE_CAT
                                        : in.type == AELLM_KNOB_INTEGER   ? AELLM_GENE_INT
                                                                          : AELLM_GENE_REAL,
                                .stage = in.stage_index,
                                .lo = in.applies ? in.lo : in.default_gene,
                                .hi = in.applies ? in.hi : in.default_gene,
                                .n_options = in.n_options};
    }
    return 0;
}

/* The predicted front of this round (archive of the GA): genes into *out. */
static int search_predicted(search *s, int round, double **out, int *n_out)
{
    aellm_gene *genes = calloc((size_t)s->n_knobs, sizeof(*genes));
    if (!genes) return aellm_error_oom("genes", 0);
    build_genes(s, genes);
    aellm_nsga2_problem pb = {.genes = genes,
                              .n_genes = s->n_knobs,
                              .n_stages = aellm_space_n_stages(s->p->space),
                              .n_objectives = s->n_obj,
                              .n_constraints = 1,
                              .evaluate = ga_evaluate,
                              .is_valid = ga_valid,
                              .user = s};
    aellm_nsga2_params gp = s->p->nsga2;
    gp.seed = s->p->seed * 1000003u + (uint64_t)round;
    gp.cache = 1;
    double rates[64]; /* DESIGN.md §3: per-stage mutation, fine-tuning's highest */
    if (!gp.stage_mutation && pb.n_stages <= 64) {
        for (int st = 0; st < pb.n_stages; st++) {
            const char *name = aellm_space_stage_name(s->p->space, st);
            rates[st] = (strcmp(name, "finetuning") ? 1.0 : 2.0) / (double)s->n_knobs;
            if (rates[st] > 1) rates[st] = 1;
        }
        gp.stage_mutation = rates;
    }
    aellm_nsga2 *ga = NULL;
    int rc = aellm_nsga2_new(&ga, &pb, &gp);
    if (!rc) rc = aellm_nsga2_run(ga);
    if (!rc) {
        aellm_nsga2_set front;
        aellm_nsga2_archive(ga, &front);
        if (front.n == 0) aellm_nsga2_front(ga, &front);
        *n_out = front.n;
        *out = malloc((size_t)(front.n ? front.n : 1) * s->n_knobs * sizeof(double));
        if (!*out)
            rc = aellm_error_oom("front", 0);
        else
            memcpy(*out, front.genes, (size_t)front.n * s->n_knobs * sizeof(double));
    }
    aellm_nsga2_free(ga);
    free(genes);
    return rc;
}

typedef struct {
    int index;
    double uncertainty;
} ranked;

static int by_uncertainty(const void *a, const void *b)
{
    double x = ((const ranked *)a)->uncertainty, y = ((const ranked *)b)->uncertainty;
    return (x < y) - (x > y);
}

/* Summed ensemble standard deviation of one point's predictions over each
 * front objective's measured range. */
static double uncertainty(const search *s, const double *var, const double *lo, const double *hi)
{
    double u = 0;
    for (int j = 0; j < s->n_obj; j++) {
        double range = hi[j] > lo[j] ? hi[j] - lo[j] : 1;
        u += sqrt(fmax(var[j], 0)) / range;
    }
    return u;
}

/* Objective ranges over the measured points (the uncertainty's scale). */
static int measured_range(const search *s, double *lo, double *hi)
{
    aellm_objectives *o = malloc((size_t)s->n * sizeof(*o) + 1);
    if (!o) return aellm_error_oom("objective ranges", 0);
    for (int i = 0; i < s->n; i++) o[i] = s->pts[i].obj;
    aellm_objectives_range(o, s->n, lo, hi);
    free(o);
    return 0;
}

/* Measures up to `k` predicted-front members not yet measured, the most
 * uncertain first (summed ensemble standard deviation over each objective's
 * measured range). Returns how many were measured. */
static int refine(search *s, double *front, int n, int k)
{
    double *mean = malloc((size_t)n * AELLM_OBJ_ALL * 2 * sizeof(double) + 1);
    double *var = mean + (size_t)n * AELLM_OBJ_ALL;
    ranked *order = malloc((size_t)(n ? n : 1) * sizeof(*order));
    int rc = mean && order ? predict(s, front, n, mean, var) : aellm_error_oom("refinement", 0);
    double lo[AELLM_OBJ_ALL], hi[AELLM_OBJ_ALL];
    if (!rc) rc = measured_range(s, lo, hi);
    for (int i = 0; !rc && i < n; i++) {
        order[i].index = i;
        order[i].uncertainty = uncertainty(s, var + (size_t)i * AELLM_OBJ_ALL, lo, hi);
    }
    if (!rc) qsort(order, (size_t)n, sizeof(*order), by_uncertainty);
    int done = 0;
    for (int i = 0; !rc && i < n && done < k; i++) {
        int got = measure(s, front + (size_t)order[i].index * s->n_knobs, "refine");
        if (got < 0) rc = got;
        done += got > 0;
    }
    free(order);
    free(mean);
    return rc < 0 ? rc : done;
}

/* Random unmeasured valid points up to `k` (and what refinement left). */
static int explore(search *s, int k)
{
    double *g = malloc((size_t)s->n_knobs * sizeof(double));
    if (!g) return aellm_error_oom("search genes", 0);
    int rc = 0, done = 0;
    for (int tries = 0; done < k && tries < 100 * (k + 1); tries++) {
        random_point(s, g);
        int got = measure(s, g, "explore");
        if (got < 0) rc = got;
        if (got < 0) break;
        done += got;
    }
    free(g);
    return rc;
}

/* ---- candidates near the predicted front ---- */

/* Unmeasured usable points: the whole space when it is small enough to
 * enumerate, else random draws. */
typedef struct {
    search *s;
    double *g;
    int n, cap;
} pool;

static int pool_add(const double *genes, void *user)
{
    pool *c = user;
    search *s = c->s;
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 256;
        void *q = realloc(c->g, (size_t)cap * s->n_knobs * sizeof(double));
        if (!q) return aellm_error_oom("candidates", 0);
        c->g = q;
        c->cap = cap;
    }
    double *g = c->g + (size_t)c->n * s->n_knobs;
    memcpy(g, genes, (size_t)s->n_knobs * sizeof(double));
    char h[65];
    if (!fresh(s, g, h)) return 0;
    for (int i = 0; i < c->n; i++) /* random draws repeat */
        if (!memcmp(c->g + (size_t)i * s->n_knobs, g, (size_t)s->n_knobs * sizeof(double)))
            return 0;
    c->n++;
    return 0;
}

enum { POOL_ENUMERATE_MAX = 4096, POOL_DRAWS = 2048 };

static int candidates(search *s, pool *c)
{
    memset(c, 0, sizeof(*c));
    c->s = s;
    int64_t size = aellm_space_enumerate(s->p->space, NULL, NULL);
    if (size > 0 && size <= POOL_ENUMERATE_MAX)
        return aellm_space_enumerate(s->p->space, pool_add, c) < 0 ? AELLM_ERROR : 0;
    double *g = malloc((size_t)s->n_knobs * sizeof(double));
    if (!g) return aellm_error_oom("candidates", 0);
    int rc = 0;
    for (int i = 0; !rc && i < POOL_DRAWS; i++) {
        random_point(s, g);
        rc = pool_add(g, c);
    }
    free(g);
    return rc;
}

/* Non-domination layer of each predicted-feasible candidate (0 = the
 * predicted front), -1 for predicted-infeasible ones. */
static int layers(search *s, const double *mean, int n, int *layer)
{
    double *f = malloc((size_t)(n ? n : 1) * (size_t)s->n_obj * sizeof(double));
    int *map = malloc((size_t)(n ? n : 1) * sizeof(int)),
        *idx = malloc((size_t)(n ? n : 1) * sizeof(int));
    if (!f || !map || !idx) {
        free(f), free(map), free(idx);
        return aellm_error_oom("candidate layers", 0);
    }
    int left = 0;
    for (int i = 0; i < n; i++) {
        aellm_objectives o = as_objectives(mean + (size_t)i * AELLM_OBJ_ALL);
        layer[i] = violation(s, &o) > 0 ? -1 : -2; /* -2: not yet layered */
        left += layer[i] == -2;
    }
    for (int l = 0; left > 0; l++) {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (layer[i] == -2) {
                aellm_objectives o = as_objectives(mean + (size_t)i * AELLM_OBJ_ALL);
                aellm_objectives_minimized(&o, f + (size_t)m * s->n_obj, s->n_obj);
                map[m++] = i;
            }
        int k = aellm_nondominated(idx, f, m, s->n_obj);
        if (k <= 0) break;
        for (int j = 0; j < k; j++) layer[map[idx[j]]] = l;
        left -= k;
    }
    free(f), free(map), free(idx);
    return 0;
}

typedef struct {
    int index, layer;
    double uncertainty;
} near;

static int by_layer_then_uncertainty(const void *a, const void *b)
{
    const near *x = a, *y = b;
    if (x->layer != y->layer) return x->layer - y->layer;
    return (x->uncertainty < y->uncertainty) - (x->uncertainty > y->uncertainty);
}

/* What a round has left after the predicted front: up to k_near candidates
 * from the predicted layers nearest the front (most uncertain first within a
 * layer), then up to k_explore random predicted-feasible ones; nothing
 * predicted infeasible is measured while a feasible candidate remains. */
static int near_front(search *s, int k_near, int k_explore)
{
    pool c;
    int rc = candidates(s, &c), n = c.n, done = 0;
    double *mean = malloc((size_t)(n ? n : 1) * AELLM_OBJ_ALL * 2 * sizeof(double));
    double *var = mean ? mean + (size_t)(n ? n : 1) * AELLM_OBJ_ALL : NULL;
    int *layer = malloc((size_t)(n ? n : 1) * sizeof(int));
    near *order = malloc((size_t)(n ? n : 1) * sizeof(*order));
    if (!rc && (!mean || !layer || !order)) rc = aellm_error_oom("near-front candidates", 0);
    if (!rc && n) rc = predict(s, c.g, n, mean, var);
    if (!rc && n) rc = layers(s, mean, n, layer);
    double lo[AELLM_OBJ_ALL], hi[AELLM_OBJ_ALL];
    if (!rc) rc = measured_range(s, lo, hi);
    int n_feasible = 0;
    for (int i = 0; !rc && i < n; i++) {
        order[i] = (near){i, layer[i] < 0 ? INT32_MAX : layer[i],
                          uncertainty(s, var + (size_t)i * AELLM_OBJ_ALL, lo, hi)};
        n_feasible += layer[i] >= 0;
    }
    if (!rc) qsort(order, (size_t)n, sizeof(*order), by_layer_then_uncertainty);
    int i = 0;
    for (; !rc && i < n && done < k_near; i++) {
        int got = measure(s, c.g + (size_t)order[i].index * s->n_knobs, "near front");
        if (got < 0) rc = got;
        done += got > 0;
    }
    /* exploration: random among the predicted-feasible candidates not taken */
    for (int e = 0, tries = 0; !rc && e < k_explore && tries < 4 * n + 8; tries++) {
        int lim = n_feasible > i ? n_feasible : n;
        if (lim <= i) break;
        int j = i + (int)(aellm_rng_u64(&s->rng) % (uint64_t)(lim - i));
        int got = measure(s, c.g + (size_t)order[j].index * s->n_knobs, "explore");
        if (got < 0) rc = got;
        e += got > 0;
        done += got > 0;
    }
    free(order);
    free(layer);
    free(mean);
    free(c.g);
    return rc < 0 ? rc : done;
}

/* ---- batched refinement ---- */

/* Measures the n taken points (batch_fn, else one after another) and adds
 * the measured ones in the batch's order. */
static int run_batch(search *s, const double *genes, int n, const char *phase)
{
    const aellm_search_params *p = s->p;
    aellm_objectives *o = calloc((size_t)n, sizeof(*o));
    int *status = calloc((size_t)n, sizeof(int)), rc = 0;
    if (!o || !status) rc = aellm_error_oom("a batch", 0);
    if (!rc && p->evaluate_batch) rc = p->evaluate_batch(p->user, genes, n, o, status);
    for (int i = 0; !rc && !p->evaluate_batch && i < n; i++) {
        int r = p->evaluate(p->user, genes + (size_t)i * s->n_knobs, &o[i]);
        if (r < 0) rc = r;
        status[i] = r;
    }
    for (int i = 0; !rc && i < n; i++) {
        if (status[i]) continue; /* unusable here: remembered, not spent */
        rc = add_point(s, genes + (size_t)i * s->n_knobs, &o[i], 1);
        if (!rc && p->progress) p->progress(s->n, p->budget, phase, p->progress_user);
    }
    free(o);
    free(status);
    return rc;
}

static int seed_batched(search *s, int n_seed, double *batch)
{
    const int B = s->p->batch;
    aellm_space_defaults(s->p->space, batch);
    aellm_error_clear();
    int rc = take(s, batch);
    if (rc == 1) rc = run_batch(s, batch, 1, "default");
    if (rc >= 0 && s->n == 0) {
        char why[400];
        snprintf(why, sizeof(why), "%s", aellm_error_last()[0] ? aellm_error_last() : "no reason");
        return aellm_error_set(
            AELLM_EINVAL, "search: the default configuration cannot be measured here (%s)", why);
    }
    for (int tries = 0; rc >= 0 && s->n < n_seed && tries < 100 * n_seed;) {
        int want = n_seed - s->n < B ? n_seed - s->n : B, got = 0;
        for (; got < want && tries < 100 * n_seed && rc >= 0; tries++) {
            random_point(s, batch + (size_t)got * s->n_knobs);
            rc = take(s, batch + (size_t)got * s->n_knobs);
            if (rc > 0) got++;
        }
        if (rc >= 0 && got) rc = run_batch(s, batch, got, "seed");
    }
    return rc < 0 ? rc : 0;
}

/* Index of the most uncertain of n points that is usable and not taken, or
 * -1; layer (may be NULL) ranks before uncertainty. */
static int most_uncertain(search *s, double *genes, int n, const int *layer)
{
    double *mean = malloc((size_t)n * AELLM_OBJ_ALL * 2 * sizeof(double) + 1);
    double *var = mean ? mean + (size_t)n * AELLM_OBJ_ALL : NULL;
    double lo[AELLM_OBJ_ALL], hi[AELLM_OBJ_ALL];
    int rc = mean ? measured_range(s, lo, hi) : aellm_error_oom("refinement", 0);
    if (!rc && n) rc = predict(s, genes, n, mean, var);
    int best = -1;
    double best_u = 0;
    for (int i = 0; !rc && i < n; i++) {
        double *g = genes + (size_t)i * s->n_knobs;
        char h[65];
        if ((layer && layer[i] < 0) || !fresh(s, g, h)) continue;
        double u = uncertainty(s, var + (size_t)i * AELLM_OBJ_ALL, lo, hi);
        int better = best < 0 || (layer && layer[i] < layer[best]) ||
                     ((!layer || layer[i] == layer[best]) && u > best_u);
        if (better) best = i, best_u = u;
    }
    free(mean);
    return rc < 0 ? rc : best;
}

/* The candidate of the predicted layer nearest the front, most uncertain
 * first (predicted-infeasible ones last), into g; 1 if there was one. */
static int nearest_layer(search *s, double *g)
{
    pool c;
    int rc = candidates(s, &c), n = c.n, *layer = NULL;
    double *mean = malloc((size_t)(n ? n : 1) * AELLM_OBJ_ALL * sizeof(double));
    if (!rc && !(layer = malloc((size_t)(n ? n : 1) * sizeof(int))))
        rc = aellm_error_oom("candidate layers", 0);
    if (!rc && !mean) rc = aellm_error_oom("candidate layers", 0);
    if (!rc && n) rc = predict(s, c.g, n, mean, NULL);
    if (!rc && n) rc = layers(s, mean, n, layer);
    for (int i = 0; !rc && i < n; i++)
        if (layer[i] < 0) layer[i] = INT32_MAX; /* infeasible: last, not never */
    int best = rc || !n ? -1 : most_uncertain(s, c.g, n, layer);
    if (best < 0 && !rc) rc = best < -1 ? best : 0;
    if (best >= 0) memcpy(g, c.g + (size_t)best * s->n_knobs, (size_t)s->n_knobs * sizeof(double));
    free(layer);
    free(mean);
    free(c.g);
    return rc < 0 ? rc : best >= 0;
}

/* A random point not taken, into g; 1 if one was found. */
static int random_untaken(search *s, double *g)
{
    char h[65];
    for (int tries = 0; tries < 1000; tries++) {
        random_point(s, g);
        if (fresh(s, g, h)) return 1;
    }
    return 0;
}

/* The next point to measure into g: the most uncertain predicted-front
 * member not yet taken, else the nearest layer's, else a random one. */
static int next_point(search *s, double *front, int n_front, double *g)
{
    int i = n_front ? most_uncertain(s, front, n_front, NULL) : -1;
    if (i < -1) return i;
    if (i >= 0) {
        memcpy(g, front + (size_t)i * s->n_knobs, (size_t)s->n_knobs * sizeof(double));
        return 1;
    }
    int rc = nearest_layer(s, g);
    return rc ? rc : random_untaken(s, g);
}

/* The point's predicted objectives believed as measured. */
static int believe(search *s, const double *g)
{
    if (s->n_lie == s->cap_lie) {
        int cap = s->cap_lie ? 2 * s->cap_lie : 8;
        double *q = realloc(s->lie_genes, (size_t)cap * s->n_knobs * sizeof(double));
        if (q) s->lie_genes = q;
        aellm_objectives *o = q ? realloc(s->lie_obj, (size_t)cap * sizeof(*o)) : NULL;
        if (!o) return aellm_error_oom("a batch's beliefs", 0);
        s->lie_obj = o;
        s->cap_lie = cap;
    }
    double mean[AELLM_OBJ_ALL];
    int rc = predict(s, g, 1, mean, NULL);
    if (rc) return rc;
    memcpy(s->lie_genes + (size_t)s->n_lie * s->n_knobs, g, (size_t)s->n_knobs * sizeof(double));
    s->lie_obj[s->n_lie++] = as_objectives(mean);
    return 0;
}

/* Chooses up to k points into batch, one after another (Kriging believer);
 * the explore share of them random. Returns how many. */
static int pick_batch(search *s, double *front, int n_front, int k, double *batch)
{
    int k_explore = (int)floor(k * s->p->explore + 0.5), n = 0, rc = 0;
    for (; !rc && n < k - k_explore; n++) {
        double *g = batch + (size_t)n * s->n_knobs;
        int got = next_point(s, front, n_front, g);
        if (got <= 0) {
            rc = got;
            break;
        }
        if ((rc = take(s, g)) < 0) break;
        rc = 0;
        if (n + 1 < k && !(rc = believe(s, g))) rc = train(s);
    }
    while (!rc && n < k && random_untaken(s, batch + (size_t)n * s->n_knobs)) {
        int got = take(s, batch + (size_t)n * s->n_knobs);
        if (got < 0) rc = got;
        n += got > 0;
    }
    s->n_lie = 0;
    return rc < 0 ? rc : n;
}

/* Rounds of one batch each until the budget is spent; *round counts them. */
static int refine_batched(search *s, double *batch, double **front, int *n_front, int *round)
{
    const aellm_search_params *p = s->p;
    int rc = 0;
    while (!rc && s->n < p->budget) {
        if ((rc = train(s))) break;
        free(*front);
        *front = NULL;
        if ((rc = search_predicted(s, (*round)++, front, n_front))) break;
        int k = p->budget - s->n < p->batch ? p->budget - s->n : p->batch;
        int n = pick_batch(s, *front, *n_front, k, batch);
        if (n <= 0) { /* nothing left to measure */
            rc = n;
            break;
        }
        rc = run_batch(s, batch, n, "refine");
    }
    return rc;
}

/* ---- the result ---- */

static int mark_front(search *s)
{
    int n = 0;
    int *map = malloc((size_t)s->n * sizeof(int) + 1),
        *idx = malloc((size_t)s->n * sizeof(int) + 1);
    double *f = malloc((size_t)s->n * (size_t)s->n_obj * sizeof(double) + 1);
    if (!map || !idx || !f) {
        free(map), free(idx), free(f);
        return aellm_error_oom("front", 0);
    }
    for (int i = 0; i < s->n; i++)
        if (s->pts[i].measured && s->pts[i].violation == 0) {
            aellm_objectives_minimized(&s->pts[i].obj, f + (size_t)n * s->n_obj, s->n_obj);
            map[n++] = i;
        }
    int m = n ? aellm_nondominated(idx, f, n, s->n_obj) : 0;
    for (int i = 0; i < m; i++) s->pts[map[idx[i]]].on_front = 1;
    free(map), free(idx), free(f);
    return m < 0 ? m : 0;
}

static void pick(const search *s, aellm_search_result *r)
{
    double lo[AELLM_OBJ_ALL], hi[AELLM_OBJ_ALL];
    aellm_objectives *o = malloc((size_t)s->n * sizeof(*o) + 1);
    int n = 0;
    for (int i = 0; o && i < s->n; i++)
        if (s->pts[i].measured) o[n++] = s->pts[i].obj;
    aellm_objectives_range(o, n, lo, hi);
    free(o);
    r->pick_index = -1;
    for (int i = 0; i < s->n; i++) {
        if (!s->pts[i].on_front) continue;
        double u = aellm_utility(&s->pts[i].obj, s->p->weights, lo, hi);
        if (r->pick_index < 0 || u > r->pick_utility) r->pick_index = i, r->pick_utility = u;
    }
    r->default_index = 0;
    r->efficiency = r->pick_index >= 0
                        ? aellm_efficiency_score(&s->pts[r->pick_index].obj, &s->pts[0].obj)
                        : NAN;
}

static void holdout(search *s, aellm_search_result *r)
{
    int n = 0;
    float *X = malloc((size_t)s->n * s->width * sizeof(float) + 1);
    float *y = malloc((size_t)s->n * sizeof(float) + 1);
    for (int k = 0; k < AELLM_OBJ_ALL; k++) r->r2[k] = NAN;
    for (int i = 0; X && i < s->n; i++)
        if (s->pts[i].measured && !encode(s, s->pts[i].genes, X + (size_t)n * s->width)) n++;
    for (int k = 0; X && y && n >= 12 && k < AELLM_OBJ_ALL; k++) {
        int j = 0;
        for (int i = 0; i < s->n && j < n; i++)
            if (s->pts[i].measured) y[j++] = (float)s->pts[i].obj.v[k];
        const aellm_surrogate *src = transferred(s, k);
        if (aellm_surrogate_holdout_r2_transfer(&r->r2[k], &s->p->surrogate, src, X, (size_t)n,
                                                s->width, y, 0.25, s->p->seed))
            r->r2[k] = NAN;
    }
    free(X);
    free(y);
}

/* ---- per-knob sensitivity (DESIGN.md §3, output) ---- */

/* The values a knob is tried at: every option, or 5 points across a
 * numeric range. */
static int knob_values(const aellm_knob_info *in, double *v)
{
    if (in->type == AELLM_KNOB_CATEGORICAL) {
        for (int o = 0; o < in->n_options; o++) v[o] = o;
        return in->n_options;
    }
    for (int i = 0; i < 5; i++) {
        double t = i / 4.0;
        v[i] = in->log_scale && in->lo > 0 ? in->lo * pow(in->hi / in->lo, t)
                                           : in->lo + t * (in->hi - in->lo);
        if (in->type == AELLM_KNOB_INTEGER) v[i] = floor(v[i] + 0.5);
    }
    return 5;
}

/* One knob around every measured point, predicted in one batch: for each
 * base with at least two valid values of the knob, the spread of each
 * predicted objective over them, normalised by the measured range, added
 * to sum; the count of such bases in *bases. */
static int knob_effect(search *s, int k, const double *lo, const double *hi, double *sum,
                       int *bases)
{
    aellm_knob_info in;
    aellm_space_knob(s->p->space, k, &in);
    double vals[64];
    int nv = knob_values(&in, vals), rows = 0, rc = 0;
    if (nv > 64) nv = 64;
    size_t cap = (size_t)s->n * (size_t)nv;
    double *g = malloc(cap * (size_t)s->n_knobs * sizeof(double) + 1);
    double *mean = malloc(cap * AELLM_OBJ_ALL * sizeof(double) + 1);
    int *first = malloc(((size_t)s->n + 1) * sizeof(int));
    if (!g || !mean || !first) rc = aellm_error_oom("sensitivity", 0);
    for (int i = 0; !rc && i < s->n; i++) {
        first[i] = rows;
        /* where the knob is inactive every value computes the same thing */
        if (!s->pts[i].measured || !aellm_space_is_active(s->p->space, s->pts[i].genes, k))
            continue;
        for (int v = 0; v < nv; v++) {
            double *row = g + (size_t)rows * s->n_knobs;
            memcpy(row, s->pts[i].genes, (size_t)s->n_knobs * sizeof(double));
            row[k] = vals[v];
            rows += usable(s, row);
        }
    }
    if (!rc) first[s->n] = rows;
    if (!rc && rows) rc = predict(s, g, rows, mean, NULL);
    for (int i = 0; !rc && i < s->n; i++) {
        int a = first[i], b = first[i + 1];
        if (b - a < 2) continue;
        (*bases)++;
        for (int j = 0; j < AELLM_OBJ_COUNT; j++) {
            double x0 = INFINITY, x1 = -INFINITY;
            for (int r = a; r < b; r++) {
                double x = mean[(size_t)r * AELLM_OBJ_ALL + j];
                x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1;
            }
            sum[j] += hi[j] > lo[j] ? (x1 - x0) / (hi[j] - lo[j]) : 0;
        }
    }
    free(g);
    free(mean);
    free(first);
    return rc;
}

/* For every applicable knob and objective, the mean of knob_effect over the
 * measured points: how much the objective moves when that knob alone
 * changes, in units of the measured range (NaN for knobs held fixed). */
static int sensitivity(search *s, aellm_search_result *r)
{
    double lo[AELLM_OBJ_ALL], hi[AELLM_OBJ_ALL];
    aellm_objectives *o = malloc((size_t)s->n * sizeof(*o) + 1);
    r->sensitivity = malloc((size_t)s->n_knobs * AELLM_OBJ_COUNT * sizeof(double));
    if (!o || !r->sensitivity) return free(o), aellm_error_oom("sensitivity", 0);
    int n = 0, rc = 0;
    for (int i = 0; i < s->n; i++)
        if (s->pts[i].measured) o[n++] = s->pts[i].obj;
    aellm_objectives_range(o, n, lo, hi);
    free(o);
    for (int k = 0; !rc && k < s->n_knobs; k++) {
        double sum[AELLM_OBJ_COUNT] = {0};
        int bases = 0;
        rc = knob_effect(s, k, lo, hi, sum, &bases);
        for (int j = 0; j < AELLM_OBJ_COUNT; j++)
            r->sensitivity[(size_t)k * AELLM_OBJ_COUNT + j] = bases ? sum[j] / bases : NAN;
    }
    return rc;
}

/* Predicted front members never measured join the result, marked. */
static int add_predicted(search *s, double *front, int n)
{
    double *mean = malloc((size_t)n * AELLM_OBJ_ALL * sizeof(double) + 1);
    int rc = mean ? predict(s, front, n, mean, NULL) : aellm_error_oom("predictions", 0);
    for (int i = 0; !rc && i < n; i++) {
        char h[65];
        double *g = front + (size_t)i * s->n_knobs;
        if (!fresh(s, g, h)) continue; /* the archive may hold repaired-away points */
        aellm_objectives o = as_objectives(mean + (size_t)i * AELLM_OBJ_ALL);
        if (!(rc = add_point(s, front + (size_t)i * s->n_knobs, &o, 0))) rc = remember(s, h);
    }
    free(mean);
    return rc;
}

static int setup(search *s, const aellm_search_params *p)
{
    memset(s, 0, sizeof(*s));
    s->p = p;
    s->n_obj = p->weights[AELLM_OBJ_TUNE] > 0 ? AELLM_OBJ_ALL : AELLM_OBJ_COUNT;
    s->n_knobs = aellm_space_n_knobs(p->space);
    aellm_rng_seed(&s->rng, p->seed);
    s->schema = calloc((size_t)s->n_knobs, sizeof(*s->schema));
    if (!s->schema) return aellm_error_oom("feature schema", 0);
    for (int k = 0; k < s->n_knobs; k++) {
        aellm_knob_info in;
        aellm_space_knob(p->space, k, &in);
        s->schema[k].kind = in.type == AELLM_KNOB_CATEGORICAL ? AELLM_FEATURE_CAT
                            : in.type == AELLM_KNOB_INTEGER   ? AELLM_FEATURE_INT
                                                              : AELLM_FEATURE_REAL;
        s->schema[k].n_options = in.n_options;
    }
    s->width = aellm_surrogate_row_width(s->schema, (size_t)s->n_knobs) +
               (size_t)(p->n_context > 0 ? p->n_context : 0);
    if (!(p->max_acc_drop >= 0 && p->max_acc_drop < 1))
        return aellm_error_set(AELLM_EINVAL, "search: max_acc_drop %g is not in [0, 1)",
                               p->max_acc_drop);
    if (p->n_context < 0 || (p->n_context > 0 && !p->context))
        return aellm_error_set(AELLM_EINVAL, "search: %d context features without values",
                               p->n_context);
    if (p->budget < 3 || !(p->evaluate || (p->evaluate_batch && p->batch > 0)) || !p->space)
        return aellm_error_set(AELLM_EINVAL,
                               "search: needs a space, an evaluator and a budget >= 3");
    if (p->batch < 0 || (p->evaluate_batch && p->batch < 1))
        return aellm_error_set(AELLM_EINVAL, "search: batch %d (a batch evaluator needs >= 1)",
                               p->batch);
    return 0;
}

static void teardown(search *s)
{
    for (int k = 0; k < AELLM_OBJ_ALL; k++) aellm_surrogate_free(s->model[k]);
    free(s->schema);
    free(s->seen);
    free(s->lie_genes);
    free(s->lie_obj);
}

void aellm_search_result_free(aellm_search_result *r)
{
    for (int i = 0; r && i < r->n_points; i++) free(r->points[i].genes);
    for (int k = 0; r && k < AELLM_OBJ_ALL; k++) aellm_surrogate_free(r->surrogates[k]);
    if (r) free(r->points), free(r->sensitivity);
}

int aellm_search_run(const aellm_search_params *p, aellm_search_result *out)
{
    memset(out, 0, sizeof(*out));
    search s;
    int rc = setup(&s, p);
    int n_seed = p->n_seed > 0 ? p->n_seed : p->budget / 3 > 8 ? p->budget / 3 : 8;
    if (n_seed > p->budget) n_seed = p->budget;
    double *front = NULL, *batch = NULL;
    int n_front = 0, rounds = p->refine_rounds, refines = p->batch > 0 || p->refine_rounds > 0;
    if (!rc && p->batch > 0 &&
        !(batch = malloc((size_t)p->batch * (size_t)s.n_knobs * sizeof(double) + 1)))
        rc = aellm_error_oom("a batch", 0);
    if (!rc) rc = p->batch > 0 ? seed_batched(&s, n_seed, batch) : seed_sample(&s, n_seed);
    if (!rc && p->batch > 0) {
        rounds = 0;
        rc = refine_batched(&s, batch, &front, &n_front, &rounds);
    }
    for (int round = 0; !rc && !p->batch && round < (p->refine_rounds > 0 ? p->refine_rounds : 1);
         round++) {
        int left = p->budget - s.n, rounds_left = p->refine_rounds - round;
        if ((rc = train(&s))) break;
        free(front);
        front = NULL;
        if ((rc = search_predicted(&s, round, &front, &n_front))) break;
        if (left <= 0 || p->refine_rounds <= 0) break;
        int k = (left + rounds_left - 1) / rounds_left;
        int k_explore = (int)floor(k * p->explore + 0.5);
        int got = refine(&s, front, n_front, k - k_explore);
        if (got < 0) rc = got;
        int more = rc ? 0 : near_front(&s, k - k_explore - got, k_explore);
        if (more < 0) rc = more;
        if (!rc && got + more < k) rc = explore(&s, k - got - more);
    }
    free(batch);
    if (!rc && refines) rc = train(&s);
    if (!rc && refines) {
        free(front);
        front = NULL;
        rc = search_predicted(&s, rounds, &front, &n_front);
    }
    out->evaluations = s.n;
    out->min_acc = s.min_acc;
    out->n_measured = s.n;
    if (!rc) holdout(&s, out);
    if (!rc) rc = mark_front(&s);
    if (!rc) pick(&s, out);
    if (!rc && refines) rc = sensitivity(&s, out);
    if (!rc && front) rc = add_predicted(&s, front, n_front);
    free(front);
    out->points = s.pts;
    out->n_points = s.n;
    for (int k = 0; !rc && refines && k < AELLM_OBJ_ALL; k++)
        out->surrogates[k] = s.model[k], s.model[k] = NULL;
    teardown(&s);
    if (rc) aellm_search_result_free(out), memset(out, 0, sizeof(*out));
    return rc;
}

int aellm_search_hypervolume(double *out, const aellm_search_point *pts, int n,
                             const double lo[AELLM_OBJ_COUNT], const double hi[AELLM_OBJ_COUNT])
{
    double *f = malloc((size_t)(n ? n : 1) * AELLM_OBJ_COUNT * sizeof(double));
    if (!f) return aellm_error_oom("hypervolume", 0);
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (!pts[i].measured || pts[i].violation > 0) continue;
        double x[AELLM_OBJ_COUNT];
        aellm_objectives_minimized(&pts[i].obj, x, AELLM_OBJ_COUNT);
        for (int k = 0; k < AELLM_OBJ_COUNT; k++) {
            /* minimised acc is -acc: its range is [-hi, -lo] */
            double a = k == AELLM_OBJ_ACC ? -hi[k] : lo[k], b = k == AELLM_OBJ_ACC ? -lo[k] : hi[k];
            f[(size_t)m * AELLM_OBJ_COUNT + k] = b > a ? (x[k] - a) / (b - a) : 0;
        }
        m++;
    }
    double ref[AELLM_OBJ_COUNT] = {1.1, 1.1, 1.1, 1.1};
    int rc = aellm_hypervolume(out, f, m, AELLM_OBJ_COUNT, ref);
    free(f);
    return rc;
}
