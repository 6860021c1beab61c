/* Genome bookkeeping for NSGA-II: a hash set of genomes (duplicate removal
 * and the evaluation cache) and the archive of non-dominated feasible
 * solutions. Genomes are canonical (nsga2_canonical), so equality is
 * equality of doubles. Not the search: see nsga2.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "optimize/nsga2_internal.h"

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A sum of independently mixed genes (the multiplies run in parallel, not
 * chained), finished by one full mix. Equality is checked on every hit, so
 * the hash only has to spread. */
uint64_t nsga2_genome_hash(const double *x, int n_genes)
{
    uint64_t h = (uint64_t)n_genes;
    for (int i = 0; i < n_genes; i++) {
        uint64_t b;
        memcpy(&b, &x[i], sizeof(b));
        h += (b ^ ((uint64_t)(i + 1) * 0x9e3779b97f4a7c15ull)) * 0xd6e8feb86659fd93ull;
    }
    return mix64(h);
}

int nsga2_table_init(nsga2_table *t, int expected)
{
    int cap = 16;
    while (cap < 2 * expected) cap *= 2;
    t->slot = malloc((size_t)cap * sizeof(int));
    t->hash = malloc((size_t)cap * sizeof(uint64_t));
    if (!t->slot || !t->hash) {
        nsga2_table_free(t);
        return aellm_error_oom("nsga2 genome table", (unsigned long long)cap * 12);
    }
    t->cap = cap;
    nsga2_table_clear(t);
    return 0;
}

void nsga2_table_free(nsga2_table *t)
{
    free(t->slot);
    free(t->hash);
    memset(t, 0, sizeof(*t));
}

void nsga2_table_clear(nsga2_table *t)
{
    memset(t->slot, 0xff, (size_t)t->cap * sizeof(int)); /* all -1 */
    t->count = 0;
}

int nsga2_table_find(const nsga2_table *t, const double *base, int n_genes, const double *x,
                     uint64_t h)
{
    const size_t mask = (size_t)t->cap - 1;
    for (size_t s = h & mask;; s = (s + 1) & mask) {
        int row = t->slot[s];
        if (row < 0) return -1;
        if (t->hash[s] == h &&
            memcmp(base + (size_t)row * n_genes, x, (size_t)n_genes * sizeof(double)) == 0)
            return row;
    }
}

static void place(nsga2_table *t, int row, uint64_t h)
{
    const size_t mask = (size_t)t->cap - 1;
    size_t s = h & mask;
    while (t->slot[s] >= 0) s = (s + 1) & mask;
    t->slot[s] = row;
    t->hash[s] = h;
    t->count++;
}

int nsga2_table_insert(nsga2_table *t, int row, uint64_t h)
{
    if (2 * (t->count + 1) > t->cap) {
        nsga2_table big = {0};
        int rc = nsga2_table_init(&big, t->cap);
        if (rc) return rc;
        for (int s = 0; s < t->cap; s++)
            if (t->slot[s] >= 0) place(&big, t->slot[s], t->hash[s]);
        nsga2_table_free(t);
        *t = big;
    }
    place(t, row, h);
    return 0;
}

static int cache_grow(aellm_nsga2 *g)
{
    int cap = g->c_cap ? 2 * g->c_cap : 4 * g->N;
    double *ge = realloc(g->c_genes, (size_t)cap * g->G * sizeof(double));
    if (ge) g->c_genes = ge;
    double *ob = realloc(g->c_objs, (size_t)cap * g->M * sizeof(double));
    if (ob) g->c_objs = ob;
    double *vi = realloc(g->c_viol, (size_t)cap * sizeof(double));
    if (vi) g->c_viol = vi;
    if (!ge || !ob || !vi)
        return aellm_error_oom("nsga2 evaluation cache", (unsigned long long)cap * (g->G + g->M));
    g->c_cap = cap;
    return 0;
}

/* The cache row holding genome x, appending it (objectives still to come)
 * when it is new. */
