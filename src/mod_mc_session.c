/* Sessions and login states in the store: cookies in, encrypted records out, one handle per
 * request (mod_mc_session.h). The cookie carries only a random id; the store key is a hash
 * of it in this server's realm (its client id); the record is sealed with AES-256-GCM bound
 * to its store key (mc_crypto.c). */
#include "mod_mc.h"
#include "mod_mc_store.h"
#include "mod_mc_status.h"
#include "mc_crypto.h"
#include "mc_cookie.h"
#include "mc_reccache.h"

#include "http_protocol.h"
#include <apr_strings.h>
#include <apr_lib.h>

APLOG_USE_MODULE(monei_connect);

/* Cookie ids: 32 random bytes as base64url = 43 characters. */
#define MC_ID_BYTES 32
#define MC_ID_LEN 43
/* How long a request that waits for a session's lock sleeps between tries. */
#define MC_LOCK_POLL apr_time_from_msec(50)
/* The lock record: its content is never read, only whether it exists. */
#define MC_LOCK_VALUE "lock"

int mc_session_post_config(apr_pool_t *pconf, server_rec *s)
{
    for (; s; s = s->next) {
        mc_srv_cfg *c = ap_get_module_config(s->module_config, &monei_connect_module);
        apr_status_t rv;
        c->state_cookie = apr_pstrcat(pconf, mc_cfg_cookie_name(c), "_state", NULL);
        if (!c->passphrases) {
            continue;
        }
        rv = mc_keyring_create(pconf, (const char *const *)c->passphrases->elts,
                               c->passphrases->nelts, &c->keyring);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                         "MC0049: mc-keyring: cannot derive session keys from "
                         "MoneiConnectCryptoPassphrase");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}

const char *mc_state_cookie_name(const mc_srv_cfg *c)
{
    return c->state_cookie;
}

/* This request's notes. A subrequest or internal redirect starts its own, borrowing the
 * cookie values of the request it came from: those live in that request's pool, which
 * outlives this one; nothing of this request's pool is ever stored there. */
mc_req_notes *mc_notes(request_rec *r)
{
    mc_req_notes *n = ap_get_module_config(r->request_config, &monei_connect_module);
    request_rec *from;

    if (n) {
        return n;
    }
    n = apr_pcalloc(r->pool, sizeof(*n));
    for (from = r->main ? r->main : r->prev; from; from = from->main ? from->main : from->prev) {
        const mc_req_notes *up = ap_get_module_config(from->request_config,
                                                      &monei_connect_module);
        if (up && up->cookies_taken) {
            n->cookies_taken = 1;
            n->session_id = up->session_id;
            n->binding = up->binding;
            break;
        }
    }
    ap_set_module_config(r->request_config, &monei_connect_module, n);
    return n;
}

/* Only a value of the shape we issue is worth a store lookup. */
static int id_shape_ok(const char *v)
{
    apr_size_t n = 0;
    if (!v) {
        return 0;
    }
    for (; v[n]; n++) {
        char ch = v[n];
        if (!(apr_isalnum(ch) || ch == '-' || ch == '_') || n >= MC_ID_LEN) {
            return 0;
        }
    }
    return n == MC_ID_LEN;
}

/* Read our cookies once, then remove them from the Cookie header so that no content
 * handler, CGI, proxied backend or access log ever sees their values. */
void mc_cookies_take(request_rec *r)
{
    mc_req_notes *n = mc_notes(r);
    mc_srv_cfg *c = mc_srv(r);
    const char *hdr, *names[2];
    char *rest;

    if (n->cookies_taken || !mc_server_active(c)) {
        return;
    }
    n->cookies_taken = 1;
    hdr = apr_table_get(r->headers_in, "Cookie");
    if (!hdr) {
        return;
    }
    names[0] = mc_cfg_cookie_name(c);
    names[1] = mc_state_cookie_name(c);
    n->session_id = mc_cookie_get(r->pool, hdr, names[0]);
    n->binding = mc_cookie_get(r->pool, hdr, names[1]);
    if (!id_shape_ok(n->session_id)) {
        n->session_id = NULL;
    }
    if (!id_shape_ok(n->binding)) {
        n->binding = NULL;
    }
    rest = mc_cookie_remove(r->pool, hdr, names, 2);
    if (rest) {
        apr_table_setn(r->headers_in, "Cookie", rest);
    }
    else {
        apr_table_unset(r->headers_in, "Cookie");
    }
}

