/* NSGA-II and the quality indicators against independent references written
 * here: hypervolume against inclusion-exclusion and closed forms, IGD by
 * hand, non-dominated sorting against an O(N^3) peeling, crowding distance
 * and constrained domination by hand; then the search itself on the ZDT and
 * DTLZ2 benchmarks (hypervolume ratio thresholds), constrained problems,
 * a discrete problem without repeated evaluations, stage crossover,
 * constraint-aware initialisation and determinism. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aellm/error.h"
#include "aellm/indicators.h"
#include "aellm/nsga2.h"
#include "aellm/problems.h"
#include "core/error.h"
#include "core/rng.h"

static double urand(aellm_rng *r)
{
    return (double)(aellm_rng_u64(r) >> 11) * 0x1p-53;
}

/* ---- hypervolume ---- */

/* Inclusion-exclusion over all subsets: the volume of a union of boxes
 * [p, ref] is the alternating sum of the volumes of their intersections. */
static double hv_reference(const double *p, int n, int m, const double *ref)
{
    int idx[16], k = 0;
    for (int i = 0; i < n; i++) {
        int in = 1;
        for (int j = 0; j < m; j++) in &= p[i * m + j] < ref[j];
        if (in) idx[k++] = i;
    }
    double total = 0;
    for (unsigned s = 1; s < (1u << k); s++) {
        double vol = 1;
        for (int j = 0; j < m; j++) {
            double hi = -INFINITY;
            for (int b = 0; b < k; b++)
                if (s >> b & 1) hi = fmax(hi, p[idx[b] * m + j]);
            vol *= ref[j] - hi;
        }
        total += __builtin_popcount(s) % 2 ? vol : -vol;
    }
    return total;
}

static void hv_equals_inclusion_exclusion(void **state)
{
    (void)state;
    aellm_rng r;
    aellm_rng_seed(&r, 11);
    double worst = 0;
    for (int m = 2; m <= 5; m++)
        for (int t = 0; t < 150; t++) {
            int n = 1 + (int)(urand(&r) * (m == 5 ? 9 : 12));
            double p[12 * 5], ref[5];
            /* a coarse grid makes ties and equal coordinates common; some
             * points fall outside the reference box */
            for (int i = 0; i < n * m; i++) p[i] = t % 2 ? floor(urand(&r) * 5) / 4 : urand(&r);
            for (int j = 0; j < m; j++) ref[j] = 0.9 + 0.2 * urand(&r);
            double got;
            assert_int_equal(aellm_hypervolume(&got, p, n, m, ref), 0);
            double want = hv_reference(p, n, m, ref);
            worst = fmax(worst, fabs(got - want));
            if (fabs(got - want) > 1e-12)
                fail_msg("m %d n %d trial %d: %.15g, reference %.15g", m, n, t, got, want);
        }
    print_message("hypervolume vs inclusion-exclusion: max |error| %.3g\n", worst);
}

