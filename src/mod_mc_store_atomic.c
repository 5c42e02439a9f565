/* Atomic put-if-absent for the shared stores (see mod_mc_store_atomic.h).
 *
 * memcached: apr-util's client (already linked for mod_socache_memcache), `add`.
 * redis: hiredis, `SET key value NX PX ms`; apr-util's redis client has no NX. Connections
 * are pooled per process (apr_reslist), since a hiredis context serves one thread at a time. */
#include "mod_mc_store_atomic.h"
#include "mod_mc.h"

#include "http_log.h"
#include "mpm_common.h"
#include "ap_mpm.h"
#include <apr_memcache.h>
#include <apr_reslist.h>
#include <apr_strings.h>
#include <hiredis/hiredis.h>

APLOG_USE_MODULE(monei_connect);

/* How long the engine may take to connect or answer: a store that hangs must not hold a
 * worker longer than a failed request would. */
#define MC_ATOMIC_TIMEOUT_MS 2000
/* Keys as mod_socache_memcache and mod_socache_redis form them: tag + hex(id). */
#define MC_ATOMIC_KEY_MAX 250

static apr_memcache_t *memcache;
static apr_reslist_t *redis_pool;
static const char *key_tag;

typedef struct {
    const char *host;
    apr_port_t port;
} redis_where;

int mc_atomic_supported(const char *provider)
{
    return provider && (!strcmp(provider, "memcache") || !strcmp(provider, "redis"));
}

static int max_threads(void)
{
    int n = 0;
    ap_mpm_query(AP_MPMQ_MAX_THREADS, &n);
    return n > 0 ? n : 1;
}

static apr_status_t memcache_init(apr_pool_t *p, server_rec *s, const char *args)
{
    char *list = apr_pstrdup(p, args), *last, *one;
    int count = 1, threads = max_threads();
    const char *c;
    apr_status_t rv;

    for (c = args; *c; c++) {
        count += (*c == ',');
    }
    if ((rv = apr_memcache_create(p, (apr_uint16_t)count, 0, &memcache)) != APR_SUCCESS) {
        return rv;
    }
    for (one = apr_strtok(list, ",", &last); one; one = apr_strtok(NULL, ",", &last)) {
        char *host, *scope;
        apr_port_t port;
        apr_memcache_server_t *st;
        if ((rv = apr_parse_addr_port(&host, &scope, &port, one, p)) != APR_SUCCESS || !host) {
            return rv != APR_SUCCESS ? rv : APR_EINVAL;
        }
        rv = apr_memcache_server_create(p, host, port ? port : 11211, 0, 1, threads,
                                        apr_time_from_sec(15), &st);
        if (rv != APR_SUCCESS || (rv = apr_memcache_add_server(memcache, st)) != APR_SUCCESS) {
            return rv;
        }
    }
    return APR_SUCCESS;
}

static apr_status_t redis_connect(void **resource, void *params, apr_pool_t *p)
{
    redis_where *w = params;
    struct timeval tv = { MC_ATOMIC_TIMEOUT_MS / 1000, (MC_ATOMIC_TIMEOUT_MS % 1000) * 1000 };
    redisContext *ctx = redisConnectWithTimeout(w->host, w->port, tv);

    if (!ctx || ctx->err) {
        if (ctx) {
            redisFree(ctx);
        }
        return APR_ECONNREFUSED;
    }
    redisSetTimeout(ctx, tv);
    *resource = ctx;
    return APR_SUCCESS;
}

static apr_status_t redis_close(void *resource, void *params, apr_pool_t *p)
{
    redisFree(resource);
    return APR_SUCCESS;
}

static apr_status_t redis_init(apr_pool_t *p, server_rec *s, const char *args)
{
    redis_where *w = apr_pcalloc(p, sizeof(*w));
    char *first = apr_pstrdup(p, args), *comma = strchr(first, ','), *host, *scope;
    apr_port_t port;
    apr_status_t rv;

    if (comma) {
        *comma = '\0';
    }
    if ((rv = apr_parse_addr_port(&host, &scope, &port, first, p)) != APR_SUCCESS || !host) {
        return rv != APR_SUCCESS ? rv : APR_EINVAL;
    }
    w->host = host;
    w->port = port ? port : 6379;
    return apr_reslist_create(&redis_pool, 0, 1, max_threads(), apr_time_from_sec(15),
                              redis_connect, redis_close, w, p);
}

