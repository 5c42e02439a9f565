/* Unit tests of mc_slots.c: the hashed table of fixed slots in one shared block. */
#include "mc_test.h"
#include "mc_slots.h"

#include <apr_general.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const apr_time_t T0 = APR_TIME_C(1000000000);
#define LATER (T0 + apr_time_from_sec(3600))

/* A block starting on a multiple of align, not zeroed (garbage must not matter). */
static void *block_aligned(apr_pool_t *p, apr_uint32_t n, apr_uint32_t r, apr_size_t *size,
                           apr_size_t align)
{
    unsigned char *raw;
    *size = mc_slots_size_for(n, r);
    raw = apr_palloc(p, *size + align);
    raw += align - ((apr_uintptr_t)raw & (align - 1));
    memset(raw, 0xA5, *size);
    return raw;
}

/* A block as apr_shm would give: 64-byte aligned. */
static void *block_for(apr_pool_t *p, apr_uint32_t n, apr_uint32_t r, apr_size_t *size)
{
    return block_aligned(p, n, r, size, 64);
}

static mc_slots *table(apr_pool_t *p, apr_uint32_t n, apr_uint32_t r)
{
    apr_size_t size;
    void *b = block_for(p, n, r, &size);
    mc_slots *t = NULL;
    if (mc_slots_create(b, size, n, r, p, &t) != APR_SUCCESS) {
        return NULL;
    }
    return t;
}

static apr_status_t put(mc_slots *t, const char *key, apr_time_t now, apr_time_t exp,
                        const char *val)
{
    mc_slots_key k;
    apr_status_t rv = mc_slots_key_make(t, key, &k);
    return rv ? rv : mc_slots_put(t, &k, now, exp, (const unsigned char *)val, strlen(val));
}

static apr_status_t add(mc_slots *t, const char *key, apr_time_t now, apr_time_t exp,
                        const char *val)
{
    mc_slots_key k;
    apr_status_t rv = mc_slots_key_make(t, key, &k);
    return rv ? rv : mc_slots_add(t, &k, now, exp, (const unsigned char *)val, strlen(val));
}

static apr_status_t del(mc_slots *t, const char *key, apr_time_t now)
{
    mc_slots_key k;
    apr_status_t rv = mc_slots_key_make(t, key, &k);
    return rv ? rv : mc_slots_remove(t, &k, now);
}

/* 1 when key holds exactly want at now. */
static int holds(mc_slots *t, const char *key, apr_time_t now, const char *want)
{
    mc_slots_key k;
    unsigned char buf[4096];
    apr_size_t n = 0;
    if (mc_slots_key_make(t, key, &k) || mc_slots_get(t, &k, now, buf, sizeof(buf), &n, NULL)) {
        return 0;
    }
    return n == strlen(want) && !memcmp(buf, want, n);
}

static int absent(mc_slots *t, const char *key, apr_time_t now)
{
    mc_slots_key k;
    unsigned char buf[4096];
    apr_size_t n;
    return !mc_slots_key_make(t, key, &k)
           && mc_slots_get(t, &k, now, buf, sizeof(buf), &n, NULL) == APR_NOTFOUND;
}

static apr_uint32_t used(mc_slots *t)
{
    mc_slots_stats_t st;
    mc_slots_stats(t, &st);
    return st.used;
}

static apr_uint64_t evictions(mc_slots *t)
{
    mc_slots_stats_t st;
    mc_slots_stats(t, &st);
    return st.evictions;
}

static int all_verify(mc_slots *t)
{
    unsigned s;
    for (s = 0; s < mc_slots_stripe_count(t); s++) {
        if (mc_slots_stripe_verify(t, s) != APR_SUCCESS) {
            return 0;
        }
    }
    return 1;
}

/* A key like ours: 32 random base64url characters, ':', a kind. */
static void random_key(char *out, unsigned *seed)
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int i;
    for (i = 0; i < 32; i++) {
        out[i] = b64[rand_r(seed) & 63];
    }
    out[32] = ':';
    out[33] = 's';
    out[34] = '\0';
}

