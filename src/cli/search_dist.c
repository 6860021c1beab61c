/* `mpirun -n N aellm search`: rank 0 searches and owns the store; each
 * batch's configurations not in the store go to the worker ranks as jobs
 * (the eval configuration, the model's hash, the default's record for the
 * paired protocol); a worker evaluates in a child process with a store of
 * its own and answers with the record exported from it, which rank 0
 * imports. A lost job (its process killed, its rank silent) goes to another
 * rank; nothing is stored but whole records on rank 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aellm/error.h"
#include "cli/dist.h"
#include "core/error.h"
#include "cli/search_internal.h"

enum { MAX_TRIES = 3 };

/* ---- a worker ---- */

static cJSON *outcome(const char *kind, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "outcome", kind);
    cJSON_AddStringToObject(o, "message", message);
    return o;
}

static char *placement(void)
{
    char text[512];
    snprintf(text, sizeof(text), "{\"rank\":%d,\"ranks\":%d,\"host\":\"%s\",\"ranks_on_node\":%d}",
             dist_rank(), dist_size(), dist_host(), dist_ranks_on_node());
    return strdup(text);
}

/* The record this store holds for the evaluation just made, exported. */
static int export_record(aellm_store *st, const char *rec, char **env)
{
    cJSON *r = cJSON_Parse(rec);
    const cJSON *key = cJSON_GetObjectItem(r, "key");
    int rc = cJSON_IsString(key) ? aellm_store_export(st, key->valuestring, env)
                                 : aellm_error_set(AELLM_EFORMAT, "a record without its key");
    cJSON_Delete(r);
    return rc;
}

static cJSON *evaluate_job(evaluator *ev, const cJSON *job, aellm_store *st)
{
    const cJSON *cfg = cJSON_GetObjectItem(job, "config");
    const cJSON *hash = cJSON_GetObjectItem(job, "model_sha256");
    const cJSON *anchor = cJSON_GetObjectItem(job, "anchor");
    aellm_config c;
    if (aellm_config_parse(&c, cfg, "search point", NULL))
        return outcome("skipped", aellm_error_last());
    /* the default's record from rank 0: the same yardstick for every rank on
       this hardware (another machine's has another key and is not used) */
    if (cJSON_IsString(anchor)) aellm_store_import(st, anchor->valuestring, NULL);
    aellm_eval_request r = ev->req;
    r.config = &c;
    r.model_hash = cJSON_IsString(hash) ? hash->valuestring : NULL;
    char *where = placement(), *rec = NULL, *env = NULL;
    r.placement_json = where;
    int cached = 0, rc = aellm_evaluate(&r, st, &rec, &cached);
    cJSON *o;
    if (!rc && !(rc = export_record(st, rec, &env))) {
        o = outcome("measured", "");
        cJSON_AddStringToObject(o, "envelope", env);
    } else
        o = outcome(rc == AELLM_EINVAL    ? "skipped"
                    : rc == AELLM_EFAILED ? "failed"
                                          : "error",
                    aellm_error_last());
    free(where);
    free(rec);
    free(env);
    return o;
}

/* In the worker's child process: one job, its outcome as JSON. */
static char *worker_job(const char *text, void *user)
{
    evaluator *ev = user;
    cJSON *job = cJSON_Parse(text), *o = NULL;
    aellm_store *st = NULL;
    if (!job)
        o = outcome("error", "a job that is not JSON");
    else if (aellm_store_open(&st, ev->worker_db))
        o = outcome("error", aellm_error_last());
    else
        o = evaluate_job(ev, job, st);
    aellm_store_close(st);
    cJSON_Delete(job);
    char *out = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return out;
}

static void remove_store(const char *path)
{
    static const char *const ends[] = {"", "-wal", "-shm", "-journal"};
    char p[4200];
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "%s%s", path, ends[i]);
        unlink(p);
    }
}

int search_dist_worker(evaluator *ev)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(ev->worker_db, sizeof(ev->worker_db), "%s/aellm-rank%d-%d.db",
             tmp && *tmp ? tmp : "/tmp", dist_rank(), (int)getpid());
    int rc = dist_worker(worker_job, ev, ev->job_timeout_s);
    remove_store(ev->worker_db);
    return rc ? 1 : 0;
}

/* ---- rank 0 ---- */

static void say(evaluator *ev, const char *what, const char *message)
{
    cli_progress_end(&ev->bar);
    fprintf(stderr, "%s: %s\n", what, message);
}

/* The store's answer for point i: 0 with *out (status 0), 1 if the store
 * holds it as failed or it does not apply (status 1), 2 to measure, < 0 on
 * error. */
