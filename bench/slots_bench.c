/* Micro-benchmark of mc_slots: nanoseconds per get (and per put) at 10, 10,000 and 100,000
 * stored entries, to show that a lookup costs the same whatever the number of entries.
 * Not part of `make check`: `make bench/slots_bench && bench/slots_bench [entries...]`
 * (default 10 10000 100000; the table is made for the largest).
 *
 * One table made for the largest level of values up to 2048 bytes (as the session store would
 * be), filled with 35-byte random keys like ours and 1,200-byte values. Gets visit every
 * stored key in a shuffled order (every user in turn, not one hot entry), each with what the
 * store would do: hash the key, lock its stripe's mutex, copy the value out, unlock.
 * Columns: get (with the 1,200-byte copy), find (the lookup without the copy), miss (a key
 * not stored), put(new) (a new key, first touch of its slot's pages included), put(repl)
 * (rewriting a stored key). */
#include "mc_slots.h"

#include <apr_general.h>
#include <apr_time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VALUE_MAX 2048
#define VALUE_LEN 1200
#define LOOKUPS 2000000

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void random_key(char *out, unsigned *seed)
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int i;
    for (i = 0; i < 32; i++) {
        out[i] = b64[rand_r(seed) & 63];
    }
    strcpy(out + 32, ":s");
}

int main(int argc, char **argv)
{
    unsigned levels[16] = { 10, 10000, 100000 }, nlevels = 3, capacity = 0;
    apr_pool_t *p;
    apr_size_t size;
    unsigned char *block, value[VALUE_MAX], out[VALUE_MAX];
    char (*keys)[40];
    unsigned *order, seed = 1, l, s;
    apr_time_t t0 = apr_time_from_sec(1000000), exp = t0 + apr_time_from_sec(3600);
    mc_slots *t;
    pthread_mutexattr_t attr;

    if (argc > 1) {
        for (nlevels = 0; nlevels + 1 < (unsigned)argc && nlevels < 16; nlevels++) {
            levels[nlevels] = (unsigned)strtoul(argv[nlevels + 1], NULL, 10);
            if (levels[nlevels] == 0) {
                fprintf(stderr, "usage: %s [entries...]\n", argv[0]);
                return 2;
            }
        }
    }
    for (l = 0; l < nlevels; l++) {
        capacity = levels[l] > capacity ? levels[l] : capacity;
    }
    apr_initialize();
    apr_pool_create(&p, NULL);
    size = mc_slots_size_for(capacity, VALUE_MAX);
    block = apr_palloc(p, size + 64);
    block += 64 - ((apr_uintptr_t)block & 63);
    keys = malloc(sizeof(*keys) * capacity);
    order = malloc(sizeof(*order) * capacity);
    memset(value, 'v', sizeof(value));
    printf("table for %u entries of up to %u bytes: %.1f MiB\n", capacity, VALUE_MAX,
           size / 1048576.0);
    printf("%10s %12s %12s %12s %12s %12s\n", "entries", "ns/get", "ns/find", "ns/miss", "ns/put(new)",
           "ns/put(repl)");

    for (l = 0; l < nlevels; l++) {
        unsigned n = levels[l], i;
        double a, b, get_ns, find_ns, miss_ns, put_ns, repl_ns;
        unsigned long found = 0;

        if (mc_slots_create(block, size, capacity, VALUE_MAX, p, &t) != APR_SUCCESS) {
            fprintf(stderr, "create failed\n");
            return 1;
        }
        pthread_mutexattr_init(&attr);
        pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
        for (s = 0; s < mc_slots_stripe_count(t); s++) {
            pthread_mutex_init(mc_slots_lock_area(t, s), &attr);
        }
        a = now_ns();
        for (i = 0; i < n; i++) {
            mc_slots_key k;
            pthread_mutex_t *m;
            random_key(keys[i], &seed);
            mc_slots_key_make(t, keys[i], &k);
            m = mc_slots_lock_area(t, mc_slots_key_stripe(t, &k));
            pthread_mutex_lock(m);
            mc_slots_put(t, &k, t0, exp, value, VALUE_LEN);
            pthread_mutex_unlock(m);
            order[i] = i;
        }
        b = now_ns();
        put_ns = (b - a) / n;
        for (i = n - 1; i > 0; i--) {
            unsigned j = (unsigned)rand_r(&seed) % (i + 1), x = order[i];
            order[i] = order[j];
            order[j] = x;
        }
        a = now_ns();
        for (i = 0; i < LOOKUPS; i++) {
            mc_slots_key k;
            pthread_mutex_t *m;
            apr_size_t len;
            mc_slots_key_make(t, keys[order[i % n]], &k);
            m = mc_slots_lock_area(t, mc_slots_key_stripe(t, &k));
            pthread_mutex_lock(m);
            found += mc_slots_get(t, &k, t0, out, sizeof(out), &len, NULL) == APR_SUCCESS;
            pthread_mutex_unlock(m);
        }
        b = now_ns();
        get_ns = (b - a) / LOOKUPS;
        /* The lookup alone: a buffer of 0 bytes makes get stop at ENOSPC once it found
         * the entry, so this is hash + lock + probe + key compare, without the copy. */
        a = now_ns();
        for (i = 0; i < LOOKUPS; i++) {
            mc_slots_key k;
            pthread_mutex_t *m;
            apr_size_t len;
            mc_slots_key_make(t, keys[order[i % n]], &k);
            m = mc_slots_lock_area(t, mc_slots_key_stripe(t, &k));
            pthread_mutex_lock(m);
            found += mc_slots_get(t, &k, t0, out, 0, &len, NULL) == APR_ENOSPC;
            pthread_mutex_unlock(m);
        }
        b = now_ns();
        find_ns = (b - a) / LOOKUPS;
        a = now_ns();
        for (i = 0; i < LOOKUPS / 4; i++) {
            mc_slots_key k;
            pthread_mutex_t *m;
            apr_size_t len;
            char key[40];
            memcpy(key, keys[order[i % n]], sizeof(key));
            key[0] ^= 0x20;             /* a key nobody stored */
            mc_slots_key_make(t, key, &k);
            m = mc_slots_lock_area(t, mc_slots_key_stripe(t, &k));
            pthread_mutex_lock(m);
            mc_slots_get(t, &k, t0, out, sizeof(out), &len, NULL);
            pthread_mutex_unlock(m);
        }
        b = now_ns();
        miss_ns = (b - a) / (LOOKUPS / 4);
        a = now_ns();
        for (i = 0; i < LOOKUPS / 4; i++) {
            mc_slots_key k;
            pthread_mutex_t *m;
            mc_slots_key_make(t, keys[order[i % n]], &k);
            m = mc_slots_lock_area(t, mc_slots_key_stripe(t, &k));
            pthread_mutex_lock(m);
            mc_slots_put(t, &k, t0, exp, value, VALUE_LEN);
            pthread_mutex_unlock(m);
        }
        b = now_ns();
        repl_ns = (b - a) / (LOOKUPS / 4);
        if (found != 2 * (unsigned long)LOOKUPS) {
            fprintf(stderr, "lost entries: %lu of %u found\n", found, 2 * LOOKUPS);
            return 1;
        }
        printf("%10u %12.0f %12.0f %12.0f %12.0f %12.0f\n", n, get_ns, find_ns, miss_ns, put_ns,
               repl_ns);
    }
    apr_pool_destroy(p);
    apr_terminate();
    return 0;
}