static void test_geometry(apr_pool_t *p)
{
    mc_slots_stats_t st;
    mc_slots *t;
    apr_size_t size;
    void *b;

    CHECK(mc_slots_size_for(0, 100) == 0, "no size for 0 entries");
    CHECK(mc_slots_size_for(10, 0) == 0, "no size for 0-byte values");
    CHECK(mc_slots_size_for(MC_SLOTS_ENTRIES_MAX + 1, 100) == 0, "nor above the maximum");
    CHECK(mc_slots_size_for(10, 100) < mc_slots_size_for(11, 100)
          && mc_slots_size_for(10, 100) < mc_slots_size_for(10, 200), "size grows with N and R");

    t = table(p, 1000, 100);
    mc_slots_stats(t, &st);
    CHECK(st.stripes == 1 && st.slots == 1000 && st.entries == 1000 && st.value_max == 100
          && st.used == 0 && st.evictions == 0, "a small table is one stripe of exactly N slots");

    t = table(p, 100000, 16);
    mc_slots_stats(t, &st);
    NOTE("N=100000: %u stripes, %u slots (headroom %.1f %%), %lu bytes for R=2048",
         st.stripes, st.slots, 100.0 * (st.slots - 100000.0) / 100000.0,
         (unsigned long)mc_slots_size_for(100000, 2048));
    CHECK(st.stripes > 1 && st.stripes <= MC_SLOTS_STRIPES_MAX, "a large table has stripes");
    CHECK(st.slots > 100000 && st.slots < 115000, "with under 15 % headroom at 100,000");
    CHECK(mc_slots_size_for(100000, 2048) < (apr_size_t)100000 * 2200 * 115 / 100,
          "size for 100,000 records of 2 KB is under 1.15 x N x (R + key + 150)");

    b = block_for(p, 100, 100, &size);
    CHECK(mc_slots_create(b, size - 1, 100, 100, p, &t) == APR_EINVAL, "too small a block refused");
    CHECK(mc_slots_create((char *)b + 8, size, 100, 100, p, &t) == APR_EINVAL,
          "an unaligned block refused");
    CHECK(mc_slots_create(b, size, 0, 100, p, &t) == APR_EINVAL, "0 entries refused");
}

static void test_round_trips(apr_pool_t *p)
{
    mc_slots *t = table(p, 100, 64);
    mc_slots_key k;
    unsigned char buf[64];
    char long_key[MC_SLOTS_KEY_MAX + 2];
    apr_size_t n;
    mc_slots_meta meta = { 0, 99 };

    CHECK(absent(t, "a:s", T0), "an empty table has nothing");
    CHECK(put(t, "a:s", T0, LATER, "record-a") == APR_SUCCESS, "put");
    CHECK(put(t, "b:s", T0, LATER, "record-b") == APR_SUCCESS, "put another");
    CHECK(holds(t, "a:s", T0, "record-a") && holds(t, "b:s", T0, "record-b"), "both read back");
    CHECK(absent(t, "a:", T0) && absent(t, "a:ss", T0), "nor a prefix nor a longer key");
    mc_slots_key_make(t, "a:s", &k);
    CHECK(mc_slots_get(t, &k, T0, buf, sizeof(buf), &n, &meta) == APR_SUCCESS
          && meta.expiry == LATER && meta.mark == 0, "get gives the expiry, and a new mark 0");
    CHECK(mc_slots_get(t, &k, T0, buf, 7, &n, NULL) == APR_ENOSPC && n == 8,
          "too small a buffer: ENOSPC, with the length needed");
    CHECK(put(t, "a:s", T0, LATER, "a longer record-a") == APR_SUCCESS
          && holds(t, "a:s", T0, "a longer record-a"), "replace with a longer value");
    CHECK(put(t, "a:s", T0, LATER, "x") == APR_SUCCESS && holds(t, "a:s", T0, "x"),
          "and a shorter one");
    CHECK(used(t) == 2, "replacing takes no new slot");
    CHECK(put(t, "e:s", T0, LATER, "") == APR_SUCCESS && holds(t, "e:s", T0, ""),
          "an empty value is a value");

    CHECK(mc_slots_key_make(t, "", &k) == APR_EINVAL, "empty key refused");
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    CHECK(mc_slots_key_make(t, long_key, &k) == APR_EINVAL, "key over MC_SLOTS_KEY_MAX refused");
    CHECK(mc_slots_stripe_of(t, long_key) == -1 && mc_slots_stripe_of(t, "a:s") == 0,
          "stripe_of: -1 for an invalid key");
    long_key[MC_SLOTS_KEY_MAX] = '\0';
    CHECK(put(t, long_key, T0, LATER, "max") == APR_SUCCESS && holds(t, long_key, T0, "max"),
          "a key of MC_SLOTS_KEY_MAX bytes works");

    CHECK(del(t, "a:s", T0) == APR_SUCCESS && absent(t, "a:s", T0), "remove");
    CHECK(del(t, "a:s", T0) == APR_NOTFOUND, "removing again: NOTFOUND");
    CHECK(holds(t, "b:s", T0, "record-b"), "the other entry stays");
    CHECK(used(t) == 3, "the removed entry's slot is free at once");
    CHECK(all_verify(t), "structure consistent");
}

static void test_expiry_and_add(apr_pool_t *p)
{
    mc_slots *t = table(p, 100, 64);
    apr_time_t exp = T0 + apr_time_from_sec(10);

    put(t, "x:s", T0, exp, "v1");
    CHECK(holds(t, "x:s", exp - 1, "v1"), "served until its expiry");
    CHECK(absent(t, "x:s", exp), "absent at its expiry");
    CHECK(used(t) == 0, "and its slot freed when read expired");

    put(t, "y:s", T0, exp, "v1");
    CHECK(del(t, "y:s", exp) == APR_NOTFOUND && used(t) == 0,
          "removing an expired entry: NOTFOUND, slot freed");

    CHECK(add(t, "z:s", T0, exp, "first") == APR_SUCCESS, "add when absent");
    CHECK(add(t, "z:s", T0, exp, "second") == APR_EEXIST, "add when present: EEXIST");
    CHECK(holds(t, "z:s", T0, "first"), "and the first value stays");
    CHECK(add(t, "z:s", exp, exp + 10, "third") == APR_SUCCESS && holds(t, "z:s", exp, "third"),
          "add over an expired entry succeeds");
    CHECK(used(t) == 1, "one slot for it");
    CHECK(put(t, "z:s", exp, exp + 10, "fourth") == APR_SUCCESS && holds(t, "z:s", exp, "fourth"),
          "put replaces whatever is there");
    CHECK(all_verify(t), "structure consistent");
}

