/* mc_reccache: process-local cache of opened session records, validated by shared version
 * counters (see mc_reccache.h for why this is exact). */
#include "mc_reccache.h"

#include <apr_atomic.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <stdlib.h>
#include <string.h>

/* Entries are guarded by a few mutexes, not one: threads of a process looking up different
 * sessions rarely wait for each other. */
#define MC_RECCACHE_STRIPES 16
#define MC_KEYBUF (MC_RECCACHE_KEY_MAX + 1)

typedef struct {
    char id[MC_KEYBUF];                     /* NUL-padded; "" = empty */
    char key[MC_KEYBUF];
    const void *realm;
    apr_uint32_t version;
    apr_int64_t note;                       /* the caller's, kept with the record */
    apr_time_t fetched;
    unsigned char *data;                    /* malloc'd, grows to the largest record */
    apr_size_t len, cap;
} mc_rc_entry;

struct mc_reccache {
    apr_uint32_t *versions;
    unsigned nentries;
    apr_interval_time_t max_age;
    mc_rc_entry *entries;
    apr_thread_mutex_t *locks[MC_RECCACHE_STRIPES];
};

/* FNV-1a: ids and keys are random or hashes already; this only has to spread them. */
static apr_uint32_t key_hash(const char *key)
{
    apr_uint32_t h = 2166136261u;
    for (; *key; key++) {
        h = (h ^ (unsigned char)*key) * 16777619u;
    }
    return h;
}

apr_uint32_t mc_versions_get(const apr_uint32_t *versions, const char *key)
{
    return apr_atomic_read32((volatile apr_uint32_t *)&versions[key_hash(key)
                                                                  % MC_VERSION_SLOTS]);
}

void mc_versions_bump(apr_uint32_t *versions, const char *key)
{
    apr_atomic_inc32(&versions[key_hash(key) % MC_VERSION_SLOTS]);
}

void mc_versions_bump_all(apr_uint32_t *versions)
{
    unsigned i;
    for (i = 0; i < MC_VERSION_SLOTS; i++) {
        apr_atomic_inc32(&versions[i]);
    }
}

/* The id and the record are secrets: gone from memory, not only marked free. */
static void wipe(mc_rc_entry *e)
{
    if (e->data) {
        explicit_bzero(e->data, e->cap);
    }
    explicit_bzero(e->id, sizeof(e->id));
    e->len = 0;
}

static apr_status_t free_entries(void *data)
{
    mc_reccache *c = data;
    unsigned i;
    for (i = 0; i < c->nentries; i++) {
        wipe(&c->entries[i]);
        free(c->entries[i].data);
        c->entries[i].data = NULL;
    }
    return APR_SUCCESS;
}

apr_status_t mc_reccache_create(apr_pool_t *p, apr_uint32_t *versions, unsigned entries,
                                apr_interval_time_t max_age, mc_reccache **out)
{
    mc_reccache *c = apr_pcalloc(p, sizeof(*c));
    apr_status_t rv;
    int i;

    if (!versions || entries == 0) {
        return APR_EINVAL;
    }
    c->versions = versions;
    c->nentries = entries;
    c->max_age = max_age;
    c->entries = apr_pcalloc(p, entries * sizeof(*c->entries));
    for (i = 0; i < MC_RECCACHE_STRIPES; i++) {
        rv = apr_thread_mutex_create(&c->locks[i], APR_THREAD_MUTEX_DEFAULT, p);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    apr_pool_cleanup_register(p, c, free_entries, apr_pool_cleanup_null);
    *out = c;
    return APR_SUCCESS;
}

/* id NUL-padded to the entry's width (0 when too long to cache). */
static int padded(const char *id, char buf[MC_KEYBUF])
{
    apr_size_t n = strlen(id);
    if (n == 0 || n > MC_RECCACHE_KEY_MAX) {
        return 0;
    }
    memset(buf, 0, MC_KEYBUF);
    memcpy(buf, id, n);
    return 1;
}

/* Ids are secrets: compared in time independent of where they differ. */
static int same_id(const char *a, const char *b)
{
    unsigned char d = 0;
    int i;
    for (i = 0; i < MC_KEYBUF; i++) {
        d |= (unsigned char)(a[i] ^ b[i]);
    }
    return d == 0;
}

/* The entry id maps to, with its stripe locked. */
static mc_rc_entry *lock_entry(mc_reccache *c, const char *id, apr_thread_mutex_t **lock)
{
    unsigned idx = key_hash(id) % c->nentries;
    *lock = c->locks[idx % MC_RECCACHE_STRIPES];
    if (apr_thread_mutex_lock(*lock) != APR_SUCCESS) {
        return NULL;
    }
    return &c->entries[idx];
}

int mc_reccache_get(mc_reccache *c, const void *realm, const char *id, apr_time_t now,
                    apr_pool_t *p, unsigned char **data, apr_size_t *len, const char **key,
                    apr_int64_t *note)
{
    char want[MC_KEYBUF];
    apr_thread_mutex_t *lock;
    mc_rc_entry *e;
    int hit = 0;

    if (!padded(id, want) || !(e = lock_entry(c, id, &lock))) {
        return 0;
    }
    if (e->len && same_id(e->id, want)) {
        if (e->realm == realm && e->version == mc_versions_get(c->versions, e->key)
            && now >= e->fetched && now - e->fetched < c->max_age) {
            unsigned char *copy = apr_palloc(p, e->len + 1);
            memcpy(copy, e->data, e->len);
            copy[e->len] = '\0';
            *data = copy;
            *len = e->len;
            *key = apr_pstrdup(p, e->key);
            *note = e->note;
            hit = 1;
        }
        else {
            wipe(e);
        }
    }
    apr_thread_mutex_unlock(lock);
    explicit_bzero(want, sizeof(want));
    return hit;
}

void mc_reccache_put(mc_reccache *c, const void *realm, const char *id, const char *key,
                     apr_uint32_t version, apr_int64_t note, apr_time_t now,
                     const unsigned char *data, apr_size_t len)
{
    char want[MC_KEYBUF];
    apr_thread_mutex_t *lock;
    mc_rc_entry *e;

    if (!len || strlen(key) > MC_RECCACHE_KEY_MAX || !padded(id, want)
        || !(e = lock_entry(c, id, &lock))) {
        return;
    }
    wipe(e);
    if (len > e->cap) {
        unsigned char *bigger = malloc(len);
        if (!bigger) {
            /* Out of memory: the entry stays empty; the next request reads the store. */
            apr_thread_mutex_unlock(lock);
            explicit_bzero(want, sizeof(want));
            return;
        }
        free(e->data);
        e->data = bigger;
        e->cap = len;
    }
    memcpy(e->data, data, len);
    memcpy(e->id, want, sizeof(want));
    apr_cpystrn(e->key, key, sizeof(e->key));
    e->realm = realm;
    e->len = len;
    e->version = version;
    e->note = note;
    e->fetched = now;
    apr_thread_mutex_unlock(lock);
    explicit_bzero(want, sizeof(want));
}

void mc_reccache_forget(mc_reccache *c, const char *id)
{
    char want[MC_KEYBUF];
    apr_thread_mutex_t *lock;
    mc_rc_entry *e;

    if (!padded(id, want) || !(e = lock_entry(c, id, &lock))) {
        return;
    }
    if (e->len && same_id(e->id, want)) {
        wipe(e);
    }
    apr_thread_mutex_unlock(lock);
    explicit_bzero(want, sizeof(want));
}
