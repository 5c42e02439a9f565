/* The session store in a slot table in apr_shm (see mod_mc_slots.h).
 *
 * The block lives in the process pool and is found again through ap_retained_data, so the
 * sessions survive `apachectl graceful` and `restart`; children inherit the mapping. Its
 * stripe locks are robust process-shared mutexes inside the block (mc_slots_lock.h): no
 * lock file, nothing to re-attach in child_init, and a child killed while holding one
 * costs a rebuild of that stripe, never a wedged server. */
#include "mod_mc.h"
#include "mod_mc_slots.h"

#include "http_log.h"
#include <apr_shm.h>

APLOG_USE_MODULE(monei_connect);

#define MC_SLOTS_RETAINED_KEY "mod_monei_connect-slots"
/* A full store evicts on every new session: say so once a minute per process, not per
 * request. */
#define MC_SLOTS_EVICT_LOG_EVERY apr_time_from_sec(60)

typedef struct {
    apr_shm_t *shm;
    apr_uint32_t entries, value_max;    /* what it was made for */
} mc_retained_slots;

static mc_slots *table;                 /* this configuration's handle, or NULL */
static apr_time_t evict_logged;         /* per process; a lost update logs one line more */

/* apr_shm's base is only aligned for a size_t; the table wants 64 bytes. */
#define MC_SLOTS_SHM_SLACK 64

static void *block_of(apr_shm_t *shm, apr_size_t *size)
{
    unsigned char *base = apr_shm_baseaddr_get(shm);
    apr_size_t skip = (64 - ((apr_uintptr_t)base & 63)) & 63;
    *size = apr_shm_size_get(shm) - skip;
    return base + skip;
}

static void rebuilt(void *baton, unsigned stripe, apr_uint32_t kept)
{
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, (server_rec *)baton,
                 "MC0064: mc-slots-repair: a process died holding a lock of the session store; "
                 "its stripe %u was rebuilt (%u sessions kept)", stripe, kept);
}

static mc_retained_slots *retained(void)
{
    mc_retained_slots *kept = ap_retained_data_get(MC_SLOTS_RETAINED_KEY);
    return kept ? kept : ap_retained_data_create(MC_SLOTS_RETAINED_KEY, sizeof(*kept));
}

static void drop(mc_retained_slots *kept)
{
    apr_shm_destroy(kept->shm);
    kept->shm = NULL;
}

/* The table kept from the previous configuration, when it fits this one. */
static void reuse(mc_retained_slots *kept, apr_pool_t *pconf, server_rec *s,
                  apr_uint32_t entries, apr_uint32_t value_max)
{
    apr_size_t size;
    void *block;
    apr_status_t rv;

    if (kept->entries != entries || kept->value_max != value_max) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, "MC0065: mc-slots-init: the session store was "
                     "resized (%u to %u sessions, %u to %u bytes each): its sessions are "
                     "dropped", kept->entries, entries, kept->value_max, value_max);
        drop(kept);
        return;
    }
    block = block_of(kept->shm, &size);
    rv = mc_slots_attach(block, size, entries, value_max, pconf, &table);
    if (rv != APR_SUCCESS) {
        table = NULL;
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, "MC0066: mc-slots-init: the session store "
                     "kept across the restart is unusable; starting an empty one");
        drop(kept);
        return;
    }
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s,
                 "MC0067: mc-slots-init: keeping the session store across the restart");
}

int mc_slots_store_post_config(apr_pool_t *pconf, server_rec *s, apr_uint32_t entries,
                               apr_uint32_t value_max)
{
    mc_retained_slots *kept = retained();
    apr_size_t need = mc_slots_size_for(entries, value_max), size;
    apr_status_t rv;
    void *block;

    table = NULL;
    if (!need) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "MC0068: mc-slots-init: no session store for %u "
                     "sessions of %u bytes (at most %u sessions of %u bytes)", entries,
                     value_max, MC_SLOTS_ENTRIES_MAX, MC_SLOTS_VALUE_MAX);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (kept->shm) {
        reuse(kept, pconf, s, entries, value_max);
    }
    if (!kept->shm) {
        rv = apr_shm_create(&kept->shm, need + MC_SLOTS_SHM_SLACK, NULL, s->process->pool);
        if (rv != APR_SUCCESS) {
            kept->shm = NULL;
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, "MC0069: mc-slots-init: cannot get %"
                         APR_SIZE_T_FMT " bytes of shared memory for the session store",
                         need + MC_SLOTS_SHM_SLACK);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        block = block_of(kept->shm, &size);
        rv = mc_slots_create(block, size, entries, value_max, pconf, &table);
        if (rv == APR_SUCCESS && (rv = mc_slots_locks_init(table)) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, "MC0070: mc-slots-init: this system has no "
                         "robust process-shared mutexes for the session store");
        }
        else if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                         "MC0071: mc-slots-init: cannot make the session store");
        }
        if (rv != APR_SUCCESS) {
            table = NULL;
            drop(kept);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        kept->entries = entries;
        kept->value_max = value_max;
    }
    mc_slots_on_rebuild(table, rebuilt, s);
    return OK;
}