const char *mc_session_binding(request_rec *r)
{
    mc_cookies_take(r);
    return mc_notes(r)->binding;
}

void mc_set_cookie(request_rec *r, const char *name, const char *value, long max_age,
                   int lax_at_least)
{
    mc_srv_cfg *c = mc_srv(r);
    const char *samesite = c->samesite ? c->samesite : "Lax";
    const char *hdr;
    /* The state cookie must come back on Monei's top-level redirect to the callback,
     * which SameSite=Strict would withhold. */
    if (lax_at_least && !strcmp(samesite, "Strict")) {
        samesite = "Lax";
    }
    hdr = mc_cookie_set_header(r->pool, name, value ? value : "", max_age, mc_cfg_secure(c),
                               samesite);
    if (!hdr) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "MC0050: mc-cookie: cannot build cookie %s", name);
        return;
    }
    apr_table_addn(r->err_headers_out, "Set-Cookie", hdr);
}

/* ---------------------------------------------------------------- records */

static const char *session_key(request_rec *r, const char *id)
{
    return mc_store_key(r->pool, 's', mc_srv(r)->client_id, id);
}

static apr_status_t seal_put(request_rec *r, const char *key, const unsigned char *plain,
                             apr_size_t plen, apr_time_t expiry)
{
    unsigned char *sealed;
    apr_size_t slen;
    apr_status_t rv;

    rv = mc_record_seal(r->pool, mc_srv(r)->keyring, key, strlen(key), plain, plen, &sealed,
                        &slen);
    mc_cleanse((void *)plain, plen);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "MC0051: mc-seal: cannot encrypt a record");
        return rv;
    }
    rv = mc_store_put(r->server, key, expiry, sealed, slen, r->pool);
    if (rv == APR_ENOSPC) {
        /* The record, not the store, is at fault: no outage alarm. */
        mc_stat_inc(MC_STAT_RECORD_TOO_LARGE);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "MC0052: mc-seal: a %lu-byte record is larger "
                      "than the store takes", (unsigned long)slen);
    }
    else if (rv != APR_SUCCESS) {
        mc_store_trouble(r, rv, apr_psprintf(r->pool, "cannot write a %lu-byte record",
                                             (unsigned long)slen));
    }
    return rv;
}

static apr_status_t open_record(request_rec *r, const char *key, const unsigned char *data,
                                apr_size_t len, unsigned char **plain, apr_size_t *plen)
{
    apr_status_t rv = mc_record_open(r->pool, mc_srv(r)->keyring, key, strlen(key), data, len,
                                     plain, plen);
    if (rv != APR_SUCCESS) {
        /* A forged or foreign record, or one sealed with a passphrase no longer listed. */
        ap_log_rerror(APLOG_MARK, APLOG_INFO, rv, r,
                      "MC0053: mc-open: a stored record does not decrypt; treating it as absent");
    }
    return rv;
}

/* An opened record into a session; the plaintext is wiped either way. `touched` is the
 * store's activity stamp of the record (mc_store_touch): newer activity than the record
 * holds moves its inactivity clock. */
static apr_status_t decode_session(request_rec *r, unsigned char *plain, apr_size_t plen,
                                   apr_int64_t touched, mc_session_rec **out)
{
    mc_session_rec *s = apr_pcalloc(r->pool, sizeof(*s));
    apr_status_t rv = mc_session_decode(r->pool, plain, plen, s);
    mc_cleanse(plain, plen);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, r, "MC0054: mc-decode: a session record is malformed");
        return APR_NOTFOUND;
    }
    if (touched > s->last_active) {
        s->last_active = touched;
    }
    *out = s;
    return APR_SUCCESS;
}

/* Read and open the record under key, with what the store says of it. */
static apr_status_t read_record(request_rec *r, const char *key, unsigned char **plain,
                                apr_size_t *plen, mc_store_seen_t *seen)
{
    unsigned char *data;
    apr_size_t len;
    apr_status_t rv = mc_store_get(r->server, key, r->pool, &data, &len, seen);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    return open_record(r, key, data, len, plain, plen) == APR_SUCCESS ? APR_SUCCESS
                                                                       : APR_NOTFOUND;
}

/* The record stored under key now, from the store itself. */
static apr_status_t read_stored(request_rec *r, const char *key, mc_session_rec **out)
{
    unsigned char *plain;
    apr_size_t plen;
    mc_store_seen_t seen;
    apr_status_t rv = read_record(r, key, &plain, &plen, &seen);
    return rv == APR_SUCCESS ? decode_session(r, plain, plen, seen.touched, out) : rv;
}