static apr_uint32_t mark_of(mc_slots *t, const char *key, apr_time_t now)
{
    mc_slots_key k;
    mc_slots_meta meta = { 0, 0 };
    unsigned char buf[64];
    apr_size_t n;
    mc_slots_key_make(t, key, &k);
    return mc_slots_get(t, &k, now, buf, sizeof(buf), &n, &meta) == APR_SUCCESS ? meta.mark
                                                                                 : 0xdead;
}

static apr_status_t touch(mc_slots *t, const char *key, apr_time_t now, apr_time_t expiry,
                          apr_uint32_t mark)
{
    mc_slots_key k;
    mc_slots_key_make(t, key, &k);
    return mc_slots_touch(t, &k, now, expiry, mark);
}

static void test_touch(apr_pool_t *p)
{
    mc_slots *t = table(p, 100, 64);
    apr_time_t exp = T0 + apr_time_from_sec(10);

    put(t, "x:s", T0, exp, "v1");
    CHECK(touch(t, "x:s", T0 + 1, exp + 100, 5) == APR_SUCCESS && mark_of(t, "x:s", T0) == 5,
          "touch sets the mark");
    CHECK(holds(t, "x:s", exp + 99, "v1") && absent(t, "x:s", exp + 100),
          "and moves the expiry, the value unchanged");
    CHECK(touch(t, "x:s", exp + 100, exp + 200, 6) == APR_NOTFOUND && absent(t, "x:s", exp),
          "an expired entry is not brought back by a touch");
    CHECK(touch(t, "n:s", T0, exp, 1) == APR_NOTFOUND && used(t) == 0, "nor a missing one made");
    put(t, "y:s", T0, exp, "v1");
    touch(t, "y:s", T0, exp, 9);
    CHECK(put(t, "y:s", T0, exp, "v2") == APR_SUCCESS && mark_of(t, "y:s", T0) == 9,
          "a put over the live entry keeps the mark");
    CHECK(add(t, "y:s", exp, exp + 10, "v3") == APR_SUCCESS && mark_of(t, "y:s", exp) == 0,
          "an entry put over an expired one starts at 0");
    CHECK(all_verify(t), "structure consistent");
}

/* The read-ahead done without the lock writes nothing, and follows nothing out of the
 * block whatever the block holds (a writer may be changing what it reads). */
static void test_prefetch(apr_pool_t *p)
{
    static const apr_uint32_t patterns[] = { 0, 0xffffffffu, 1, 0x01010101u, 0x7fffffffu };
    apr_size_t size;
    apr_uint32_t *b = block_for(p, 3000, 200, &size);
    unsigned char *copy = apr_palloc(p, size);
    mc_slots *t = NULL;
    mc_slots_key k;
    char key[40];
    unsigned seed = 11, i, j, n = size / sizeof(*b);
    int same = 1;

    mc_slots_create(b, size, 3000, 200, p, &t);
    for (i = 0; i < 2000; i++) {
        random_key(key, &seed);
        put(t, key, T0, LATER, key);
    }
    del(t, key, T0);
    memcpy(copy, b, size);
    seed = 11;
    for (i = 0; i < 2100; i++) {
        random_key(key, &seed);
        mc_slots_key_make(t, key, &k);
        mc_slots_prefetch(t, &k);
    }
    CHECK(memcmp(copy, b, size) == 0, "prefetch of stored, removed and absent keys writes nothing");
    /* Every index entry and slot header garbage: slot numbers and lengths out of range. */
    for (j = 0; j < sizeof(patterns) / sizeof(*patterns); j++) {
        for (i = 0; i < n; i++) {
            b[i] = patterns[j] + (i & 7);
        }
        memcpy(copy, b, size);
        seed = 12;
        for (i = 0; i < 500; i++) {
            random_key(key, &seed);
            mc_slots_key_make(t, key, &k);
            mc_slots_prefetch(t, &k);
        }
        same &= memcmp(copy, b, size) == 0;
    }
    CHECK(same, "prefetch over a block of garbage stays inside it (no fault) and writes nothing");

    /* One entry whose index slot number, then whose length, a writer left out of range (the
     * layout of mc_slots.c: an index entry is tag, slot, expiry; a slot header has the value
     * length 20 bytes before the key). Either would lead a read gigabytes away. */
    mc_slots_create(b, size, 3000, 200, p, &t);
    random_key(key, &seed);
    put(t, key, T0, LATER, key);
    mc_slots_key_make(t, key, &k);
    for (i = 1, j = 0; i + 2 < n; i++) {
        if (b[i] == 1 && memcmp(&b[i + 1], &(apr_int64_t){ LATER }, 8) == 0) {
            b[i] = 0x7fffffff;
            j++;
        }
    }
    mc_slots_prefetch(t, &k);
    CHECK(j == 1, "an index entry's slot number out of range is not followed");
    mc_slots_create(b, size, 3000, 200, p, &t);
    put(t, key, T0, LATER, key);
    mc_slots_key_make(t, key, &k);
    copy = memmem(b, size, key, strlen(key));
    if (copy) {
        memset(copy - 20, 0xff, 4);
    }
    mc_slots_prefetch(t, &k);
    CHECK(copy != NULL, "a slot's value length out of range is not followed");
}

