/* Static plots of one two-objective front (--svg, --png): every dataset's
 * points, its 2-D Pareto front as a step line, the pick (star), the default
 * (diamond) and the baselines' picks (triangles, labelled), axes with ticks
 * and units, a legend. One drawing function for both surfaces (cairo); the
 * interactive views are the explorer's, not this file's. */
#include <cairo-svg.h>
#include <cairo.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "report/report_internal.h"

/* The explorer's palette (explorer.js), so that a dataset keeps its colour. */
static const double palette[][3] = {
    {0.122, 0.467, 0.706}, {0.850, 0.373, 0.008}, {0.173, 0.627, 0.173}, {0.839, 0.153, 0.157},
    {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294}, {0.890, 0.467, 0.761}, {0.090, 0.745, 0.812},
};
#define N_COLOURS (sizeof(palette) / sizeof(palette[0]))
#define LEGEND_W  250.0

typedef struct {
    double lo[2], hi[2];             /* data range, x then y (log10 of it on a log axis) */
    int log[2];                      /* a log axis: the data span more than LOG_SPAN */
    double left, right, top, bottom; /* plot area, device units */
    const aellm_report_plot *p;
} frame;

typedef struct {
    double x, y;
} xy;

/* Positive data spanning more than this ratio go on a log axis (the
 * explorer's rule too): a run here overlaid on an A100 prediction spans
 * decades, and a linear axis squeezes one of them into a corner. */
#define LOG_SPAN 50.0

static double axis_value(const frame *f, int k, double v)
{
    return f->log[k] ? log10(v) : v;
}

static double to_px(const frame *f, double v)
{
    return f->left +
           (axis_value(f, 0, v) - f->lo[0]) / (f->hi[0] - f->lo[0]) * (f->right - f->left);
}

static double to_py(const frame *f, double v)
{
    return f->bottom -
           (axis_value(f, 1, v) - f->lo[1]) / (f->hi[1] - f->lo[1]) * (f->bottom - f->top);
}

static int point_xy(const cJSON *pt, const aellm_report_plot *p, xy *out)
{
    return report_point_value(pt, p->x, &out->x) && report_point_value(pt, p->y, &out->y);
}

/* Where a baseline's pick lies: its point when the search kept it, else its
 * pick_objectives (the four objectives only). */
static int baseline_xy(const cJSON *ds, const cJSON *b, const aellm_report_plot *p, xy *out)
{
    const cJSON *idx = cJSON_GetObjectItem(b, "point_index");
    if (cJSON_IsTrue(cJSON_GetObjectItem(b, "skipped"))) return 0;
    if (cJSON_IsNumber(idx) && idx->valueint >= 0)
        return point_xy(cJSON_GetArrayItem(cJSON_GetObjectItem(ds, "points"), idx->valueint), p,
                        out);
    static const char *const keys[] = {"acc", "latency", "memory", "energy"};
    const cJSON *o = cJSON_GetObjectItem(b, "pick_objectives");
    if (!o || p->x > AELLM_REPORT_ENERGY || p->y > AELLM_REPORT_ENERGY) return 0;
    const cJSON *vx = cJSON_GetObjectItem(o, keys[p->x]), *vy = cJSON_GetObjectItem(o, keys[p->y]);
    if (!cJSON_IsNumber(vx) || !cJSON_IsNumber(vy)) return 0;
    out->x = vx->valuedouble * report_axis(p->x)->scale;
    out->y = vy->valuedouble * report_axis(p->y)->scale;
    return 1;
}

static void widen(frame *f, xy v)
{
    f->lo[0] = fmin(f->lo[0], v.x), f->hi[0] = fmax(f->hi[0], v.x);
    f->lo[1] = fmin(f->lo[1], v.y), f->hi[1] = fmax(f->hi[1], v.y);
}

