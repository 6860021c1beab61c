/* Reports of searches (DESIGN.md §5, layer 8): datasets gathered from
 * `aellm search --json` files and from the evaluation store, written as one
 * self-contained HTML Pareto explorer (data, script and style inline; nothing
 * loaded from the network) and as static SVG/PNG plots of a two-objective
 * front. Reading and drawing only: a report never measures or searches. */
#ifndef AELLM_REPORT_H
#define AELLM_REPORT_H

#ifdef __cplusplus
extern "C" {
#endif

/* A set of datasets, each one search (or one (model, task, hardware) group
 * of the store) with its points. Opaque. */
typedef struct aellm_report aellm_report;

/* An empty report into *out (owned by the caller: aellm_report_free). */
int aellm_report_new(aellm_report **out);
void aellm_report_free(aellm_report *r); /* accepts NULL */

/* Adds the search written by `aellm search --json` to `path` as one dataset,
 * labelled from its context (model · task · hardware or shape). An
 * unreadable file, invalid JSON or a document that is not a search result is
 * an error (AELLM_ENOTFOUND, AELLM_EIO, AELLM_EFORMAT) naming the file; the
 * report is unchanged then. */
int aellm_report_add_search(aellm_report *r, const char *path);

/* Adds every evaluation of the store at `path` (which must exist: it is
 * opened, never created), one dataset per (model, task, hardware). Such
 * datasets have points only: no pick, default or baselines. */
int aellm_report_add_store(aellm_report *r, const char *path);

int aellm_report_dataset_count(const aellm_report *r);
int aellm_report_point_count(const aellm_report *r); /* over all datasets */
/* The label of dataset i; borrowed, valid while the report lives. */
const char *aellm_report_dataset_label(const aellm_report *r, int i);

/* The objectives a plot can put on an axis: the four of the search and the
 * EfficientLLM figures of measured points. */
typedef enum {
    AELLM_REPORT_ACC,
    AELLM_REPORT_LATENCY,
    AELLM_REPORT_MEMORY,
    AELLM_REPORT_ENERGY,
    AELLM_REPORT_THROUGHPUT,
    AELLM_REPORT_AMU,
    AELLM_REPORT_PCU,
    AELLM_REPORT_COMPRESSION,
    AELLM_REPORT_TUNE, /* seconds to make the configuration's model */
    AELLM_REPORT_AXIS_COUNT
} aellm_report_axis;

/* The axis named `name` ("acc", "latency", "memory", "energy", "throughput",
 * "amu", "pcu", "compression", "tune"; "accuracy" too) into *out, or AELLM_EINVAL
 * with a message listing the names. */
int aellm_report_axis_parse(aellm_report_axis *out, const char *name);

/* Writes the interactive explorer to `path` (through path.tmp, renamed:
 * never a half-written file). `title` may be NULL (a default one). */
int aellm_report_write_html(const aellm_report *r, const char *path, const char *title);

typedef struct {
    aellm_report_axis x, y;
    const char *title; /* may be NULL */
    int width, height; /* pixels (PNG) or points (SVG) */
} aellm_report_plot;

void aellm_report_plot_default(aellm_report_plot *p); /* latency vs acc, 960 x 640 */

/* The front of p->x against p->y of every dataset, picks and baselines
 * marked, as SVG or PNG (through path.tmp, renamed). AELLM_EINVAL when no
 * point has both objectives. */
int aellm_report_write_svg(const aellm_report *r, const char *path, const aellm_report_plot *p);
int aellm_report_write_png(const aellm_report *r, const char *path, const aellm_report_plot *p);

#ifdef __cplusplus
}
#endif
#endif