#define REC 2976                        /* the module's record size (mod_mc_store.h) */
#define SESSION_BYTES 1500              /* a session with wallet and profile, sealed */
#define SLOT_HEAD 96                    /* slot header and key before the value (mc_slots.c) */

/* A session-sized value in buf (SESSION_BYTES + 1), findable in the block by its key. */
static apr_status_t put_session(mc_slots *t, const char *key, char *buf)
{
    memset(buf, 'x', SESSION_BYTES);
    memcpy(buf, "SESSION!", 8);
    memcpy(buf + 8, key, strlen(key));
    buf[SESSION_BYTES] = '\0';
    return put(t, key, T0, LATER, buf);
}

/* Live sessions of the block (values that start "SESSION!" then a key in live) that span
 * two pages from their slot's start to their value's end; *seen counts those found. */
static int sessions_across_pages(const unsigned char *b, apr_size_t size, apr_hash_t *live,
                                 int *seen)
{
    const unsigned char *at = b, *end = b + size;
    int across = 0;
    *seen = 0;
    while ((at = memmem(at, end - at, "SESSION!", 8)) != NULL) {
        if (apr_hash_get(live, at + 8, 34)) {
            apr_uintptr_t first = (apr_uintptr_t)(at - SLOT_HEAD);
            apr_uintptr_t last = (apr_uintptr_t)(at + SESSION_BYTES - 1);
            (*seen)++;
            across += (first >> 12) != (last >> 12);
        }
        at += 8;
    }
    return across;
}

/* Sessions are read on every request: each should cost one page, not two. Logins leave as
 * many small entries (spent-state markers, locks) among them; the table hands those the
 * slots a page boundary cuts early. */
static void test_pages(apr_pool_t *p)
{
    apr_uint32_t n = 8000, i, live_n = 0;
    apr_size_t size;
    unsigned char *b = block_aligned(p, n, REC, &size, 4096);   /* pages as in shm */
    char *buf = apr_palloc(p, SESSION_BYTES + 1);
    char (*keys)[40] = apr_palloc(p, 4500 * sizeof(*keys));
    char marker[40], lock[40];
    apr_hash_t *live = apr_hash_make(p);
    mc_slots *t = NULL;
    unsigned seed = 23;
    int seen, across, bad = 0;

    CHECK(mc_slots_create(b, size, n, REC, p, &t) == APR_SUCCESS, "a table of 3 KiB slots");
    for (i = 0; i < 3500; i++) {
        random_key(marker, &seed);
        bad += put(t, marker, T0, LATER, "used") != APR_SUCCESS;
        random_key(keys[i], &seed);
        random_key(lock, &seed);
        bad += put(t, lock, T0, LATER, "lock") != APR_SUCCESS;
        bad += put_session(t, keys[i], buf) != APR_SUCCESS;
        bad += del(t, lock, T0) != APR_SUCCESS;
        if (i % 3 == 0) {
            bad += del(t, marker, T0) != APR_SUCCESS;
        }
    }
    /* Churn: a third of the sessions end, others begin in the slots they leave. */
    for (i = 0; i < 3500; i += 3) {
        bad += del(t, keys[i], T0) != APR_SUCCESS;
    }
    for (i = 3500; i < 4500; i++) {
        random_key(marker, &seed);
        bad += put(t, marker, T0, LATER, "used") != APR_SUCCESS;
        random_key(keys[i], &seed);
        bad += put_session(t, keys[i], buf) != APR_SUCCESS;
    }
    for (i = 0; i < 4500; i++) {
        if (i >= 3500 || i % 3) {
            apr_hash_set(live, keys[i], 34, "");
            live_n++;
        }
    }
    across = sessions_across_pages(b, size, live, &seen);
    NOTE("%d of %d live sessions span two pages", across, seen);
    CHECK(bad == 0 && all_verify(t), "logins, lock and marker churn: every operation done");
    CHECK(seen == (int)live_n && across == 0, "every live session lies on one page");

    /* Only a preference: a table of large values alone still holds its N. */
    CHECK(mc_slots_create(b, size, n, REC, p, &t) == APR_SUCCESS, "the table again, empty");
    for (i = 0, bad = 0; i < n; i++) {
        char key[40];
        random_key(key, &seed);
        bad += put_session(t, key, buf) != APR_SUCCESS;
    }
    CHECK(bad == 0 && used(t) == n && evictions(t) == 0 && all_verify(t),
          "N large values fill a table for N: short slots taken when the others run out");
}