/* The range of everything drawn, padded by 5 % (a single value by 10 %). */
static int data_range(const aellm_report *r, frame *f)
{
    int n = 0;
    f->lo[0] = f->lo[1] = INFINITY, f->hi[0] = f->hi[1] = -INFINITY;
    const cJSON *ds, *pt;
    cJSON_ArrayForEach(ds, r->datasets)
    {
        xy v;
        cJSON_ArrayForEach(pt, cJSON_GetObjectItem(ds, "points")) if (point_xy(pt, f->p, &v))
            widen(f, v),
            n++;
        cJSON_ArrayForEach(pt,
                           cJSON_GetObjectItem(ds, "baselines")) if (baseline_xy(ds, pt, f->p, &v))
            widen(f, v);
    }
    for (int k = 0; k < 2 && n; k++) {
        f->log[k] = f->lo[k] > 0 && f->hi[k] / f->lo[k] > LOG_SPAN;
        if (f->log[k]) f->lo[k] = log10(f->lo[k]), f->hi[k] = log10(f->hi[k]);
        double pad = f->hi[k] > f->lo[k] ? 0.05 * (f->hi[k] - f->lo[k]) : 0.1 * fabs(f->hi[k]);
        if (pad == 0) pad = 1;
        f->lo[k] -= pad, f->hi[k] += pad;
    }
    return n;
}

/* A step of 1, 2 or 5 times a power of ten giving about five ticks. */
static double tick_step(double lo, double hi)
{
    double raw = (hi - lo) / 5, mag = pow(10, floor(log10(raw))), m = raw / mag;
    return mag * (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10);
}

static void text_at(cairo_t *cr, double x, double y, const char *s, double ax, double ay)
{
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    cairo_move_to(cr, x - ax * e.width - e.x_bearing, y - ay * e.height - e.y_bearing);
    cairo_show_text(cr, s);
}

/* The accuracy axis says which transform of which metric it shows. */
static const char *axis_label(const aellm_report *r, aellm_report_axis a, char *buf, size_t n)
{
    const char *metric = NULL;
    const cJSON *ds;
    cJSON_ArrayForEach(ds, r->datasets)
    {
        const cJSON *p0 = cJSON_GetArrayItem(cJSON_GetObjectItem(ds, "points"), 0);
        const char *m = cJSON_GetStringValue(
            cJSON_GetObjectItem(cJSON_GetObjectItem(p0, "measurement"), "accuracy_metric"));
        if (!m) m = cJSON_GetStringValue(cJSON_GetObjectItem(ds, "accuracy_metric"));
        if (m && metric && strcmp(m, metric)) return report_axis(a)->label; /* mixed */
        if (m) metric = m;
    }
    if (a != AELLM_REPORT_ACC || !metric) return report_axis(a)->label;
    snprintf(buf, n, "accuracy objective (%s)",
             !strcmp(metric, "ppl")   ? "1 / perplexity"
             : !strcmp(metric, "kld") ? "exp(-KLD)"
                                      : metric);
    return buf;
}

