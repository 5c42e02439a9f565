/* mc_slots: a hashed table of fixed-size slots in one caller-provided block of memory,
 * meant for shared memory that every process maps and that outlives restarts.
 *
 * The block holds no pointers, only indices, so any process may map it at any address.
 * A header (magic, version, geometry) lets a block kept across a restart be checked and
 * attached again; a block of another geometry is refused.
 *
 * Layout. The table is cut into S stripes (a power of two, S <= MC_SLOTS_STRIPES_MAX). A
 * key's hash picks its stripe, and everything about the key stays inside that stripe: its
 * index entry, its probe sequence and its data slot. So one lock per stripe makes every
 * operation atomic, and operations on different stripes never touch the same bytes
 * (beyond the header, written only by a rebuild). Each stripe has:
 *   - MC_SLOTS_LOCK_BYTES of opaque room for the caller's lock (zeroed by create, never
 *     touched by the table), so the locks can live in the same shared block;
 *   - B data slots (key, expiry, value of up to R bytes), handed out from two free lists:
 *     slots that a page boundary cuts early go to small values first, the others to large
 *     ones, so a large value (a session, read on every request) spans one page, not two;
 *   - an open-addressing index (linear probing) of at least 2 B entries of 16 bytes, each
 *     a hash tag, a slot number and the expiry. At most half of it is ever used, so a
 *     lookup reads about 1.5 entries (hit) or 2.5 (miss) whatever the number of entries.
 * Removal shifts the following index entries back (no tombstones) and returns the data
 * slot to its free list at once, so a stripe always holds exactly B entries when full.
 *
 * Capacity. A table made for N entries has B slots per stripe, B >= N / S. With S = 1
 * (N < 2 * MC_SLOTS_STRIPE_MIN_ENTRIES) B = N: exactly N entries, whatever the keys. With
 * more stripes, keys spread over them at random (keyed hash, seed made at create), and B
 * is the Bernstein bound that N random keys put more than B into some stripe with
 * probability below 1e-9: a table made for N holds N entries. The headroom this costs is
 * about 13 % at N = 100,000 and shrinks as N grows; the index adds 32 to 64 bytes per slot.
 * mc_slots_size_for(N, R) is the exact size of the block.
 *
 * Expiry is checked on every read: an expired entry is absent, and its slot is freed when
 * an operation meets it, or when a put finds its stripe full. A put into a full stripe with
 * nothing expired evicts the entry of that stripe that expires soonest, counts it, and says
 * so (MC_SLOTS_EVICTED), so the caller can log it.
 *
 * Locking contract. The table takes no lock. Before any operation on a key, the caller
 * holds the lock of the key's stripe (mc_slots_key_stripe) and releases it after; every
 * operation, get included, may write inside that stripe. The one exception is
 * mc_slots_prefetch, which only reads and is meant to run just before the lock is taken.
 * mc_slots_stats reads counters without any lock (approximate while writers run). A process
 * that dies holding a stripe lock may leave that stripe half-written: the caller then runs
 * mc_slots_stripe_rebuild under the lock (for example on a robust mutex's EOWNERDEAD).
 */
#ifndef MC_SLOTS_H
#define MC_SLOTS_H

#include <apr_pools.h>
#include <apr_time.h>
#include <apr_errno.h>

/* Longest key (ours are 35 bytes). */
#define MC_SLOTS_KEY_MAX 64
/* Room per stripe for the caller's lock (a pthread_mutex_t is 40 bytes on Linux x86_64). */
#define MC_SLOTS_LOCK_BYTES 64
#define MC_SLOTS_STRIPES_MAX 256
/* A stripe is made for at least this many entries (below it, a random spread over
 * stripes would need too much headroom). */
#define MC_SLOTS_STRIPE_MIN_ENTRIES 2048
/* Largest table and value mc_slots_size_for accepts. */
#define MC_SLOTS_ENTRIES_MAX (1u << 26)
#define MC_SLOTS_VALUE_MAX (1u << 20)

/* A put or add that stored its value after evicting another live entry. It is a success:
 * callers that only test for APR_SUCCESS must test for this as well. */
#define MC_SLOTS_EVICTED (APR_OS_START_USERERR + 1717)

typedef struct mc_slots mc_slots;

/* A key with its hash, computed once and used for the stripe and the operation. */
typedef struct {
    const char *key;
    apr_size_t len;
    apr_uint64_t hash;
} mc_slots_key;

typedef struct {
    apr_uint32_t entries;       /* N the table was made for */
    apr_uint32_t slots;         /* S * B: the hard limit */
    apr_uint32_t stripes;       /* S */
    apr_uint32_t value_max;     /* R */
    apr_uint32_t used;          /* slots holding an entry (expired ones until freed) */
    apr_uint64_t evictions;     /* live entries evicted for room since create */
    apr_uint32_t rebuilds;      /* stripes rebuilt since create (mc_slots_stripe_rebuild) */
} mc_slots_stats_t;

/* Bytes of the block for `entries` entries of values up to `value_max` bytes; 0 when either
 * is 0 or above its maximum. */
