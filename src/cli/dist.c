/* Distributed evaluation: rank 0 hands out jobs, workers run each in a child
 * process and beat while it runs (src/cli/dist.h). Every wait polls and
 * sleeps: a blocking MPI call spins a core, and on a machine the workers
 * share, that core is another worker's timing noise. */
#define _GNU_SOURCE /* pipe2 */
#include "cli/dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef AELLM_HAVE_MPI

void dist_init(int *argc, char ***argv)
{
    (void)argc, (void)argv;
}
void dist_finalize(int status)
{
    (void)status;
}
int dist_rank(void)
{
    return 0;
}
int dist_size(void)
{
    return 1;
}
const char *dist_describe(void)
{
    return "not built with MPI (serial only; install libopenmpi-dev and rebuild)";
}
const char *dist_host(void)
{
    return "localhost";
}
int dist_ranks_on_node(void)
{
    return 1;
}
int dist_worker_nodes(void)
{
    return 0;
}
int dist_worker(dist_job_fn fn, void *user, double job_timeout_s)
{
    (void)fn, (void)user, (void)job_timeout_s;
    return 0;
}
int dist_run(dist_task *tasks, int n, double silence_s, int max_tries, dist_done_fn done,
             void *user)
{
    (void)tasks, (void)n, (void)silence_s, (void)max_tries, (void)done, (void)user;
    fprintf(stderr, "aellm: not built with MPI\n");
    return -1;
}

#else

#include <errno.h>
#include <fcntl.h>
#include <mpi.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/timer.h"

enum { TAG_JOB = 1, TAG_RESULT, TAG_BEAT, TAG_STOP };

static int on, rank, size, on_node, workers_nodes;
static char host[MPI_MAX_PROCESSOR_NAME];
static char library[MPI_MAX_LIBRARY_VERSION_STRING];
static int *dead; /* rank 0: workers given up on (dead or hung), for the whole run */

static void nap(int ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* Ranks on this node, and distinct nodes among the workers (rank 0). */
static void map_nodes(void)
{
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &on_node);
    MPI_Comm_free(&node);
    char *all = rank == 0 ? calloc((size_t)size, sizeof(host)) : NULL;
    MPI_Gather(host, sizeof(host), MPI_CHAR, all, sizeof(host), MPI_CHAR, 0, MPI_COMM_WORLD);
    for (int r = 1; all && r < size; r++) {
        int first = 1;
        for (int q = 1; q < r && first; q++)
            first = strcmp(all + (size_t)r * sizeof(host), all + (size_t)q * sizeof(host)) != 0;
        workers_nodes += first;
    }
    free(all);
}

