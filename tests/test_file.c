/* Reading user-named files (core/file.h) and writing them atomically
 * (core/atomic.h), against what a hostile or unlucky user has on disk: a
 * directory, a FIFO or a device where a file belongs, a file past a limit, a
 * disk that fills up part-way through a write. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "aellm/error.h"
#include "core/atomic.h"
#include "core/file.h"
#include "core/json.h"
#include "test_tmpdir.h"

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void assert_message(const char *want)
{
    const char *got = aellm_error_last();
    if (!strstr(got, want)) fail_msg("message \"%s\" lacks \"%s\"", got, want);
}

static void reads_whole_files_and_ranges(void **state)
{
    (void)state;
    put(tmp_path("a.txt"), "0123456789");
    char *s;
    size_t n;
    assert_int_equal(aellm_file_read(&s, &n, tmp_path("a.txt"), 0, "text"), 0);
    assert_int_equal(n, 10);
    assert_string_equal(s, "0123456789");
    free(s);
    assert_int_equal(aellm_file_read_range(&s, &n, tmp_path("a.txt"), 3, 4), 0);
    assert_string_equal(s, "3456");
    free(s);
    assert_int_equal(aellm_file_read_range(&s, &n, tmp_path("a.txt"), 7, 0), 0);
    assert_string_equal(s, "789");
    free(s);
    assert_int_equal(aellm_file_read_range(&s, &n, tmp_path("a.txt"), 10, 0), AELLM_EINVAL);
    assert_message("past its end");
    assert_null(s);
    put(tmp_path("empty.txt"), "");
    assert_int_equal(aellm_file_read(&s, &n, tmp_path("empty.txt"), 0, "text"), 0);
    assert_int_equal(n, 0);
    assert_string_equal(s, "");
    free(s);
}

/* A directory opens and reports a size of LONG_MAX on ext4: it used to be
 * handed to malloc. A FIFO used to block the reader for ever. */
static void refuses_what_is_not_a_file(void **state)
{
    (void)state;
    char *s = (char *)1;
    size_t n;
    mkdir(tmp_path("dir"), 0755);
    assert_int_equal(aellm_file_read(&s, &n, tmp_path("dir"), 0, "text"), AELLM_EINVAL);
    assert_message("dir: is a directory");
    assert_null(s);
    assert_int_equal(mkfifo(tmp_path("fifo"), 0644), 0);
    assert_int_equal(aellm_file_read(&s, &n, tmp_path("fifo"), 0, "text"), AELLM_EINVAL);
    assert_message("fifo: is a pipe");
    assert_int_equal(aellm_file_read(&s, &n, "/dev/zero", 0, "text"), AELLM_EINVAL);
    assert_message("/dev/zero: is a device");
    assert_int_equal(aellm_file_read(&s, &n, tmp_path("absent"), 0, "text"), AELLM_ENOTFOUND);
    cJSON *j = (cJSON *)1;
    assert_int_equal(aellm_json_load(&j, tmp_path("dir")), AELLM_EINVAL);
    assert_null(j);
}

static void refuses_a_file_over_the_limit_with_both_numbers(void **state)
{
    (void)state;
    put(tmp_path("big.json"), "[1,2,3,4,5,6,7,8,9,10]");
    char *s;
    size_t n;
    assert_int_equal(aellm_file_read(&s, &n, tmp_path("big.json"), 8, "configuration"),
                     AELLM_EFORMAT);
    assert_message("configuration of 22 bytes is over the limit of 8 bytes");
    assert_null(s);
}

