/* Quality indicators: exact hypervolume (2-D sweep; 3-D sweep over the third
 * objective keeping the 2-D front as a staircase updated in place; higher
 * dimensions sliced along the last objective, HSO-style, down to 3-D), IGD,
 * and the non-dominated subset. Not an approximation anywhere: no sampling.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aellm/indicators.h"
#include "core/error.h"
#include "optimize/nsga2_internal.h"

typedef struct {
    double x, y;
} xy;

typedef struct {
    const double *p; /* (n, m) */
    int m;
    const double *ref;
    xy *stair; /* (n) the 2-D front, x ascending, y descending */
    int **sub; /* [d] (n) per-level index lists */
} hv_ctx;

#define P(c, i, k) ((c)->p[(size_t)(i) * (c)->m + (k)])

/* Adds (x, y) to the staircase of k points and returns the area it adds
 * inside the reference box. Points it weakly dominates leave. */
static double stair_insert(xy *s, int *k, double x, double y, double rx, double ry)
{
    int lo = 0, hi = *k; /* first index with s.x > x */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (s[mid].x <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo > 0 && s[lo - 1].y <= y) return 0; /* weakly dominated */
    int start = lo > 0 && s[lo - 1].x == x ? lo - 1 : lo;
    /* The added area: between x and the next surviving point, under the
     * staircase's height h (which drops at each point p removes). */
    double h = start > 0 ? s[start - 1].y : ry, cur = x, add = 0;
    int j = start;
    for (; j < *k && s[j].y >= y; j++) {
        add += (s[j].x - cur) * (h - y);
        h = s[j].y, cur = s[j].x;
    }
    add += ((j < *k ? s[j].x : rx) - cur) * (h - y);
    memmove(s + start + 1, s + j, (size_t)(*k - j) * sizeof(xy));
    s[start] = (xy){x, y};
    *k += 1 - (j - start);
    return add;
}

/* idx (n) sorted by objective 2 ascending. */
static double hv3(hv_ctx *c, const int *idx, int n)
{
    double area = 0, vol = 0;
    int k = 0;
    for (int i = 0; i < n; i++) {
        area += stair_insert(c->stair, &k, P(c, idx[i], 0), P(c, idx[i], 1), c->ref[0], c->ref[1]);
        double z = P(c, idx[i], 2), zn = i + 1 < n ? P(c, idx[i + 1], 2) : c->ref[2];
        vol += area * (zn - z);
    }
    return vol;
}

/* idx (n) sorted by objective d-1 ascending: the volume is the sum over the
 * slabs between consecutive values of objective d-1 of the (d-1)-volume of
 * the points below the slab, whose index list stays sorted by objective d-2
 * by insertion. */
static double hvd(hv_ctx *c, const int *idx, int n, int d)
{
    if (d == 3) return hv3(c, idx, n);
    int *sub = c->sub[d];
    double vol = 0;
    for (int i = 0; i < n; i++) {
        int q = idx[i], j = i;
        double v = P(c, q, d - 2);
        for (; j > 0 && P(c, sub[j - 1], d - 2) > v; j--) sub[j] = sub[j - 1];
        sub[j] = q;
        double z = P(c, q, d - 1), zn = i + 1 < n ? P(c, idx[i + 1], d - 1) : c->ref[d - 1];
        if (zn > z) vol += hvd(c, sub, i + 1, d - 1) * (zn - z);
    }
    return vol;
}

static double hv2(const double *p, nsga2_pair *order, int n, const double *ref)
{
    for (int i = 0; i < n; i++) order[i] = (nsga2_pair){p[2 * (size_t)i], i};
    nsga2_pairs_sort(order, n); /* by x; y decides nothing among equal x below */
    double area = 0, ybest = ref[1];
    for (int i = 0; i < n; i++) {
        double x = order[i].v, y = p[2 * (size_t)order[i].i + 1];
        if (y < ybest) area += (ref[0] - x) * (ybest - y), ybest = y;
    }
    return area;
}

static int hv_inside(const double *p, int m, const double *ref)
{
    for (int k = 0; k < m; k++)
        if (!(p[k] < ref[k])) return 0;
    return 1;
}

