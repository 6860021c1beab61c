/* Ranking for NSGA-II: constrained domination, non-dominated sorting (ENS-BS,
 * O(M N log N) for two objectives and far below Deb's O(M N^2) in practice
 * for more; infeasible points ranked by violation) and crowding distance.
 * Not the generation loop: see nsga2.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "optimize/nsga2_internal.h"

int aellm_nsga2_dominates(const double *fa, double va, const double *fb, double vb, int m)
{
    if (va > 0 || vb > 0) {
        if (va < vb) return 1;
        if (vb < va) return -1;
        return 0; /* equally infeasible: neither */
    }
    int a_better = 0, b_better = 0;
    for (int k = 0; k < m; k++) {
        if (fa[k] < fb[k])
            a_better = 1;
        else if (fb[k] < fa[k])
            b_better = 1;
    }
    return a_better == b_better ? 0 : (a_better ? 1 : -1);
}

int nsga2_sort_ws_init(nsga2_sort_ws *w, int cap)
{
    memset(w, 0, sizeof(*w));
    w->cap = cap;
    size_t c = (size_t)cap + 1;
    w->count = malloc(c * sizeof(int));
    w->queue = malloc(c * sizeof(int));
    w->tmp = malloc(c * sizeof(int));
    w->prev = malloc(c * sizeof(int));
    w->tail = malloc(c * sizeof(int));
    w->pairs = malloc(c * sizeof(nsga2_pair));
    if (!w->count || !w->queue || !w->tmp || !w->prev || !w->tail || !w->pairs) {
        nsga2_sort_ws_free(w);
        return aellm_error_oom("nsga2 sort scratch", (unsigned long long)c * 36);
    }
    return 0;
}

void nsga2_sort_ws_free(nsga2_sort_ws *w)
{
    free(w->count);
    free(w->tmp);
    free(w->prev);
    free(w->tail);
    free(w->queue);
    free(w->pairs);
    memset(w, 0, sizeof(*w));
}

/* Lexicographic order of objective vectors (then index): a point can only be
 * dominated by points before it. */
static int lex_less(const double *f, int m, int a, int b)
{
    const double *x = f + (size_t)a * m, *y = f + (size_t)b * m;
    for (int k = 0; k < m; k++)
        if (x[k] != y[k]) return x[k] < y[k];
    return a < b;
}

static void lex_sort(int *idx, int n, const double *f, int m, int *tmp)
{
    /* bottom-up merge sort: stable, no comparator context needed */
    for (int width = 1; width < n; width *= 2) {
        for (int lo = 0; lo < n; lo += 2 * width) {
            int mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
            int i = lo, j = mid, o = lo;
            while (i < mid && j < hi)
                tmp[o++] = lex_less(f, m, idx[j], idx[i]) ? idx[j++] : idx[i++];
            while (i < mid) tmp[o++] = idx[i++];
            while (j < hi) tmp[o++] = idx[j++];
        }
        memcpy(idx, tmp, (size_t)n * sizeof(int));
    }
}

/* q precedes p lexicographically; q dominates p iff no worse in every
 * objective and not equal. */
static int lex_dominates(const double *q, const double *p, int m)
{
    int equal = 1;
    for (int k = 0; k < m; k++) {
        if (q[k] > p[k]) return 0;
        equal &= q[k] == p[k];
    }
    return !equal;
}

/* Whether some member of front k dominates p. Members are scanned newest
 * first: lexicographic neighbours are the likeliest dominators. With two
 * objectives the newest member has the front's least f2, so it decides. */
static int front_dominates(const nsga2_sort_ws *w, const double *f, int m, int k, int p)
{
    const double *fp = f + (size_t)p * m;
    for (int q = w->tail[k]; q >= 0; q = w->prev[q]) {
        if (lex_dominates(f + (size_t)q * m, fp, m)) return 1;
        if (m == 2) return 0;
    }
    return 0;
}

/* Efficient non-dominated sort with binary search over fronts (Zhang, Tian,
 * Cheng, Jin 2015): in lexicographic order each point joins the first front
 * none of whose members dominates it; being dominated by front k implies
 * being dominated by front k-1, so the search is a bisection. Returns the
 * number of fronts. */
static int ens_sort(nsga2_sort_ws *w, int *rank, const double *f, int *idx, int n, int m)
{
    lex_sort(idx, n, f, m, w->tmp);
    int nf = 0;
    for (int a = 0; a < n; a++) {
        int p = idx[a], lo = 0, hi = nf; /* first front that does not dominate p */
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (front_dominates(w, f, m, mid, p))
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == nf) w->tail[nf++] = -1;
        w->prev[p] = w->tail[lo];
        w->tail[lo] = p;
        rank[p] = lo;
    }
    return nf;
}

int nsga2_sort_run(nsga2_sort_ws *w, int *rank, const double *f, const double *v, int n, int m)
{
    /* Feasible points rank among themselves by Pareto dominance; each is
     * better than every infeasible one, and infeasible ones form a chain by
     * violation, so each distinct violation value is one more front. */
    int nfeas = 0, ninf = 0;
    int *feas = w->queue, *inf = w->count;
    for (int i = 0; i < n; i++)
        if (!v || v[i] <= 0)
            feas[nfeas++] = i;
        else
            inf[ninf++] = i;
    int fronts = ens_sort(w, rank, f, feas, nfeas, m);
    if (ninf) {
        nsga2_pair *p = w->pairs;
        for (int a = 0; a < ninf; a++) p[a] = (nsga2_pair){v[inf[a]], inf[a]};
        nsga2_pairs_sort(p, ninf);
        for (int a = 0; a < ninf; a++) {
            if (a == 0 || p[a].v != p[a - 1].v) fronts++;
            rank[p[a].i] = fronts - 1;
        }
    }
    /* queue: points front by front, by index within a front (counting sort) */
    memset(w->count, 0, (size_t)(fronts + 1) * sizeof(int));
    for (int i = 0; i < n; i++) w->count[rank[i] + 1]++;
    for (int r = 0; r < fronts; r++) w->count[r + 1] += w->count[r];
    for (int i = 0; i < n; i++) w->queue[w->count[rank[i]]++] = i;
    return fronts;
}

