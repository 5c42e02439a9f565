/* The session store: the built-in slot table (`shm`, mod_mc_slots.c) or ap_socache glue
 * (after mod_ssl's ssl_scache.c).
 *
 * The built-in store takes no global mutex: each operation holds the lock of its key's
 * stripe only, which makes put-if-absent atomic on it.
 *
 * For ap_socache, one global mutex: it serializes every call for providers that are not multi-process safe
 * (shmcb, dbm), which makes their put-if-absent (mc_store_add) atomic. Stores that several
 * servers share (memcache, redis) get put-if-absent from the engine itself
 * (mod_mc_store_atomic.c); a shared provider without one is refused at startup. The mutex is
 * never held across a call to Monei, and no other global mutex is taken while it is held. */
#include "mod_mc.h"
#include "mod_mc_config.h"
#include "mod_mc_store.h"
#include "mod_mc_status.h"
#include "mod_mc_store_atomic.h"
#include "mod_mc_slots.h"
#include "mc_reccache.h"

#include "ap_provider.h"
#include "ap_socache.h"
#include "util_mutex.h"
#include "http_log.h"
#include <apr_lib.h>
#include <apr_shm.h>
#include <apr_strings.h>
#include <errno.h>

APLOG_USE_MODULE(monei_connect);

#define MC_MUTEX_TYPE "monei-connect-store"
/* ap_socache's cache names are limited to 16 characters. */
#define MC_CACHE_NAME "monei-connect"

static ap_socache_instance_t *store_instance;
static apr_global_mutex_t *store_mutex;
static int store_needs_mutex;       /* provider is not MP-safe: every call under the mutex */
static int store_spread_ids;        /* shmcb: ids get a leading byte that spreads them */
static int store_shm;               /* the built-in slot table (mod_mc_slots.c) */
static apr_uint32_t shm_sessions;   /* what it is sized for */
static server_rec *destroy_server;

/* The hot path of a store only this server writes (shm, shmcb, dbm): sessions are read from a
 * per-process cache while their version slot is unchanged (mc_reccache.h), so a request
 * with a valid session takes no global mutex, hashes nothing and decrypts nothing. The
 * slots are shared by every process and kept across restarts, as the shmcb instance is. */
#define MC_CACHE_ENTRIES 256
#define MC_CACHE_MAX_AGE apr_time_from_sec(5)
static apr_uint32_t *store_versions;
static mc_reccache *session_cache;

/* A shared-memory store outlives restarts: `apachectl graceful` (logrotate runs it daily) and
 * `apachectl restart` keep every session. The instance lives in the process pool, found
 * again through ap_retained_data, and is replaced only when its configuration changed. */
typedef struct {
    ap_socache_instance_t *instance;
    apr_pool_t *pool;               /* the instance's own, a child of the process pool */
    const ap_socache_provider_t *provider;
    const char *spec;               /* "name:args" it was made from */
    apr_shm_t *versions;            /* MC_VERSIONS_BYTES of version slots */
} mc_retained_store;

#define MC_RETAINED_KEY "mod_monei_connect-store"

static int survives_restart(const char *name)
{
    return !strcmp(name, "shmcb");
}

/* The provider's resources (connections, files) belong to this configuration cycle. */
static apr_status_t store_destroy(void *unused)
{
    if (store_instance && mc_store_config.provider) {
        mc_store_config.provider->destroy(store_instance, destroy_server);
    }
    store_instance = NULL;
    return APR_SUCCESS;
}

int mc_store_pre_config(apr_pool_t *pconf)
{
    store_instance = NULL;
    store_mutex = NULL;
    store_versions = NULL;
    session_cache = NULL;
    store_shm = 0;
    shm_sessions = 0;
    return ap_mutex_register(pconf, MC_MUTEX_TYPE, NULL, APR_LOCK_DEFAULT, 0) == APR_SUCCESS
           ? OK : !OK;
}

static const char *store_name(void)
{
    return mc_store_config.provider_name ? mc_store_config.provider_name : MC_SHM_NAME;
}

static int is_shm(void)
{
    return !strcmp(store_name(), MC_SHM_NAME);
}

/* " at FILE:LINE" of the MoneiConnectSessionStore line, for startup errors; `none` when
 * the store is the default. */