static void hv_hand_and_analytic(void **state)
{
    (void)state;
    const double p[] = {1, 3, 2, 2, 3, 1, 3.5, 3.5, 5, 0}, ref[] = {4, 4, 4, 4};
    double hv;
    assert_int_equal(aellm_hypervolume(&hv, p, 5, 2, ref), 0);
    assert_float_equal(hv, 6.0, 1e-15); /* (3.5, 3.5) adds nothing, (5, 0) is outside */
    assert_int_equal(aellm_hypervolume(&hv, p, 0, 2, ref), 0);
    assert_float_equal(hv, 0.0, 0);
    assert_int_equal(aellm_hypervolume(&hv, p, 5, 0, ref), AELLM_EINVAL);

    /* Dense samples of the true fronts approach the closed forms from below
     * (a staircase under the curve). */
    const char *names[] = {"ZDT1", "ZDT2", "ZDT6", "DTLZ2"};
    const double closed[] = {1.21 - 1.0 / 3.0, 1.21 - 2.0 / 3.0, 0, 1.331 - M_PI / 6};
    const double tol[] = {2e-4, 2e-4, 2e-4, 0.03}, ref11[3] = {1.1, 1.1, 1.1};
    for (int i = 0; i < 4; i++) {
        double *front, want, got;
        int n, m = i == 3 ? 3 : 2;
        assert_int_equal(aellm_problem_front(&front, &n, names[i], 10000), 0);
        assert_int_equal(aellm_problem_true_hv(&want, names[i]), 0);
        if (closed[i] > 0) assert_float_equal(want, closed[i], 1e-12);
        assert_int_equal(aellm_hypervolume(&got, front, n, m, ref11), 0);
        print_message("%s: sampled front HV %.6f, closed form %.6f\n", names[i], got, want);
        assert_true(got <= want + 1e-12 && want - got < tol[i]);
        free(front);
    }
    /* ZDT6's closed form uses min f1 = 0.2807753191 (Zitzler et al.) */
    double z6;
    aellm_problem_true_hv(&z6, "ZDT6");
    const double a = 0.2807753191;
    assert_float_equal(z6, 0.1 * (1 - a) + (1 - a * a * a) / 3 + 0.11, 1e-9);
}

static void hv_fast_enough_for_hundreds(void **state)
{
    (void)state;
    /* 300 points on the 4-D sphere: exact, and checked against the sum of
     * the same set split in two by slicing (a different evaluation order) */
    aellm_rng r;
    aellm_rng_seed(&r, 3);
    enum { N = 300 };
    static double p[N * 4];
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int j = 0; j < 4; j++) p[i * 4 + j] = fabs(aellm_rng_normal(&r)) + 1e-3;
        for (int j = 0; j < 4; j++) s += p[i * 4 + j] * p[i * 4 + j];
        for (int j = 0; j < 4; j++) p[i * 4 + j] /= sqrt(s);
    }
    const double ref[4] = {1.1, 1.1, 1.1, 1.1};
    double hv, hv_rev;
    assert_int_equal(aellm_hypervolume(&hv, p, N, 4, ref), 0);
    /* the same points with objectives reversed: the volume must not change */
    static double q[N * 4];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < 4; j++) q[i * 4 + j] = p[i * 4 + 3 - j];
    assert_int_equal(aellm_hypervolume(&hv_rev, q, N, 4, ref), 0);
    print_message("4-D, 300 points: HV %.12f, objectives reversed %.12f\n", hv, hv_rev);
    assert_float_equal(hv, hv_rev, 1e-12);
    assert_true(hv > 1.1 * 1.1 * 1.1 * 1.1 - 1 && hv < 1.1 * 1.1 * 1.1 * 1.1);
}

/* ---- IGD and the non-dominated subset ---- */

static void igd_by_hand(void **state)
{
    (void)state;
    const double ref[] = {0, 1, 1, 0}, pts[] = {0, 2, 5, 5};
    double igd;
    assert_int_equal(aellm_igd(&igd, ref, 2, pts, 2, 2), 0);
    assert_float_equal(igd, (1 + sqrt(5)) / 2, 1e-15);
    assert_int_equal(aellm_igd(&igd, ref, 2, ref, 2, 2), 0);
    assert_float_equal(igd, 0, 0);
}

static int naive_dominates(const double *a, const double *b, int m)
{
    int strict = 0;
    for (int k = 0; k < m; k++) {
        if (a[k] > b[k]) return 0;
        strict |= a[k] < b[k];
    }
    return strict;
}

static void nondominated_subset(void **state)
{
    (void)state;
    aellm_rng r;
    aellm_rng_seed(&r, 5);
    for (int t = 0; t < 200; t++) {
        int m = 2 + t % 3, n = 1 + t % 60, idx[60], k = 0;
        double p[60 * 4];
        for (int i = 0; i < n * m; i++) p[i] = floor(urand(&r) * 6);
        int got = aellm_nondominated(idx, p, n, m);
        for (int i = 0; i < n; i++) {
            int dom = 0;
            for (int j = 0; j < n; j++) dom |= naive_dominates(p + j * m, p + i * m, m);
            if (!dom) {
                assert_true(k < got);
                assert_int_equal(idx[k], i);
                k++;
            }
        }
        assert_int_equal(got, k);
    }
}