static void test_enospc(apr_pool_t *p)
{
    mc_slots *t = table(p, 10, 16);
    char big[18];
    memset(big, 'v', 17);
    big[17] = '\0';
    put(t, "k:s", T0, LATER, "small");
    CHECK(put(t, "k:s", T0, LATER, big) == APR_ENOSPC, "a value over R: ENOSPC");
    CHECK(add(t, "n:s", T0, LATER, big) == APR_ENOSPC, "add too");
    CHECK(holds(t, "k:s", T0, "small") && absent(t, "n:s", T0), "nothing touched");
    big[16] = '\0';
    CHECK(put(t, "k:s", T0, LATER, big) == APR_SUCCESS && holds(t, "k:s", T0, big),
          "exactly R bytes fit");
}

static void test_eviction(apr_pool_t *p)
{
    mc_slots *t = table(p, 8, 16);
    int i, ok = 1;
    char key[16], val[16];

    for (i = 0; i < 8; i++) {
        apr_snprintf(key, sizeof(key), "k%d:s", i);
        ok &= put(t, key, T0, T0 + 100 + i, key) == APR_SUCCESS;
    }
    CHECK(ok && used(t) == 8 && evictions(t) == 0, "8 entries in a table for 8: no eviction");
    CHECK(put(t, "k3:s", T0, T0 + 500, "again") == APR_SUCCESS, "replacing in a full table is no eviction");
    CHECK(put(t, "k8:s", T0, T0 + 200, "k8:s") == MC_SLOTS_EVICTED, "the 9th evicts and says so");
    CHECK(evictions(t) == 1 && used(t) == 8, "counted; still 8 entries");
    CHECK(absent(t, "k0:s", T0), "the entry expiring soonest went");
    for (i = 1, ok = 1; i < 9; i++) {
        apr_snprintf(key, sizeof(key), "k%d:s", i);
        ok &= holds(t, key, T0, i == 3 ? "again" : key);
    }
    CHECK(ok, "every other entry stays");
    CHECK(add(t, "k9:s", T0, T0 + 300, "k9:s") == MC_SLOTS_EVICTED && absent(t, "k1:s", T0)
          && evictions(t) == 2, "add evicts the same way");
    /* k2 expires at T0+102: a put after that reuses its slot, no eviction. */
    CHECK(put(t, "k10:s", T0 + 102, T0 + 300, "k10") == APR_SUCCESS && evictions(t) == 2,
          "an expired entry's slot is reused before evicting anything");
    CHECK(absent(t, "k2:s", T0) && holds(t, "k10:s", T0, "k10"), "in its place");
    /* Everything expired: one put frees all of it. */
    CHECK(put(t, "k11:s", T0 + 1000, T0 + 2000, "k11") == APR_SUCCESS && used(t) == 1,
          "a put into a full stripe frees every expired entry");
    for (i = 0, ok = 1; i < 7; i++) {
        apr_snprintf(val, sizeof(val), "n%d:s", i);
        ok &= put(t, val, T0 + 1000, T0 + 2000, val) == APR_SUCCESS;
    }
    CHECK(ok && used(t) == 8 && evictions(t) == 2, "refilled to 8 without eviction");
    CHECK(all_verify(t), "structure consistent");
}

/* Exact capacity: a table made for N holds N random keys with no eviction. */
static void test_capacity(apr_pool_t *p)
{
    static const apr_uint32_t sizes[] = { 2000, 20000, 100000 };
    unsigned seed = 17;
    int s, trial;

    for (s = 0; s < 3; s++) {
        apr_uint32_t n = sizes[s];
        int trials = n == 20000 ? 10 : 1, bad = 0, lost = 0;
        apr_uint64_t evicted = 0;
        for (trial = 0; trial < trials; trial++) {
            apr_pool_t *q;
            mc_slots *t;
            char (*keys)[40];
            apr_uint32_t i;
            apr_pool_create(&q, p);
            t = table(q, n, 16);
            keys = apr_palloc(q, (apr_size_t)n * sizeof(*keys));
            for (i = 0; i < n; i++) {
                random_key(keys[i], &seed);
                if (put(t, keys[i], T0, LATER, keys[i] + 20) != APR_SUCCESS) {
                    bad++;
                }
            }
            for (i = 0; i < n; i++) {
                lost += !holds(t, keys[i], T0, keys[i] + 20);
            }
            evicted += evictions(t);
            bad += used(t) != n || !all_verify(t);
            apr_pool_destroy(q);
        }
        CHECK(bad == 0 && lost == 0 && evicted == 0,
              apr_psprintf(p, "a table for %u holds %u random keys, no eviction (%d tables)",
                           n, n, trials));
    }

    /* Past N: evictions start only once a stripe is full, never beyond the slots. */
    {
        mc_slots *t = table(p, 20000, 16);
        mc_slots_stats_t st;
        char key[40];
        apr_uint32_t i, first = 0, over = 0;
        mc_slots_stats(t, &st);
        for (i = 0; i < st.slots + 2000; i++) {
            random_key(key, &seed);
            if (put(t, key, T0, T0 + 1 + i, "v") == MC_SLOTS_EVICTED && !first) {
                first = i + 1;
            }
            over += used(t) > st.slots;
        }
        NOTE("20000 entries: %u slots, first eviction at the %u-th key", st.slots, first);
        CHECK(first > 20000 && over == 0, "past N: first eviction after N keys, never more "
              "entries than slots");
        CHECK(evictions(t) == i - used(t) && evictions(t) > 0,
              "every key that found its stripe full evicted one, and was counted");
        CHECK(all_verify(t), "structure consistent");
    }
}