mc_session_rec *mc_session_read_key(request_rec *r, const char *key)
{
    mc_session_rec *rec = NULL;
    return key && read_stored(r, key, &rec) == APR_SUCCESS ? rec : NULL;
}

/* The session of the handle's id, from this process's cache when no process has changed it
 * since (mc_reccache.h), else from the store. The cache is asked for this server's realm
 * (its keyring): a record opened for another virtual host is never served here. */
static apr_status_t load_by_id(request_rec *r, mc_session_t *h)
{
    mc_reccache *cache = mc_store_cache();
    const void *realm = mc_srv(r)->keyring;
    apr_time_t now = apr_time_now();
    unsigned char *plain;
    apr_size_t plen;
    mc_store_seen_t seen;
    apr_status_t rv;

    if (cache && mc_reccache_get(cache, realm, h->id, now, r->pool, &plain, &plen, &h->key,
                                 &seen.touched)) {
        return decode_session(r, plain, plen, seen.touched, &h->rec);
    }
    if (!(h->key = session_key(r, h->id))) {
        return APR_EGENERAL;
    }
    rv = read_record(r, h->key, &plain, &plen, &seen);
    if (rv != APR_SUCCESS) {
        if (cache && APR_STATUS_IS_NOTFOUND(rv)) {
            mc_reccache_forget(cache, h->id);
        }
        return rv;
    }
    if (cache) {
        mc_reccache_put(cache, realm, h->id, h->key, seen.version, seen.touched, now, plain,
                        plen);
    }
    return decode_session(r, plain, plen, seen.touched, &h->rec);
}

static apr_time_t session_expiry(request_rec *r, const mc_session_rec *s)
{
    mc_srv_cfg *c = mc_srv(r);
    apr_int64_t now = apr_time_sec(apr_time_now());
    apr_int64_t end = s->last_active + c->inactivity_timeout + MC_ACTIVITY_GRANULARITY;
    if (end > s->created + c->max_duration) {
        end = s->created + c->max_duration;
    }
    if (end <= now) {
        end = now + 1;
    }
    return apr_time_from_sec(end);
}

/* How often the inactivity clock is written: once a minute, or more often for short
 * timeouts so that an active user is never taken for an idle one. */
static long activity_granularity(const mc_srv_cfg *c)
{
    long g = c->inactivity_timeout / 4;
    return g < 1 ? 1 : (g > MC_ACTIVITY_GRANULARITY ? MC_ACTIVITY_GRANULARITY : g);
}

/* This request's handle, made on first use from this request's pool. */
static mc_session_t *request_handle(request_rec *r)
{
    mc_req_notes *n = mc_notes(r);
    if (!n->session) {
        n->session = apr_pcalloc(r->pool, sizeof(*n->session));
        n->session->result = MC_SESS_NONE;
    }
    return n->session;
}

mc_sess_result mc_session_load(request_rec *r, mc_session_t **out)
{
    mc_req_notes *n = mc_notes(r);
    mc_srv_cfg *c = mc_srv(r);
    mc_session_t *h = request_handle(r);
    apr_int64_t now = apr_time_sec(apr_time_now());
    apr_status_t rv;

    *out = h;
    if (h->loaded) {
        return h->result;
    }
    h->loaded = 1;
    mc_cookies_take(r);
    if (!(h->id = n->session_id)) {
        return MC_SESS_NONE;
    }
    rv = load_by_id(r, h);
    if (APR_STATUS_IS_NOTFOUND(rv)) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "MC0055: mc-session: no session for this cookie");
        return MC_SESS_NONE;
    }
    if (rv != APR_SUCCESS) {
        mc_store_trouble(r, rv, "cannot read a session");
        return h->result = MC_SESS_STORE_DOWN;
    }
    mc_store_recovered(r);
    h->generation = h->rec->generation;
    if (now >= h->rec->created + c->max_duration) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "MC0056: mc-session: maximum duration reached");
        mc_session_destroy(r, h, 0);
        return MC_SESS_NONE;
    }
    if (now >= h->rec->last_active + c->inactivity_timeout) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "MC0057: mc-session: inactivity timeout");
        mc_session_destroy(r, h, 0);
        return MC_SESS_NONE;
    }
    if (now - h->rec->last_active >= activity_granularity(c)) {
        h->rec->last_active = now;
        h->active = 1;
    }
    return h->result = MC_SESS_OK;
}

