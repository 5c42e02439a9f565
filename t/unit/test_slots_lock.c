/* Unit tests of mc_slots_lock.c: robust process-shared stripe locks in the table's block,
 * and the operations done under them, across real processes. */
#include "mc_test.h"
#include "mc_slots_lock.h"

#include <apr_general.h>
#include <apr_strings.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static const apr_time_t T0 = APR_TIME_C(1000000000);
#define LATER (T0 + apr_time_from_sec(3600))

/* The table in memory shared with forked children, as apr_shm gives httpd's children. */
static mc_slots *shared_table(apr_pool_t *p, apr_uint32_t n, apr_uint32_t r)
{
    apr_size_t size = mc_slots_size_for(n, r);
    void *b = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    mc_slots *t;
    if (b == MAP_FAILED || mc_slots_create(b, size, n, r, p, &t) != APR_SUCCESS
        || mc_slots_locks_init(t) != APR_SUCCESS) {
        return NULL;
    }
    return t;
}

static int all_verify(mc_slots *t)
{
    unsigned s;
    int ok = 1;
    for (s = 0; s < mc_slots_stripe_count(t); s++) {
        if (mc_slots_lock(t, s) != APR_SUCCESS) {
            return 0;
        }
        ok &= mc_slots_stripe_verify(t, s) == APR_SUCCESS;
        mc_slots_unlock(t, s);
    }
    return ok;
}

static int holds(mc_slots *t, const char *key, const char *want, apr_pool_t *p)
{
    unsigned char *d;
    apr_size_t n;
    return mc_slots_lget(t, key, T0, p, &d, &n, NULL) == APR_SUCCESS && n == strlen(want)
           && !memcmp(d, want, n) && d[n] == '\0';
}

static void test_operations(apr_pool_t *p)
{
    mc_slots *t = shared_table(p, 100, 64);
    unsigned char *d = NULL;
    apr_size_t n = 99;
    apr_uint32_t mark = 99;

    if (!CHECK(t != NULL, "a table with its locks in shared memory")) {
        return;
    }
    CHECK(mc_slots_lget(t, "a:s", T0, p, &d, &n, NULL) == APR_NOTFOUND,
          "get of nothing: NOTFOUND");
    CHECK(mc_slots_lput(t, "a:s", T0, LATER, (const unsigned char *)"hello", 5) == APR_SUCCESS
          && holds(t, "a:s", "hello", p), "put, get: a NUL-terminated copy of the value");
    CHECK(mc_slots_lput(t, "e:s", T0, LATER, (const unsigned char *)"", 0) == APR_SUCCESS
          && holds(t, "e:s", "", p), "an empty value");
    CHECK(mc_slots_ladd(t, "a:s", T0, LATER, (const unsigned char *)"x", 1) == APR_EEXIST
          && holds(t, "a:s", "hello", p), "add over a live entry: EEXIST, untouched");
    CHECK(mc_slots_lget(t, "a:s", T0, p, &d, &n, &mark) == APR_SUCCESS && mark == 0,
          "a new entry's mark is 0");
    CHECK(mc_slots_ltouch(t, "a:s", T0, LATER + 1, 7) == APR_SUCCESS
          && mc_slots_lget(t, "a:s", T0, p, &d, &n, &mark) == APR_SUCCESS && mark == 7
          && holds(t, "a:s", "hello", p), "touch sets the mark and leaves the value");
    CHECK(mc_slots_lput(t, "a:s", T0, LATER, (const unsigned char *)"hi", 2) == APR_SUCCESS
          && mc_slots_lget(t, "a:s", T0, p, &d, &n, &mark) == APR_SUCCESS && mark == 7
          && holds(t, "a:s", "hi", p), "a put over a live entry keeps its mark");
    CHECK(mc_slots_ltouch(t, "n:s", T0, LATER, 1) == APR_NOTFOUND
          && mc_slots_lget(t, "n:s", T0, p, &d, &n, NULL) == APR_NOTFOUND,
          "touch of nothing: NOTFOUND, and nothing made");
    CHECK(mc_slots_lput(t, "l:s", T0, LATER, (const unsigned char *)"lock", 4) == APR_SUCCESS
          && holds(t, "l:s", "lock", p), "another key");
    CHECK(mc_slots_lremove(t, "l:s", T0) == APR_SUCCESS
          && mc_slots_lremove(t, "l:s", T0) == APR_NOTFOUND, "remove");
    CHECK(mc_slots_lget(t, "", T0, p, &d, &n, NULL) == APR_EINVAL
          && mc_slots_lput(t, "", T0, LATER, (const unsigned char *)"x", 1) == APR_EINVAL,
          "an empty key: EINVAL");
    CHECK(mc_slots_lock(t, mc_slots_stripe_count(t)) == APR_EINVAL, "no such stripe: EINVAL");
}