void mc_slots_store_release(server_rec *s)
{
    mc_retained_slots *kept = ap_retained_data_get(MC_SLOTS_RETAINED_KEY);
    table = NULL;
    if (kept && kept->shm) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, "MC0072: mc-slots-init: another session store "
                     "is configured: the built-in one is dropped with its sessions");
        drop(kept);
    }
}

int mc_slots_store_active(void)
{
    return table != NULL;
}

/* Evictions and lock failures are logged here; every other status is the caller's. */
static apr_status_t done(server_rec *s, const char *what, apr_status_t rv)
{
    if (rv == MC_SLOTS_EVICTED) {
        apr_time_t now = apr_time_now();
        if (now - evict_logged >= MC_SLOTS_EVICT_LOG_EVERY) {
            mc_slots_stats_t st;
            evict_logged = now;
            mc_slots_stats(table, &st);
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "MC0073: mc-slots-evict: the session store "
                         "is full and evicts sessions to store new ones (%" APR_UINT64_T_FMT
                         " so far; made for %u sessions, %u slots): make it larger",
                         st.evictions, st.entries, st.slots);
        }
        return APR_SUCCESS;
    }
    if (rv == MC_SLOTS_ELOCK) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "MC0074: mc-slots-lock: %s: a lock of the session "
                     "store is unusable", what);
        return APR_EGENERAL;
    }
    if (rv == APR_EINVAL) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, "MC0075: mc-slots-key: %s: a store key empty or "
                     "longer than %d bytes", what, MC_SLOTS_KEY_MAX);
    }
    return rv;
}

apr_status_t mc_slots_store_get(server_rec *s, const char *key, apr_pool_t *p,
                                unsigned char **data, apr_size_t *len, apr_uint32_t *mark)
{
    if (!table) {
        return APR_EINIT;
    }
    return done(s, "get", mc_slots_lget(table, key, apr_time_now(), p, data, len, mark));
}

apr_status_t mc_slots_store_touch(server_rec *s, const char *key, apr_time_t expiry,
                                  apr_uint32_t mark)
{
    if (!table) {
        return APR_EINIT;
    }
    return done(s, "touch", mc_slots_ltouch(table, key, apr_time_now(), expiry, mark));
}

apr_status_t mc_slots_store_put(server_rec *s, const char *key, apr_time_t expiry,
                                const unsigned char *data, apr_size_t len)
{
    if (!table) {
        return APR_EINIT;
    }
    return done(s, "put", mc_slots_lput(table, key, apr_time_now(), expiry, data, len));
}

apr_status_t mc_slots_store_add(server_rec *s, const char *key, apr_time_t expiry,
                                const unsigned char *data, apr_size_t len)
{
    if (!table) {
        return APR_EINIT;
    }
    return done(s, "add", mc_slots_ladd(table, key, apr_time_now(), expiry, data, len));
}

apr_status_t mc_slots_store_remove(server_rec *s, const char *key)
{
    apr_status_t rv;
    if (!table) {
        return APR_EINIT;
    }
    rv = done(s, "remove", mc_slots_lremove(table, key, apr_time_now()));
    return rv == APR_NOTFOUND ? APR_SUCCESS : rv;
}

apr_status_t mc_slots_store_stats(mc_slots_stats_t *st)
{
    if (!table) {
        return APR_EINIT;
    }
    mc_slots_stats(table, st);
    return APR_SUCCESS;
}