apr_status_t mc_atomic_child_init(apr_pool_t *p, server_rec *s, const char *provider,
                                  const char *args, const char *cache_name)
{
    apr_status_t rv = APR_ENOTIMPL;

    key_tag = apr_pstrcat(p, cache_name, ":", NULL);
    if (!args || !*args) {
        rv = APR_EINVAL;
    }
    else if (!strcmp(provider, "memcache")) {
        rv = memcache_init(p, s, args);
    }
    else if (!strcmp(provider, "redis")) {
        rv = redis_init(p, s, args);
    }
    if (rv != APR_SUCCESS) {
        memcache = NULL;
        redis_pool = NULL;
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "MC0098: mc-store-atomic: cannot set up atomic "
                     "operations on the %s store (%s); token refreshes will fail until it "
                     "is fixed", provider, args ? args : "");
    }
    return rv;
}

/* The engine's key of id, as the socache provider spells it. */
static const char *engine_key(const unsigned char *id, unsigned int idlen, apr_pool_t *p)
{
    apr_size_t tl = strlen(key_tag);
    char *key;
    unsigned int i;
    static const char hex[] = "0123456789abcdef";

    if (tl + 2 * (apr_size_t)idlen > MC_ATOMIC_KEY_MAX) {
        return NULL;
    }
    key = apr_palloc(p, tl + 2 * idlen + 1);
    memcpy(key, key_tag, tl);
    for (i = 0; i < idlen; i++) {
        key[tl + 2 * i] = hex[id[i] >> 4];
        key[tl + 2 * i + 1] = hex[id[i] & 0xf];
    }
    key[tl + 2 * idlen] = '\0';
    return key;
}

static apr_status_t redis_add(const char *key, apr_time_t expiry, const unsigned char *data,
                              apr_size_t len)
{
    void *res;
    redisContext *ctx;
    redisReply *reply;
    long long ms = (long long)apr_time_as_msec(expiry - apr_time_now());
    apr_status_t rv;

    if (ms < 1) {
        ms = 1;
    }
    if ((rv = apr_reslist_acquire(redis_pool, &res)) != APR_SUCCESS) {
        return rv;
    }
    ctx = res;
    reply = redisCommand(ctx, "SET %s %b NX PX %lld", key, data, (size_t)len, ms);
    if (!reply) {
        /* The connection is broken: never hand it out again. */
        apr_reslist_invalidate(redis_pool, res);
        return APR_EGENERAL;
    }
    if (reply->type == REDIS_REPLY_STATUS && !strcmp(reply->str, "OK")) {
        rv = APR_SUCCESS;
    }
    else if (reply->type == REDIS_REPLY_NIL) {
        rv = APR_EEXIST;
    }
    else {
        rv = APR_EGENERAL;
    }
    freeReplyObject(reply);
    apr_reslist_release(redis_pool, res);
    return rv;
}

apr_status_t mc_atomic_add(server_rec *s, const unsigned char *id, unsigned int idlen,
                           apr_time_t expiry, const unsigned char *data, apr_size_t len,
                           apr_pool_t *p)
{
    const char *key = engine_key(id, idlen, p);

    if (!key) {
        return APR_EINVAL;
    }
    if (memcache) {
        /* memcached counts whole seconds; a lock shorter than one is never wanted. */
        apr_interval_time_t left = expiry - apr_time_now();
        apr_uint32_t secs = left > apr_time_from_sec(1) ? (apr_uint32_t)apr_time_sec(left) : 1;
        return apr_memcache_add(memcache, key, (char *)data, len, secs, 0);
    }
    if (redis_pool) {
        return redis_add(key, expiry, data, len);
    }
    return APR_EINIT;
}