int aellm_nsga2_sort(int *rank, const double *objectives, const double *violation, int n, int m)
{
    if (n < 0 || m < 1 || (n > 0 && (!rank || !objectives)))
        return aellm_error_set(AELLM_EINVAL, "nsga2 sort: bad arguments (n %d, m %d)", n, m);
    if (n == 0) return 0;
    nsga2_sort_ws w;
    int rc = nsga2_sort_ws_init(&w, n);
    if (rc) return rc;
    rc = nsga2_sort_run(&w, rank, objectives, violation, n, m);
    nsga2_sort_ws_free(&w);
    return rc;
}

static inline int pair_less(nsga2_pair a, nsga2_pair b)
{
    return a.v < b.v || (a.v == b.v && a.i < b.i);
}

static void insertion_sort(nsga2_pair *p, int n)
{
    for (int a = 1; a < n; a++) {
        nsga2_pair x = p[a];
        int b = a - 1;
        for (; b >= 0 && pair_less(x, p[b]); b--) p[b + 1] = p[b];
        p[b + 1] = x;
    }
}

static void sift_down(nsga2_pair *p, int root, int n)
{
    nsga2_pair x = p[root];
    for (int c; (c = 2 * root + 1) < n; root = c) {
        if (c + 1 < n && pair_less(p[c], p[c + 1])) c++;
        if (!pair_less(x, p[c])) break;
        p[root] = p[c];
    }
    p[root] = x;
}

static void heap_sort(nsga2_pair *p, int n)
{
    for (int r = n / 2 - 1; r >= 0; r--) sift_down(p, r, n);
    for (int e = n - 1; e > 0; e--) {
        nsga2_pair t = p[0];
        p[0] = p[e], p[e] = t;
        sift_down(p, 0, e);
    }
}

/* Merge sort (insertion-sorted runs of 16, then bottom-up merges through a
 * scratch buffer); heap sort in place if the buffer cannot be had. The order
 * is total (ties broken by index), so every path gives the same result. */
void nsga2_pairs_sort(nsga2_pair *p, int n)
{
    enum { RUN = 16, STACK = 512 };
    if (n <= RUN) return insertion_sort(p, n);
    nsga2_pair stack[STACK], *tmp = n <= STACK ? stack : malloc((size_t)n * sizeof(*tmp));
    if (!tmp) return heap_sort(p, n);
    for (int lo = 0; lo < n; lo += RUN) insertion_sort(p + lo, n - lo < RUN ? n - lo : RUN);
    nsga2_pair *src = p, *dst = tmp;
    for (int width = RUN; width < n; width *= 2) {
        for (int lo = 0; lo < n; lo += 2 * width) {
            int mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
            int i = lo, j = mid, o = lo;
            while (i < mid && j < hi) dst[o++] = pair_less(src[j], src[i]) ? src[j++] : src[i++];
            while (i < mid) dst[o++] = src[i++];
            while (j < hi) dst[o++] = src[j++];
        }
        nsga2_pair *t = src;
        src = dst, dst = t;
    }
    if (src != p) memcpy(p, src, (size_t)n * sizeof(*p));
    if (tmp != stack) free(tmp);
}

void nsga2_crowding_run(nsga2_sort_ws *w, double *out, const double *f, const int *idx, int n,
                        int m)
{
    if (n <= 2) {
        for (int a = 0; a < n; a++) out[a] = INFINITY;
        return;
    }
    for (int a = 0; a < n; a++) out[a] = 0;
    nsga2_pair *p = w->pairs;
    for (int k = 0; k < m; k++) {
        for (int a = 0; a < n; a++) p[a] = (nsga2_pair){f[(size_t)idx[a] * m + k], a};
        nsga2_pairs_sort(p, n);
        double lo = p[0].v, span = p[n - 1].v - lo;
        out[p[0].i] = out[p[n - 1].i] = INFINITY;
        if (!(span > 0)) continue; /* a flat objective says nothing about spacing */
        for (int a = 1; a < n - 1; a++) out[p[a].i] += (p[a + 1].v - p[a - 1].v) / span;
    }
}

int aellm_nsga2_crowding(double *out, const double *objectives, const int *idx, int n, int m)
{
    if (n < 0 || m < 1 || (n > 0 && (!out || !objectives || !idx)))
        return aellm_error_set(AELLM_EINVAL, "nsga2 crowding: bad arguments (n %d, m %d)", n, m);
    nsga2_sort_ws w = {0};
    w.pairs = malloc((size_t)(n ? n : 1) * sizeof(nsga2_pair));
    if (!w.pairs) return aellm_error_oom("nsga2 crowding", (unsigned long long)n * 16);
    nsga2_crowding_run(&w, out, objectives, idx, n, m);
    free(w.pairs);
    return 0;
}
