/* NSGA-II internals shared by nsga2.c (the generation loop), nsga2_sort.c
 * (ranking), nsga2_vary.c (selection, crossover, mutation) and
 * nsga2_table.c (genome hashing, the evaluation cache and the archive).
 * Not a public interface. */
#ifndef AELLM_OPTIMIZE_NSGA2_INTERNAL_H
#define AELLM_OPTIMIZE_NSGA2_INTERNAL_H

#include <stdint.h>

#include "aellm/nsga2.h"
#include "core/rng.h"

/* Uniform double in [0, 1) with 53 bits (rng.h's f32 has only 24). */
static inline double nsga2_u01(aellm_rng *r)
{
    return (double)(aellm_rng_u64(r) >> 11) * 0x1p-53;
}

/* Uniform integer in [0, n), n >= 1. */
static inline int nsga2_below(aellm_rng *r, int n)
{
    return (int)(nsga2_u01(r) * n);
}

/* ---- ranking (nsga2_sort.c) ---- */

typedef struct {
    double v;
    int i;
} nsga2_pair;

/* Scratch for sorting up to `cap` points, allocated once per handle. */
typedef struct {
    int cap;
    int *count;       /* (cap + 1) */
    int *queue;       /* (cap + 1) points in front order, by index within a front */
    int *tmp;         /* (cap + 1) */
    int *prev, *tail; /* (cap + 1) each front a list, newest member at tail */
    nsga2_pair *pairs;
} nsga2_sort_ws;

int nsga2_sort_ws_init(nsga2_sort_ws *w, int cap);
void nsga2_sort_ws_free(nsga2_sort_ws *w);
/* Ranks n <= w->cap points; returns the number of fronts. Leaves in
 * w->queue the points ordered front by front (by index within a front). */
int nsga2_sort_run(nsga2_sort_ws *w, int *rank, const double *f, const double *v, int n, int m);
void nsga2_crowding_run(nsga2_sort_ws *w, double *out, const double *f, const int *idx, int n,
                        int m);
void nsga2_pairs_sort(nsga2_pair *p, int n); /* by v, then i, ascending */

/* ---- genome hash set (nsga2_table.c) ---- */

/* Open addressing over row indices of an external gene array, which is
 * passed to each call (it may move between calls). */
typedef struct {
    int *slot;      /* (cap) row index, -1 empty */
    uint64_t *hash; /* (cap) */
    int cap, count; /* cap a power of two, kept at most half full */
} nsga2_table;

uint64_t nsga2_genome_hash(const double *x, int n_genes);
int nsga2_table_init(nsga2_table *t, int expected);
void nsga2_table_free(nsga2_table *t);
void nsga2_table_clear(nsga2_table *t);
/* The row of base equal to x, or -1. */
int nsga2_table_find(const nsga2_table *t, const double *base, int n_genes, const double *x,
                     uint64_t h);
int nsga2_table_insert(nsga2_table *t, int row, uint64_t h); /* 0 or AELLM_ENOMEM */

/* ---- the handle ---- */

struct aellm_nsga2 {
    aellm_nsga2_problem pb;
    aellm_nsga2_params pr;
    int G, M, C, N;    /* genes, objectives, constraints, population */
    double *mut_rate;  /* (G) per-gene mutation probability */
    int *mutable_gene; /* (n_mutable) genes that can take another value */
    int n_mutable;
    aellm_rng rng;

    /* Parents in rows 0..N-1, children in N..2N-1, row 2N a spare child
     * (odd N); the next population is built in the *2 arrays and swapped. */
    double *genes, *objs, *viol; /* (2N+1, G), (2N, M), (2N) */
    int *rank;
    double *crowd;
    uint64_t *hash; /* (2N+1) genome hash, kept when dedup or cache need it */
    double *genes2, *objs2, *viol2;
    int *rank2;
    double *crowd2;
    uint64_t *hash2;
    int *fresh; /* (2N) row evaluated for the first time in this batch */
    int n_pop, n_front;
    double *cviol; /* (N, C) per-constraint violations from the evaluator */
    double *crowd_tmp;
    int *deck, deck_pos; /* tournament candidates: shuffled, each drawn once per pass */
    nsga2_sort_ws ws;
    nsga2_table seen; /* dedup: current parents and accepted children */

    nsga2_table cache; /* every genome evaluated, when pr.cache */
    double *c_genes, *c_objs, *c_viol;
    int c_n, c_cap;
    int *c_idx; /* (N) cache row of each evaluated row */

    double *a_genes, *a_objs, *a_viol, *a_crowd; /* archive, a_cap + N rows */
    int *a_idx;
    nsga2_pair *a_pairs;
    int a_n;

    int64_t n_evals, n_hits;
    int gen, inited;
};

/* nsga2_vary.c */
void nsga2_random_genome(aellm_nsga2 *g, double *x);
void nsga2_canonical(const aellm_nsga2 *g, double *x);
void nsga2_mutate(aellm_nsga2 *g, double *x);
void nsga2_mutate_one(aellm_nsga2 *g, double *x);
int nsga2_select(aellm_nsga2 *g);
void nsga2_crossover(aellm_nsga2 *g, const double *p1, const double *p2, double *c1, double *c2);

/* nsga2_table.c */
int nsga2_cache_put(aellm_nsga2 *g, const double *x, uint64_t h, int *row_out, int *is_new);
int nsga2_cache_rebuild(aellm_nsga2 *g, int keep_rows);
void nsga2_archive_offer(aellm_nsga2 *g, const double *x, const double *f);
void nsga2_archive_trim(aellm_nsga2 *g);

#endif