/* ---- ranking ---- */

/* Constrained domination written out again. */
static int naive_cdom(const double *a, double va, const double *b, double vb, int m)
{
    if (va == 0 && vb == 0) return naive_dominates(a, b, m);
    if (va == 0) return 1;
    if (vb == 0) return 0;
    return va < vb;
}

/* O(N^3): a front is what no remaining point dominates; peel and repeat. */
static void naive_ranks(int *rank, const double *f, const double *v, int n, int m)
{
    int left = n;
    for (int i = 0; i < n; i++) rank[i] = -1;
    for (int r = 0; left > 0; r++) {
        int in[256] = {0};
        for (int i = 0; i < n; i++) {
            if (rank[i] >= 0) continue;
            int dom = 0;
            for (int j = 0; j < n && !dom; j++)
                dom = rank[j] < 0 && j != i && naive_cdom(f + j * m, v[j], f + i * m, v[i], m);
            in[i] = !dom;
        }
        for (int i = 0; i < n; i++)
            if (in[i]) rank[i] = r, left--;
    }
}

static void sort_matches_naive(void **state)
{
    (void)state;
    aellm_rng r;
    aellm_rng_seed(&r, 9);
    static double f[256 * 4], v[256];
    int got[256], want[256], trials = 0;
    const int sizes[] = {1, 2, 3, 17, 100, 200, 256};
    for (int m = 1; m <= 4; m++)
        for (int s = 0; s < 7; s++)
            for (int t = 0; t < 6; t++, trials++) {
                int n = sizes[s];
                /* t even: a coarse grid (ties, equal points); t % 3 == 0: some
                 * infeasible points with tied violations */
                for (int i = 0; i < n * m; i++) f[i] = t % 2 ? urand(&r) : floor(urand(&r) * 5);
                for (int i = 0; i < n; i++)
                    v[i] = t % 3 == 0 && urand(&r) < 0.3 ? 1 + floor(urand(&r) * 4) : 0;
                int nf = aellm_nsga2_sort(got, f, v, n, m);
                naive_ranks(want, f, v, n, m);
                int max_rank = 0;
                for (int i = 0; i < n; i++) {
                    if (got[i] != want[i])
                        fail_msg("m %d n %d trial %d: point %d rank %d, naive %d", m, n, t, i,
                                 got[i], want[i]);
                    max_rank = want[i] > max_rank ? want[i] : max_rank;
                }
                assert_int_equal(nf, max_rank + 1);
            }
    print_message("non-dominated sort equals the O(N^3) peeling on %d sets\n", trials);
}

static void crowding_by_hand(void **state)
{
    (void)state;
    /* x range 4, y range 5: (1,2): (3-0)/4 + (5-1)/5 = 1.55; (3,1): (4-1)/4 + (2-0)/5 = 1.15 */
    const double f[] = {0, 5, 3, 1, 1, 2, 4, 0};
    const int idx[] = {0, 1, 2, 3};
    double d[4];
    assert_int_equal(aellm_nsga2_crowding(d, f, idx, 4, 2), 0);
    assert_true(isinf(d[0]) && isinf(d[3]));
    assert_float_equal(d[2], 1.55, 1e-15);
    assert_float_equal(d[1], 1.15, 1e-15);
    /* a flat objective adds nothing; a subset through idx */
    const double g[] = {0, 1, 9, 9, 1, 1, 3, 1};
    const int sub[] = {0, 2, 3};
    assert_int_equal(aellm_nsga2_crowding(d, g, sub, 3, 2), 0);
    assert_true(isinf(d[0]) && isinf(d[2]));
    assert_float_equal(d[1], 1.0, 1e-15);
    assert_int_equal(aellm_nsga2_crowding(d, g, sub, 2, 2), 0);
    assert_true(isinf(d[0]) && isinf(d[1]));
}

