/* The store's private parts, shared by store.c (records) and schema.c
 * (identity check and migrations). Not a public interface. */
#ifndef AELLM_STORE_INTERNAL_H
#define AELLM_STORE_INTERNAL_H

#include <sqlite3.h>

#include "aellm/store.h"

/* "aelm": PRAGMA application_id of every aellm store, so that a file made by
 * another program is recognised as such before anything is written to it. */
#define AELLM_STORE_APPLICATION_ID 0x61656c6d

/* One connection, used by one thread at a time. */
struct aellm_store {
    sqlite3 *db;
    char *path;  /* for messages */
    int version; /* schema version after migration */
    int busy_ms; /* how long a locked store is waited for */
};

/* Sets the message "<path>: <what>: <sqlite message>" and returns the
 * matching aellm code. */
int aellm_store_sql_error(aellm_store *s, const char *what);

/* Runs SQL without results; an error names `what`. */
int aellm_store_exec(aellm_store *s, const char *sql, const char *what);

/* Refuses files that are not aellm stores or are from a newer aellm, then
 * creates or migrates the schema to AELLM_STORE_SCHEMA_VERSION in one
 * transaction. Sets s->version. */
int aellm_store_schema_prepare(aellm_store *s);

#endif
