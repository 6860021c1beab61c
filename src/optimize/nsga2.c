/* NSGA-II's generation loop (Deb et al. 2002): make N children by tournament,
 * crossover and mutation, evaluate them in one batch, keep the best N of
 * parents and children by rank and crowding distance. Also the handle, its
 * checks, the evaluation cache's use and the getters. Ranking is in
 * nsga2_sort.c, variation in nsga2_vary.c, genome tables in nsga2_table.c. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "optimize/nsga2_internal.h"

void aellm_nsga2_params_default(aellm_nsga2_params *p)
{
    *p = (aellm_nsga2_params){
        .pop_size = 100,
        .generations = 50,
        .p_crossover = 0.9,
        .eta_c = 15,
        .eta_m = 20,
        .stage_mutation = NULL,
        .tournament = 3,
        .stage_crossover = 0,
        .dedup = 1,
        .cache = 0,
        .validate_children = 1,
        .tries = 50,
        .archive_capacity = 1000,
        .seed = 1,
    };
}

/* ---- checks ---- */

static int check_gene(const aellm_gene *e, int i, int n_stages)
{
    if (e->stage < 0 || e->stage >= n_stages)
        return aellm_error_set(AELLM_EINVAL, "nsga2: gene %d: stage %d not in 0..%d", i, e->stage,
                               n_stages - 1);
    switch (e->kind) {
    case AELLM_GENE_REAL:
        if (!(isfinite(e->lo) && isfinite(e->hi) && e->lo <= e->hi))
            return aellm_error_set(AELLM_EINVAL, "nsga2: gene %d: bad bounds [%g, %g]", i, e->lo,
                                   e->hi);
        return 0;
    case AELLM_GENE_INT:
        if (!(e->lo <= e->hi && e->lo == floor(e->lo) && e->hi == floor(e->hi) &&
              e->hi - e->lo < 2147483647.0 && fabs(e->lo) < 1e15 && fabs(e->hi) < 1e15))
            return aellm_error_set(AELLM_EINVAL, "nsga2: gene %d: bad integer bounds [%g, %g]", i,
                                   e->lo, e->hi);
        return 0;
    case AELLM_GENE_CAT:
        if (e->n_options < 1)
            return aellm_error_set(AELLM_EINVAL, "nsga2: gene %d: %d options", i, e->n_options);
        return 0;
    default:
        return aellm_error_set(AELLM_EINVAL, "nsga2: gene %d: unknown kind %d", i, e->kind);
    }
}

static int check_problem(const aellm_nsga2_problem *pb)
{
    if (!pb->genes || pb->n_genes < 1 || pb->n_genes > (1 << 20))
        return aellm_error_set(AELLM_EINVAL, "nsga2: n_genes %d", pb->n_genes);
    if (pb->n_stages < 1 || pb->n_stages > 64)
        return aellm_error_set(AELLM_EINVAL, "nsga2: n_stages %d not in 1..64", pb->n_stages);
    if (pb->n_objectives < 1 || pb->n_objectives > 1024)
        return aellm_error_set(AELLM_EINVAL, "nsga2: n_objectives %d", pb->n_objectives);
    if (pb->n_constraints < 0 || pb->n_constraints > 1024)
        return aellm_error_set(AELLM_EINVAL, "nsga2: n_constraints %d", pb->n_constraints);
    if (!pb->evaluate) return aellm_error_set(AELLM_EINVAL, "nsga2: no evaluate callback");
    for (int i = 0; i < pb->n_genes; i++) {
        int rc = check_gene(&pb->genes[i], i, pb->n_stages);
        if (rc) return rc;
    }
    return 0;
}

static int check_params(const aellm_nsga2_params *p, int n_stages)
{
    if (p->pop_size < 2 || p->pop_size > (1 << 20))
        return aellm_error_set(AELLM_EINVAL, "nsga2: pop_size %d", p->pop_size);
    if (p->generations < 0)
        return aellm_error_set(AELLM_EINVAL, "nsga2: generations %d", p->generations);
    if (!(p->p_crossover >= 0 && p->p_crossover <= 1))
        return aellm_error_set(AELLM_EINVAL, "nsga2: p_crossover %g", p->p_crossover);
    if (!(p->eta_c >= 0 && p->eta_m >= 0))
        return aellm_error_set(AELLM_EINVAL, "nsga2: eta_c %g, eta_m %g", p->eta_c, p->eta_m);
    if (p->tournament < 1 || p->tournament > p->pop_size)
        return aellm_error_set(AELLM_EINVAL, "nsga2: tournament %d not in 1..pop_size",
                               p->tournament);
    if (p->tries < 0 || p->archive_capacity < 0 || p->archive_capacity > (1 << 24))
        return aellm_error_set(AELLM_EINVAL, "nsga2: tries %d, archive_capacity %d", p->tries,
                               p->archive_capacity);
    for (int s = 0; p->stage_mutation && s < n_stages; s++)
        if (!(p->stage_mutation[s] >= 0 && p->stage_mutation[s] <= 1))
            return aellm_error_set(AELLM_EINVAL, "nsga2: stage_mutation[%d] %g not in [0, 1]", s,
                                   p->stage_mutation[s]);
    return 0;
}