static const char *store_where(apr_pool_t *p, const char *none)
{
    return mc_store_config.at.file ? apr_psprintf(p, " at %s:%d", mc_store_config.at.file,
                                                  mc_store_config.at.line)
                                   : none;
}

/* `shm` or `shm:SESSIONS`: 1 with shm_sessions set, or 0 after logging why not. */
static int shm_parse(apr_pool_t *ptemp)
{
    const char *a = mc_store_config.provider_args;
    apr_int64_t n = MC_SHM_DEFAULT_SESSIONS;
    char *end = NULL;

    if (a) {
        errno = 0;
        n = apr_strtoi64(a, &end, 10);
        if (!apr_isdigit(*a) || *end || errno == ERANGE || n < 1 || n > MC_SHM_SESSIONS_MAX) {
            ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, 0, NULL,
                         "MC0081: mod_monei_connect: MoneiConnectSessionStore shm:%s%s: must be "
                         "shm or shm:SESSIONS, the number of sessions to hold, 1 to %d",
                         a, store_where(ptemp, ""), MC_SHM_SESSIONS_MAX);
            return 0;
        }
    }
    if (!mc_slots_size_for(MC_SHM_ENTRIES(n), MC_SHM_RECORD_MAX)) {
        ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, 0, NULL,
                     "MC0082: mod_monei_connect: MoneiConnectSessionStore shm:%s: too large for this "
                     "system", a);
        return 0;
    }
    shm_sessions = (apr_uint32_t)n;
    return 1;
}

/* ap_socache's dbm provider stores each entry as one pair of the APR DBM type apr-util was
 * built with; Debian's is SDBM, whose key and value together must fit in PAIRMAX (1008)
 * bytes. A session record (tokens, scopes, wallet and profile snapshots, encrypted) is
 * larger than that, so every login would fail to store its session: refuse it at startup,
 * with the reason, rather than accept it and fail every login. */
#define MC_SDBM_PAIRMAX 1008
#define MC_RECORD_TYPICAL 1500

static int refuse_small_record_store(const char *name, apr_pool_t *ptemp)
{
    if (strcasecmp(name, "dbm")) {
        return OK;
    }
    ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, 0, NULL,
                 "MC0083: mod_monei_connect: MoneiConnectSessionStore dbm%s: mod_socache_dbm "
                 "stores an entry as one DBM pair, and APR's DBM here (SDBM on Debian) "
                 "limits key + value to %d bytes, while a session record is about %d bytes "
                 "(tokens and wallet/profile snapshots, encrypted): every login would fail "
                 "to store its session. Use shmcb (one server), memcache or redis",
                 store_where(ptemp, ""), MC_SDBM_PAIRMAX, MC_RECORD_TYPICAL);
    return !OK;
}

/* Startup check (also under `apachectl -t`): the provider is loaded and accepts its
 * arguments. The instance made here is only a check; post_config makes the real one. */
int mc_store_check(apr_pool_t *pconf, apr_pool_t *ptemp)
{
    const char *name = store_name();
    ap_socache_instance_t *probe = NULL;
    const char *err;

    if (is_shm()) {
        mc_store_config.provider = NULL;
        return shm_parse(ptemp) ? OK : !OK;
    }
    mc_store_config.provider = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name,
                                                  AP_SOCACHE_PROVIDER_VERSION);
    if (!mc_store_config.provider) {
        ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, 0, NULL,
                     "MC0084: mod_monei_connect: MoneiConnectSessionStore%s: the session store "
                     "provider '%s' is not loaded; add "
                     "\"LoadModule socache_%s_module modules/mod_socache_%s.so\" "
                     "(Debian: a2enmod socache_%s)",
                     store_where(ptemp, " (default)"), name, name, name, name);
        return !OK;
    }
    if (refuse_small_record_store(name, ptemp) != OK) {
        return !OK;
    }
    if (!(mc_store_config.provider->flags & AP_SOCACHE_FLAG_NOTMPSAFE)
        && !mc_atomic_supported(name)) {
        /* Several servers could share it, and nothing here could lock a session on it. */
        ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, 0, NULL,
                     "MC0085: mod_monei_connect: MoneiConnectSessionStore %s: this provider offers no "
                     "atomic put-if-absent, which one-refresh-per-session needs across "
                     "servers; use shmcb (one server), memcache or redis", name);
        return !OK;
    }
    err = mc_store_config.provider->create(&probe, mc_store_config.provider_args, ptemp, ptemp);
    if (err) {
        ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, 0, NULL,
                     "MC0086: mod_monei_connect: MoneiConnectSessionStore %s: %s", name, err);
        return !OK;
    }
    return OK;
}