static void constrained_domination(void **state)
{
    (void)state;
    const double a[] = {1, 1}, b[] = {2, 2}, c[] = {0, 3};
    assert_int_equal(aellm_nsga2_dominates(a, 0, b, 0, 2), 1);
    assert_int_equal(aellm_nsga2_dominates(b, 0, a, 0, 2), -1);
    assert_int_equal(aellm_nsga2_dominates(a, 0, c, 0, 2), 0);   /* incomparable */
    assert_int_equal(aellm_nsga2_dominates(a, 0, a, 0, 2), 0);   /* equal */
    assert_int_equal(aellm_nsga2_dominates(b, 0, a, 0.5, 2), 1); /* feasible beats infeasible */
    assert_int_equal(aellm_nsga2_dominates(a, 0.5, b, 0, 2), -1);
    assert_int_equal(aellm_nsga2_dominates(b, 0.2, a, 0.5, 2), 1); /* less violation */
    assert_int_equal(aellm_nsga2_dominates(a, 0.5, b, 0.2, 2), -1);
    assert_int_equal(aellm_nsga2_dominates(a, 0.5, b, 0.5, 2), 0); /* equally infeasible */
}

/* ---- the search ---- */

static aellm_nsga2 *run(const char *name, int gens, uint64_t seed, aellm_nsga2_params *pr_in)
{
    aellm_nsga2_problem pb;
    assert_int_equal(aellm_problem_get(&pb, name), 0);
    aellm_nsga2_params pr;
    if (pr_in)
        pr = *pr_in;
    else
        aellm_nsga2_params_default(&pr);
    pr.generations = gens;
    pr.seed = seed;
    aellm_nsga2 *g = NULL;
    assert_int_equal(aellm_nsga2_new(&g, &pb, &pr), 0);
    if (aellm_nsga2_run(g)) fail_msg("%s: %s", name, aellm_error_last());
    assert_int_equal(aellm_nsga2_generation(g), gens);
    return g;
}

static double hv_ratio(aellm_nsga2 *g, const char *name, int m)
{
    aellm_nsga2_set f;
    aellm_nsga2_front(g, &f);
    const double ref[3] = {1.1, 1.1, 1.1};
    double hv, true_hv;
    assert_int_equal(aellm_hypervolume(&hv, f.objectives, f.n, m, ref), 0);
    assert_int_equal(aellm_problem_true_hv(&true_hv, name), 0);
    return hv / true_hv;
}

/* Thresholds sit a little below the worst of seeds 1..30 with the default
 * parameters (mean / worst: ZDT1 0.849 / 0.797, ZDT3 0.857 / 0.768, DTLZ2
 * 0.844 / 0.801 at 100 x 50). ZDT2 and ZDT6 are not converged after 50
 * generations (ZDT2: 11 of 30 seeds still have no front point inside the
 * reference box, ratio 0; ZDT6 0.005 mean), so they are held to the budgets
 * where every seed has converged: ZDT2 100 x 150 (0.979 / 0.974), ZDT6
 * 100 x 200 (0.971 / 0.966). */
static void benchmarks_reach_hv(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int m, gens;
        double min_ratio;
    } cases[] = {
        {"ZDT1", 2, 50, 0.78},  {"ZDT2", 2, 150, 0.95}, {"ZDT3", 2, 50, 0.75},
        {"ZDT6", 2, 200, 0.95}, {"DTLZ2", 3, 50, 0.78},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        aellm_nsga2 *g = run(cases[i].name, cases[i].gens, 1, NULL);
        double ratio = hv_ratio(g, cases[i].name, cases[i].m);
        print_message("%s 100 x %d: HV ratio %.4f (threshold %.2f), %lld evaluations\n",
                      cases[i].name, cases[i].gens, ratio, cases[i].min_ratio,
                      (long long)aellm_nsga2_evaluations(g));
        assert_true(ratio >= cases[i].min_ratio);
        assert_true(ratio <= 1.0 + 1e-9);
        assert_int_equal(aellm_nsga2_evaluations(g), 100LL * (cases[i].gens + 1));
        aellm_nsga2_free(g);
    }
}