static int look_up(evaluator *ev, const double *genes, aellm_config *c, aellm_objectives *out)
{
    if (search_to_config(ev, genes, c)) return 1;
    int rc;
    aellm_eval_request r = ev->req;
    r.config = c;
    r.model_hash = ev->model_hash[0] ? ev->model_hash : NULL;
    r.lookup_only = 1;
    char *rec = NULL;
    int cached = 0;
    rc = aellm_evaluate(&r, ev->store, &rec, &cached);
    if (rc == AELLM_ENOTFOUND) return 2;
    if (rc == AELLM_EINVAL || rc == AELLM_EFAILED) {
        say(ev, rc == AELLM_EFAILED ? "failed" : "skipped", aellm_error_last());
        ev->failed++;
        return 1;
    }
    if (!rc) {
        ev->cached++;
        rc = search_record_objectives(ev, c, rec, out);
        if (!rc && !ev->anchor) { /* the default, searched first: the yardstick */
            cJSON *j = cJSON_Parse(rec);
            const cJSON *key = cJSON_GetObjectItem(j, "key");
            if (cJSON_IsString(key)) aellm_store_export(ev->store, key->valuestring, &ev->anchor);
            cJSON_Delete(j);
        }
    }
    free(rec);
    return rc;
}

static char *job_text(const evaluator *ev, const double *genes)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddItemToObject(j, "config", search_eval_config_json(ev, genes));
    if (ev->model_hash[0]) cJSON_AddStringToObject(j, "model_sha256", ev->model_hash);
    if (ev->anchor) cJSON_AddStringToObject(j, "anchor", ev->anchor);
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return t;
}

/* A failure reported by a worker, kept in rank 0's store like a local one. */
static int keep_failure(evaluator *ev, const aellm_config *c, const char *message)
{
    aellm_eval_request r = ev->req;
    r.config = c;
    r.model_hash = ev->model_hash[0] ? ev->model_hash : NULL;
    char key[65], config_hash[65];
    int rc = aellm_eval_identify(&r, key, config_hash);
    if (!rc && ev->req.evaluator)
        rc = aellm_store_put_failure(ev->store, key, config_hash, ev->req.evaluator, message);
    return rc;
}

/* A worker's outcome for point i into out/status; < 0 aborts the search. */
static int take_outcome(evaluator *ev, const dist_task *t, const aellm_config *c,
                        aellm_objectives *out, int *status)
{
    *status = 1;
    if (!t->result) {
        char why[300];
        snprintf(why, sizeof(why),
                 "a configuration lost %d times (last: %s); not stored, a rerun "
                 "measures it",
                 MAX_TRIES, t->why);
        say(ev, "lost", why);
        ev->failed++;
        return 0;
    }
    cJSON *o = cJSON_Parse(t->result);
    const cJSON *kind = cJSON_GetObjectItem(o, "outcome"), *msg = cJSON_GetObjectItem(o, "message");
    const cJSON *env = cJSON_GetObjectItem(o, "envelope");
    const char *k = cJSON_IsString(kind) ? kind->valuestring : "error";
    const char *m = cJSON_IsString(msg) ? msg->valuestring : "an answer that is not JSON";
    int rc = 0;
    if (!strcmp(k, "measured") && cJSON_IsString(env)) {
        char key[65], *rec = NULL;
        rc = aellm_store_import(ev->store, env->valuestring, key);
        if (!rc) rc = aellm_store_get(ev->store, key, &rec);
        if (!rc) rc = search_record_objectives(ev, c, rec, out);
        if (!rc && !ev->anchor) ev->anchor = strdup(env->valuestring); /* the default: first */
        *status = rc ? 1 : 0;
        free(rec);
    } else if (!strcmp(k, "failed") || !strcmp(k, "skipped")) {
        say(ev, k, m);
        ev->failed++;
        if (!strcmp(k, "failed")) rc = keep_failure(ev, c, m);
    } else
        rc = aellm_error_set(AELLM_ERROR, "rank %d: %s", t->rank, m);
    cJSON_Delete(o);
    return rc;
}

int search_dist_batch(void *user, const double *genes, int n, aellm_objectives *out, int *status)
{
    evaluator *ev = user;
    const int k = aellm_space_n_knobs(ev->space);
    dist_task *tasks = calloc((size_t)n, sizeof(*tasks));
    int *point = calloc((size_t)n, sizeof(int)), m = 0, rc = 0;
    aellm_config *c = calloc((size_t)n, sizeof(*c));
    if (!tasks || !point || !c) rc = aellm_error_oom("a distributed batch", 0);
    for (int i = 0; !rc && i < n; i++) {
        int got = look_up(ev, genes + (size_t)i * k, &c[i], &out[i]);
        if (got < 0) rc = got;
        status[i] = got;
        if (got == 2) {
            point[m] = i;
            if (!(tasks[m++].job = job_text(ev, genes + (size_t)i * k)))
                rc = aellm_error_oom("a job", 0);
        }
    }
    if (!rc && m && dist_run(tasks, m, ev->silence_s, MAX_TRIES, NULL, NULL))
        rc = aellm_error_set(AELLM_ERROR, "no worker rank is left to measure on");
    for (int t = 0; !rc && t < m; t++)
        rc = take_outcome(ev, &tasks[t], &c[point[t]], &out[point[t]], &status[point[t]]);
    for (int t = 0; tasks && t < m; t++) free((char *)tasks[t].job), free(tasks[t].result);
    free(tasks);
    free(point);
    free(c);
    return rc;
}