static apr_status_t make_instance(apr_pool_t *pool, server_rec *s, ap_socache_instance_t **out)
{
    struct ap_socache_hints hints = { 0 };
    const char *err;
    /* Sizes of what we store: 35-byte ids, records around 1.2 KB, sessions live hours. */
    hints.avg_id_len = 35;
    hints.avg_obj_size = 1200;
    hints.expiry_interval = 60;
    err = mc_store_config.provider->create(out, mc_store_config.provider_args, pool, pool);
    if (err) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "MC0087: mc-store-init: %s", err);
        return APR_EGENERAL;
    }
    return mc_store_config.provider->init(*out, MC_CACHE_NAME, &hints, s, pool);
}

/* The retained instance lives in a pool of its own, a child of the process pool made after
 * pconf. At the final exit httpd destroys the process pool's children newest first, so this
 * pool (and the cleanup mod_socache_shmcb registers on it) goes before pconf, whose cleanup
 * unloads the modules. Made in the process pool itself, that cleanup ran after
 * mod_socache_shmcb was unloaded and the parent died of SIGSEGV on every stop. */
static void retained_drop(mc_retained_store *kept)
{
    apr_pool_destroy(kept->pool);
    kept->instance = NULL;
    kept->pool = NULL;
}

static mc_retained_store *retained(void)
{
    mc_retained_store *kept = ap_retained_data_get(MC_RETAINED_KEY);
    return kept ? kept : ap_retained_data_create(MC_RETAINED_KEY, sizeof(*kept));
}

/* Version slots for the per-process session cache: only for a store no other server writes
 * (a networked store is multi-process safe and shared; nothing here would see its writes). */
static void versions_attach(mc_retained_store *kept, server_rec *s)
{
    apr_status_t rv;

    store_versions = NULL;
    if (!store_needs_mutex && !store_shm) {
        return;
    }
    if (!kept->versions) {
        rv = apr_shm_create(&kept->versions, MC_VERSIONS_BYTES, NULL, s->process->pool);
        if (rv != APR_SUCCESS) {
            kept->versions = NULL;
            ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, "MC0088: mc-store-init: no shared memory "
                         "for the session cache; every request reads the session store");
            return;
        }
        memset(apr_shm_baseaddr_get(kept->versions), 0, MC_VERSIONS_BYTES);
    }
    store_versions = apr_shm_baseaddr_get(kept->versions);
}

/* A new store instance: whatever any process cached from the previous one is stale. */
static void instance_created(void)
{
    if (store_versions) {
        mc_versions_bump_all(store_versions);
    }
}

/* The built-in store: the slot table kept across restarts (mod_mc_slots.c), and version
 * slots for the per-process cache. A shmcb segment kept from a configuration before is let
 * go. */
static int shm_post_config(apr_pool_t *pconf, server_rec *s, mc_retained_store *kept)
{
    int rc;

    if (kept->instance) {
        kept->provider->destroy(kept->instance, s);
        kept->instance = NULL;
    }
    if (!shm_sessions) {
        return HTTP_INTERNAL_SERVER_ERROR;      /* mc_store_check said why */
    }
    rc = mc_slots_store_post_config(pconf, s, MC_SHM_ENTRIES(shm_sessions),
                                    MC_SHM_RECORD_MAX);
    if (rc != OK) {
        return rc;
    }
    versions_attach(kept, s);
    /* The table may be new (first start, resized): nothing any process cached before is
     * known to be in it. After a graceful restart this only costs old children's caches. */
    instance_created();
    return OK;
}