static void constrained_front_is_feasible(void **state)
{
    (void)state;
    const char *names[] = {"CONSTR", "TNK"};
    for (int i = 0; i < 2; i++) {
        aellm_nsga2 *g = run(names[i], 50, 2, NULL);
        aellm_nsga2_set f, a;
        aellm_nsga2_front(g, &f);
        aellm_nsga2_archive(g, &a);
        assert_true(f.n >= 20);
        /* evaluate the returned genomes again, here, to see each constraint */
        aellm_nsga2_problem pb;
        aellm_problem_get(&pb, names[i]);
        double obj[2], viol[2];
        for (int k = 0; k < f.n; k++) {
            assert_float_equal(f.violation[k], 0, 0);
            pb.evaluate(NULL, f.genes + 2 * k, 1, obj, viol);
            assert_true(viol[0] == 0 && viol[1] == 0);
        }
        for (int k = 0; k < a.n; k++) {
            pb.evaluate(NULL, a.genes + 2 * k, 1, obj, viol);
            assert_true(viol[0] == 0 && viol[1] == 0);
        }
        double *front, igd;
        int n;
        assert_int_equal(aellm_problem_front(&front, &n, names[i], 2000), 0);
        assert_int_equal(aellm_igd(&igd, front, n, f.objectives, f.n, 2), 0);
        print_message("%s: front %d, all feasible; archive %d; IGD %.4f\n", names[i], f.n, a.n,
                      igd);
        assert_true(igd < (i == 0 ? 0.05 : 0.02));
        free(front);
        aellm_nsga2_free(g);
    }
}

/* DISC wrapped to count evaluations per genome (mixed radix 6,5,5,4,5). */
typedef struct {
    int calls[3000];
    int batches, max_batch;
} disc_counter;

static int disc_counted(void *user, const double *x, int n, double *f, double *v)
{
    disc_counter *c = user;
    static const int radix[5] = {6, 5, 5, 4, 5};
    for (int r = 0; r < n; r++) {
        int id = 0;
        for (int i = 0; i < 5; i++) {
            double g = x[r * 5 + i];
            assert_true(g == floor(g) && g >= 0 && g < radix[i]);
            id = id * radix[i] + (int)g;
        }
        c->calls[id]++;
    }
    c->batches++;
    c->max_batch = n > c->max_batch ? n : c->max_batch;
    aellm_nsga2_problem pb;
    aellm_problem_get(&pb, "DISC");
    return pb.evaluate(NULL, x, n, f, v);
}

static void discrete_never_evaluates_twice(void **state)
{
    (void)state;
    aellm_nsga2_problem pb;
    assert_int_equal(aellm_problem_get(&pb, "DISC"), 0);
    disc_counter *c = calloc(1, sizeof(*c));
    pb.evaluate = disc_counted, pb.user = c;
    aellm_nsga2_params pr;
    aellm_nsga2_params_default(&pr);
    pr.cache = 1;
    pr.stage_mutation = (const double[]){0.1, 0.3, 0.1}; /* "fine-tuning" highest */
    aellm_nsga2 *g = NULL;
    assert_int_equal(aellm_nsga2_new(&g, &pb, &pr), 0);
    assert_int_equal(aellm_nsga2_run(g), 0);
    int distinct = 0, repeated = 0;
    for (int i = 0; i < 3000; i++) distinct += c->calls[i] > 0, repeated += c->calls[i] > 1;
    aellm_nsga2_set f;
    aellm_nsga2_front(g, &f);
    double *front, igd;
    int n;
    assert_int_equal(aellm_problem_front(&front, &n, "DISC", 6), 0);
    assert_int_equal(aellm_igd(&igd, front, n, f.objectives, f.n, 2), 0);
    print_message("DISC: %d genomes evaluated once each, %d repeated, %lld cache hits, %d "
                  "batches (largest %d); front %d, IGD %.4f\n",
                  distinct, repeated, (long long)aellm_nsga2_cache_hits(g), c->batches,
                  c->max_batch, f.n, igd);
    assert_int_equal(repeated, 0);
    assert_int_equal(aellm_nsga2_evaluations(g), distinct);
    assert_int_equal(aellm_nsga2_evaluations(g) + aellm_nsga2_cache_hits(g), 100 * 51);
    assert_int_equal(c->batches, 51);  /* one batch per generation */
    assert_float_equal(igd, 0, 1e-12); /* all 6 true points found */
    free(front);
    aellm_nsga2_free(g);
    free(c);
}

