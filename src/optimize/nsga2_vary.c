/* NSGA-II variation: random genomes, tournament selection, crossover (SBX as
 * in Deb's reference code for real genes, whole-stage exchange for the
 * others or for all), and mutation (polynomial for real genes, a step or a
 * resample for integers, another option for categoricals). Not the
 * generation loop: see nsga2.c. */
#include <math.h>
#include <string.h>

#include "optimize/nsga2_internal.h"

#define SBX_EPS 1e-14 /* parents closer than this are copied, as in Deb's code */

void nsga2_random_genome(aellm_nsga2 *g, double *x)
{
    for (int i = 0; i < g->G; i++) {
        const aellm_gene *e = &g->pb.genes[i];
        double u = nsga2_u01(&g->rng);
        if (e->kind == AELLM_GENE_REAL)
            x[i] = e->lo + u * (e->hi - e->lo);
        else if (e->kind == AELLM_GENE_INT)
            x[i] = e->lo + floor(u * (e->hi - e->lo + 1));
        else
            x[i] = floor(u * e->n_options);
    }
    nsga2_canonical(g, x);
}

/* Clamps every gene into its bounds and rounds the discrete ones, so that
 * equal genomes are equal bit for bit (and -0 is +0). */
void nsga2_canonical(const aellm_nsga2 *g, double *x)
{
    for (int i = 0; i < g->G; i++) {
        const aellm_gene *e = &g->pb.genes[i];
        double lo = e->lo, hi = e->hi, v = x[i];
        if (e->kind == AELLM_GENE_CAT) lo = 0, hi = e->n_options - 1;
        if (e->kind != AELLM_GENE_REAL) v = nearbyint(v);
        if (!(v >= lo)) v = lo; /* NaN goes to the lower bound */
        if (v > hi) v = hi;
        x[i] = v + 0.0;
    }
}

/* x^e: by squaring when e is a small whole number (eta + 1 usually is),
 * which is several times cheaper than pow() and just as deterministic. */
static inline double powe(double x, double e)
{
    if (e == (int)e && e >= 0 && e <= 64) {
        double r = 1.0;
        for (int n = (int)e; n; n >>= 1, x *= x)
            if (n & 1) r *= x;
        return r;
    }
    return pow(x, e);
}

/* x^(1/e): by square roots when e is a power of two (SBX's eta 15), else
 * pow(). */
static inline double roote(double x, double e)
{
    if (e == 16) return sqrt(sqrt(sqrt(sqrt(x))));
    if (e == 8) return sqrt(sqrt(sqrt(x)));
    if (e == 4) return sqrt(sqrt(x));
    if (e == 2) return sqrt(x);
    return pow(x, 1.0 / e);
}

/* Deb's bounded polynomial mutation (NSGA-II v1.1): the perturbation's
 * distribution shrinks towards the nearer bound so children stay inside. */
static double poly_mutate(aellm_rng *r, double y, double yl, double yu, double eta)
{
    if (!(yu > yl)) return y;
    double d1 = (y - yl) / (yu - yl), d2 = (yu - y) / (yu - yl);
    double u = nsga2_u01(r), p = 1.0 / (eta + 1.0), dq;
    if (u <= 0.5) {
        double val = 2.0 * u + (1.0 - 2.0 * u) * powe(1.0 - d1, eta + 1.0);
        dq = pow(val, p) - 1.0;
    } else {
        double val = 2.0 * (1.0 - u) + 2.0 * (u - 0.5) * powe(1.0 - d2, eta + 1.0);
        dq = 1.0 - pow(val, p);
    }
    y += dq * (yu - yl);
    return y < yl ? yl : (y > yu ? yu : y);
}

/* An integer moves one step (half the time) or jumps to another value. */
static double int_mutate(aellm_rng *r, double x, double lo, double hi)
{
    int span = (int)(hi - lo);
    if (span <= 0) return x;
    if (nsga2_u01(r) < 0.5) {
        double s = nsga2_u01(r) < 0.5 ? -1.0 : 1.0;
        if (x + s < lo || x + s > hi) s = -s;
        return x + s;
    }
    double v = lo + nsga2_below(r, span);
    return v >= x ? v + 1.0 : v;
}

static double cat_mutate(aellm_rng *r, double x, int n)
{
    if (n <= 1) return x;
    double v = nsga2_below(r, n - 1);
    return v >= x ? v + 1.0 : v;
}

static void mutate_gene(aellm_nsga2 *g, double *x, int i)
{
    const aellm_gene *e = &g->pb.genes[i];
    if (e->kind == AELLM_GENE_REAL)
        x[i] = poly_mutate(&g->rng, x[i], e->lo, e->hi, g->pr.eta_m);
    else if (e->kind == AELLM_GENE_INT)
        x[i] = int_mutate(&g->rng, x[i], e->lo, e->hi);
    else
        x[i] = cat_mutate(&g->rng, x[i], e->n_options);
}

