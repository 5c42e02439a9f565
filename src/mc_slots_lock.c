/* mc_slots_lock: robust process-shared stripe locks and locked operations (see the .h). */
#include "mc_slots_lock.h"

#include <errno.h>
#include <unistd.h>
#include <pthread.h>
#include <string.h>

static pthread_mutex_t *mutex_of(mc_slots *t, unsigned stripe)
{
    return mc_slots_lock_area(t, stripe);
}

apr_status_t mc_slots_locks_init(mc_slots *t)
{
#if defined(_POSIX_THREAD_PROCESS_SHARED) && _POSIX_THREAD_PROCESS_SHARED >= 0
    pthread_mutexattr_t attr;
    unsigned s;
    int rc;

    if (sizeof(pthread_mutex_t) > MC_SLOTS_LOCK_BYTES) {
        return APR_ENOTIMPL;
    }
    if ((rc = pthread_mutexattr_init(&attr)) != 0) {
        return rc;
    }
    rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (!rc) {
        rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    }
    for (s = 0; !rc && s < mc_slots_stripe_count(t); s++) {
        rc = pthread_mutex_init(mutex_of(t, s), &attr);
    }
    pthread_mutexattr_destroy(&attr);
    return rc == ENOTSUP ? APR_ENOTIMPL : rc;
#else
    return APR_ENOTIMPL;
#endif
}

apr_status_t mc_slots_lock(mc_slots *t, unsigned stripe)
{
    pthread_mutex_t *m = mutex_of(t, stripe);
    int rc;

    if (!m) {
        return APR_EINVAL;
    }
    rc = pthread_mutex_lock(m);
    if (rc == EOWNERDEAD) {
        /* Its holder died, maybe in the middle of a write: make the stripe whole again
         * before anyone reads it. */
        mc_slots_stripe_rebuild(t, stripe);
        rc = pthread_mutex_consistent(m);
        if (rc) {
            pthread_mutex_unlock(m);
        }
    }
    return rc;
}

void mc_slots_unlock(mc_slots *t, unsigned stripe)
{
    pthread_mutex_unlock(mutex_of(t, stripe));
}

/* Key and lock for one operation. */
static apr_status_t begin(mc_slots *t, const char *key, mc_slots_key *k, unsigned *stripe)
{
    apr_status_t rv = mc_slots_key_make(t, key, k);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    *stripe = mc_slots_key_stripe(t, k);
    return mc_slots_lock(t, *stripe) == APR_SUCCESS ? APR_SUCCESS : MC_SLOTS_ELOCK;
}

/* A copy of the value from p, under the lock: asked for its length first, so the copy is
 * exactly as big as the value, not the table's largest. */
static apr_status_t copy_out(mc_slots *t, const mc_slots_key *k, apr_time_t now, apr_pool_t *p,
                             unsigned char **data, apr_size_t *len)
{
    unsigned char none;
    apr_size_t n = 0;
    apr_status_t rv = mc_slots_get(t, k, now, &none, 0, &n, NULL);

    if (rv == APR_ENOSPC) {
        *data = apr_palloc(p, n + 1);
        rv = mc_slots_get(t, k, now, *data, n, &n, NULL);
    }
    else if (rv == APR_SUCCESS) {
        *data = apr_palloc(p, 1);       /* an empty value */
    }
    if (rv == APR_SUCCESS) {
        (*data)[n] = '\0';
        *len = n;
    }
    return rv;
}

apr_status_t mc_slots_lget(mc_slots *t, const char *key, apr_time_t now, apr_pool_t *p,
                           unsigned char **data, apr_size_t *len)
{
    mc_slots_key k;
    unsigned s;
    apr_status_t rv = begin(t, key, &k, &s);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = copy_out(t, &k, now, p, data, len);
    mc_slots_unlock(t, s);
    return rv;
}

static apr_status_t locked_store(mc_slots *t, const char *key, apr_time_t now,
                                 apr_time_t expiry, const unsigned char *data, apr_size_t len,
                                 int only_if_absent)
{
    mc_slots_key k;
    unsigned s;
    apr_status_t rv = begin(t, key, &k, &s);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = only_if_absent ? mc_slots_add(t, &k, now, expiry, data, len)
                        : mc_slots_put(t, &k, now, expiry, data, len);
    mc_slots_unlock(t, s);
    return rv;
}

apr_status_t mc_slots_lput(mc_slots *t, const char *key, apr_time_t now, apr_time_t expiry,
                           const unsigned char *data, apr_size_t len)
{
    return locked_store(t, key, now, expiry, data, len, 0);
}

apr_status_t mc_slots_ladd(mc_slots *t, const char *key, apr_time_t now, apr_time_t expiry,
                           const unsigned char *data, apr_size_t len)
{
    return locked_store(t, key, now, expiry, data, len, 1);
}

apr_status_t mc_slots_lremove(mc_slots *t, const char *key, apr_time_t now)
{
    mc_slots_key k;
    unsigned s;
    apr_status_t rv = begin(t, key, &k, &s);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = mc_slots_remove(t, &k, now);
    mc_slots_unlock(t, s);
    return rv;
}

apr_status_t mc_slots_ltake(mc_slots *t, const char *key, apr_time_t now, apr_pool_t *p,
                            unsigned char **data, apr_size_t *len)
{
    mc_slots_key k;
    unsigned s;
    apr_status_t rv = begin(t, key, &k, &s);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = copy_out(t, &k, now, p, data, len);
    if (rv == APR_SUCCESS) {
        mc_slots_remove(t, &k, now);
    }
    mc_slots_unlock(t, s);
    return rv;
}

apr_status_t mc_slots_lupdate(mc_slots *t, const char *key, apr_time_t now, apr_pool_t *p,
                              mc_slots_decide_fn *decide, void *baton)
{
    mc_slots_key k;
    unsigned s;
    unsigned char *old = NULL;
    const unsigned char *data = NULL;
    apr_size_t oldlen = 0, len = 0;
    apr_time_t expiry = 0;
    apr_status_t rv = begin(t, key, &k, &s);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = copy_out(t, &k, now, p, &old, &oldlen);
    if (rv == APR_SUCCESS || rv == APR_NOTFOUND) {
        rv = decide(baton, rv == APR_SUCCESS ? old : NULL, rv == APR_SUCCESS ? oldlen : 0,
                    &data, &len, &expiry);
        if (rv == APR_SUCCESS) {
            rv = mc_slots_put(t, &k, now, expiry, data, len);
        }
    }
    mc_slots_unlock(t, s);
    return rv;
}