/* Genes that name their parent: 3 stages of 3 genes, each gene of member i
 * starts as i. Objectives are arbitrary but fixed per genome. */
static int parent_eval(void *user, const double *x, int n, double *f, double *v)
{
    (void)user, (void)v;
    for (int r = 0; r < n; r++) {
        double s = 0, t = 0;
        for (int i = 0; i < 9; i++) s += sin(x[r * 9 + i] * (i + 1)), t += cos(x[r * 9 + i] * i);
        f[2 * r] = s, f[2 * r + 1] = t;
    }
    return 0;
}

static void stage_crossover_keeps_blocks(void **state)
{
    (void)state;
    enum { N = 40 };
    aellm_gene genes[9];
    for (int i = 0; i < 9; i++)
        genes[i] =
            (aellm_gene){i % 3 == 2 ? AELLM_GENE_REAL : (i % 3 ? AELLM_GENE_INT : AELLM_GENE_CAT),
                         i / 3, 0, N - 1, N};
    aellm_nsga2_problem pb = {genes, 9, 3, 2, 0, parent_eval, NULL, NULL};
    static double seed[N * 9];
    for (int i = 0; i < N * 9; i++) seed[i] = i / 9;
    for (int mode = 0; mode < 2; mode++) {
        aellm_nsga2_params pr;
        aellm_nsga2_params_default(&pr);
        pr.pop_size = N, pr.p_crossover = 1.0, pr.stage_crossover = mode, pr.dedup = 0;
        pr.stage_mutation = (const double[]){0, 0, 0};
        aellm_nsga2 *g = NULL;
        assert_int_equal(aellm_nsga2_new(&g, &pb, &pr), 0);
        assert_int_equal(aellm_nsga2_init(g, seed, N), 0);
        int mixed = 0;
        for (int step = 0; step < 3; step++) {
            assert_int_equal(aellm_nsga2_step(g), 0);
            aellm_nsga2_set p;
            aellm_nsga2_population(g, &p);
            for (int k = 0; k < p.n; k++) {
                const double *x = p.genes + 9 * k;
                double ids[3];
                for (int s = 0; s < 3; s++) {
                    ids[s] = x[3 * s];
                    assert_float_equal(x[3 * s + 1], ids[s], 0); /* the block's discrete genes */
                    if (mode) assert_float_equal(x[3 * s + 2], ids[s], 0); /* and its real one */
                }
                mixed += ids[0] != ids[1] || ids[1] != ids[2];
            }
        }
        aellm_nsga2_set p;
        aellm_nsga2_population(g, &p);
        print_message("stage crossover (mode %d): every block from one parent; %d members mixed\n",
                      mode, mixed);
        assert_true(mixed > 0);
        aellm_nsga2_free(g);
    }
}

/* Accepts only x0 <= 0.3; the repair variant clamps x0 instead. */
static int reject_x0(void *user, double *x)
{
    (void)user;
    return x[0] <= 0.3;
}

static int repair_x0(void *user, double *x)
{
    (void)user;
    if (x[0] > 0.3) x[0] = 0.3;
    return 1;
}