/* ---- the handle ---- */

static void *xcalloc(size_t n, size_t size, int *failed)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) *failed = 1;
    return p;
}

static void mutation_rates(aellm_nsga2 *g)
{
    g->n_mutable = 0;
    for (int i = 0; i < g->G; i++) {
        const aellm_gene *e = &g->pb.genes[i];
        g->mut_rate[i] = g->pr.stage_mutation ? g->pr.stage_mutation[e->stage] : 1.0 / (double)g->G;
        int varies = e->kind == AELLM_GENE_CAT ? e->n_options > 1 : e->hi > e->lo;
        if (varies) g->mutable_gene[g->n_mutable++] = i;
    }
}

int aellm_nsga2_new(aellm_nsga2 **out, const aellm_nsga2_problem *problem,
                    const aellm_nsga2_params *params)
{
    *out = NULL;
    int rc = check_problem(problem);
    if (!rc) rc = check_params(params, problem->n_stages);
    if (rc) return rc;
    aellm_nsga2 *g = calloc(1, sizeof(*g));
    if (!g) return aellm_error_oom("nsga2 handle", sizeof(*g));
    g->pb = *problem;
    g->pr = *params;
    g->G = problem->n_genes, g->M = problem->n_objectives, g->C = problem->n_constraints;
    g->N = params->pop_size;
    const size_t G = g->G, M = g->M, C = g->C, N2 = 2 * (size_t)g->N;
    const size_t A = g->pr.archive_capacity ? (size_t)g->pr.archive_capacity + g->N : 0;
    int failed = 0;
    g->mut_rate = xcalloc(G, sizeof(double), &failed);
    g->mutable_gene = xcalloc(G, sizeof(int), &failed);
    g->genes = xcalloc((N2 + 1) * G, sizeof(double), &failed);
    g->genes2 = xcalloc((N2 + 1) * G, sizeof(double), &failed);
    g->objs = xcalloc(N2 * M, sizeof(double), &failed);
    g->objs2 = xcalloc(N2 * M, sizeof(double), &failed);
    g->viol = xcalloc(N2, sizeof(double), &failed);
    g->viol2 = xcalloc(N2, sizeof(double), &failed);
    g->rank = xcalloc(N2, sizeof(int), &failed);
    g->rank2 = xcalloc(N2, sizeof(int), &failed);
    g->crowd = xcalloc(N2, sizeof(double), &failed);
    g->crowd2 = xcalloc(N2, sizeof(double), &failed);
    g->hash = xcalloc(N2 + 1, sizeof(uint64_t), &failed);
    g->hash2 = xcalloc(N2 + 1, sizeof(uint64_t), &failed);
    g->fresh = xcalloc(N2, sizeof(int), &failed);
    g->crowd_tmp = xcalloc(N2, sizeof(double), &failed);
    g->cviol = xcalloc((size_t)g->N * C, sizeof(double), &failed);
    g->deck = xcalloc((size_t)g->N, sizeof(int), &failed);
    g->c_idx = xcalloc((size_t)g->N, sizeof(int), &failed);
    g->a_genes = xcalloc(A * G, sizeof(double), &failed);
    g->a_objs = xcalloc(A * M, sizeof(double), &failed);
    g->a_viol = xcalloc(A, sizeof(double), &failed); /* stays 0: members are feasible */
    g->a_crowd = xcalloc(A, sizeof(double), &failed);
    g->a_idx = xcalloc(A, sizeof(int), &failed);
    g->a_pairs = xcalloc(A, sizeof(nsga2_pair), &failed);
    if (failed) {
        aellm_nsga2_free(g);
        return aellm_error_oom("nsga2 population", (unsigned long long)N2 * (G + M) * 16);
    }
    if ((rc = nsga2_sort_ws_init(&g->ws, (int)N2)) || (rc = nsga2_table_init(&g->seen, (int)N2)) ||
        (rc = nsga2_table_init(&g->cache, g->pr.cache ? 4 * g->N : 1))) {
        aellm_nsga2_free(g);
        return rc;
    }
    mutation_rates(g);
    aellm_rng_seed(&g->rng, g->pr.seed);
    *out = g;
    return 0;
}