/* Random operations against a model, in a small crowded table: backward-shift deletion,
 * expiry and replacement must agree with it at every step. */
static void test_model(apr_pool_t *p)
{
    enum { KEYS = 60, OPS = 200000 };
    mc_slots *t = table(p, 64, 32);
    struct { int present; apr_time_t exp; char val[32]; } m[KEYS];
    unsigned seed = 4242;
    apr_time_t now = T0;
    int i, wrong = 0, broken = 0;

    memset(m, 0, sizeof(m));
    for (i = 0; i < OPS; i++) {
        int k = rand_r(&seed) % KEYS, op = rand_r(&seed) % 4;
        char key[16], val[32];
        apr_status_t rv;
        int live;
        apr_snprintf(key, sizeof(key), "key%d", k);
        apr_snprintf(val, sizeof(val), "v%d-%d", k, i);
        now += rand_r(&seed) % 3;
        live = m[k].present && m[k].exp > now;
        if (op == 0) {
            apr_time_t exp = now + 1 + rand_r(&seed) % 200;
            rv = put(t, key, now, exp, val);
            wrong += rv != APR_SUCCESS;
            m[k].present = 1;
            m[k].exp = exp;
            strcpy(m[k].val, val);
        }
        else if (op == 1) {
            apr_time_t exp = now + 1 + rand_r(&seed) % 200;
            rv = add(t, key, now, exp, val);
            wrong += rv != (live ? APR_EEXIST : APR_SUCCESS);
            if (!live) {
                m[k].present = 1;
                m[k].exp = exp;
                strcpy(m[k].val, val);
            }
        }
        else if (op == 2) {
            wrong += del(t, key, now) != (live ? APR_SUCCESS : APR_NOTFOUND);
            m[k].present = 0;
        }
        else {
            wrong += live ? !holds(t, key, now, m[k].val) : !absent(t, key, now);
        }
        if (i % 1000 == 0) {
            broken += !all_verify(t);
        }
    }
    CHECK(wrong == 0 && broken == 0 && evictions(t) == 0,
          "200,000 random put/add/remove/get agree with a model; structure stays consistent");
}

/* Threads with one process-shared mutex per stripe, in the table's lock room. */
#define WORKERS 4
#define SHARED_KEYS 16
typedef struct {
    mc_slots *t;
    int id, bad;
} worker_arg;

static pthread_mutex_t *stripe_lock(mc_slots *t, unsigned s)
{
    return mc_slots_lock_area(t, s);
}

/* A value that says who wrote it and checks itself: "key|writer|seq|sum". */
static apr_size_t value_for(char *buf, apr_size_t cap, const char *key, int w, int seq)
{
    unsigned sum = 0;
    const char *c;
    int n = apr_snprintf(buf, cap, "%s|%d|%d|", key, w, seq);
    for (c = buf; *c; c++) {
        sum = sum * 31 + (unsigned char)*c;
    }
    n += apr_snprintf(buf + n, cap - n, "%u", sum);
    return (apr_size_t)n;
}

static int value_ok(const unsigned char *v, apr_size_t n, const char *key)
{
    char copy[128];
    char *bar;
    unsigned sum = 0;
    const char *c;
    if (n >= sizeof(copy)) {
        return 0;
    }
    memcpy(copy, v, n);
    copy[n] = '\0';
    if (strncmp(copy, key, strlen(key)) || copy[strlen(key)] != '|'
        || !(bar = strrchr(copy, '|'))) {
        return 0;
    }
    for (c = copy; c <= bar; c++) {
        sum = sum * 31 + (unsigned char)*c;
    }
    return strtoul(bar + 1, NULL, 10) == sum;
}