static void draw_axes(cairo_t *cr, const aellm_report *r, const frame *f)
{
    char buf[128];
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, f->left, f->top, f->right - f->left, f->bottom - f->top);
    cairo_stroke(cr);
    cairo_set_font_size(cr, 11);
    for (int k = 0; k < 2; k++) {
        /* a log axis ticks at whole decades (its range is in log10 units) */
        double step = f->log[k] ? fmax(1, round(tick_step(f->lo[k], f->hi[k])))
                                : tick_step(f->lo[k], f->hi[k]);
        for (double u = ceil(f->lo[k] / step) * step; u <= f->hi[k]; u += step) {
            double v = f->log[k] ? pow(10, u) : u;
            double at = k ? to_py(f, v) : to_px(f, v),
                   t = fabs(u) < step * 1e-6 && !f->log[k] ? 0 : v;
            snprintf(buf, sizeof(buf), "%.4g", t);
            cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
            if (k)
                cairo_move_to(cr, f->left, at), cairo_line_to(cr, f->right, at);
            else
                cairo_move_to(cr, at, f->top), cairo_line_to(cr, at, f->bottom);
            cairo_stroke(cr);
            cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
            if (k)
                text_at(cr, f->left - 6, at, buf, 1, 0.5);
            else
                text_at(cr, at, f->bottom + 6, buf, 0.5, 0);
        }
    }
    cairo_set_font_size(cr, 13);
    char label[160];
    snprintf(label, sizeof(label), "%s%s", axis_label(r, f->p->x, buf, sizeof(buf)),
             f->log[0] ? " (log)" : "");
    text_at(cr, (f->left + f->right) / 2, f->bottom + 30, label, 0.5, 0);
    cairo_save(cr);
    cairo_translate(cr, f->left - 62, (f->top + f->bottom) / 2);
    cairo_rotate(cr, -M_PI / 2);
    snprintf(label, sizeof(label), "%s%s", axis_label(r, f->p->y, buf, sizeof(buf)),
             f->log[1] ? " (log)" : "");
    text_at(cr, 0, 0, label, 0.5, 0.5);
    cairo_restore(cr);
}

static int x_up(const void *a, const void *b)
{
    double d = ((const xy *)a)->x - ((const xy *)b)->x;
    return (d > 0) - (d < 0);
}
static int x_down(const void *a, const void *b)
{
    return x_up(b, a);
}

/* The points of one dataset on its 2-D front, best x first, into v
 * (returns how many): sorted by x, a point stays when its y beats all kept. */
static int front_2d(const cJSON *ds, const aellm_report_plot *p, xy *v, int n_max)
{
    int n = 0, kept = 0, y_up = report_axis(p->y)->higher_is_better;
    const cJSON *pt;
    cJSON_ArrayForEach(pt, cJSON_GetObjectItem(ds, "points")) if (n < n_max &&
                                                                  point_xy(pt, p, &v[n])) n++;
    qsort(v, (size_t)n, sizeof(xy), report_axis(p->x)->higher_is_better ? x_down : x_up);
    for (int i = 0; i < n; i++)
        if (!kept || (y_up ? v[i].y > v[kept - 1].y : v[i].y < v[kept - 1].y)) v[kept++] = v[i];
    return kept;
}

static void set_colour(cairo_t *cr, int i, double alpha)
{
    const double *c = palette[(size_t)i % N_COLOURS];
    cairo_set_source_rgba(cr, c[0], c[1], c[2], alpha);
}

static void draw_points(cairo_t *cr, const frame *f, const cJSON *ds, int colour)
{
    const cJSON *pt;
    cJSON_ArrayForEach(pt, cJSON_GetObjectItem(ds, "points"))
    {
        xy v;
        if (!point_xy(pt, f->p, &v)) continue;
        const char *prov = cJSON_GetStringValue(cJSON_GetObjectItem(pt, "provenance"));
        cairo_new_path(cr);
        cairo_arc(cr, to_px(f, v.x), to_py(f, v.y), 4, 0, 2 * M_PI);
        set_colour(cr, colour, 0.9);
        if (prov && !strcmp(prov, "predicted")) { /* hollow: not measured */
            cairo_set_line_width(cr, 1.5);
            cairo_stroke(cr);
        } else {
            set_colour(cr, colour, 0.55);
            cairo_fill(cr);
        }
    }
}

static void draw_front(cairo_t *cr, const frame *f, const cJSON *ds, int colour)
{
    int n_max = cJSON_GetArraySize(cJSON_GetObjectItem(ds, "points"));
    xy *v = malloc(sizeof(xy) * (size_t)(n_max ? n_max : 1));
    if (!v) return; /* a plot without its line beats no plot */
    int n = front_2d(ds, f->p, v, n_max);
    set_colour(cr, colour, 1);
    cairo_set_line_width(cr, 2);
    cairo_new_path(cr);
    for (int i = 0; i < n; i++) {
        /* staircase: the region the front attains, x first then y */
        if (i) cairo_line_to(cr, to_px(f, v[i].x), to_py(f, v[i - 1].y));
        if (i)
            cairo_line_to(cr, to_px(f, v[i].x), to_py(f, v[i].y));
        else
            cairo_move_to(cr, to_px(f, v[i].x), to_py(f, v[i].y));
    }
    cairo_stroke(cr);
    free(v);
}

