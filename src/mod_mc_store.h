/* The session store: the built-in slot table in shared memory (`shm`, the default: one
 * server, a stripe lock per operation), or an ap_socache provider chosen by
 * MoneiConnectSessionStore, serialized by a global mutex when the provider is not
 * multi-process safe (shmcb, dbm). Records are opaque bytes here; encryption happens above. */
#ifndef MOD_MC_STORE_H
#define MOD_MC_STORE_H

#include "httpd.h"
#include <apr_time.h>

/* Largest record we write; retrieve buffers are this size (socache answers NOTFOUND when a
 * record does not fit the caller's buffer). */
#define MC_STORE_MAX_RECORD 8192

/* The built-in store: `shm` (MC_SHM_DEFAULT_SESSIONS) or `shm:SESSIONS`. A store for N
 * sessions is a slot table (mc_slots.h) of MC_SHM_ENTRIES(N) records of up to
 * MC_SHM_RECORD_MAX bytes each: N sessions, as many "used" markers of spent login states
 * (4 bytes, each lives 11 minutes at most) and MC_SHM_SHORT_LIVED session locks (each lives
 * seconds). Its size in bytes is mc_slots_size_for(MC_SHM_ENTRIES(N), MC_SHM_RECORD_MAX)
 * (README, "Capacity"). The record size makes a slot 3 KiB: twice a session with wallet and
 * profile (~1.5 KB sealed), room for a wallet with many more balances. */
#define MC_SHM_NAME "shm"
#define MC_SHM_DEFAULT_SESSIONS 10000
#define MC_SHM_SESSIONS_MAX 10000000
#define MC_SHM_SHORT_LIVED 1024
#define MC_SHM_RECORD_MAX 2976
#define MC_SHM_ENTRIES(n) (2 * (apr_uint32_t)(n) + MC_SHM_SHORT_LIVED)

/* What a read learns besides the record. */
typedef struct {
    apr_uint32_t version;       /* the key's version slot as of the read, for mc_reccache_put
                                 * (0 when the store has no version slots) */
    apr_int64_t touched;        /* the latest mc_store_touch stamp of the record, 0 if none */
} mc_store_seen_t;

/* Read key; *seen (when not NULL) is filled as well. */
apr_status_t mc_store_get(server_rec *s, const char *key, apr_pool_t *p, unsigned char **data,
                          apr_size_t *len, mc_store_seen_t *seen);
/* This process's cache of opened session records (mc_reccache.h): NULL when the store is
 * shared with other servers (redis, memcache), whose writes no version slot here sees. A
 * record comes from it only while no process has written or removed its key since it was
 * read, and never longer than 5 s. */
struct mc_reccache *mc_store_cache(void);
apr_status_t mc_store_put(server_rec *s, const char *key, apr_time_t expiry,
                          const unsigned char *data, apr_size_t len, apr_pool_t *p);
/* Write only when no live record is stored under key, atomically on every store (the global
 * mutex for shmcb/dbm, a stripe lock for shm, the engine's add for memcache/redis):
 * APR_EEXIST otherwise. */
apr_status_t mc_store_add(server_rec *s, const char *key, apr_time_t expiry,
                          const unsigned char *data, apr_size_t len, apr_pool_t *p);
apr_status_t mc_store_remove(server_rec *s, const char *key, apr_pool_t *p);
/* Note activity on a live record without rewriting it: a new expiry, and a stamp (unix
 * seconds, above 0) that the next mc_store_get reports. One atomic step on the built-in
 * store; never brings back a record that is gone (APR_NOTFOUND). APR_ENOTIMPL on the other
 * stores: the caller rewrites the record instead. */
apr_status_t mc_store_touch(server_rec *s, const char *key, apr_time_t expiry,
                            apr_int64_t stamp);

/* The built-in store's fill for the status page: 1 with the figures, 0 when the store is
 * another (ap_socache providers cannot count their entries). */
typedef struct {
    apr_uint32_t sessions;      /* sessions it was sized for (shm:SESSIONS) */
    apr_uint32_t records;       /* records held now: sessions, login states, locks */
    apr_uint32_t slots;         /* records it can hold at most */
    apr_uint64_t evictions;     /* live records evicted for room since it was made */
} mc_store_fill_t;
int mc_store_fill(mc_store_fill_t *f);

/* Log a store failure once per burst; note when it answers again. */
void mc_store_trouble(request_rec *r, apr_status_t rv, const char *what);
void mc_store_recovered(request_rec *r);

#endif