int nsga2_cache_put(aellm_nsga2 *g, const double *x, uint64_t h, int *row_out, int *is_new)
{
    int row = nsga2_table_find(&g->cache, g->c_genes, g->G, x, h);
    *is_new = row < 0;
    if (row < 0) {
        if (g->c_n == g->c_cap) {
            int rc = cache_grow(g);
            if (rc) return rc;
        }
        row = g->c_n;
        memcpy(g->c_genes + (size_t)row * g->G, x, (size_t)g->G * sizeof(double));
        int rc = nsga2_table_insert(&g->cache, row, h);
        if (rc) return rc;
        g->c_n++;
    }
    *row_out = row;
    return 0;
}

/* Forgets cache rows from keep_rows on (a failed evaluation's). */
int nsga2_cache_rebuild(aellm_nsga2 *g, int keep_rows)
{
    nsga2_table_clear(&g->cache);
    g->c_n = keep_rows;
    for (int r = 0; r < keep_rows; r++) {
        int rc = nsga2_table_insert(&g->cache, r,
                                    nsga2_genome_hash(g->c_genes + (size_t)r * g->G, g->G));
        if (rc) return rc;
    }
    return 0;
}

/* Offers a feasible solution: rejected when a member weakly dominates it
 * (an equal vector included), otherwise added and the members it weakly
 * dominates dropped. One pass suffices: the archive holds no two vectors
 * one of which weakly dominates the other, so no member can both dominate
 * the newcomer and be dominated by it. */
void nsga2_archive_offer(aellm_nsga2 *g, const double *x, const double *f)
{
    const int M = g->M, G = g->G, n = g->a_n;
    int first_out = -1;
    for (int a = 0; a < n; a++) {
        const double *q = g->a_objs + (size_t)a * M;
        int q_le = 1, f_le = 1;
        for (int k = 0; k < M; k++) q_le &= q[k] <= f[k], f_le &= f[k] <= q[k];
        if (q_le) return;
        if (f_le && first_out < 0) first_out = a;
    }
    int kept = n;
    if (first_out >= 0) {
        kept = first_out;
        for (int a = first_out; a < n; a++) {
            const double *q = g->a_objs + (size_t)a * M;
            int f_le = 1;
            for (int k = 0; k < M; k++) f_le &= f[k] <= q[k];
            if (f_le) continue;
            memcpy(g->a_objs + (size_t)kept * M, q, M * sizeof(double));
            memcpy(g->a_genes + (size_t)kept * G, g->a_genes + (size_t)a * G, G * sizeof(double));
            kept++;
        }
    }
    memcpy(g->a_objs + (size_t)kept * M, f, M * sizeof(double));
    memcpy(g->a_genes + (size_t)kept * G, x, G * sizeof(double));
    g->a_n = kept + 1;
}

/* Cuts an overflowing archive back to its capacity, keeping the members with
 * the largest crowding distance (the ends of the front always stay). */
void nsga2_archive_trim(aellm_nsga2 *g)
{
    const int M = g->M, G = g->G, n = g->a_n, cap = g->pr.archive_capacity;
    if (n <= cap) return;
    nsga2_pair *p = g->a_pairs;
    nsga2_sort_ws w = {.pairs = p};
    for (int a = 0; a < n; a++) g->a_idx[a] = a;
    nsga2_crowding_run(&w, g->a_crowd, g->a_objs, g->a_idx, n, M); /* one front */
    for (int a = 0; a < n; a++) p[a] = (nsga2_pair){-g->a_crowd[a], a};
    nsga2_pairs_sort(p, n);
    /* keep the first cap by crowding, in their archive order */
    for (int a = 0; a < n; a++) g->a_crowd[a] = 0;
    for (int a = 0; a < cap; a++) g->a_crowd[p[a].i] = 1;
    int kept = 0;
    for (int a = 0; a < n; a++) {
        if (g->a_crowd[a] == 0) continue;
        if (kept != a) {
            memcpy(g->a_objs + (size_t)kept * M, g->a_objs + (size_t)a * M, M * sizeof(double));
            memcpy(g->a_genes + (size_t)kept * G, g->a_genes + (size_t)a * G, G * sizeof(double));
        }
        kept++;
    }
    g->a_n = kept;
}