typedef enum { MARK_STAR, MARK_DIAMOND, MARK_TRIANGLE } mark_kind;

static void mark_path(cairo_t *cr, mark_kind k, double x, double y, double s)
{
    cairo_new_path(cr);
    if (k == MARK_STAR) {
        for (int i = 0; i < 10; i++) {
            double a = -M_PI / 2 + i * M_PI / 5, rad = i % 2 ? s * 0.45 : s;
            if (i)
                cairo_line_to(cr, x + rad * cos(a), y + rad * sin(a));
            else
                cairo_move_to(cr, x + rad * cos(a), y + rad * sin(a));
        }
    } else if (k == MARK_DIAMOND) {
        cairo_move_to(cr, x, y - s), cairo_line_to(cr, x + s, y);
        cairo_line_to(cr, x, y + s), cairo_line_to(cr, x - s, y);
    } else {
        cairo_move_to(cr, x, y - s), cairo_line_to(cr, x + s * 0.9, y + s * 0.6);
        cairo_line_to(cr, x - s * 0.9, y + s * 0.6);
    }
    cairo_close_path(cr);
}

static void draw_mark(cairo_t *cr, mark_kind k, double x, double y, int colour)
{
    mark_path(cr, k, x, y, k == MARK_STAR ? 11 : 8);
    set_colour(cr, colour, k == MARK_STAR ? 1 : 0.25);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    cairo_set_line_width(cr, 1.2);
    cairo_stroke(cr);
}

static void mark_index(cairo_t *cr, const frame *f, const cJSON *ds, const char *key, mark_kind k,
                       int colour)
{
    const cJSON *i = cJSON_GetObjectItem(ds, key);
    xy v;
    if (!cJSON_IsNumber(i) || i->valueint < 0) return;
    if (point_xy(cJSON_GetArrayItem(cJSON_GetObjectItem(ds, "points"), i->valueint), f->p, &v))
        draw_mark(cr, k, to_px(f, v.x), to_py(f, v.y), colour);
}

/* Labels placed so far, so that the next one can avoid them. */
typedef struct {
    double x[64], y[64], w[64];
    int n;
} placed_labels;

/* Baselines often pick neighbouring points: a label moves down (then up) a
 * line at a time until it overlaps none placed before. */
static void place_label(cairo_t *cr, const frame *f, placed_labels *pl, double x, double y,
                        const char *label)
{
    static const double offsets[] = {0, 12, -12, 24, -24, 36, -36, 48, -48};
    cairo_text_extents_t e;
    cairo_text_extents(cr, label, &e);
    double w = e.x_advance, h = 11, at_x = x + w > f->right ? x - w - 18 : x, at_y = y;
    for (size_t k = 0; k < sizeof(offsets) / sizeof(offsets[0]); k++) {
        int clash = 0;
        for (int i = 0; i < pl->n; i++)
            clash |= at_x < pl->x[i] + pl->w[i] && pl->x[i] < at_x + w &&
                     fabs(y + offsets[k] - pl->y[i]) < h;
        if (!clash) {
            at_y = y + offsets[k];
            break;
        }
    }
    if (pl->n < 64) pl->x[pl->n] = at_x, pl->y[pl->n] = at_y, pl->w[pl->n++] = w;
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    text_at(cr, at_x, at_y, label, 0, 0.5);
}