void aellm_nsga2_free(aellm_nsga2 *g)
{
    if (!g) return;
    void *bufs[] = {g->mut_rate,  g->mutable_gene, g->genes,  g->genes2, g->objs,    g->objs2,
                    g->viol,      g->viol2,        g->rank,   g->rank2,  g->crowd,   g->crowd2,
                    g->crowd_tmp, g->cviol,        g->deck,   g->c_idx,  g->c_genes, g->c_objs,
                    g->c_viol,    g->a_genes,      g->a_objs, g->a_viol, g->a_crowd, g->a_idx,
                    g->a_pairs,   g->hash,         g->hash2,  g->fresh};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++) free(bufs[i]);
    nsga2_sort_ws_free(&g->ws);
    nsga2_table_free(&g->seen);
    nsga2_table_free(&g->cache);
    free(g);
}

/* ---- evaluation ---- */

/* Sums the positive violations of each of n rows; a NaN objective becomes
 * the worst finite value so that comparisons stay a strict order. */
static void finish_rows(const aellm_nsga2 *g, double *f, double *v, int n)
{
    for (int r = 0; r < n; r++) {
        double s = 0;
        for (int c = 0; c < g->C; c++) {
            double x = g->cviol[(size_t)r * g->C + c];
            s += x > 0 ? x : (x != x ? DBL_MAX : 0);
        }
        v[r] = s;
        for (int k = 0; k < g->M; k++)
            if (isnan(f[(size_t)r * g->M + k])) f[(size_t)r * g->M + k] = DBL_MAX;
    }
}

static int call_evaluate(aellm_nsga2 *g, const double *x, int n, double *f, double *v)
{
    if (n == 0) return 0;
    int rc = g->pb.evaluate(g->pb.user, x, n, f, g->C ? g->cviol : NULL);
    if (rc > 0) rc = aellm_error_set(AELLM_ERROR, "nsga2: evaluate returned %d", rc);
    if (rc) return rc;
    finish_rows(g, f, v, n);
    g->n_evals += n;
    return 0;
}

/* Offers the archive the newly evaluated rows that are in the first front of
 * the n rows just ranked. Skipping the others changes nothing: a row that
 * another evaluated feasible row dominates is also weakly dominated by some
 * archive member (that row, or what displaced it), so it would be refused. */
static void offer_fresh(aellm_nsga2 *g, int n)
{
    if (!g->pr.archive_capacity) return;
    for (int r = 0; r < n; r++)
        if (g->fresh[r] && g->rank[r] == 0 && g->viol[r] == 0)
            nsga2_archive_offer(g, g->genes + (size_t)r * g->G, g->objs + (size_t)r * g->M);
    nsga2_archive_trim(g);
}

/* Through the cache: genomes seen before (or earlier in this batch) are
 * answered from it; the new ones are evaluated in one call, in place in the
 * cache's rows. */
static int evaluate_cached(aellm_nsga2 *g, int start, int n)
{
    const int G = g->G, M = g->M, old = g->c_n;
    for (int r = 0; r < n; r++) {
        int is_new, rc = nsga2_cache_put(g, g->genes + (size_t)(start + r) * G, g->hash[start + r],
                                         &g->c_idx[r], &is_new);
        if (rc) return nsga2_cache_rebuild(g, old), rc;
        if (!is_new) g->n_hits++;
    }
    const int fresh = g->c_n - old;
    int rc = call_evaluate(g, g->c_genes + (size_t)old * G, fresh, g->c_objs + (size_t)old * M,
                           g->c_viol + old);
    if (rc) {
        nsga2_cache_rebuild(g, old);
        return rc;
    }
    for (int r = 0; r < n; r++) {
        memcpy(g->objs + (size_t)(start + r) * M, g->c_objs + (size_t)g->c_idx[r] * M,
               (size_t)M * sizeof(double));
        g->viol[start + r] = g->c_viol[g->c_idx[r]];
    }
    return 0;
}

/* Evaluates population rows start .. start + n - 1 (n <= N). */
static int evaluate_rows(aellm_nsga2 *g, int start, int n)
{
    if (g->pr.cache) return evaluate_cached(g, start, n);
    double *x = g->genes + (size_t)start * g->G, *f = g->objs + (size_t)start * g->M;
    int rc = call_evaluate(g, x, n, f, g->viol + start);
    if (rc) return rc;
    for (int r = 0; r < n; r++) g->fresh[start + r] = 1;
    return 0;
}