int aellm_hypervolume(double *out, const double *points, int n, int m, const double *ref)
{
    *out = 0;
    if (n < 0 || m < 1 || m > 16 || !ref || (n > 0 && !points))
        return aellm_error_set(AELLM_EINVAL, "hypervolume: bad arguments (n %d, m %d)", n, m);
    double *q = malloc((size_t)(n ? n : 1) * m * sizeof(double));
    nsga2_pair *order = malloc((size_t)(n ? n : 1) * sizeof(nsga2_pair));
    int *lists = malloc((size_t)(n ? n : 1) * (m + 1) * sizeof(int));
    xy *stair = malloc((size_t)(n ? n : 1) * sizeof(xy));
    int *sub[17] = {0};
    int rc = 0, k = 0;
    if (!q || !order || !lists || !stair) {
        rc = aellm_error_oom("hypervolume", (unsigned long long)n * (m + 4) * 8);
        goto done;
    }
    for (int i = 0; i < n; i++)
        if (hv_inside(points + (size_t)i * m, m, ref))
            memcpy(q + (size_t)k++ * m, points + (size_t)i * m, m * sizeof(double));
    if (k == 0) goto done;
    if (m == 1) {
        double lo = q[0];
        for (int i = 1; i < k; i++) lo = fmin(lo, q[i]);
        *out = ref[0] - lo;
    } else if (m == 2) {
        *out = hv2(q, order, k, ref);
    } else {
        for (int i = 0; i < k; i++) order[i] = (nsga2_pair){q[(size_t)i * m + m - 1], i};
        nsga2_pairs_sort(order, k);
        /* sub[d] is level d's own list (d >= 4); sub[0] holds the top order */
        for (int d = 0; d <= m; d++) sub[d] = lists + (size_t)d * k;
        for (int i = 0; i < k; i++) sub[0][i] = order[i].i;
        hv_ctx c = {q, m, ref, stair, sub};
        *out = hvd(&c, sub[0], k, m);
    }
done:
    free(q), free(order), free(lists), free(stair);
    return rc;
}

int aellm_igd(double *out, const double *ref_front, int n_ref, const double *points, int n, int m)
{
    *out = 0;
    if (n_ref < 1 || n < 1 || m < 1 || !ref_front || !points)
        return aellm_error_set(AELLM_EINVAL, "igd: bad arguments (n_ref %d, n %d, m %d)", n_ref, n,
                               m);
    double sum = 0;
    for (int r = 0; r < n_ref; r++) {
        const double *a = ref_front + (size_t)r * m;
        double best = INFINITY;
        for (int i = 0; i < n; i++) {
            const double *b = points + (size_t)i * m;
            double s = 0;
            for (int k = 0; k < m; k++) s += (a[k] - b[k]) * (a[k] - b[k]);
            best = fmin(best, s);
        }
        sum += sqrt(best);
    }
    *out = sum / n_ref;
    return 0;
}

/* 2-D in O(n log n): by x ascending (then y), a point is dominated when an
 * earlier one has a smaller y, or the same y at a smaller x. */
static int nondominated2(int *idx, const double *p, int n)
{
    nsga2_pair *o = malloc((size_t)n * sizeof(*o));
    if (!o) return -1;
    for (int i = 0; i < n; i++) o[i] = (nsga2_pair){p[2 * (size_t)i], i};
    nsga2_pairs_sort(o, n);
    /* equal x: order by y so the lower comes first */
    for (int s = 0, e; s < n; s = e) {
        for (e = s + 1; e < n && o[e].v == o[s].v;) e++;
        for (int a = s + 1; a < e; a++) {
            nsga2_pair t = o[a];
            int b = a - 1;
            for (; b >= s && p[2 * (size_t)o[b].i + 1] > p[2 * (size_t)t.i + 1]; b--)
                o[b + 1] = o[b];
            o[b + 1] = t;
        }
    }
    double ymin = INFINITY, x_at = INFINITY;
    for (int i = 0; i < n; i++) idx[i] = 0;
    for (int a = 0; a < n; a++) {
        double x = o[a].v, y = p[2 * (size_t)o[a].i + 1];
        idx[o[a].i] = !(ymin < y || (ymin == y && x_at < x));
        if (y < ymin) ymin = y, x_at = x;
    }
    free(o);
    int k = 0;
    for (int i = 0; i < n; i++)
        if (idx[i]) idx[k++] = i;
    return k;
}

int aellm_nondominated(int *idx, const double *points, int n, int m)
{
    if (n < 0 || m < 1 || (n > 0 && (!idx || !points)))
        return aellm_error_set(AELLM_EINVAL, "nondominated: bad arguments (n %d, m %d)", n, m);
    if (m == 2 && n > 0) {
        int k = nondominated2(idx, points, n);
        if (k >= 0) return k;
    }
    int k = 0;
    for (int i = 0; i < n; i++) {
        int dominated = 0;
        for (int j = 0; j < n && !dominated; j++)
            dominated = j != i && aellm_nsga2_dominates(points + (size_t)j * m, 0,
                                                        points + (size_t)i * m, 0, m) > 0;
        if (!dominated) idx[k++] = i;
    }
    return k;
}