void dist_init(int *argc, char ***argv)
{
    /* only under a launcher: a plain `aellm` must not need one */
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMI_SIZE") && !getenv("PMIX_RANK")) return;
    int provided = 0;
    MPI_Init_thread(argc, argv, MPI_THREAD_SINGLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    int len = 0;
    MPI_Get_processor_name(host, &len);
    on = 1;
    map_nodes();
    if (rank == 0) dead = calloc((size_t)size, sizeof(int));
}

/* With a rank gone, MPI_Finalize waits for it forever (OpenMPI 4's fence):
 * then every rank leaves without it, which mpirun --enable-recovery takes
 * as a normal end. */
static int leave_unfinalized;

static void stop_workers(void)
{
    for (int w = 1; w < size; w++) leave_unfinalized |= dead && dead[w];
    for (int w = 1; w < size; w++)
        if (!dead || !dead[w])
            MPI_Send(leave_unfinalized ? "gone" : "", leave_unfinalized ? 5 : 1, MPI_CHAR, w,
                     TAG_STOP, MPI_COMM_WORLD);
}

void dist_finalize(int status)
{
    if (!on) return;
    if (rank == 0) stop_workers();
    on = 0;
    free(dead);
    dead = NULL;
    if (leave_unfinalized) {
        fflush(NULL);
        _exit(status);
    }
    MPI_Finalize();
}

int dist_rank(void)
{
    return on ? rank : 0;
}

int dist_size(void)
{
    return on ? size : 1;
}

const char *dist_describe(void)
{
    if (!library[0]) {
        char v[MPI_MAX_LIBRARY_VERSION_STRING];
        int len = 0;
        MPI_Get_library_version(v, &len);
        v[strcspn(v, ",\n")] = 0;
        snprintf(library, sizeof(library), "%s", v);
    }
    return library;
}

const char *dist_host(void)
{
    return host[0] ? host : "localhost";
}

int dist_ranks_on_node(void)
{
    return on ? on_node : 1;
}

int dist_worker_nodes(void)
{
    return workers_nodes;
}

/* A whole text message from `source` (probed): malloc'd, NUL-terminated. */
static char *recv_text(const MPI_Status *st)
{
    int n = 0;
    MPI_Get_count(st, MPI_CHAR, &n);
    char *t = malloc((size_t)n + 1);
    MPI_Recv(t ? t : (char[1]){0}, t ? n : 0, MPI_CHAR, st->MPI_SOURCE, st->MPI_TAG, MPI_COMM_WORLD,
             MPI_STATUS_IGNORE);
    if (t) t[n] = 0;
    return t;
}

static int send_text(int to, int tag, const char *head, const char *body)
{
    size_t a = strlen(head), b = body ? strlen(body) : 0;
    char *t = malloc(a + b + 1);
    if (!t) return -1;
    memcpy(t, head, a);
    if (b) memcpy(t + a, body, b);
    t[a + b] = 0;
    int rc = MPI_Send(t, (int)(a + b), MPI_CHAR, to, tag, MPI_COMM_WORLD);
    free(t);
    return rc == MPI_SUCCESS ? 0 : -1;
}

/* ---- the worker ---- */

typedef struct {
    char *buf;
    size_t len, cap;
} text;

static int append(text *t, int fd)
{
    for (;;) {
        if (t->cap - t->len < 65536) {
            size_t cap = t->cap ? 2 * t->cap : 1 << 20;
            char *q = realloc(t->buf, cap);
            if (!q) return -1;
            t->buf = q, t->cap = cap;
        }
        ssize_t n = read(fd, t->buf + t->len, t->cap - t->len - 1);
        if (n > 0) {
            t->len += (size_t)n;
            continue;
        }
        if (n == 0) return 1;
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    }
}

static void why_child_ended(int status, char *why, size_t cap)
{
    if (WIFSIGNALED(status))
        snprintf(why, cap, "its process was killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(why, cap, "its process exited with status %d", WEXITSTATUS(status));
}

static void beat(double *last)
{
    if (aellm_time_s() - *last < 1) return;
    int one = 1;
    MPI_Send(&one, 1, MPI_INT, 0, TAG_BEAT, MPI_COMM_WORLD);
    *last = aellm_time_s();
}

/* Runs fn in a child; the result or NULL with why. Beats while it runs. */
static char *run_job(dist_job_fn fn, void *user, const char *job, double timeout_s, char *why,
                     size_t cap)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC)) {
        snprintf(why, cap, "cannot make a pipe: %s", strerror(errno));
        return NULL;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]), close(p[1]);
        snprintf(why, cap, "cannot fork: %s", strerror(errno));
        return NULL;
    }
    if (pid == 0) { /* the child never calls MPI, and leaves with _exit */
        setpgid(0, 0);
        close(p[0]);
        char *r = fn(job, user);
        size_t n = r ? strlen(r) : 0;
        for (size_t o = 0; o < n;) {
            ssize_t w = write(p[1], r + o, n - o);
            if (w <= 0 && errno != EINTR) _exit(4);
            if (w > 0) o += (size_t)w;
        }
        fflush(NULL);
        _exit(r ? 0 : 3);
    }
    setpgid(pid, pid);
    close(p[1]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    text t = {0};
    double start = aellm_time_s(), last = start;
    int eof = 0, killed = 0;
    while (!eof) {
        struct pollfd q = {p[0], POLLIN, 0};
        poll(&q, 1, 250);
        int rc = append(&t, p[0]);
        eof = rc != 0;
        beat(&last);
        if (!eof && timeout_s > 0 && aellm_time_s() - start > timeout_s) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            killed = 1;
        }
    }
    close(p[0]);
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) { /* output closed: it is leaving */
        beat(&last);
        nap(20);
    }
    if (killed) snprintf(why, cap, "its job ran past %g s and was killed", timeout_s);
    if (!killed && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
        why_child_ended(status, why, cap);
    if (killed || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || !t.buf) {
        free(t.buf);
        return NULL;
    }
    t.buf[t.len] = 0;
    return t.buf;
}

int dist_worker(dist_job_fn fn, void *user, double job_timeout_s)
{
    for (;;) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
        if (!flag) {
            nap(20);
            continue;
        }
        char *msg = recv_text(&st);
        if (st.MPI_TAG == TAG_STOP || !msg) {
            leave_unfinalized = msg && !strcmp(msg, "gone");
            free(msg);
            return 0;
        }
        char *nl = strchr(msg, '\n'), why[200] = "";
        if (!nl) { /* not a job: nothing to answer */
            free(msg);
            continue;
        }
        *nl = 0;
        char *result = run_job(fn, user, nl + 1, job_timeout_s, why, sizeof(why));
        char head[64];
        snprintf(head, sizeof(head), "%s\n%c\n", msg, result ? 'R' : 'L');
        send_text(0, TAG_RESULT, head, result ? result : why);
        free(result);
        free(msg);
    }
}