/* Baselines that picked the same point share one triangle and one label. */
static void draw_baselines(cairo_t *cr, const frame *f, const cJSON *ds, int colour,
                           placed_labels *pl)
{
    const cJSON *b, *c;
    int i = 0;
    cairo_set_font_size(cr, 10);
    cJSON_ArrayForEach(b, cJSON_GetObjectItem(ds, "baselines"))
    {
        xy v, w;
        int first = 1, j = 0;
        if (!baseline_xy(ds, b, f->p, &v)) goto next;
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(ds, "baselines"))
        {
            if (j++ < i && baseline_xy(ds, c, f->p, &w) && w.x == v.x && w.y == v.y) first = 0;
        }
        if (!first) goto next;
        char label[256] = "";
        j = 0;
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(ds, "baselines"))
        {
            const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(c, "method"));
            if (j++ >= i && m && baseline_xy(ds, c, f->p, &w) && w.x == v.x && w.y == v.y &&
                strlen(label) + strlen(m) + 3 < sizeof(label))
                strcat(strcat(label, *label ? ", " : ""), m);
        }
        draw_mark(cr, MARK_TRIANGLE, to_px(f, v.x), to_py(f, v.y) + 14, colour);
        place_label(cr, f, pl, to_px(f, v.x) + 9, to_py(f, v.y) + 16, label);
    next:
        i++;
    }
}

static void legend_row(cairo_t *cr, double x, double *y, const char *text)
{
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    text_at(cr, x + 22, *y, text, 0, 0.5);
    *y += 20;
}

/* A label too wide for the legend breaks after its last " · " that fits
 * (labels are "model · task · hardware"), else it is cut. */
static void legend_label(cairo_t *cr, double x, double *y, const char *label, double room)
{
    char line[256];
    snprintf(line, sizeof(line), "%s", label);
    cairo_text_extents_t e;
    cairo_text_extents(cr, line, &e);
    char *cut = NULL;
    for (char *sep = e.x_advance > room ? strstr(line, " \xc2\xb7 ") : NULL; sep;
         sep = strstr(sep + 1, " \xc2\xb7 ")) {
        *sep = '\0';
        cairo_text_extents(cr, line, &e);
        *sep = ' ';
        if (e.x_advance > room) break;
        cut = sep;
    }
    if (!cut) {
        legend_row(cr, x, y, line);
        return;
    }
    *cut = '\0';
    legend_row(cr, x, y, line);
    *y -= 6;
    legend_row(cr, x, y, cut + 1);
}

static void draw_legend(cairo_t *cr, const aellm_report *r, const frame *f)
{
    double x = f->right + 20, y = f->top + 8;
    cairo_set_font_size(cr, 11);
    for (int i = 0; i < aellm_report_dataset_count(r); i++) {
        set_colour(cr, i, 1);
        cairo_rectangle(cr, x, y - 5, 14, 10);
        cairo_fill(cr);
        legend_label(cr, x, &y, aellm_report_dataset_label(r, i), LEGEND_W - 40);
    }
    y += 8;
    const mark_kind kinds[] = {MARK_STAR, MARK_DIAMOND, MARK_TRIANGLE};
    const char *names[] = {"utility pick", "default configuration", "baseline pick (labelled)"};
    for (int k = 0; k < 3; k++) {
        draw_mark(cr, kinds[k], x + 7, y, 0);
        legend_row(cr, x, &y, names[k]);
    }
    set_colour(cr, 0, 1);
    cairo_move_to(cr, x, y), cairo_line_to(cr, x + 14, y), cairo_stroke(cr);
    legend_row(cr, x, &y, "2-D Pareto front");
    cairo_new_path(cr);
    cairo_arc(cr, x + 7, y, 4, 0, 2 * M_PI);
    cairo_set_line_width(cr, 1.5), cairo_stroke(cr);
    legend_row(cr, x, &y, "predicted (hollow)");
}