/* A child's work: own keys (exact values checked) and shared keys (whole values checked). */
static int hammer(mc_slots *t, int id, int rounds)
{
    apr_pool_t *p;
    int i, bad = 0, last[8];
    unsigned seed = 1000 + id;

    apr_pool_create(&p, NULL);
    for (i = 0; i < 8; i++) {
        last[i] = -1;
    }
    for (i = 0; rounds < 0 || i < rounds; i++) {
        int r = rand_r(&seed), o = r % 8, shared = r & 0x100;
        char key[32], val[64];
        unsigned char *d;
        apr_size_t n;
        apr_status_t rv;
        if (shared) {
            apr_snprintf(key, sizeof(key), "shared-%d", (r >> 9) % 16);
        }
        else {
            apr_snprintf(key, sizeof(key), "own-%d-%d", id, o);
        }
        apr_snprintf(val, sizeof(val), "%s=%d", key, shared ? id : i);
        switch ((r >> 4) % 4) {
        case 0:
            bad += mc_slots_lput(t, key, T0, LATER, (unsigned char *)val, strlen(val))
                   != APR_SUCCESS;
            if (!shared) {
                last[o] = i;
            }
            break;
        case 1:
            rv = mc_slots_lremove(t, key, T0);
            if (!shared) {
                bad += rv != (last[o] >= 0 ? APR_SUCCESS : APR_NOTFOUND);
                last[o] = -1;
            }
            break;
        default:
            rv = mc_slots_lget(t, key, T0, p, &d, &n, NULL);
            if (!shared && last[o] < 0) {
                bad += rv != APR_NOTFOUND;
            }
            else if (!shared) {
                apr_snprintf(val, sizeof(val), "%s=%d", key, last[o]);
                bad += rv != APR_SUCCESS || strcmp((char *)d, val);
            }
            else if (rv == APR_SUCCESS) {
                bad += strncmp((char *)d, key, strlen(key)) || d[strlen(key)] != '=';
            }
        }
        apr_pool_clear(p);
    }
    apr_pool_destroy(p);
    return bad;
}

