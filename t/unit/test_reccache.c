/* Unit tests of mc_reccache.c: the per-process cache of opened session records, validated
 * by shared version slots. */
#include "mc_test.h"
#include "mc_reccache.h"

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <string.h>

static apr_uint32_t versions[MC_VERSION_SLOTS];

#define ID "vCl72yew4i-ODOxjPU9Pak-MjU-R7jsfTQGMUiOzaRM"
#define KEY "6mSk0xJje5cWm9vWGK7g3zXGs1Nytu2t:s"

/* Two server identities (the module passes its keyring's address). */
static const int realm_a, realm_b;
#define REALM (&realm_a)

/* 1 when id is served with exactly `want` and store key `key`. */
static int served(mc_reccache *c, const char *id, apr_time_t now, apr_pool_t *p,
                  const char *want, const char *key)
{
    unsigned char *d = NULL;
    apr_size_t n = 0;
    const char *k = NULL;
    apr_int64_t note = -1;
    if (!mc_reccache_get(c, REALM, id, now, p, &d, &n, &k, &note)) {
        return 0;
    }
    /* put() notes the record's length: the note comes back with its own record */
    return n == strlen(want) && !memcmp(d, want, n) && d[n] == '\0' && k && !strcmp(k, key)
           && note == (apr_int64_t)n;
}

static void put(mc_reccache *c, const char *id, const char *key, apr_uint32_t v,
                apr_time_t now, const char *rec)
{
    mc_reccache_put(c, REALM, id, key, v, (apr_int64_t)strlen(rec), now,
                    (const unsigned char *)rec, strlen(rec));
}

static void test_hits_and_versions(apr_pool_t *p)
{
    mc_reccache *c;
    apr_time_t t0 = apr_time_from_sec(1000), age = apr_time_from_sec(5);
    apr_uint32_t v;

    CHECK(mc_reccache_create(p, NULL, 8, age, &c) == APR_EINVAL, "no version slots refused");
    CHECK(mc_reccache_create(p, versions, 0, age, &c) == APR_EINVAL, "zero entries refused");
    if (!CHECK(mc_reccache_create(p, versions, 64, age, &c) == APR_SUCCESS, "created")) {
        return;
    }
    CHECK(!served(c, ID, t0, p, "x", KEY), "empty cache misses");

    v = mc_versions_get(versions, KEY);
    put(c, ID, KEY, v, t0, "record-1");
    CHECK(served(c, ID, t0, p, "record-1", KEY),
          "a record put at the current version is served, with its store key");
    CHECK(served(c, ID, t0 + age - 1, p, "record-1", KEY), "served until max age");
    CHECK(!served(c, ID, t0 + age, p, "record-1", KEY), "not served at max age");
    CHECK(!served(c, ID, t0, p, "record-1", KEY), "and dropped once found too old");
    put(c, ID, KEY, v, t0, "record-1");
    CHECK(!served(c, ID, t0 - 1, p, "record-1", KEY), "not served when the clock went back");
    put(c, ID, KEY, v, t0, "record-1");
    CHECK(!served(c, "vCl72yew4i-ODOxjPU9Pak-MjU-R7jsfTQGMUiOzaRN", t0, p, "record-1", KEY),
          "an id differing in its last character never gets this record");
    CHECK(!served(c, "vCl72yew4i-ODOxjPU9Pak-MjU-R7jsfTQGMUiOzaR", t0, p, "record-1", KEY),
          "nor a prefix of the id");
    CHECK(served(c, ID, t0, p, "record-1", KEY), "the entry itself is still there");

    mc_versions_bump(versions, KEY);
    CHECK(mc_versions_get(versions, KEY) == v + 1, "bump moves the store key's slot");
    CHECK(!served(c, ID, t0, p, "record-1", KEY),
          "after a bump (a write by any process) it misses");

    /* A reader that noted the version, then another process wrote: stale at once. */
    v = mc_versions_get(versions, KEY);
    mc_versions_bump(versions, KEY);
    put(c, ID, KEY, v, t0, "old");
    CHECK(!served(c, ID, t0, p, "old", KEY), "a record read before a concurrent write is never served");

    v = mc_versions_get(versions, KEY);
    put(c, ID, KEY, v, t0, "a much longer opened record");
    CHECK(served(c, ID, t0, p, "a much longer opened record", KEY), "entry grows for a bigger record");
    put(c, ID, KEY, v, t0, "short");
    CHECK(served(c, ID, t0, p, "short", KEY), "and shrinks back");

    mc_reccache_forget(c, ID);
    CHECK(!served(c, ID, t0, p, "short", KEY), "forgotten");
    put(c, ID, KEY, v, t0, "short");
    mc_versions_bump_all(versions);
    CHECK(!served(c, ID, t0, p, "short", KEY), "bump_all makes everything stale");
}