static void commits_and_refuses_to_replace_what_is_not_a_file(void **state)
{
    (void)state;
    aellm_atomic a;
    assert_int_equal(aellm_atomic_open(&a, tmp_path("out.bin")), 0);
    aellm_atomic_write(&a, "new", 3);
    fprintf(a.f, "%d", 42);
    assert_int_equal(aellm_atomic_commit(&a), 0);
    char *s;
    size_t n;
    assert_int_equal(aellm_file_read(&s, &n, tmp_path("out.bin"), 0, "output"), 0);
    assert_string_equal(s, "new42");
    free(s);

    assert_int_equal(mkfifo(tmp_path("pipe.gguf"), 0644), 0);
    assert_int_equal(aellm_atomic_open(&a, tmp_path("pipe.gguf")), AELLM_EIO);
    assert_message("exists and is not a regular file");
    struct stat st;
    assert_int_equal(stat(tmp_path("pipe.gguf"), &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    assert_int_equal(aellm_atomic_check(tmp_path("nodir/x.csv")), AELLM_EIO);
    assert_message("nodir/x.csv: cannot write a file there");
    assert_int_equal(aellm_atomic_check(tmp_path("fine.csv")), 0);
    assert_int_equal(tmp_temporaries("fine.csv"), 0);

    assert_int_equal(aellm_atomic_open(&a, tmp_path("out.bin")), 0);
    aellm_atomic_write(&a, "abandoned", 9);
    aellm_atomic_abort(&a);
    assert_int_equal(aellm_file_read(&s, &n, tmp_path("out.bin"), 0, "output"), 0);
    assert_string_equal(s, "new42");
    free(s);
    assert_int_equal(tmp_temporaries("out.bin"), 0);
}

/* The disk fills up part-way (RLIMIT_FSIZE, in a child so the limit stays
 * there): the write fails, the previous file is intact, no temporary file. */
static void a_write_that_fails_part_way_keeps_the_previous_file(void **state)
{
    (void)state;
    put(tmp_path("model.gguf"), "previous");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN); /* EFBIG from write() instead of a signal */
        struct rlimit rl = {1 << 16, 1 << 16};
        setrlimit(RLIMIT_FSIZE, &rl);
        static char block[1 << 15];
        aellm_atomic a;
        if (aellm_atomic_open(&a, tmp_path("model.gguf"))) _exit(2);
        for (int i = 0; i < 8; i++) aellm_atomic_write(&a, block, sizeof(block));
        int rc = aellm_atomic_commit(&a);
        _exit(rc == AELLM_EIO && strstr(aellm_error_last(), "write failed") ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    char *s;
    size_t n;
    assert_int_equal(aellm_file_read(&s, &n, tmp_path("model.gguf"), 0, "model"), 0);
    assert_string_equal(s, "previous");
    free(s);
    assert_int_equal(tmp_temporaries("model.gguf"), 0);
}

/* A writer killed mid-write leaves its temporary; the next writer of the
 * same path removes it, and leaves a live writer's alone. */
static void a_killed_writers_temporary_is_removed_by_the_next(void **state)
{
    (void)state;
    pid_t dead = fork();
    assert_true(dead >= 0);
    if (dead == 0) _exit(0);
    waitpid(dead, NULL, 0);
    char name[96];
    snprintf(name, sizeof(name), "w.gguf.tmp-%ld-abcdef", (long)dead);
    put(tmp_path(name), "half a model");
    snprintf(name, sizeof(name), "w.gguf.tmp-%ld-ghijkl", (long)getpid());
    put(tmp_path(name), "being written");
    assert_int_equal(tmp_temporaries("w.gguf"), 2);
    aellm_atomic a;
    assert_int_equal(aellm_atomic_open(&a, tmp_path("w.gguf")), 0);
    aellm_atomic_write(&a, "whole", 5);
    assert_int_equal(aellm_atomic_commit(&a), 0);
    assert_int_equal(tmp_temporaries("w.gguf"), 1);
    assert_int_equal(access(tmp_path(name), F_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_whole_files_and_ranges),
        cmocka_unit_test(refuses_what_is_not_a_file),
        cmocka_unit_test(refuses_a_file_over_the_limit_with_both_numbers),
        cmocka_unit_test(commits_and_refuses_to_replace_what_is_not_a_file),
        cmocka_unit_test(a_write_that_fails_part_way_keeps_the_previous_file),
        cmocka_unit_test(a_killed_writers_temporary_is_removed_by_the_next),
    };
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