int mc_store_post_config(apr_pool_t *pconf, server_rec *s)
{
    const char *name = store_name();
    mc_retained_store *kept;
    apr_status_t rv;

    store_shm = is_shm();
    if (store_shm) {
        return shm_post_config(pconf, s, retained());
    }
    mc_slots_store_release(s);
    if (!mc_store_config.provider) {
        return OK;
    }
    store_needs_mutex = (mc_store_config.provider->flags & AP_SOCACHE_FLAG_NOTMPSAFE) != 0;
    store_spread_ids = !strcmp(name, "shmcb");
    kept = retained();
    versions_attach(kept, s);
    rv = ap_global_mutex_create(&store_mutex, NULL, MC_MUTEX_TYPE, NULL, s, pconf, 0);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                     "MC0089: mc-store-mutex: cannot create the session store mutex");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (survives_restart(name)) {
        const char *spec = apr_pstrcat(pconf, name, ":", mc_store_config.provider_args
                                       ? mc_store_config.provider_args : "", NULL);
        if (kept->instance && (kept->provider != mc_store_config.provider
                               || strcmp(kept->spec, spec))) {
            /* Configuration changed: the old segment goes with its sessions. */
            retained_drop(kept);
        }
        if (!kept->instance) {
            apr_pool_create(&kept->pool, s->process->pool);
            if ((rv = make_instance(kept->pool, s, &kept->instance)) != APR_SUCCESS) {
                apr_pool_destroy(kept->pool);
                kept->pool = NULL;
                kept->instance = NULL;
                ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                             "MC0090: mc-store-init: cannot initialise the session store (%s)", spec);
                return HTTP_INTERNAL_SERVER_ERROR;
            }
            kept->provider = mc_store_config.provider;
            kept->spec = apr_pstrdup(kept->pool, spec);
            instance_created();
        }
        else {
            ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s,
                         "MC0091: mc-store: keeping the session store across the restart");
        }
        store_instance = kept->instance;
        return OK;
    }
    if ((rv = make_instance(pconf, s, &store_instance)) != APR_SUCCESS) {
        store_instance = NULL;
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                     "MC0092: mc-store-init: cannot initialise the session store (%s)", name);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    instance_created();
    destroy_server = s;
    apr_pool_cleanup_register(pconf, NULL, store_destroy, apr_pool_cleanup_null);
    return OK;
}

void mc_store_child_init(apr_pool_t *p, server_rec *s)
{
    if (store_instance && !store_needs_mutex) {
        mc_atomic_child_init(p, s, store_name(), mc_store_config.provider_args, MC_CACHE_NAME);
    }
    if (store_mutex) {
        apr_status_t rv = apr_global_mutex_child_init(&store_mutex,
                                                      apr_global_mutex_lockfile(store_mutex), p);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         "MC0093: mc-store-child: cannot re-attach the session store mutex");
        }
    }
    if (store_versions) {
        apr_status_t rv = mc_reccache_create(p, store_versions, MC_CACHE_ENTRIES,
                                             MC_CACHE_MAX_AGE, &session_cache);
        if (rv != APR_SUCCESS) {
            session_cache = NULL;
            ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, "MC0094: mc-store-child: no session cache "
                         "in this process; every request reads the session store");
        }
    }
}

static apr_status_t lock(server_rec *s, int always)
{
    apr_status_t rv;
    if (!store_mutex || (!always && !store_needs_mutex)) {
        return APR_SUCCESS;
    }
    rv = apr_global_mutex_lock(store_mutex);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, "MC0095: mc-store-lock: mutex lock failed");
    }
    return rv;
}

static void unlock(int always)
{
    if (store_mutex && (always || store_needs_mutex)) {
        apr_global_mutex_unlock(store_mutex);
    }
}

/* While a networked store (redis, memcached) is down, stop asking it for a while: requests
 * answer 503 at once instead of each paying a failed connection, and the provider does not
 * log every request. The pause outlasts apr-util's own 5-second retry of a dead server, so
 * the first call after it really tries to connect (a dead server otherwise looks like a
 * miss). Per process, no lock needed: a lost update only shortens or lengthens a pause. */
#define MC_STORE_PAUSE apr_time_from_sec(10)
static apr_time_t paused_until;

static int paused(void)
{
    return paused_until && apr_time_now() < paused_until;
}

static apr_status_t observe(apr_status_t rv)
{
    if (rv == APR_SUCCESS || APR_STATUS_IS_NOTFOUND(rv) || rv == APR_ENOSPC) {
        paused_until = 0;
    }
    else if (!store_needs_mutex) {
        paused_until = apr_time_now() + MC_STORE_PAUSE;
    }
    return rv;
}

