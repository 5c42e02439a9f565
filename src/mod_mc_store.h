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

apr_status_t mc_store_get(server_rec *s, const char *key, apr_pool_t *p,
                          unsigned char **data, apr_size_t *len);
apr_status_t mc_store_put(server_rec *s, const char *key, apr_time_t expiry,
                          const unsigned char *data, apr_size_t len, apr_pool_t *p);
apr_status_t mc_store_remove(server_rec *s, const char *key, apr_pool_t *p);
/* Retrieve and remove in one step under the mutex: single-use records (login state). */
apr_status_t mc_store_take(server_rec *s, const char *key, apr_pool_t *p,
                           unsigned char **data, apr_size_t *len);

/* One token refresh at a time on this server (a process-shared mutex, apart from the store's
 * so a slow Monei never blocks store reads). wait=0: APR_EBUSY when another request holds it.
 * Pass the lock's result to unlock. */
apr_status_t mc_refresh_lock(server_rec *s, int wait);
void mc_refresh_unlock(server_rec *s, apr_status_t locked);

#endif