/* ---- environmental selection ---- */

static void copy_member(aellm_nsga2 *g, int to, int from)
{
    memcpy(g->genes2 + (size_t)to * g->G, g->genes + (size_t)from * g->G,
           (size_t)g->G * sizeof(double));
    memcpy(g->objs2 + (size_t)to * g->M, g->objs + (size_t)from * g->M,
           (size_t)g->M * sizeof(double));
    g->viol2[to] = g->viol[from];
    g->rank2[to] = g->rank[from];
    g->crowd2[to] = g->crowd[from];
    g->hash2[to] = g->hash[from];
}

static void swap_buffers(aellm_nsga2 *g)
{
    double *t;
    t = g->genes, g->genes = g->genes2, g->genes2 = t;
    t = g->objs, g->objs = g->objs2, g->objs2 = t;
    t = g->viol, g->viol = g->viol2, g->viol2 = t;
    t = g->crowd, g->crowd = g->crowd2, g->crowd2 = t;
    int *r = g->rank;
    g->rank = g->rank2, g->rank2 = r;
    uint64_t *h = g->hash;
    g->hash = g->hash2, g->hash2 = h;
}

/* Keeps the best `keep` of the n rows: whole fronts in rank order while they
 * fit, then the most spread-out members of the front that does not. Each
 * front's crowding is computed over the whole front, as Deb's code does. The
 * survivors are laid out by rank, then by crowding (largest first). */
static void select_survivors(aellm_nsga2 *g, int n, int keep)
{
    nsga2_sort_ws *w = &g->ws;
    nsga2_sort_run(w, g->rank, g->objs, g->viol, n, g->M);
    offer_fresh(g, n);
    const int *queue = w->queue; /* rows front by front */
    int taken = 0, n_front = 0;
    for (int s = 0; s < n && taken < keep;) {
        int e = s;
        while (e < n && g->rank[queue[e]] == g->rank[queue[s]]) e++;
        nsga2_crowding_run(w, g->crowd_tmp, g->objs, queue + s, e - s, g->M);
        nsga2_pair *p = w->pairs; /* free again after crowding */
        for (int a = 0; a < e - s; a++) {
            g->crowd[queue[s + a]] = g->crowd_tmp[a];
            p[a] = (nsga2_pair){-g->crowd_tmp[a], queue[s + a]};
        }
        nsga2_pairs_sort(p, e - s);
        for (int a = 0; a < e - s && taken < keep; a++) copy_member(g, taken++, p[a].i);
        if (s == 0) n_front = taken;
        s = e;
    }
    swap_buffers(g);
    g->n_pop = keep;
    g->n_front = n_front;
}

/* ---- generations ---- */

/* Repairs or re-draws a new genome until is_valid accepts it and (with
 * dedup) it is new to the `seen` set, at most `tries` times (then the last
 * one stays); records it there. random != 0 re-draws from scratch
 * (initialisation); a child is re-mutated one gene at a time first. */
static int settle(aellm_nsga2 *g, int row, int random)
{
    double *x = g->genes + (size_t)row * g->G;
    const int check = g->pb.is_valid && (random || g->pr.validate_children);
    uint64_t h = 0;
    int hashed = 0;
    for (int t = 0;; t++) {
        int ok = !check || g->pb.is_valid(g->pb.user, x);
        if (check) nsga2_canonical(g, x); /* a repair may have moved a gene */
        hashed = 0;
        if (ok && g->pr.dedup) {
            h = nsga2_genome_hash(x, g->G), hashed = 1;
            ok = nsga2_table_find(&g->seen, g->genes, g->G, x, h) < 0;
        }
        if (ok || t >= g->pr.tries) break;
        /* a child first moves one gene at a time (keeping most of what it
         * inherited); past half the tries it is drawn afresh */
        if (random || 2 * t >= g->pr.tries)
            nsga2_random_genome(g, x);
        else
            nsga2_mutate_one(g, x);
    }
    if (!g->pr.dedup && !g->pr.cache) return 0;
    g->hash[row] = hashed ? h : nsga2_genome_hash(x, g->G);
    if (!g->pr.dedup || nsga2_table_find(&g->seen, g->genes, g->G, x, g->hash[row]) >= 0)
        return 0; /* no dedup, or gave up: a duplicate stays */
    return nsga2_table_insert(&g->seen, row, g->hash[row]);
}

