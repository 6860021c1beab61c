/* Benchmark problems (ZDT, DTLZ2, CONSTR, TNK, a discrete one) with their
 * true fronts, for testing and benchmarking the optimiser. Formulas from
 * Zitzler, Deb, Thiele 2000; Deb, Thiele, Laumanns, Zitzler 2002; Deb 2001
 * (CONSTR, TNK). Not part of any search. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aellm/indicators.h"
#include "aellm/problems.h"
#include "core/error.h"

#define PI 3.14159265358979323846

/* ---- genomes ---- */

#define UNIT                                                                                       \
    {                                                                                              \
        AELLM_GENE_REAL, 0, 0.0, 1.0, 0                                                            \
    }
static const aellm_gene unit30[30] = {UNIT, UNIT, UNIT, UNIT, UNIT, UNIT, UNIT, UNIT, UNIT, UNIT,
                                      UNIT, UNIT, UNIT, UNIT, UNIT, UNIT, UNIT, UNIT, UNIT, UNIT,
                                      UNIT, UNIT, UNIT, UNIT, UNIT, UNIT, UNIT, UNIT, UNIT, UNIT};
static const aellm_gene constr_genes[2] = {{AELLM_GENE_REAL, 0, 0.1, 1.0, 0},
                                           {AELLM_GENE_REAL, 0, 0.0, 5.0, 0}};
static const aellm_gene tnk_genes[2] = {{AELLM_GENE_REAL, 0, 0.0, PI, 0},
                                        {AELLM_GENE_REAL, 0, 0.0, PI, 0}};
/* 6 * 5 * 5 * 4 * 5 = 3,000 genomes over three stages. */
static const aellm_gene disc_genes[5] = {
    {AELLM_GENE_CAT, 0, 0, 0, 6}, {AELLM_GENE_CAT, 1, 0, 0, 5}, {AELLM_GENE_INT, 1, 0, 4, 0},
    {AELLM_GENE_CAT, 2, 0, 0, 4}, {AELLM_GENE_INT, 2, 0, 4, 0},
};

/* ---- objectives ---- */

static double zdt_g(const double *x, int n)
{
    double s = 0;
    for (int i = 1; i < n; i++) s += x[i];
    return 1.0 + 9.0 * s / (n - 1);
}

static int zdt1(void *u, const double *x, int n, double *f, double *v)
{
    (void)u, (void)v;
    for (int r = 0; r < n; r++, x += 30, f += 2) {
        double g = zdt_g(x, 30);
        f[0] = x[0];
        f[1] = g * (1.0 - sqrt(x[0] / g));
    }
    return 0;
}

static int zdt2(void *u, const double *x, int n, double *f, double *v)
{
    (void)u, (void)v;
    for (int r = 0; r < n; r++, x += 30, f += 2) {
        double g = zdt_g(x, 30), q = x[0] / g;
        f[0] = x[0];
        f[1] = g * (1.0 - q * q);
    }
    return 0;
}

static int zdt3(void *u, const double *x, int n, double *f, double *v)
{
    (void)u, (void)v;
    for (int r = 0; r < n; r++, x += 30, f += 2) {
        double g = zdt_g(x, 30), q = x[0] / g;
        f[0] = x[0];
        f[1] = g * (1.0 - sqrt(q) - q * sin(10.0 * PI * x[0]));
    }
    return 0;
}

static double zdt6_f1(double x)
{
    return 1.0 - exp(-4.0 * x) * pow(sin(6.0 * PI * x), 6);
}

/* f1's least value, where exp(-4x) sin^6(6 pi x) peaks: tan(6 pi x) = 9 pi. */
static double zdt6_f1_min(void)
{
    return zdt6_f1(atan(9.0 * PI) / (6.0 * PI));
}

static int zdt6(void *u, const double *x, int n, double *f, double *v)
{
    (void)u, (void)v;
    for (int r = 0; r < n; r++, x += 10, f += 2) {
        double s = 0;
        for (int i = 1; i < 10; i++) s += x[i];
        double g = 1.0 + 9.0 * pow(s / 9.0, 0.25), f1 = zdt6_f1(x[0]), q = f1 / g;
        f[0] = f1;
        f[1] = g * (1.0 - q * q);
    }
    return 0;
}