static void constraint_aware_generation(void **state)
{
    (void)state;
    aellm_nsga2_problem pb;
    aellm_problem_get(&pb, "ZDT1");
    aellm_nsga2_params pr;
    aellm_nsga2_params_default(&pr);
    pr.tries = 100; /* 70 % of genomes are rejected: 0.7^50 per child to give up */
    for (int variant = 0; variant < 2; variant++) {
        pb.is_valid = variant ? repair_x0 : reject_x0;
        aellm_nsga2 *g = NULL;
        assert_int_equal(aellm_nsga2_new(&g, &pb, &pr), 0);
        assert_int_equal(aellm_nsga2_init(g, NULL, 0), 0);
        aellm_nsga2_set p;
        aellm_nsga2_population(g, &p);
        for (int k = 0; k < p.n; k++) assert_true(p.genes[30 * k] <= 0.3);
        for (int s = 0; s < 10; s++) assert_int_equal(aellm_nsga2_step(g), 0);
        aellm_nsga2_population(g, &p);
        int bad = 0;
        for (int k = 0; k < p.n; k++) bad += p.genes[30 * k] > 0.3;
        print_message("%s: %d of %d members outside x0 <= 0.3 after 10 generations\n",
                      variant ? "repair" : "reject", bad, p.n);
        assert_int_equal(bad, 0);
        aellm_nsga2_free(g);
    }
}

static void same_seed_same_result(void **state)
{
    (void)state;
    aellm_nsga2_params pr;
    aellm_nsga2_params_default(&pr);
    aellm_nsga2 *a = run("ZDT1", 20, 7, &pr), *b = run("ZDT1", 20, 7, &pr);
    pr.cache = 1; /* a cache answers exactly as the evaluator would */
    aellm_nsga2 *c = run("ZDT1", 20, 7, &pr);
    pr.cache = 0;
    aellm_nsga2 *d = run("ZDT1", 20, 8, &pr);
    aellm_nsga2_set pa, pb, pc, pd;
    aellm_nsga2_population(a, &pa), aellm_nsga2_population(b, &pb);
    aellm_nsga2_population(c, &pc), aellm_nsga2_population(d, &pd);
    assert_memory_equal(pa.genes, pb.genes, 100 * 30 * sizeof(double));
    assert_memory_equal(pa.objectives, pb.objectives, 100 * 2 * sizeof(double));
    assert_memory_equal(pa.genes, pc.genes, 100 * 30 * sizeof(double));
    assert_memory_not_equal(pa.genes, pd.genes, 100 * 30 * sizeof(double));
    aellm_nsga2_set fa, fb;
    aellm_nsga2_archive(a, &fa), aellm_nsga2_archive(b, &fb);
    assert_int_equal(fa.n, fb.n);
    assert_memory_equal(fa.objectives, fb.objectives, fa.n * 2 * sizeof(double));
    aellm_nsga2_free(a), aellm_nsga2_free(b), aellm_nsga2_free(c), aellm_nsga2_free(d);
}

static void population_and_archive_are_consistent(void **state)
{
    (void)state;
    aellm_nsga2 *g = run("ZDT3", 50, 4, NULL);
    aellm_nsga2_set p, f, a;
    aellm_nsga2_population(g, &p);
    aellm_nsga2_front(g, &f);
    aellm_nsga2_archive(g, &a);
    assert_int_equal(p.n, 100);
    /* the population is ordered by rank, then crowding; ranks are a sort's */
    int ranks[100];
    aellm_nsga2_sort(ranks, p.objectives, p.violation, p.n, 2);
    for (int k = 0; k < p.n; k++) {
        assert_int_equal(p.rank[k], ranks[k]);
        assert_true(k == 0 || p.rank[k] > p.rank[k - 1] ||
                    (p.rank[k] == p.rank[k - 1] && p.crowding[k] <= p.crowding[k - 1]));
        assert_int_equal(k < f.n, p.rank[k] == 0);
    }
    /* the archive is mutually non-dominated and covers the final front */
    assert_true(a.n > 0 && a.n < 1000);
    for (int i = 0; i < a.n; i++)
        for (int j = 0; j < a.n; j++)
            assert_false(naive_dominates(a.objectives + 2 * j, a.objectives + 2 * i, 2));
    for (int k = 0; k < f.n; k++) {
        int covered = 0;
        for (int j = 0; j < a.n && !covered; j++)
            covered = a.objectives[2 * j] <= f.objectives[2 * k] &&
                      a.objectives[2 * j + 1] <= f.objectives[2 * k + 1];
        assert_true(covered);
    }
    print_message("ZDT3: front %d, archive %d\n", f.n, a.n);
    /* evaluating the same population again changes nothing but the count */
    int64_t before = aellm_nsga2_evaluations(g);
    assert_int_equal(aellm_nsga2_reevaluate(g), 0);
    assert_int_equal(aellm_nsga2_evaluations(g), before + 100);
    aellm_nsga2_free(g);
}