/* The id the provider sees for key. shmcb picks a sub-cache from the id's first byte masked
 * to its sub-cache count (up to 256 in a large segment); our keys are base64url text, 64
 * values of that byte, so in a segment of 128 or 256 sub-caches half or three quarters of
 * them would stay empty and the store would hold that much less. shmcb ids are bytes: a
 * leading byte from a hash of the key covers all 256. Text keys stay as they are for the
 * networked stores, where administrators read them. */
static const unsigned char *provider_id(const char *key, apr_pool_t *p, unsigned int *len)
{
    apr_size_t n = strlen(key);
    unsigned char *id;
    apr_uint32_t h = 2166136261u;
    apr_size_t i;

    if (!store_spread_ids) {
        *len = (unsigned int)n;
        return (const unsigned char *)key;
    }
    for (i = 0; i < n; i++) {
        h = (h ^ (unsigned char)key[i]) * 16777619u;
    }
    id = apr_palloc(p, n + 1);
    id[0] = (unsigned char)(h ^ (h >> 8) ^ (h >> 16) ^ (h >> 24));
    memcpy(id + 1, key, n);
    *len = (unsigned int)(n + 1);
    return id;
}

static apr_status_t retrieve(server_rec *s, const char *key, apr_pool_t *p,
                             unsigned char **data, apr_size_t *len)
{
    unsigned char *buf = apr_palloc(p, MC_STORE_MAX_RECORD);
    unsigned int n = MC_STORE_MAX_RECORD, idlen;
    const unsigned char *id = provider_id(key, p, &idlen);
    apr_status_t rv;
    if (paused()) {
        return APR_EGENERAL;
    }
    rv = observe(mc_store_config.provider->retrieve(store_instance, s, id, idlen, buf, &n, p));
    if (rv == APR_SUCCESS) {
        *data = buf;
        *len = n;
    }
    return rv;
}

/* Every change of a key, by any process, makes every process's cached copy stale. Called
 * after the write: under the store mutex (shmcb, dbm), or after the stripe lock is released
 * (shm), which is as safe: a reader takes the version before it reads the record, so a
 * record read before the write was cached under a version this bump makes stale. */
static apr_status_t changed(const char *key, apr_status_t rv)
{
    if (store_versions) {
        mc_versions_bump(store_versions, key);
    }
    return rv;
}

static apr_status_t store(server_rec *s, const char *key, apr_time_t expiry,
                          const unsigned char *data, apr_size_t len, apr_pool_t *p)
{
    unsigned int idlen;
    const unsigned char *id = provider_id(key, p, &idlen);
    if (len > MC_STORE_MAX_RECORD) {
        return APR_ENOSPC;
    }
    if (paused()) {
        return APR_EGENERAL;
    }
    return changed(key, observe(mc_store_config.provider->store(
        store_instance, s, id, idlen, expiry, (unsigned char *)data, (unsigned int)len, p)));
}

static apr_status_t remove_key(server_rec *s, const char *key, apr_pool_t *p)
{
    unsigned int idlen;
    const unsigned char *id = provider_id(key, p, &idlen);
    if (paused()) {
        return APR_EGENERAL;
    }
    return changed(key, observe(mc_store_config.provider->remove(store_instance, s, id, idlen,
                                                                 p)));
}

apr_status_t mc_store_get(server_rec *s, const char *key, apr_pool_t *p, unsigned char **data,
                          apr_size_t *len, mc_store_seen_t *seen)
{
    mc_store_seen_t none;
    apr_uint32_t mark = 0;
    apr_status_t rv;

    seen = seen ? seen : &none;
    seen->version = 0;
    seen->touched = 0;
    if (store_shm) {
        if (store_versions) {
            seen->version = mc_versions_get(store_versions, key);
        }
        rv = mc_slots_store_get(s, key, p, data, len, &mark);
        seen->touched = mark;
        return rv;
    }
    if (!store_instance) {
        return APR_EINIT;
    }
    if ((rv = lock(s, 0)) != APR_SUCCESS) {
        return rv;
    }
    if (store_versions) {
        seen->version = mc_versions_get(store_versions, key);
    }
    rv = retrieve(s, key, p, data, len);
    unlock(0);
    return rv;
}