static void *APR_THREAD_FUNC worker(apr_thread_t *th, void *data)
{
    worker_arg *a = data;
    unsigned seed = 99 + a->id;
    int i;
    char own[8][24];
    int last[8];

    for (i = 0; i < 8; i++) {
        apr_snprintf(own[i], sizeof(own[i]), "own-%d-%d", a->id, i);
        last[i] = -1;
    }
    for (i = 0; i < 60000; i++) {
        int r = rand_r(&seed), o = r % 8;
        const char *key;
        char kbuf[24], val[128];
        unsigned char got[128];
        apr_size_t n, len;
        mc_slots_key k;
        pthread_mutex_t *mx;
        apr_status_t rv;

        if (r & 0x100) {
            apr_snprintf(kbuf, sizeof(kbuf), "shared-%d", (r >> 9) % SHARED_KEYS);
            key = kbuf;
        }
        else {
            key = own[o];
        }
        mc_slots_key_make(a->t, key, &k);
        mx = stripe_lock(a->t, mc_slots_key_stripe(a->t, &k));
        len = value_for(val, sizeof(val), key, a->id, i);
        /* as the store does: read ahead without the lock, while other threads write */
        mc_slots_prefetch(a->t, &k);
        pthread_mutex_lock(mx);
        switch ((r >> 4) % 4) {
        case 0:
            rv = mc_slots_put(a->t, &k, T0, LATER, (unsigned char *)val, len);
            a->bad += rv != APR_SUCCESS;
            if (key == own[o]) {
                last[o] = i;
            }
            break;
        case 1:
            rv = mc_slots_remove(a->t, &k, T0);
            if (key == own[o]) {
                a->bad += rv != (last[o] >= 0 ? APR_SUCCESS : APR_NOTFOUND);
                last[o] = -1;
            }
            break;
        default:
            rv = mc_slots_get(a->t, &k, T0, got, sizeof(got), &n, NULL);
            if (key == own[o]) {
                /* nobody else writes it: exactly this thread's last value */
                if (last[o] < 0) {
                    a->bad += rv != APR_NOTFOUND;
                }
                else {
                    len = value_for(val, sizeof(val), key, a->id, last[o]);
                    a->bad += rv != APR_SUCCESS || n != len || memcmp(got, val, n);
                }
            }
            else if (rv == APR_SUCCESS) {
                a->bad += !value_ok(got, n, key);
            }
            else {
                a->bad += rv != APR_NOTFOUND;
            }
        }
        pthread_mutex_unlock(mx);
    }
    (void)th;
    return NULL;
}

static void test_threads(apr_pool_t *p)
{
    mc_slots *t = table(p, 20000, 128);
    apr_thread_t *th[WORKERS];
    worker_arg args[WORKERS];
    pthread_mutexattr_t attr;
    unsigned s;
    int i, bad = 0, init = 0;

    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    for (s = 0; s < mc_slots_stripe_count(t); s++) {
        init += pthread_mutex_init(stripe_lock(t, s), &attr) != 0;
    }
    pthread_mutexattr_destroy(&attr);
    CHECK(init == 0 && sizeof(pthread_mutex_t) <= MC_SLOTS_LOCK_BYTES
          && mc_slots_stripe_count(t) > 1, "a process-shared mutex in each stripe's lock room");
    for (i = 0; i < WORKERS; i++) {
        args[i].t = t;
        args[i].id = i;
        args[i].bad = 0;
        apr_thread_create(&th[i], NULL, worker, &args[i], p);
    }
    for (i = 0; i < WORKERS; i++) {
        apr_status_t rv;
        apr_thread_join(&rv, th[i]);
        bad += args[i].bad;
    }
    CHECK(bad == 0, "4 threads on own and shared keys: every read whole and as expected");
    CHECK(all_verify(t), "structure consistent after the threads");
    for (s = 0; s < mc_slots_stripe_count(t); s++) {
        pthread_mutex_destroy(stripe_lock(t, s));
    }
}

/* How many of the n keys random_key makes from seed do not hold themselves. */
static int lost_keys(mc_slots *t, unsigned seed, int n)
{
    char key[40];
    int i, lost = 0;
    for (i = 0; i < n; i++) {
        random_key(key, &seed);
        lost += !holds(t, key, T0, key);
    }
    return lost;
}