static int failing_eval(void *user, const double *x, int n, double *f, double *v)
{
    (void)user, (void)x, (void)n, (void)f, (void)v;
    return aellm_error_set(AELLM_EIO, "evaluator failed");
}

static void errors_are_reported(void **state)
{
    (void)state;
    aellm_nsga2_problem pb;
    aellm_problem_get(&pb, "ZDT1");
    aellm_nsga2_params pr;
    aellm_nsga2_params_default(&pr);
    aellm_nsga2 *g = NULL;
    pr.tournament = 101;
    assert_int_equal(aellm_nsga2_new(&g, &pb, &pr), AELLM_EINVAL);
    assert_non_null(strstr(aellm_error_last(), "tournament"));
    assert_null(g);
    aellm_nsga2_params_default(&pr);
    aellm_gene bad = {AELLM_GENE_INT, 0, 0.5, 3, 0};
    aellm_nsga2_problem pbad = {&bad, 1, 1, 2, 0, pb.evaluate, NULL, NULL};
    assert_int_equal(aellm_nsga2_new(&g, &pbad, &pr), AELLM_EINVAL);
    assert_non_null(strstr(aellm_error_last(), "gene 0"));
    pb.evaluate = failing_eval;
    assert_int_equal(aellm_nsga2_new(&g, &pb, &pr), 0);
    assert_int_equal(aellm_nsga2_step(g), AELLM_EINVAL); /* not initialised */
    assert_int_equal(aellm_nsga2_run(g), AELLM_EIO);
    assert_non_null(strstr(aellm_error_last(), "evaluator failed"));
    aellm_nsga2_free(g);
    pr.cache = 1; /* the failed batch leaves the cache as it was */
    assert_int_equal(aellm_nsga2_new(&g, &pb, &pr), 0);
    assert_int_equal(aellm_nsga2_run(g), AELLM_EIO);
    assert_int_equal(aellm_nsga2_evaluations(g), 0);
    aellm_nsga2_free(g);
    aellm_nsga2_free(NULL);
    assert_int_equal(aellm_problem_get(&pb, "ZDT9"), AELLM_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hv_equals_inclusion_exclusion),
        cmocka_unit_test(hv_hand_and_analytic),
        cmocka_unit_test(hv_fast_enough_for_hundreds),
        cmocka_unit_test(igd_by_hand),
        cmocka_unit_test(nondominated_subset),
        cmocka_unit_test(sort_matches_naive),
        cmocka_unit_test(crowding_by_hand),
        cmocka_unit_test(constrained_domination),
        cmocka_unit_test(benchmarks_reach_hv),
        cmocka_unit_test(constrained_front_is_feasible),
        cmocka_unit_test(discrete_never_evaluates_twice),
        cmocka_unit_test(stage_crossover_keeps_blocks),
        cmocka_unit_test(constraint_aware_generation),
        cmocka_unit_test(same_seed_same_result),
        cmocka_unit_test(population_and_archive_are_consistent),
        cmocka_unit_test(errors_are_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
