/* A temporary directory per test program, removed at the end: cmocka group
 * setup/teardown and a path builder. Header-only, for tests. */
#ifndef AELLM_TEST_TMPDIR_H
#define AELLM_TEST_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>

static char tmp_dir[64];

/* `name` inside the directory; four results stay valid at a time. */
static const char *tmp_path(const char *name)
{
    static char path[4][160];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof(path[k]), "%s/%s", tmp_dir, name);
    return path[k];
}

/* Temporaries the atomic writer left beside `name` ("name.tmp-PID-XXXXXX"). */
static inline int tmp_temporaries(const char *name)
{
    char cmd[256], line[32] = "";
    snprintf(cmd, sizeof(cmd), "ls -a '%s' | grep -c -F '%s.tmp-'", tmp_dir, name);
    FILE *p = popen(cmd, "r");
    if (!p || !fgets(line, sizeof(line), p)) line[0] = '0';
    if (p) pclose(p);
    return atoi(line);
}

static int tmpdir_setup(void **state)
{
    (void)state;
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/aellm_test_XXXXXX");
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int tmpdir_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
    return system(cmd) == 0 ? 0 : -1;
}

#endif