/* A record is served only to the server identity that cached it. */
static void test_realms(apr_pool_t *p)
{
    mc_reccache *c;
    apr_time_t t0 = apr_time_from_sec(1000);
    unsigned char *d = NULL;
    apr_size_t n = 0;
    const char *k = NULL;
    apr_int64_t note = 0;

    memset(versions, 0, sizeof(versions));
    if (!CHECK(mc_reccache_create(p, versions, 64, apr_time_from_sec(5), &c) == APR_SUCCESS,
               "create a cache for the realm test")) {
        return;
    }
    put(c, ID, KEY, mc_versions_get(versions, KEY), t0, "record of A");
    CHECK(!mc_reccache_get(c, &realm_b, ID, t0, p, &d, &n, &k, &note),
          "another realm never gets the record cached by the first");
    CHECK(!served(c, ID, t0, p, "record of A", KEY),
          "a miss by another realm drops the entry (the next read goes to the store)");
    mc_reccache_put(c, &realm_b, ID, KEY, mc_versions_get(versions, KEY), 11, t0,
                    (const unsigned char *)"record of B", 11);
    CHECK(mc_reccache_get(c, &realm_b, ID, t0, p, &d, &n, &k, &note) && n == 11 && note == 11
          && !memcmp(d, "record of B", 11), "each realm is served what it cached");
    CHECK(!served(c, ID, t0, p, "record of B", KEY), "and the first realm is not");
}

static void test_collisions_and_limits(apr_pool_t *p)
{
    mc_reccache *c;
    apr_time_t t0 = apr_time_from_sec(1000);
    char big[200];
    int i, hits = 0;

    mc_reccache_create(p, versions, 4, apr_time_from_sec(5), &c);
    /* Ten ids into four entries: each id is only ever served its own record. */
    for (i = 0; i < 10; i++) {
        const char *id = apr_psprintf(p, "id-%d", i), *key = apr_psprintf(p, "key-%d:s", i);
        put(c, id, key, mc_versions_get(versions, key), t0, apr_psprintf(p, "rec-%d", i));
    }
    for (i = 0; i < 10; i++) {
        const char *id = apr_psprintf(p, "id-%d", i), *key = apr_psprintf(p, "key-%d:s", i);
        unsigned char *d;
        apr_size_t n;
        const char *k;
        apr_int64_t note;
        if (mc_reccache_get(c, REALM, id, t0, p, &d, &n, &k, &note)) {
            hits++;
            CHECK(!strcmp((char *)d, apr_psprintf(p, "rec-%d", i)) && !strcmp(k, key)
                  && note == (apr_int64_t)n,
                  "a colliding id gets its own record and key");
        }
    }
    CHECK(hits >= 1 && hits <= 4, "at most as many records as entries are kept");

    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    put(c, big, KEY, mc_versions_get(versions, KEY), t0, "x");
    CHECK(!served(c, big, t0, p, "x", KEY), "ids longer than MC_RECCACHE_KEY_MAX are not cached");
    put(c, ID, big, mc_versions_get(versions, big), t0, "x");
    CHECK(!served(c, ID, t0, p, "x", big), "nor records under too long a store key");
    put(c, "", KEY, mc_versions_get(versions, KEY), t0, "x");
    CHECK(!served(c, "", t0, p, "x", KEY), "nor an empty id");
}

/* Threads hammering the same entries: a torn record (locking wrong) fails the checks. */
typedef struct {
    mc_reccache *c;
    int id, bad;
} worker_arg;

static void *APR_THREAD_FUNC worker(apr_thread_t *t, void *data)
{
    worker_arg *a = data;
    apr_pool_t *p;
    int i;
    apr_pool_create(&p, NULL);
    for (i = 0; i < 20000; i++) {
        const char *id = (i & 1) ? "shared-a" : "shared-b";
        const char *key = (i & 1) ? "key-a:s" : "key-b:s";
        char rec[64];
        unsigned char *d;
        apr_size_t n;
        const char *k;
        apr_int64_t note;
        int len = apr_snprintf(rec, sizeof(rec), "%s|%d|%d", id, a->id, i);
        if (i % 3 == 0) {
            mc_reccache_put(a->c, REALM, id, key, mc_versions_get(versions, key), len,
                            apr_time_from_sec(1000), (const unsigned char *)rec,
                            (apr_size_t)len);
        }
        else if (i % 7 == 0) {
            mc_versions_bump(versions, key);
        }
        else if (mc_reccache_get(a->c, REALM, id, apr_time_from_sec(1000), p, &d, &n, &k,
                                 &note)) {
            /* the whole record of this id, never a mix of two, and its own note */
            if (n < strlen(id) + 1 || memcmp(d, id, strlen(id)) || d[strlen(id)] != '|'
                || strlen((char *)d) != n || strcmp(k, key) || note != (apr_int64_t)n) {
                a->bad++;
            }
        }
        apr_pool_clear(p);
    }
    apr_pool_destroy(p);
    /* A plain return, not apr_thread_exit: pthread_exit's unwinding trips ASan's
     * use-after-scope check in the sanitizer build. */
    (void)t;
    return NULL;
}

static void test_threads(apr_pool_t *p)
{
    mc_reccache *c;
    apr_thread_t *th[4];
    worker_arg args[4];
    int i, bad = 0;

    mc_reccache_create(p, versions, 8, apr_time_from_sec(5), &c);
    for (i = 0; i < 4; i++) {
        args[i].c = c;
        args[i].id = i;
        args[i].bad = 0;
        apr_thread_create(&th[i], NULL, worker, &args[i], p);
    }
    for (i = 0; i < 4; i++) {
        apr_status_t rv;
        apr_thread_join(&rv, th[i]);
        bad += args[i].bad;
    }
    CHECK(bad == 0, "four threads: every hit is one whole record of its own id");
}

int main(void)
{
    apr_pool_t *p;
    apr_initialize();
    apr_pool_create(&p, NULL);
    test_hits_and_versions(p);
    test_realms(p);
    test_collisions_and_limits(p);
    test_threads(p);
    apr_pool_destroy(p);
    apr_terminate();
    return MC_TEST_DONE();
}