/* ---------------------------------------------------------------- the session's lock */

apr_interval_time_t mc_session_lock_ttl(request_rec *r)
{
    /* The holder's longest call to Monei, and some margin for the store around it. */
    return apr_time_from_sec(mc_srv(r)->total_timeout + 10);
}

/* The lock's key: the session's store key with kind 'l' (the kind is the last byte). */
static const char *lock_key(request_rec *r, const char *key)
{
    char *k = apr_pstrdup(r->pool, key);
    k[strlen(k) - 1] = 'l';
    return k;
}

static apr_status_t lock_key_take(request_rec *r, const char *key)
{
    apr_status_t rv = mc_store_add(r->server, lock_key(r, key),
                                   apr_time_now() + mc_session_lock_ttl(r),
                                   (const unsigned char *)MC_LOCK_VALUE,
                                   sizeof(MC_LOCK_VALUE) - 1, r->pool);
    if (rv == APR_EEXIST) {
        return APR_EBUSY;
    }
    if (rv != APR_SUCCESS) {
        mc_store_trouble(r, rv, "cannot lock a session");
    }
    return rv;
}

/* Waits no longer than a lock can live: a holder that died leaves a lock that lapses. */
static apr_status_t lock_key_wait(request_rec *r, const char *key)
{
    apr_time_t deadline = apr_time_now() + mc_session_lock_ttl(r) + MC_LOCK_POLL;
    apr_status_t rv;

    while ((rv = lock_key_take(r, key)) == APR_EBUSY) {
        if (apr_time_now() > deadline) {
            return APR_TIMEUP;
        }
        apr_sleep(MC_LOCK_POLL);
    }
    return rv;
}

apr_status_t mc_session_lock(request_rec *r, mc_session_t *h)
{
    return h->key ? lock_key_take(r, h->key) : APR_EINVAL;
}

void mc_session_unlock(request_rec *r, mc_session_t *h)
{
    if (h->key) {
        mc_store_remove(r->server, lock_key(r, h->key), r->pool);
    }
}

/* ---------------------------------------------------------------- reading and writing */

apr_status_t mc_session_reread(request_rec *r, mc_session_t *h, int *changed)
{
    mc_session_rec *stored;
    apr_status_t rv;

    *changed = 0;
    if (!h->key) {
        return APR_NOTFOUND;
    }
    if ((rv = read_stored(r, h->key, &stored)) != APR_SUCCESS) {
        return rv;
    }
    /* What others wrote wins (new tokens, a 429's wait); our activity stamp is kept. */
    if (h->rec && h->rec->last_active > stored->last_active) {
        stored->last_active = h->rec->last_active;
    }
    *changed = stored->generation != h->generation;
    h->rec = stored;
    h->generation = stored->generation;
    return APR_SUCCESS;
}

apr_status_t mc_session_save_locked(request_rec *r, mc_session_t *h)
{
    mc_session_rec *stored;
    unsigned char *plain;
    apr_size_t plen;
    apr_status_t rv;

    if (!h->key || !h->rec) {
        return APR_EINVAL;
    }
    /* Compare: only over the generation this handle started from. The lock makes the
     * read and the write one step: every writer of a stored session holds it. */
    if ((rv = read_stored(r, h->key, &stored)) != APR_SUCCESS) {
        return rv;
    }
    if (stored->generation != h->generation) {
        return APR_EEXIST;
    }
    /* Activity another request noted since (a touch) is kept, as reread keeps ours. */
    if (stored->last_active > h->rec->last_active) {
        h->rec->last_active = stored->last_active;
    }
    if ((rv = mc_session_encode(r->pool, h->rec, &plain, &plen)) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "MC0058: mc-encode: session record too large");
        return rv;
    }
    if ((rv = seal_put(r, h->key, plain, plen, session_expiry(r, h->rec))) == APR_SUCCESS) {
        h->generation = h->rec->generation;
        h->dirty = 0;
        h->active = 0;
    }
    return rv;
}