/* ---- rank 0 ---- */

typedef struct {
    int task; /* -1: idle */
    long seq;
    double last; /* last sign of life */
} worker;

typedef struct {
    dist_task *tasks;
    int *queue, n_queue, *tries, max_tries, n_done;
    worker *w;
    long seq;
    dist_done_fn done;
    void *user;
} run;

static void finish(run *r, int t)
{
    r->n_done++;
    if (r->done) r->done(&r->tasks[t], r->user);
}

/* A task whose run ended without a result: again elsewhere, or lost. */
static void requeue(run *r, int t, const char *why)
{
    snprintf(r->tasks[t].why, sizeof(r->tasks[t].why), "%s", why);
    if (++r->tries[t] < r->max_tries) {
        fprintf(stderr, "rank %d lost a configuration (%s); handed to another rank\n",
                r->tasks[t].rank, why);
        r->queue[r->n_queue++] = t;
    } else
        finish(r, t);
}

static void hand_out(run *r)
{
    for (int k = 1; k < size && r->n_queue; k++) {
        if (dead[k] || r->w[k].task >= 0) continue;
        int t = r->queue[0];
        memmove(r->queue, r->queue + 1, (size_t)--r->n_queue * sizeof(int));
        char head[32];
        snprintf(head, sizeof(head), "%ld\n", r->seq);
        r->w[k] = (worker){t, r->seq++, aellm_time_s()};
        r->tasks[t].rank = k;
        if (send_text(k, TAG_JOB, head, r->tasks[t].job)) {
            dead[k] = 1;
            r->w[k].task = -1;
            requeue(r, t, "the job could not be sent");
        }
    }
}

static void take_result(run *r, int k, char *msg)
{
    char *a = strchr(msg, '\n');
    if (!a || a[1] == 0 || a[2] != '\n') return;
    *a = 0;
    if (atol(msg) != r->w[k].seq || r->w[k].task < 0) return; /* a task already handed on */
    int t = r->w[k].task;
    r->w[k].task = -1;
    if (a[1] == 'R') {
        r->tasks[t].result = strdup(a + 3);
        finish(r, t);
    } else
        requeue(r, t, a + 3);
}

/* Every message waiting; 1 if there was one. */
static int take_messages(run *r)
{
    int any = 0;
    for (;;) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
        if (!flag) return any;
        any = 1;
        int k = st.MPI_SOURCE;
        char *msg = recv_text(&st);
        if (msg && !dead[k] && k > 0 && k < size) {
            r->w[k].last = aellm_time_s();
            if (st.MPI_TAG == TAG_RESULT) take_result(r, k, msg);
        }
        free(msg);
    }
}

static void give_up_on_silent(run *r, double silence_s)
{
    for (int k = 1; k < size; k++) {
        if (dead[k] || r->w[k].task < 0 || aellm_time_s() - r->w[k].last <= silence_s) continue;
        dead[k] = 1;
        char why[160];
        snprintf(why, sizeof(why), "rank %d silent for %.0f s: given up on", k, silence_s);
        int t = r->w[k].task;
        r->w[k].task = -1;
        requeue(r, t, why);
    }
}

static int alive_workers(void)
{
    int n = 0;
    for (int k = 1; k < size; k++) n += !dead[k];
    return n;
}

int dist_run(dist_task *tasks, int n, double silence_s, int max_tries, dist_done_fn done,
             void *user)
{
    run r = {
        .tasks = tasks, .max_tries = max_tries > 0 ? max_tries : 1, .done = done, .user = user};
    r.queue = malloc((size_t)(n ? n : 1) * sizeof(int));
    r.tries = calloc((size_t)(n ? n : 1), sizeof(int));
    r.w = calloc((size_t)size, sizeof(worker));
    if (!r.queue || !r.tries || !r.w || !dead) {
        free(r.queue), free(r.tries), free(r.w);
        fprintf(stderr, "aellm: out of memory for the distributed batch\n");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        r.queue[r.n_queue++] = i;
        tasks[i].result = NULL;
        tasks[i].why[0] = 0;
        tasks[i].rank = 0;
    }
    for (int k = 0; k < size; k++) r.w[k].task = -1;
    int rc = 0;
    while (r.n_done < n) {
        if (!alive_workers()) {
            fprintf(stderr, "aellm: every worker rank is gone; %d configurations unmeasured\n",
                    n - r.n_done);
            rc = -1;
            break;
        }
        hand_out(&r);
        int any = take_messages(&r);
        give_up_on_silent(&r, silence_s);
        if (!any) nap(20);
    }
    free(r.queue), free(r.tries), free(r.w);
    return rc;
}

#endif
