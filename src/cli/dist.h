/* Distributed evaluation over MPI (DESIGN.md §6): rank 0 hands jobs (text)
 * to the other ranks and collects their results (text); each worker runs a
 * job in a child process of its own, so a job that crashes or is killed
 * costs that job only, and sends a heartbeat while it runs, so a worker
 * that dies or hangs is noticed and its job handed to another. Without MPI
 * (or when not started by mpirun) there is one rank and nothing here runs. */
#ifndef AELLM_CLI_DIST_H
#define AELLM_CLI_DIST_H

/* MPI_Init when started under mpirun; call once, first thing. */
void dist_init(int *argc, char ***argv);
/* Stops the workers (rank 0) and calls MPI_Finalize; when a rank was lost
 * it cannot, and the process exits here with `status` instead. */
void dist_finalize(int status);
int dist_rank(void);
int dist_size(void);             /* 1 when serial */
const char *dist_describe(void); /* "OpenMPI 4.1.4" or "not built with MPI" */

/* This rank's host name and how many ranks share its node (shared memory). */
const char *dist_host(void);
int dist_ranks_on_node(void);
/* Distinct nodes among the worker ranks (rank 0). */
int dist_worker_nodes(void);

/* Runs one job in the worker's child process: returns the result text
 * (malloc'd) or NULL when the job failed without one. */
typedef char *(*dist_job_fn)(const char *job, void *user);

/* A worker's loop until rank 0 says stop. A job that runs past
 * job_timeout_s (> 0) is killed and reported lost. Returns 0. */
int dist_worker(dist_job_fn fn, void *user, double job_timeout_s);

typedef struct {
    const char *job; /* in: the job's text */
    char *result;    /* out: the result (malloc'd), NULL when lost */
    char why[200];   /* out: why it was lost */
    int rank;        /* out: the rank that ran it */
} dist_task;

/* Called for each task done or lost, in the order they finish. */
typedef void (*dist_done_fn)(const dist_task *t, void *user);

/* Rank 0: runs the n tasks on the workers. A worker silent for more than
 * silence_s (its heartbeat stopped: dead or hung) is given nothing more
 * and its task goes to another; a task lost max_tries times stays lost.
 * Returns 0, or an error when no worker is left. */
int dist_run(dist_task *tasks, int n, double silence_s, int max_tries, dist_done_fn done,
             void *user);

#endif