void mc_session_finish(request_rec *r, mc_session_t *h)
{
    apr_status_t rv;

    if (!h || !h->rec || !h->key || !(h->dirty || h->active)) {
        return;
    }
    if (!h->dirty) {
        /* Only the inactivity clock moved: the store notes it without a rewrite where it
         * can (no lock, no re-encryption); the other stores take the rewrite below. */
        rv = mc_store_touch(r->server, h->key, session_expiry(r, h->rec), h->rec->last_active);
        if (rv != APR_ENOTIMPL) {
            h->active = 0;
            if (rv != APR_SUCCESS && !APR_STATUS_IS_NOTFOUND(rv)) {
                ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, r, "MC0099: mc-session: activity "
                              "not noted in the store");
            }
            return;
        }
    }
    h->dirty = 0;
    h->active = 0;
    if ((rv = mc_session_lock(r, h)) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, r, "MC0059: mc-session: session busy; its "
                      "activity and snapshot are written by a later request");
        return;
    }
    rv = mc_session_save_locked(r, h);
    mc_session_unlock(r, h);
    if (rv != APR_SUCCESS && rv != APR_EEXIST && !APR_STATUS_IS_NOTFOUND(rv)) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, r, "MC0060: mc-session: record not written back");
    }
}

void mc_session_note_decline(request_rec *r, const char *key, const char *scopes)
{
    mc_session_t h;

    memset(&h, 0, sizeof(h));
    h.key = key;
    if (!key || mc_session_lock(r, &h) != APR_SUCCESS) {
        return;
    }
    if ((h.rec = mc_session_read_key(r, key)) != NULL) {
        h.generation = h.rec->generation;
        h.rec->declined = scopes;
        h.rec->declined_at = apr_time_sec(apr_time_now());
        mc_session_save_locked(r, &h);
    }
    mc_session_unlock(r, &h);
}

/* ---------------------------------------------------------------- ending sessions */

static void revoke_tokens(request_rec *r, const mc_session_rec *rec)
{
    if (rec) {
        mc_api_revoke(r, rec->access_token);
        mc_api_revoke(r, rec->refresh_token);
    }
}

/* Remove the session under key once no refresh is in flight for it, so that nothing
 * writes it back; returns what was stored last (NULL if nothing). A lock that cannot be had
 * in time (its holder died) is not waited for again: the record goes anyway, and a holder
 * that wakes up finds it gone and writes nothing. */
static mc_session_rec *end_key(request_rec *r, const char *key)
{
    apr_status_t locked = lock_key_wait(r, key);
    mc_session_rec *stored = mc_session_read_key(r, key);

    mc_store_remove(r->server, key, r->pool);
    if (locked == APR_SUCCESS) {
        mc_store_remove(r->server, lock_key(r, key), r->pool);
    }
    else {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, locked, r, "MC0061: mc-session: ending a session "
                      "without its lock");
    }
    return stored;
}

void mc_session_destroy(request_rec *r, mc_session_t *h, int revoke)
{
    mc_session_rec *stored = h->key ? end_key(r, h->key) : NULL;

    if (revoke) {
        revoke_tokens(r, stored);
        if (h->rec && (!stored || !stored->access_token || !h->rec->access_token
                       || strcmp(stored->access_token, h->rec->access_token))) {
            revoke_tokens(r, h->rec);
        }
    }
    h->rec = NULL;
    h->dirty = 0;
    h->active = 0;
    h->result = MC_SESS_NONE;
    mc_set_cookie(r, mc_cfg_cookie_name(mc_srv(r)), "", 0, 0);
}

const char *mc_session_create(request_rec *r, mc_session_rec *rec, const char *replaces)
{
    mc_req_notes *n = mc_notes(r);
    mc_session_t *h = request_handle(r);
    const char *id = mc_crypto_random_token(r->pool, MC_ID_BYTES);
    const char *key, *old;
    unsigned char *plain;
    apr_size_t plen;

    mc_cookies_take(r);
    if (!id || !(key = session_key(r, id))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "MC0062: mc-random: no randomness for a session id");
        return NULL;
    }
    if (mc_session_encode(r->pool, rec, &plain, &plen) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "MC0063: mc-encode: session record too large");
        return NULL;
    }
    if (seal_put(r, key, plain, plen, session_expiry(r, rec)) != APR_SUCCESS) {
        return NULL;
    }
    /* The sessions the browser had before end here: no fixation, no orphan. */
    old = n->session_id ? session_key(r, n->session_id) : NULL;
    if (old) {
        end_key(r, old);
    }
    if (replaces && (!old || strcmp(old, replaces))) {
        end_key(r, replaces);
    }
    n->session_id = id;
    h->id = id;
    h->key = key;
    h->rec = rec;
    h->generation = rec->generation;
    h->dirty = 0;
    h->active = 0;
    h->loaded = 1;
    h->result = MC_SESS_OK;
    mc_set_cookie(r, mc_cfg_cookie_name(mc_srv(r)), id, -1, 0);
    return id;
}