static void draw_plot(cairo_t *cr, const aellm_report *r, frame *f)
{
    const aellm_report_plot *p = f->p;
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 16);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text_at(cr, 20, 14, p->title ? p->title : "aellm report", 0, 0);
    draw_axes(cr, r, f);
    for (int i = 0; i < aellm_report_dataset_count(r); i++) {
        const cJSON *ds = cJSON_GetArrayItem(r->datasets, i);
        draw_points(cr, f, ds, i);
        draw_front(cr, f, ds, i);
    }
    placed_labels pl = {.n = 0};
    for (int i = 0; i < aellm_report_dataset_count(r); i++) {
        const cJSON *ds = cJSON_GetArrayItem(r->datasets, i);
        draw_baselines(cr, f, ds, i, &pl);
        mark_index(cr, f, ds, "default_index", MARK_DIAMOND, i);
        mark_index(cr, f, ds, "pick_index", MARK_STAR, i);
    }
    draw_legend(cr, r, f);
}

void aellm_report_plot_default(aellm_report_plot *p)
{
    *p = (aellm_report_plot){AELLM_REPORT_LATENCY, AELLM_REPORT_ACC, NULL, 960, 640};
}

static int plot_frame(const aellm_report *r, const aellm_report_plot *p, const char *path, frame *f)
{
    *f = (frame){.p = p};
    if (p->width < 480 || p->height < 320 || p->width > 10000 || p->height > 10000)
        return aellm_error_set(AELLM_EINVAL, "%s: a plot of %d x %d is outside 480x320..10000",
                               path, p->width, p->height);
    if (p->x == p->y)
        return aellm_error_set(AELLM_EINVAL, "%s: x and y are both %s", path,
                               report_axis(p->x)->name);
    if (!data_range(r, f))
        return aellm_error_set(AELLM_EINVAL, "%s: no point has both %s and %s", path,
                               report_axis(p->x)->name, report_axis(p->y)->name);
    f->left = 90, f->right = p->width - LEGEND_W, f->top = 44, f->bottom = p->height - 60;
    return 0;
}

static cairo_status_t to_file(void *closure, const unsigned char *data, unsigned int n)
{
    return fwrite(data, 1, n, closure) == n ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

typedef struct {
    const aellm_report *r;
    frame *f;
    int png;
    const char *path;
} plot_job;

/* Draws the plot into the open temporary file (cairo streams to it) and
 * checks cairo's verdict. */
static int put_plot(FILE *out, void *user)
{
    plot_job *job = user;
    const aellm_report_plot *p = job->f->p;
    cairo_surface_t *s =
        job->png ? cairo_image_surface_create(CAIRO_FORMAT_RGB24, p->width, p->height)
                 : cairo_svg_surface_create_for_stream(to_file, out, p->width, p->height);
    cairo_t *cr = cairo_create(s);
    draw_plot(cr, job->r, job->f);
    cairo_destroy(cr);
    cairo_status_t st = cairo_surface_status(s);
    if (job->png && st == CAIRO_STATUS_SUCCESS)
        st = cairo_surface_write_to_png_stream(s, to_file, out);
    cairo_surface_finish(s); /* the SVG surface writes its end here */
    if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_status(s);
    cairo_surface_destroy(s);
    if (st != CAIRO_STATUS_SUCCESS)
        return aellm_error_set(AELLM_EIO, "%s: %s", job->path, cairo_status_to_string(st));
    return 0;
}

static int write_plot(const aellm_report *r, const char *path, const aellm_report_plot *p, int png)
{
    frame f;
    int rc = plot_frame(r, p, path, &f);
    if (rc) return rc;
    plot_job job = {r, &f, png, path};
    return report_write_atomic(path, put_plot, &job);
}

int aellm_report_write_svg(const aellm_report *r, const char *path, const aellm_report_plot *p)
{
    return write_plot(r, path, p, 0);
}

int aellm_report_write_png(const aellm_report *r, const char *path, const aellm_report_plot *p)
{
    return write_plot(r, path, p, 1);
}
