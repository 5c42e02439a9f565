/* mc_reccache: a process-local cache of opened session records in front of a store that only
 * the processes of one server write (shmcb, dbm), validated by version counters that those
 * processes share.
 *
 * Every write or removal of a store key bumps the key's version slot, after the write and
 * under the store's mutex. A reader notes the slot's version under the same mutex as it
 * reads the record, and caches the record with that version. The record is served from the
 * cache only while the slot still holds that version, so a change made by any process (a
 * refresh, a disconnect) is seen by the next request of every process. Two keys may share a
 * slot: that only costs a store read. Entries are also dropped after max_age, which bounds
 * what the version slots cannot see (the store expiring or evicting a record by itself).
 *
 * Entries are looked up by the session id of the cookie (so a hit needs no hash and no
 * decryption) and hold the opened record: the process holding them also holds the keys that
 * open every record of the store, so they expose nothing new. They are wiped when replaced,
 * dropped or found stale, and when the process ends. */
#ifndef MC_RECCACHE_H
#define MC_RECCACHE_H

#include <apr_pools.h>
#include <apr_time.h>

/* Version slots: a fixed array of 32-bit counters, in memory every process maps. */
#define MC_VERSION_SLOTS 4096
#define MC_VERSIONS_BYTES (MC_VERSION_SLOTS * sizeof(apr_uint32_t))

apr_uint32_t mc_versions_get(const apr_uint32_t *versions, const char *key);
void mc_versions_bump(apr_uint32_t *versions, const char *key);
/* Every slot: a new store instance makes everything cached anywhere stale. */
void mc_versions_bump_all(apr_uint32_t *versions);

/* Ids and store keys longer than this are never cached (ours are 43 and 34 bytes). */
#define MC_RECCACHE_KEY_MAX 63

typedef struct mc_reccache mc_reccache;

/* A cache of `entries` records (direct-mapped by id; a colliding id replaces the older one),
 * each served for at most `max_age` after it was read from the store. Memory is allocated
 * once from p, plus one buffer per entry that grows to the largest record it held. */
apr_status_t mc_reccache_create(apr_pool_t *p, apr_uint32_t *versions, unsigned entries,
                                apr_interval_time_t max_age, mc_reccache **out);

/* Every entry belongs to a realm: an opaque pointer naming the server identity (client id
 * and keys) that opened it. A record is only ever served to the realm that put it, so one
 * virtual host never opens a session of another through this cache. */

/* 1 when the cache holds id for realm, its store key's slot still has the version noted at
 * the read, and the entry is younger than max_age: *data is a NUL-terminated copy of the
 * record and *key the store key, both allocated from p (the caller wipes *data), and *note
 * what was put with it. 0 otherwise. */
int mc_reccache_get(mc_reccache *c, const void *realm, const char *id, apr_time_t now,
                    apr_pool_t *p, unsigned char **data, apr_size_t *len, const char **key,
                    apr_int64_t *note);

/* Keep the record of id in realm, read from the store under `key` at `version`, with a
 * number the caller read along with it (the store's activity stamp), given back by get. */
void mc_reccache_put(mc_reccache *c, const void *realm, const char *id, const char *key,
                     apr_uint32_t version, apr_int64_t note, apr_time_t now,
                     const unsigned char *data, apr_size_t len);

/* Drop id (the store no longer has its record). */
void mc_reccache_forget(mc_reccache *c, const char *id);

#endif
