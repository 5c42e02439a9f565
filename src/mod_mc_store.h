/* The session store: an ap_socache provider chosen by MoneiConnectSessionStore, serialized by a
 * global mutex when the provider is not multi-process safe (shmcb, dbm). Records are opaque
 * bytes here; encryption happens above. */
#ifndef MOD_MC_STORE_H
#define MOD_MC_STORE_H

#include "httpd.h"
#include <apr_time.h>

/* Largest record we write; retrieve buffers are this size (socache answers NOTFOUND when a
 * record does not fit the caller's buffer). */
#define MC_STORE_MAX_RECORD 8192

/* Read key; *version (when not NULL) is the key's version slot as of the read, for
 * mc_reccache_put (0 when the store has no version slots). */
apr_status_t mc_store_get(server_rec *s, const char *key, apr_pool_t *p, unsigned char **data,
                          apr_size_t *len, apr_uint32_t *version);
/* This process's cache of opened session records (mc_reccache.h): NULL when the store is
 * shared with other servers (redis, memcache), whose writes no version slot here sees. A
 * record comes from it only while no process has written or removed its key since it was
 * read, and never longer than 5 s. */
struct mc_reccache *mc_store_cache(void);
apr_status_t mc_store_put(server_rec *s, const char *key, apr_time_t expiry,
                          const unsigned char *data, apr_size_t len, apr_pool_t *p);
/* Write only when no live record is stored under key, atomically on every store (the global
 * mutex for shmcb/dbm, the engine's add for memcache/redis): APR_EEXIST otherwise. */
apr_status_t mc_store_add(server_rec *s, const char *key, apr_time_t expiry,
                          const unsigned char *data, apr_size_t len, apr_pool_t *p);
apr_status_t mc_store_remove(server_rec *s, const char *key, apr_pool_t *p);
/* Retrieve and remove in one step under the mutex: single-use records (login state). */
apr_status_t mc_store_take(server_rec *s, const char *key, apr_pool_t *p,
                           unsigned char **data, apr_size_t *len);

/* Read, decide and write in one step under the store mutex: atomic within a server only
 * (on memcache/redis another server may write in between).
 * decide() gets the current record (NULL if none) and returns APR_SUCCESS with the new
 * record and its expiry to write it, or any other status to leave the store alone (that
 * status is returned). */
typedef apr_status_t (*mc_store_update_fn)(void *baton, const unsigned char *old,
                                           apr_size_t oldlen, const unsigned char **data,
                                           apr_size_t *len, apr_time_t *expiry);
apr_status_t mc_store_update(server_rec *s, const char *key, apr_pool_t *p,
                             mc_store_update_fn decide, void *baton);

/* Log a store failure once per burst; note when it answers again. */
void mc_store_trouble(request_rec *r, apr_status_t rv, const char *what);
void mc_store_recovered(request_rec *r);

#endif