apr_size_t mc_slots_size_for(apr_uint32_t entries, apr_uint32_t value_max);

/* Make an empty table in block (size bytes, at least mc_slots_size_for, 64-byte aligned).
 * The handle is process-local, allocated from p. Only the header, stripe heads and index
 * are written: the slots' pages are first touched when used. */
apr_status_t mc_slots_create(void *block, apr_size_t size, apr_uint32_t entries,
                             apr_uint32_t value_max, apr_pool_t *p, mc_slots **out);

/* Use a table made before (by this or another process, before a restart). APR_EINVAL when
 * the block holds no table of this version (bad magic, version or header); APR_EMISMATCH
 * when it holds one of another geometry (other entries or value_max, or too small). */
apr_status_t mc_slots_attach(void *block, apr_size_t size, apr_uint32_t entries,
                             apr_uint32_t value_max, apr_pool_t *p, mc_slots **out);

/* Fill k for key; APR_EINVAL when the key is empty or longer than MC_SLOTS_KEY_MAX. k keeps
 * pointing at key. */
apr_status_t mc_slots_key_make(const mc_slots *t, const char *key, mc_slots_key *k);
unsigned mc_slots_key_stripe(const mc_slots *t, const mc_slots_key *k);
unsigned mc_slots_stripe_count(const mc_slots *t);
/* The caller's MC_SLOTS_LOCK_BYTES of lock room of a stripe, 64-byte aligned. */
void *mc_slots_lock_area(mc_slots *t, unsigned stripe);
/* Stripe of a key: mc_slots_key_make + mc_slots_key_stripe, or -1 for an invalid key. */
int mc_slots_stripe_of(const mc_slots *t, const char *key);

/* What an entry holds besides its value. */
typedef struct {
    apr_time_t expiry;
    apr_uint32_t mark;          /* the caller's number, set by touch: 0 until touched */
} mc_slots_meta;

/* The operations: the caller holds the lock of k's stripe; now decides expiry.
 *
 * get: copies the value into buf (cap bytes); *len its length, *meta (if not NULL) its
 * expiry and mark. APR_NOTFOUND when absent or expired; APR_ENOSPC when cap is too small,
 * with *len the length needed. */
apr_status_t mc_slots_get(mc_slots *t, const mc_slots_key *k, apr_time_t now,
                          unsigned char *buf, apr_size_t cap, apr_size_t *len,
                          mc_slots_meta *meta);
/* touch: a live entry gets a new expiry and mark, its value untouched (so a reader can learn
 * of activity on a record without the record being rewritten). APR_NOTFOUND when absent or
 * expired: a touch never brings an entry back. */
apr_status_t mc_slots_touch(mc_slots *t, const mc_slots_key *k, apr_time_t now,
                            apr_time_t expiry, apr_uint32_t mark);
/* put: insert or replace (a live entry replaced keeps its mark; a new one has 0). APR_ENOSPC when len > value_max (the entry there stays);
 * MC_SLOTS_EVICTED when stored after evicting another entry. */
apr_status_t mc_slots_put(mc_slots *t, const mc_slots_key *k, apr_time_t now,
                          apr_time_t expiry, const unsigned char *val, apr_size_t len);
/* add: insert only when absent or expired; APR_EEXIST when a live entry is there. Else as
 * put. */
apr_status_t mc_slots_add(mc_slots *t, const mc_slots_key *k, apr_time_t now,
                          apr_time_t expiry, const unsigned char *val, apr_size_t len);
/* remove: APR_SUCCESS when a live entry was removed, APR_NOTFOUND when there was none
 * (an expired entry is freed all the same). */
apr_status_t mc_slots_remove(mc_slots *t, const mc_slots_key *k, apr_time_t now);

/* Without the stripe's lock, before taking it: read the index entries and the slot a lookup
 * of k would read (one byte per cache line), so that the TLB misses, cache misses and first-
 * touch page faults of a large shared block are paid while no other process waits for the
 * lock. It decides nothing and writes nothing: what it reads may be changing under a writer,
 * so it follows only a slot number in range and a length up to value_max. */
void mc_slots_prefetch(const mc_slots *t, const mc_slots_key *k);

/* Counters, read without locks. */
void mc_slots_stats(const mc_slots *t, mc_slots_stats_t *st);

/* Under the stripe's lock: check the stripe's structure. APR_SUCCESS when consistent. */
apr_status_t mc_slots_stripe_verify(const mc_slots *t, unsigned stripe);
/* Under the stripe's lock: make the stripe consistent again after a writer died in it,
 * from its slots: every entry whose slot header is whole is kept (of a key found twice, the
 * later expiry). A value cut short while being replaced in place is kept torn: the values
 * are sealed records, which then fail to open as a forged one would. */
void mc_slots_stripe_rebuild(mc_slots *t, unsigned stripe);
/* Called (in this process, through this handle) after each rebuild, with the entries kept:
 * the caller logs it. */
typedef void mc_slots_rebuilt_fn(void *baton, unsigned stripe, apr_uint32_t kept);
void mc_slots_on_rebuild(mc_slots *t, mc_slots_rebuilt_fn *fn, void *baton);

#endif
