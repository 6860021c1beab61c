/* What the report's files share: the dataset list (the explorer's embedded
 * data, one cJSON array), the axes' names and units, and writing an output
 * through a temporary file. Not public: include/aellm/report.h is the API. */
#ifndef AELLM_REPORT_INTERNAL_H
#define AELLM_REPORT_INTERNAL_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "aellm/report.h"

struct aellm_report {
    /* [{label, source, kind: "search"|"store", points: [...], and the
       search's own fields (pick_index, default_index, baselines, ...)}] */
    cJSON *datasets;
};

typedef struct {
    const char *name;  /* "latency": --x/--y and the explorer's key */
    const char *label; /* axis title, unit included */
    double scale;      /* stored value * scale = shown value (bytes -> MiB) */
    int higher_is_better;
} report_axis_info;

const report_axis_info *report_axis(aellm_report_axis a);

/* The value of axis a of a point (shown units) into *v; 0 when the point has
 * none (a predicted point has no EfficientLLM figures). */
int report_point_value(const cJSON *point, aellm_report_axis a, double *v);

/* Appends a dataset (taking it), making its label unique among those there. */
void report_add_dataset(aellm_report *r, cJSON *ds);

/* Sets "on_front" on every point: not dominated in the four objectives. */
void report_mark_front(cJSON *points);

/* Writes `path` through core/atomic.h's temporary file (synced, then
 * renamed): fn fills the open file; a non-zero return from fn, or a failed
 * write, removes the temporary and leaves `path` as it was. */
typedef int (*report_write_fn)(FILE *f, void *user);
int report_write_atomic(const char *path, report_write_fn fn, void *user);

#endif
