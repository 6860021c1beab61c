/* The interactive explorer: the template (src/report/explorer.html with its
 * script and style, built into the binary by cmake/embed.cmake) with the
 * title and the datasets filled in. The page loads nothing: the data sit in a
 * <script type="application/json"> element. No drawing happens here. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "report/report_internal.h"

/* generated from src/report/explorer.{html,css,js}; NUL-terminated */
extern const unsigned char aellm_report_explorer[];
extern const unsigned long aellm_report_explorer_len;

typedef struct {
    const aellm_report *r;
    const char *title;
    char *data; /* the datasets as JSON */
} html_job;

static void put_escaped_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else if (*s == '"')
            fputs("&quot;", f);
        else
            fputc(*s, f);
    }
}

/* Inside <script>, "</script" or "<!--" in a string would end or confuse
 * the element: every '<' (only ever inside JSON strings) becomes \u003c,
 * which JSON.parse reads back as '<'. */
static void put_script_json(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("\\u003c", f);
        else
            fputc(*s, f);
    }
}

static int put_page(FILE *f, void *user)
{
    html_job *job = user;
    const char *t = (const char *)aellm_report_explorer;
    for (const char *at; (at = strstr(t, "@AELLM_"));) {
        fwrite(t, 1, (size_t)(at - t), f);
        if (!strncmp(at, "@AELLM_TITLE@", 13)) {
            put_escaped_text(f, job->title);
            t = at + 13;
        } else if (!strncmp(at, "@AELLM_DATA@", 12)) {
            put_script_json(f, job->data);
            t = at + 12;
        } else { /* not ours: written as it is */
            fputc('@', f);
            t = at + 1;
        }
    }
    fputs(t, f);
    return 0;
}

static char *data_json(const aellm_report *r, const char *title)
{
    char when[64];
    time_t now = time(NULL);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", gmtime(&now));
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "title", title);
    cJSON_AddStringToObject(doc, "generated", when);
    cJSON_AddStringToObject(doc, "generator", "aellm " AELLM_VERSION);
    /* borrowed for the print: the report keeps its datasets */
    cJSON_AddItemReferenceToObject(doc, "datasets", r->datasets);
    char *s = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    return s;
}

int aellm_report_write_html(const aellm_report *r, const char *path, const char *title)
{
    if (aellm_report_dataset_count(r) == 0)
        return aellm_error_set(AELLM_EINVAL, "%s: a report needs at least one dataset", path);
    html_job job = {r, title ? title : "aellm report", NULL};
    job.data = data_json(r, job.title);
    if (!job.data) return aellm_error_oom("the report's data", 0);
    int rc = report_write_atomic(path, put_page, &job);
    free(job.data);
    return rc;
}