static void test_attach(apr_pool_t *p)
{
    apr_size_t size;
    void *b = block_for(p, 5000, 100, &size);
    unsigned char *moved;
    mc_slots *t, *again;
    char key[40];
    unsigned seed = 5;
    int i, lost = 0;

    mc_slots_create(b, size, 5000, 100, p, &t);
    for (i = 0; i < 3000; i++) {
        random_key(key, &seed);
        put(t, key, T0, LATER, key);
    }
    CHECK(mc_slots_attach(b, size, 5000, 100, p, &again) == APR_SUCCESS, "attach to a made table");
    lost = lost_keys(again, 5, 3000);
    CHECK(lost == 0 && used(again) == 3000, "every entry there through the second handle");

    /* No pointers inside: the same bytes at another address are the same table. */
    moved = apr_palloc(p, size + 64);
    moved += 64 - ((apr_uintptr_t)moved & 63);
    memcpy(moved, b, size);
    memset(b, 0, size);
    CHECK(mc_slots_attach(moved, size, 5000, 100, p, &again) == APR_SUCCESS,
          "attach at another address");
    lost = lost_keys(again, 5, 3000);
    CHECK(lost == 0 && all_verify(again), "every entry still there");

    CHECK(mc_slots_attach(moved, size, 5001, 100, p, &again) == APR_EMISMATCH,
          "another N: EMISMATCH");
    CHECK(mc_slots_attach(moved, size, 5000, 101, p, &again) == APR_EMISMATCH,
          "another R: EMISMATCH");
    CHECK(mc_slots_attach(moved, size - 1, 5000, 100, p, &again) == APR_EMISMATCH,
          "a shorter block: EMISMATCH");
    CHECK(mc_slots_attach(b, size, 5000, 100, p, &again) == APR_EINVAL,
          "a zeroed block: EINVAL");
    moved[0] ^= 1;
    CHECK(mc_slots_attach(moved, size, 5000, 100, p, &again) == APR_EINVAL, "bad magic: EINVAL");
    moved[0] ^= 1;
    moved[8] ^= 1;                      /* version */
    CHECK(mc_slots_attach(moved, size, 5000, 100, p, &again) == APR_EINVAL,
          "another version: EINVAL");
    moved[8] ^= 1;
    CHECK(mc_slots_attach(moved, size, 5000, 100, p, &again) == APR_SUCCESS, "restored: attaches");
    /* Version 1 differs only in a word it kept at 0 (the short-slot list): attached, and
     * marked version 2 so that a module of version 1 no longer takes it. */
    memcpy(moved + 8, &(apr_uint32_t){ 1 }, 4);
    CHECK(mc_slots_attach(moved, size, 5000, 100, p, &again) == APR_SUCCESS
          && memcmp(moved + 8, &(apr_uint32_t){ 2 }, 4) == 0,
          "a version 1 block attaches and becomes version 2");
    lost = lost_keys(again, 5, 3000);
    CHECK(lost == 0 && all_verify(again), "its entries all there");
}

static void rebuilt(void *baton, unsigned stripe, apr_uint32_t kept)
{
    *(apr_uint32_t *)baton = stripe == 0 ? kept : 0;
}

/* A writer that died in a stripe: rebuild keeps every intact entry. */
static void test_rebuild(apr_pool_t *p)
{
    mc_slots_stats_t st;
    apr_uint32_t kept = 0;
    mc_slots *t = table(p, 1000, 64);
    mc_slots_key k;
    unsigned char buf[64];
    apr_size_t n;
    char key[40];
    unsigned seed = 8;
    int i, lost = 0;
    unsigned char *ix;

    for (i = 0; i < 900; i++) {
        random_key(key, &seed);
        lost += put(t, key, T0, LATER + i, key) != APR_SUCCESS;
    }
    CHECK(lost == 0 && all_verify(t), "900 entries stored");
    for (i = 0; i < 100; i++) {         /* free slots on the list */
        random_key(key, &seed);
        put(t, key, T0, LATER, key);
        del(t, key, T0);
    }
    /* Wipe a stretch of the index, as if cut short in the middle of a shift. */
    ix = (unsigned char *)mc_slots_lock_area(t, 0) + 128;
    memset(ix + 16 * 100, 0, 16 * 300);
    CHECK(mc_slots_stripe_verify(t, 0) != APR_SUCCESS, "verify finds the damage");
    mc_slots_on_rebuild(t, rebuilt, &kept);
    mc_slots_stripe_rebuild(t, 0);
    mc_slots_stats(t, &st);
    CHECK(kept == 900 && st.rebuilds == 1, "the rebuild is reported and counted");
    CHECK(mc_slots_stripe_verify(t, 0) == APR_SUCCESS, "rebuilt stripe consistent");
    seed = 8;
    for (i = 0; i < 900; i++) {
        random_key(key, &seed);
        lost += !holds(t, key, T0, key);
    }
    CHECK(lost == 0 && used(t) == 900, "every entry kept, count right");
    for (i = 0; i < 100; i++) {
        random_key(key, &seed);
        lost += !absent(t, key, T0);
    }
    CHECK(lost == 0, "removed entries stay removed");
    for (i = 0, lost = 0; i < 100; i++) {
        apr_snprintf(key, sizeof(key), "new-%d", i);
        lost += put(t, key, T0, LATER, "n") != APR_SUCCESS;
    }
    CHECK(lost == 0 && used(t) == 1000 && evictions(t) == 0, "and the table fills to N again");
    mc_slots_key_make(t, "new-1", &k);
    CHECK(mc_slots_get(t, &k, T0, buf, sizeof(buf), &n, NULL) == APR_SUCCESS,
          "a new entry reads back");
}

int main(void)
{
    apr_pool_t *p;
    apr_initialize();
    apr_pool_create(&p, NULL);
    test_geometry(p);
    test_round_trips(p);
    test_expiry_and_add(p);
    test_touch(p);
    test_prefetch(p);
    test_pages(p);
    test_enospc(p);
    test_eviction(p);
    test_capacity(p);
    test_model(p);
    test_threads(p);
    test_attach(p);
    test_rebuild(p);
    apr_pool_destroy(p);
    apr_terminate();
    return MC_TEST_DONE();
}
