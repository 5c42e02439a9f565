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

/* One operation under its key's stripe lock. */
typedef enum { OP_GET, OP_PUT, OP_ADD, OP_REMOVE, OP_TOUCH } op_kind;

typedef struct {
    op_kind kind;
    apr_time_t now, expiry;
    const unsigned char *data;          /* put, add */
    apr_size_t len;
    apr_uint32_t mark;                  /* touch */
    apr_pool_t *p;                      /* get: the copy's pool and where it goes */
    unsigned char **out;
    apr_size_t *outlen;
    apr_uint32_t *outmark;
} op_args;

/* A copy of the value from p, under the lock: asked for its length first, so the copy is
 * exactly as big as the value, not the table's largest. */
static apr_status_t copy_out(mc_slots *t, const mc_slots_key *k, const op_args *a)
{
    unsigned char none;
    apr_size_t n = 0;
    mc_slots_meta meta;
    apr_status_t rv = mc_slots_get(t, k, a->now, &none, 0, &n, &meta);

    if (rv == APR_ENOSPC) {
        *a->out = apr_palloc(a->p, n + 1);
        rv = mc_slots_get(t, k, a->now, *a->out, n, &n, &meta);
    }
    else if (rv == APR_SUCCESS) {
        *a->out = apr_palloc(a->p, 1);  /* an empty value */
    }
    if (rv == APR_SUCCESS) {
        (*a->out)[n] = '\0';
        *a->outlen = n;
        if (a->outmark) {
            *a->outmark = meta.mark;
        }
    }
    return rv;
}

static apr_status_t locked(mc_slots *t, const char *key, const op_args *a)
{
    mc_slots_key k;
    unsigned stripe;
    apr_status_t rv = mc_slots_key_make(t, key, &k);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    stripe = mc_slots_key_stripe(t, &k);
    /* The slow part of a lookup in a large block is waiting on memory: done before the lock,
     * it no longer holds up the other processes and threads that want this stripe. */
    mc_slots_prefetch(t, &k);
    if (mc_slots_lock(t, stripe) != APR_SUCCESS) {
        return MC_SLOTS_ELOCK;
    }
    switch (a->kind) {
    case OP_GET:
        rv = copy_out(t, &k, a);
        break;
    case OP_PUT:
        rv = mc_slots_put(t, &k, a->now, a->expiry, a->data, a->len);
        break;
    case OP_ADD:
        rv = mc_slots_add(t, &k, a->now, a->expiry, a->data, a->len);
        break;
    case OP_REMOVE:
        rv = mc_slots_remove(t, &k, a->now);
        break;
    case OP_TOUCH:
        rv = mc_slots_touch(t, &k, a->now, a->expiry, a->mark);
        break;
    }
    mc_slots_unlock(t, stripe);
    return rv;
}

apr_status_t mc_slots_lget(mc_slots *t, const char *key, apr_time_t now, apr_pool_t *p,
                           unsigned char **data, apr_size_t *len, apr_uint32_t *mark)
{
    op_args a = { OP_GET, now, 0, NULL, 0, 0, p, data, len, mark };
    return locked(t, key, &a);
}

apr_status_t mc_slots_lput(mc_slots *t, const char *key, apr_time_t now, apr_time_t expiry,
                           const unsigned char *data, apr_size_t len)
{
    op_args a = { OP_PUT, now, expiry, data, len, 0, NULL, NULL, NULL, NULL };
    return locked(t, key, &a);
}

apr_status_t mc_slots_ladd(mc_slots *t, const char *key, apr_time_t now, apr_time_t expiry,
                           const unsigned char *data, apr_size_t len)
{
    op_args a = { OP_ADD, now, expiry, data, len, 0, NULL, NULL, NULL, NULL };
    return locked(t, key, &a);
}

apr_status_t mc_slots_lremove(mc_slots *t, const char *key, apr_time_t now)
{
    op_args a = { OP_REMOVE, now, 0, NULL, 0, 0, NULL, NULL, NULL, NULL };
    return locked(t, key, &a);
}

apr_status_t mc_slots_ltouch(mc_slots *t, const char *key, apr_time_t now, apr_time_t expiry,
                             apr_uint32_t mark)
{
    op_args a = { OP_TOUCH, now, expiry, NULL, 0, mark, NULL, NULL, NULL, NULL };
    return locked(t, key, &a);
}