mc_reccache *mc_store_cache(void)
{
    return session_cache;
}

apr_status_t mc_store_put(server_rec *s, const char *key, apr_time_t expiry,
                          const unsigned char *data, apr_size_t len, apr_pool_t *p)
{
    apr_status_t rv;
    if (store_shm) {
        return changed(key, mc_slots_store_put(s, key, expiry, data, len));
    }
    if (!store_instance) {
        return APR_EINIT;
    }
    if ((rv = lock(s, 0)) != APR_SUCCESS) {
        return rv;
    }
    rv = store(s, key, expiry, data, len, p);
    unlock(0);
    return rv;
}

apr_status_t mc_store_add(server_rec *s, const char *key, apr_time_t expiry,
                          const unsigned char *data, apr_size_t len, apr_pool_t *p)
{
    unsigned char *old;
    apr_size_t oldlen;
    apr_status_t rv;

    if (store_shm) {
        /* The table's own add, under the key's stripe lock. */
        return changed(key, mc_slots_store_add(s, key, expiry, data, len));
    }
    if (!store_instance) {
        return APR_EINIT;
    }
    if (!store_needs_mutex) {
        unsigned int idlen;
        const unsigned char *id = provider_id(key, p, &idlen);
        if (paused()) {
            return APR_EGENERAL;
        }
        rv = mc_atomic_add(s, id, idlen, expiry, data, len, p);
        /* Only the engine's own answers say whether the store is down. */
        return rv == APR_EEXIST || rv == APR_EINIT || rv == APR_EINVAL ? rv : observe(rv);
    }
    if ((rv = lock(s, 1)) != APR_SUCCESS) {
        return rv;
    }
    rv = retrieve(s, key, p, &old, &oldlen);
    if (rv == APR_SUCCESS) {
        rv = APR_EEXIST;
    }
    else if (APR_STATUS_IS_NOTFOUND(rv)) {
        rv = store(s, key, expiry, data, len, p);
    }
    unlock(1);
    return rv;
}

apr_status_t mc_store_remove(server_rec *s, const char *key, apr_pool_t *p)
{
    apr_status_t rv;
    if (store_shm) {
        return changed(key, mc_slots_store_remove(s, key));
    }
    if (!store_instance) {
        return APR_EINIT;
    }
    if ((rv = lock(s, 0)) != APR_SUCCESS) {
        return rv;
    }
    rv = remove_key(s, key, p);
    unlock(0);
    return rv;
}

apr_status_t mc_store_touch(server_rec *s, const char *key, apr_time_t expiry,
                            apr_int64_t stamp)
{
    if (!store_shm) {
        return APR_ENOTIMPL;
    }
    if (stamp <= 0 || stamp > (apr_int64_t)APR_UINT32_MAX) {
        return APR_EINVAL;
    }
    /* A new stamp is a change: every process's cached copy must learn of it. */
    return changed(key, mc_slots_store_touch(s, key, expiry, (apr_uint32_t)stamp));
}

int mc_store_fill(mc_store_fill_t *f)
{
    mc_slots_stats_t st;
    if (!store_shm || mc_slots_store_stats(&st) != APR_SUCCESS) {
        return 0;
    }
    f->sessions = shm_sessions;
    f->records = st.used;
    f->slots = st.slots;
    f->evictions = st.evictions;
    return 1;
}

/* Store trouble is logged once per burst: at ERR when it starts (and every 60 s while it
 * lasts), at DEBUG for the requests in between, so an outage does not flood the log. */
static apr_time_t trouble_logged;

void mc_store_trouble(request_rec *r, apr_status_t rv, const char *what)
{
    apr_time_t now = apr_time_now();
    int level = APLOG_DEBUG;
    mc_stat_inc(MC_STAT_STORE_ERROR);
    if (now - trouble_logged > apr_time_from_sec(60)) {
        trouble_logged = now;
        level = APLOG_ERR;
    }
    ap_log_rerror(APLOG_MARK, level, rv, r, "MC0096: mc-store: %s (session store %s unavailable; "
                  "further failures in the next minute are logged at debug level)", what,
                  store_name());
}

void mc_store_recovered(request_rec *r)
{
    if (trouble_logged) {
        trouble_logged = 0;
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, "MC0097: mc-store: the session store answers "
                      "again");
    }
}