int aellm_nsga2_init(aellm_nsga2 *g, const double *seed_genes, int n_seed)
{
    if (n_seed < 0 || (n_seed > 0 && !seed_genes))
        return aellm_error_set(AELLM_EINVAL, "nsga2 init: %d seed genomes", n_seed);
    if (n_seed > g->N) n_seed = g->N;
    const int G = g->G;
    aellm_rng_seed(&g->rng, g->pr.seed);
    nsga2_table_clear(&g->seen);
    nsga2_cache_rebuild(g, 0);
    g->a_n = 0, g->n_evals = 0, g->n_hits = 0, g->gen = 0, g->inited = 0;
    for (int i = 0; i < g->N; i++) {
        double *x = g->genes + (size_t)i * G;
        int rc;
        if (i < n_seed) {
            /* given genomes are taken as they are, only put into bounds */
            memcpy(x, seed_genes + (size_t)i * G, (size_t)G * sizeof(double));
            nsga2_canonical(g, x);
            g->hash[i] = nsga2_genome_hash(x, G);
            rc = g->pr.dedup ? nsga2_table_insert(&g->seen, i, g->hash[i]) : 0;
        } else {
            nsga2_random_genome(g, x);
            rc = settle(g, i, 1);
        }
        if (rc) return rc;
    }
    int rc = evaluate_rows(g, 0, g->N);
    if (rc) return rc;
    select_survivors(g, g->N, g->N);
    g->inited = 1;
    return 0;
}

/* N children into rows N .. 2N-1 (the second child of an odd N's last pair
 * goes to the spare row 2N and is dropped). */
static int make_children(aellm_nsga2 *g)
{
    const int N = g->N, G = g->G;
    memset(g->fresh, 0, (size_t)N * sizeof(int)); /* parents were offered already */
    nsga2_table_clear(&g->seen);
    for (int i = 0; g->pr.dedup && i < N; i++) {
        int rc = nsga2_table_insert(&g->seen, i, g->hash[i]);
        if (rc) return rc;
    }
    g->deck_pos = N; /* reshuffle: positions changed since the last generation */
    for (int c = N; c < 2 * N; c += 2) {
        const int p1 = nsga2_select(g), p2 = nsga2_select(g);
        double *c1 = g->genes + (size_t)c * G, *c2 = c1 + G;
        nsga2_crossover(g, g->genes + (size_t)p1 * G, g->genes + (size_t)p2 * G, c1, c2);
        for (int k = 0; k < 2 && c + k < 2 * N; k++) {
            double *x = k ? c2 : c1;
            nsga2_mutate(g, x);
            nsga2_canonical(g, x);
            int rc = settle(g, c + k, 0);
            if (rc) return rc;
        }
    }
    return 0;
}

int aellm_nsga2_step(aellm_nsga2 *g)
{
    if (!g->inited) return aellm_error_set(AELLM_EINVAL, "nsga2 step: not initialised");
    int rc = make_children(g);
    if (!rc) rc = evaluate_rows(g, g->N, g->N);
    if (rc) return rc;
    select_survivors(g, 2 * g->N, g->N);
    g->gen++;
    return 0;
}

int aellm_nsga2_run(aellm_nsga2 *g)
{
    int rc = aellm_nsga2_init(g, NULL, 0);
    for (int t = 0; !rc && t < g->pr.generations; t++) rc = aellm_nsga2_step(g);
    return rc;
}

int aellm_nsga2_reevaluate(aellm_nsga2 *g)
{
    if (!g->inited) return aellm_error_set(AELLM_EINVAL, "nsga2 reevaluate: not initialised");
    nsga2_cache_rebuild(g, 0);
    g->a_n = 0;
    int rc = evaluate_rows(g, 0, g->N);
    if (rc) return rc;
    select_survivors(g, g->N, g->N);
    return 0;
}

/* ---- getters ---- */

void aellm_nsga2_population(const aellm_nsga2 *g, aellm_nsga2_set *out)
{
    *out =
        (aellm_nsga2_set){g->inited ? g->n_pop : 0, g->genes, g->objs, g->viol, g->rank, g->crowd};
}

void aellm_nsga2_front(const aellm_nsga2 *g, aellm_nsga2_set *out)
{
    aellm_nsga2_population(g, out);
    out->n = g->inited ? g->n_front : 0;
}

void aellm_nsga2_archive(const aellm_nsga2 *g, aellm_nsga2_set *out)
{
    *out = (aellm_nsga2_set){g->a_n, g->a_genes, g->a_objs, g->a_viol, NULL, NULL};
}

int64_t aellm_nsga2_evaluations(const aellm_nsga2 *g)
{
    return g->n_evals;
}

int64_t aellm_nsga2_cache_hits(const aellm_nsga2 *g)
{
    return g->n_hits;
}

int aellm_nsga2_generation(const aellm_nsga2 *g)
{
    return g->gen;
}