void nsga2_mutate(aellm_nsga2 *g, double *x)
{
    for (int i = 0; i < g->G; i++)
        if (g->mut_rate[i] > 0 && nsga2_u01(&g->rng) < g->mut_rate[i]) mutate_gene(g, x, i);
}

/* Forces a change of one gene that can change: the way out of a duplicate
 * or a rejected child. */
void nsga2_mutate_one(aellm_nsga2 *g, double *x)
{
    if (g->n_mutable == 0) return;
    mutate_gene(g, x, g->mutable_gene[nsga2_below(&g->rng, g->n_mutable)]);
}

/* The crowded-comparison order: lower rank, then larger crowding, then a
 * coin. Rank already encodes constrained domination (a dominating member
 * always has the lower rank), so it need not be tested again. */
static int better(aellm_nsga2 *g, int a, int b)
{
    if (g->rank[a] != g->rank[b]) return g->rank[a] < g->rank[b];
    if (g->crowd[a] != g->crowd[b]) return g->crowd[a] > g->crowd[b];
    return nsga2_u01(&g->rng) < 0.5;
}

/* Tournament of size k over a shuffled deck of the population, so each member
 * enters the same number of tournaments (Deb's code does this for k = 2). */
int nsga2_select(aellm_nsga2 *g)
{
    const int N = g->N, k = g->pr.tournament;
    if (g->deck_pos + k > N) {
        for (int i = 0; i < N; i++) g->deck[i] = i;
        for (int i = N - 1; i > 0; i--) {
            int j = nsga2_below(&g->rng, i + 1), t = g->deck[i];
            g->deck[i] = g->deck[j];
            g->deck[j] = t;
        }
        g->deck_pos = 0;
    }
    int best = g->deck[g->deck_pos++];
    for (int t = 1; t < k; t++) {
        int c = g->deck[g->deck_pos++];
        if (better(g, c, best)) best = c;
    }
    return best;
}

/* Bounded SBX of one variable, Deb's formulation: the spread factor's
 * distribution is cut at each bound so both children stay feasible. */
static void sbx_gene(aellm_rng *r, double eta, double a, double b, double yl, double yu, double *c1,
                     double *c2)
{
    double y1 = a < b ? a : b, y2 = a < b ? b : a, u = nsga2_u01(r), e1 = eta + 1.0;
    double beta = 1.0 + 2.0 * (y1 - yl) / (y2 - y1);
    double alpha = 2.0 - 1.0 / powe(beta, eta + 1.0);
    double bq = u <= 1.0 / alpha ? roote(u * alpha, e1) : roote(1.0 / (2.0 - u * alpha), e1);
    double x1 = 0.5 * ((y1 + y2) - bq * (y2 - y1));
    beta = 1.0 + 2.0 * (yu - y2) / (y2 - y1);
    alpha = 2.0 - 1.0 / powe(beta, eta + 1.0);
    bq = u <= 1.0 / alpha ? roote(u * alpha, e1) : roote(1.0 / (2.0 - u * alpha), e1);
    double x2 = 0.5 * ((y1 + y2) + bq * (y2 - y1));
    x1 = x1 < yl ? yl : (x1 > yu ? yu : x1);
    x2 = x2 < yl ? yl : (x2 > yu ? yu : x2);
    if (nsga2_u01(r) <= 0.5)
        *c1 = x2, *c2 = x1;
    else
        *c1 = x1, *c2 = x2;
}

void nsga2_crossover(aellm_nsga2 *g, const double *p1, const double *p2, double *c1, double *c2)
{
    const int G = g->G;
    memcpy(c1, p1, (size_t)G * sizeof(double));
    memcpy(c2, p2, (size_t)G * sizeof(double));
    if (!(nsga2_u01(&g->rng) < g->pr.p_crossover)) return;
    /* One coin per stage: which parent each child takes the stage's
     * (non-SBX) genes from. 64 stages are plenty for a configuration. */
    uint64_t swap = 0;
    for (int s = 0; s < g->pb.n_stages && s < 64; s++)
        if (nsga2_u01(&g->rng) < 0.5) swap |= 1ull << s;
    for (int i = 0; i < G; i++) {
        const aellm_gene *e = &g->pb.genes[i];
        if (e->kind == AELLM_GENE_REAL && !g->pr.stage_crossover) {
            if (nsga2_u01(&g->rng) <= 0.5 && fabs(p1[i] - p2[i]) > SBX_EPS)
                sbx_gene(&g->rng, g->pr.eta_c, p1[i], p2[i], e->lo, e->hi, &c1[i], &c2[i]);
        } else if (swap >> (e->stage & 63) & 1) {
            c1[i] = p2[i];
            c2[i] = p1[i];
        }
    }
}
