/* mc_slots_lock: the stripe locks of an mc_slots table, kept inside the table's own block,
 * and the table's operations by key, each done under its stripe's lock.
 *
 * Each stripe's lock room holds a process-shared, robust pthread mutex: every process that
 * maps the block (httpd children, across graceful restarts) uses the same locks, with no
 * lock file and no file descriptor per stripe. When a process dies holding a stripe's lock
 * (a killed child), the next process to take it gets EOWNERDEAD: the stripe is rebuilt from
 * its slots (mc_slots_stripe_rebuild, reported through mc_slots_on_rebuild) and the mutex
 * marked consistent, so one dead child never wedges a stripe nor leaves it half-written.
 *
 * The locks are initialised once, right after mc_slots_create, before any other process
 * uses the block; a block attached again (mc_slots_attach) keeps them. */
#ifndef MC_SLOTS_LOCK_H
#define MC_SLOTS_LOCK_H

#include "mc_slots.h"

/* Initialise every stripe's mutex. APR_ENOTIMPL when this platform has no process-shared
 * robust mutexes (a pthread_mutex_t must also fit MC_SLOTS_LOCK_BYTES). */
apr_status_t mc_slots_locks_init(mc_slots *t);

/* Take and release a stripe's lock (for a caller that does several operations at once). */
apr_status_t mc_slots_lock(mc_slots *t, unsigned stripe);
void mc_slots_unlock(mc_slots *t, unsigned stripe);

/* The operations by key string, each under the key's stripe lock, with the statuses of
 * mc_slots.h (MC_SLOTS_EVICTED included), APR_EINVAL for an unusable key, or MC_SLOTS_ELOCK
 * when the stripe's lock could not be taken (a mutex left unrecoverable). */
#define MC_SLOTS_ELOCK (APR_OS_START_USERERR + 1718)

/* *data: a copy from p, NUL-terminated (not counted in *len); *mark (when not NULL) the
 * entry's mark. */
apr_status_t mc_slots_lget(mc_slots *t, const char *key, apr_time_t now, apr_pool_t *p,
                           unsigned char **data, apr_size_t *len, apr_uint32_t *mark);
apr_status_t mc_slots_lput(mc_slots *t, const char *key, apr_time_t now, apr_time_t expiry,
                           const unsigned char *data, apr_size_t len);
apr_status_t mc_slots_ladd(mc_slots *t, const char *key, apr_time_t now, apr_time_t expiry,
                           const unsigned char *data, apr_size_t len);
apr_status_t mc_slots_lremove(mc_slots *t, const char *key, apr_time_t now);
apr_status_t mc_slots_ltouch(mc_slots *t, const char *key, apr_time_t now, apr_time_t expiry,
                             apr_uint32_t mark);

#endif
