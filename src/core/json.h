/* JSON helpers over cJSON: the canonical form that identities are hashed
 * from (object keys sorted at every depth, no white space), and reading a
 * JSON file with errors that name it. */
#ifndef AELLM_CORE_JSON_H
#define AELLM_CORE_JSON_H

#include <cjson/cJSON.h>

/* Canonical text of `j` (not modified): keys sorted bytewise at every depth,
 * unformatted. Caller frees. NULL on allocation failure. */
char *aellm_json_canonical(const cJSON *j);

/* Configuration, space, task and hardware files are a few kilobytes; a
 * larger one is refused before it is read. */
#define AELLM_JSON_MAX_BYTES ((size_t)64 << 20)

/* Parses a JSON file into *out (caller deletes). Errors name the file and,
 * for a syntax error, the line. */
int aellm_json_load(cJSON **out, const char *path);

#endif