static void test_processes(apr_pool_t *p)
{
    mc_slots *t = shared_table(p, 20000, 64);
    pid_t pid[3];
    int i, bad = 0, status;

    if (!CHECK(t && mc_slots_stripe_count(t) > 1, "a striped table in shared memory")) {
        return;
    }
    for (i = 0; i < 3; i++) {
        if ((pid[i] = fork()) == 0) {
            _exit(hammer(t, i, 40000) ? 1 : 0);
        }
    }
    for (i = 0; i < 3; i++) {
        waitpid(pid[i], &status, 0);
        bad += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    CHECK(bad == 0, "3 processes on own and shared keys: every read whole and as expected");
    CHECK(all_verify(t), "structure consistent after them");
}

static void rebuilt(void *baton, unsigned stripe, apr_uint32_t kept)
{
    (*(int *)baton)++;
}

/* A process that dies holding a stripe's lock, in the middle of a write. */
static void test_dead_holder(apr_pool_t *p)
{
    mc_slots *t = shared_table(p, 1000, 64);
    mc_slots_stats_t st;
    pid_t pid;
    int i, status, lost = 0, rebuilds = 0;
    char key[32];

    for (i = 0; i < 500; i++) {
        apr_snprintf(key, sizeof(key), "key-%d", i);
        lost += mc_slots_lput(t, key, T0, LATER, (unsigned char *)key, strlen(key)) != APR_SUCCESS;
    }
    if ((pid = fork()) == 0) {
        unsigned char *ix;
        mc_slots_lock(t, 0);
        /* half-way through a shift: a stretch of the index gone */
        ix = (unsigned char *)mc_slots_lock_area(t, 0) + 128;
        memset(ix + 16 * 50, 0, 16 * 400);
        _exit(0);
    }
    waitpid(pid, &status, 0);
    mc_slots_on_rebuild(t, rebuilt, &rebuilds);
    CHECK(mc_slots_lock(t, 0) == APR_SUCCESS, "the lock of a dead holder is taken");
    CHECK(rebuilds == 1 && mc_slots_stripe_verify(t, 0) == APR_SUCCESS,
          "after rebuilding the stripe it held");
    mc_slots_unlock(t, 0);
    CHECK(mc_slots_lock(t, 0) == APR_SUCCESS && rebuilds == 1, "and it is an ordinary lock again");
    mc_slots_unlock(t, 0);
    for (i = 0; i < 500; i++) {
        apr_snprintf(key, sizeof(key), "key-%d", i);
        lost += !holds(t, key, key, p);
    }
    mc_slots_stats(t, &st);
    CHECK(lost == 0 && st.used == 500 && st.rebuilds == 1, "every entry kept");

    /* Children killed at random moments while writing: never a wedged or broken stripe. */
    t = shared_table(p, 20000, 64);
    for (i = 0; i < 1000; i++) {
        apr_snprintf(key, sizeof(key), "keep-%d", i);
        mc_slots_lput(t, key, T0, LATER, (unsigned char *)key, strlen(key));
    }
    for (i = 0; i < 6; i++) {
        if ((pid = fork()) == 0) {
            hammer(t, 10 + i, -1);
            _exit(0);
        }
        usleep(20000 + 7000 * i);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    CHECK(all_verify(t), "6 children killed mid-work: every stripe locks and is consistent");
    for (i = 0, lost = 0; i < 1000; i++) {
        apr_snprintf(key, sizeof(key), "keep-%d", i);
        lost += !holds(t, key, key, p);
    }
    mc_slots_stats(t, &st);
    NOTE("stripes rebuilt after a kill: %u", st.rebuilds);
    CHECK(lost == 0, "and the entries they did not touch are all there");
    CHECK(hammer(t, 99, 20000) == 0, "the table works as before");

    /* A mutex left unrecoverable (taken from a dead holder, released without repair). */
    if ((pid = fork()) == 0) {
        mc_slots_lock(t, 1);
        _exit(0);
    }
    waitpid(pid, &status, 0);
    if (pthread_mutex_lock(mc_slots_lock_area(t, 1)) == EOWNERDEAD) {
        pthread_mutex_unlock(mc_slots_lock_area(t, 1));
    }
    for (i = 0, lost = 0; i < 1000; i++) {
        apr_snprintf(key, sizeof(key), "keep-%d", i);
        if (mc_slots_stripe_of(t, key) == 1) {
            lost += mc_slots_lput(t, key, T0, LATER, (unsigned char *)"x", 1) != MC_SLOTS_ELOCK;
        }
    }
    CHECK(lost == 0, "then every operation on its stripe: MC_SLOTS_ELOCK");
}

int main(void)
{
    apr_pool_t *p;
    apr_initialize();
    apr_pool_create(&p, NULL);
    test_operations(p);
    test_processes(p);
    test_dead_holder(p);
    apr_pool_destroy(p);
    apr_terminate();
    return MC_TEST_DONE();
}
