/* The session store in a slot table (mc_slots.h) in shared memory: a lookup costs the same
 * at any number of sessions, one stripe lock per operation (no global mutex, no lock file),
 * a table made for N sessions holds N, and a session evicted for room is counted and logged.
 * The table is kept across graceful and plain restarts while its size is unchanged. */
#ifndef MOD_MC_SLOTS_H
#define MOD_MC_SLOTS_H

#include "httpd.h"
#include "mc_slots.h"
#include "mc_slots_lock.h"

/* In post_config (second pass, parent): make or find again the table for `entries` records
 * of up to `value_max` bytes. OK, or HTTP_INTERNAL_SERVER_ERROR after logging why. */
int mc_slots_store_post_config(apr_pool_t *pconf, server_rec *s, apr_uint32_t entries,
                               apr_uint32_t value_max);
/* In post_config when the configuration uses another store: the table kept from a
 * configuration before, if any, is let go with its sessions. */
void mc_slots_store_release(server_rec *s);
/* 1 when post_config made the table for this configuration. */
int mc_slots_store_active(void);

/* The operations, each atomic (under the key's stripe lock). Statuses: APR_SUCCESS (a put
 * or add that evicted another session is a success: it is counted and logged here),
 * APR_NOTFOUND (absent or expired), APR_EEXIST (add over a live record), APR_ENOSPC (a
 * record larger than value_max; the stored one stays), APR_EINIT (no table), APR_EINVAL
 * (key empty or over MC_SLOTS_KEY_MAX; logged), or APR_EGENERAL (a lock unusable; logged).
 * get gives the record's mark too (when mark is not NULL); touch sets the mark and the
 * expiry of a live record without rewriting it (mc_slots_touch). */
apr_status_t mc_slots_store_get(server_rec *s, const char *key, apr_pool_t *p,
                                unsigned char **data, apr_size_t *len, apr_uint32_t *mark);
apr_status_t mc_slots_store_touch(server_rec *s, const char *key, apr_time_t expiry,
                                  apr_uint32_t mark);
apr_status_t mc_slots_store_put(server_rec *s, const char *key, apr_time_t expiry,
                                const unsigned char *data, apr_size_t len);
apr_status_t mc_slots_store_add(server_rec *s, const char *key, apr_time_t expiry,
                                const unsigned char *data, apr_size_t len);
/* APR_SUCCESS whether or not there was a record. */
apr_status_t mc_slots_store_remove(server_rec *s, const char *key);

/* Fill, capacity and evictions for the status page (no lock taken). APR_EINIT without a
 * table. */
apr_status_t mc_slots_store_stats(mc_slots_stats_t *st);

#endif