static int dtlz2(void *u, const double *x, int n, double *f, double *v)
{
    (void)u, (void)v;
    for (int r = 0; r < n; r++, x += 12, f += 3) {
        double g = 0;
        for (int i = 2; i < 12; i++) g += (x[i] - 0.5) * (x[i] - 0.5);
        double a = x[0] * PI / 2, b = x[1] * PI / 2;
        f[0] = (1 + g) * cos(a) * cos(b);
        f[1] = (1 + g) * cos(a) * sin(b);
        f[2] = (1 + g) * sin(a);
    }
    return 0;
}

/* CONSTR: g1 = x2 + 9 x1 >= 6, g2 = -x2 + 9 x1 >= 1. */
static int constr(void *u, const double *x, int n, double *f, double *v)
{
    (void)u;
    for (int r = 0; r < n; r++, x += 2, f += 2, v += 2) {
        f[0] = x[0];
        f[1] = (1.0 + x[1]) / x[0];
        v[0] = fmax(0.0, 6.0 - (x[1] + 9.0 * x[0]));
        v[1] = fmax(0.0, 1.0 - (9.0 * x[0] - x[1]));
    }
    return 0;
}

/* TNK: x1^2 + x2^2 - 1 - 0.1 cos(16 atan(x1 / x2)) >= 0,
 * (x1 - 0.5)^2 + (x2 - 0.5)^2 <= 0.5. */
static int tnk(void *u, const double *x, int n, double *f, double *v)
{
    (void)u;
    for (int r = 0; r < n; r++, x += 2, f += 2, v += 2) {
        f[0] = x[0];
        f[1] = x[1];
        double c1 = x[0] * x[0] + x[1] * x[1] - 1.0 - 0.1 * cos(16.0 * atan2(x[0], x[1]));
        double c2 = (x[0] - 0.5) * (x[0] - 0.5) + (x[1] - 0.5) * (x[1] - 0.5) - 0.5;
        v[0] = fmax(0.0, -c1);
        v[1] = fmax(0.0, c2);
    }
    return 0;
}

/* DISC: a discrete ZDT1. f1 is set by the first gene alone; the others only
 * add distance g, so the front is the 6 genomes with all other genes 0. */
static int disc(void *u, const double *x, int n, double *f, double *v)
{
    (void)u, (void)v;
    for (int r = 0; r < n; r++, x += 5, f += 2) {
        double m = (x[1] / 4 + x[2] / 4 + x[3] / 3 + x[4] / 4) / 4;
        double g = 1.0 + 9.0 * m, f1 = x[0] / 5;
        f[0] = f1;
        f[1] = g * (1.0 - sqrt(f1 / g));
    }
    return 0;
}

/* ---- the table ---- */

typedef struct {
    const char *name;
    const aellm_gene *genes;
    int n_genes, n_stages, m, c;
    aellm_nsga2_eval_fn fn;
} problem_def;

static const problem_def problems[] = {
    {"ZDT1", unit30, 30, 1, 2, 0, zdt1},   {"ZDT2", unit30, 30, 1, 2, 0, zdt2},
    {"ZDT3", unit30, 30, 1, 2, 0, zdt3},   {"ZDT6", unit30, 10, 1, 2, 0, zdt6},
    {"DTLZ2", unit30, 12, 1, 3, 0, dtlz2}, {"CONSTR", constr_genes, 2, 1, 2, 2, constr},
    {"TNK", tnk_genes, 2, 1, 2, 2, tnk},   {"DISC", disc_genes, 5, 3, 2, 0, disc},
};

static const problem_def *find(const char *name)
{
    for (size_t i = 0; i < sizeof(problems) / sizeof(problems[0]); i++)
        if (name && strcmp(problems[i].name, name) == 0) return &problems[i];
    aellm_error_set(AELLM_ENOTFOUND, "no benchmark problem '%s'", name ? name : "(null)");
    return NULL;
}

int aellm_problem_get(aellm_nsga2_problem *out, const char *name)
{
    const problem_def *d = find(name);
    if (!d) return AELLM_ENOTFOUND;
    *out = (aellm_nsga2_problem){d->genes, d->n_genes, d->n_stages, d->m, d->c, d->fn, NULL, NULL};
    return 0;
}

/* ---- true fronts ---- */

/* One point of a 2-objective front at parameter t in [0, 1]. */
static void front_point(const char *name, double t, double *p)
{
    if (!strcmp(name, "ZDT1"))
        p[0] = t, p[1] = 1 - sqrt(t);
    else if (!strcmp(name, "ZDT2"))
        p[0] = t, p[1] = 1 - t * t;
    else if (!strcmp(name, "ZDT3"))
        p[0] = t, p[1] = 1 - sqrt(t) - t * sin(10 * PI * t);
    else if (!strcmp(name, "ZDT6")) {
        /* f1 ranges over [min f1, 1]; min f1 = f1 at the first peak of sin^6 */
        const double lo = zdt6_f1_min(), f1 = lo + (1 - lo) * t;
        p[0] = f1, p[1] = 1 - f1 * f1;
    } else if (!strcmp(name, "CONSTR")) {
        /* g1 active (x2 = 6 - 9 x1) for x1 in [7/18, 2/3], then x2 = 0 */
        double x1 = 7.0 / 18.0 + (1.0 - 7.0 / 18.0) * t;
        p[0] = x1, p[1] = x1 < 2.0 / 3.0 ? (7.0 - 9.0 * x1) / x1 : 1.0 / x1;
    } else { /* TNK: the g1 boundary r(phi) = sqrt(1 + 0.1 cos 16 phi) */
        double phi = t * PI / 2, r = sqrt(1 + 0.1 * cos(16 * phi));
        p[0] = r * sin(phi), p[1] = r * cos(phi);
    }
}

static int sample_front(double *pts, const char *name, int n, int m)
{
    if (!strcmp(name, "DISC")) {
        for (int i = 0; i < 6; i++) pts[2 * i] = i / 5.0, pts[2 * i + 1] = 1 - sqrt(i / 5.0);
        return 6;
    }
    if (m == 3) { /* DTLZ2: the unit sphere's octant, a k x k angle grid */
        int k = (int)sqrt((double)n), c = 0;
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++, c++) {
                double a = PI / 2 * i / (k - 1), b = PI / 2 * j / (k - 1);
                pts[3 * c] = cos(a) * cos(b), pts[3 * c + 1] = cos(a) * sin(b);
                pts[3 * c + 2] = sin(a);
            }
        return c;
    }
    int c = 0;
    for (int i = 0; i < n; i++) {
        double *p = pts + 2 * c;
        front_point(name, n > 1 ? (double)i / (n - 1) : 0, p);
        if (!strcmp(name, "TNK") && (p[0] - .5) * (p[0] - .5) + (p[1] - .5) * (p[1] - .5) > .5)
            continue;
        c++;
    }
    return c;
}

int aellm_problem_front(double **out, int *n_out, const char *name, int n)
{
    *out = NULL, *n_out = 0;
    const problem_def *d = find(name);
    if (!d) return AELLM_ENOTFOUND;
    if (n < 6) return aellm_error_set(AELLM_EINVAL, "problem front: %d points", n);
    double *pts = malloc((size_t)n * d->m * sizeof(double));
    int *idx = malloc((size_t)n * sizeof(int));
    if (!pts || !idx) {
        free(pts), free(idx);
        return aellm_error_oom("problem front", (unsigned long long)n * 32);
    }
    int c = sample_front(pts, name, n, d->m), k = c;
    /* ZDT3's curve and TNK's boundary are only partly Pareto-optimal (the
     * sphere is all of DTLZ2's front) */
    if (d->m == 2)
        k = aellm_nondominated(idx, pts, c, d->m);
    else
        for (int i = 0; i < c; i++) idx[i] = i;
    for (int i = 0; i < k; i++)
        memmove(pts + (size_t)i * d->m, pts + (size_t)idx[i] * d->m, d->m * sizeof(double));
    free(idx);
    *out = pts, *n_out = k;
    return 0;
}

int aellm_problem_true_hv(double *out, const char *name)
{
    const problem_def *d = find(name);
    if (!d) return AELLM_ENOTFOUND;
    /* Area of [0, 1.1]^2 above the curve f2 = h(f1), plus the strip f1 in
     * [1, 1.1] which (1, 0) dominates. */
    if (!strcmp(name, "ZDT1")) return *out = 1.1 * 1.1 - 1.0 / 3.0, 0;
    if (!strcmp(name, "ZDT2")) return *out = 1.1 * 1.1 - 2.0 / 3.0, 0;
    if (!strcmp(name, "ZDT6")) {
        double a = zdt6_f1_min();
        return *out = 0.1 * (1 - a) + (1 - a * a * a) / 3 + 0.1 * 1.1, 0;
    }
    if (!strcmp(name, "DTLZ2")) return *out = 1.1 * 1.1 * 1.1 - PI / 6, 0;
    double *pts;
    int n, rc = aellm_problem_front(&pts, &n, name, 100000);
    if (rc) return rc;
    const double ref[3] = {1.1, 1.1, 1.1};
    rc = aellm_hypervolume(out, pts, n, d->m, ref);
    free(pts);
    return rc;
}
