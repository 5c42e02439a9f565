/* Sessions and login states in the store: cookies in, encrypted records out.
 * The cookie carries only a random id; the store key is a hash of it; the record is sealed
 * with AES-256-GCM bound to its store key (mc_crypto.c). */
#include "mod_mc.h"
#include "mod_mc_store.h"
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
                         "mc-keyring: cannot derive session keys from "
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
    mc_req_ctx *ctx = mc_ctx(r);
    mc_srv_cfg *c = mc_srv(r);
    const char *hdr, *names[2];
    char *rest;

    if (ctx->cookies_taken || !mc_server_active(c)) {
        return;
    }
    ctx->cookies_taken = 1;
    hdr = apr_table_get(r->headers_in, "Cookie");
    if (!hdr) {
        return;
    }
    names[0] = mc_cfg_cookie_name(c);
    names[1] = mc_state_cookie_name(c);
    ctx->session_id = mc_cookie_get(r->pool, hdr, names[0]);
    ctx->binding = mc_cookie_get(r->pool, hdr, names[1]);
    if (!id_shape_ok(ctx->session_id)) {
        ctx->session_id = NULL;
    }
    if (!id_shape_ok(ctx->binding)) {
        ctx->binding = NULL;
    }
    rest = mc_cookie_remove(r->pool, hdr, names, 2);
    if (rest) {
        apr_table_setn(r->headers_in, "Cookie", rest);
    }
    else {
        apr_table_unset(r->headers_in, "Cookie");
    }
}

void mc_set_cookie(request_rec *r, const char *name, const char *value, long max_age,
                   int lax_at_least)
{
    mc_srv_cfg *c = mc_srv(r);
    const char *samesite = c->samesite ? c->samesite : "Lax";
    /* The state cookie must come back on Monei's top-level redirect to the callback,
     * which SameSite=Strict would withhold. */
    if (lax_at_least && !strcmp(samesite, "Strict")) {
        samesite = "Lax";
    }
    const char *hdr = mc_cookie_set_header(r->pool, name, value ? value : "", max_age,
                                           mc_cfg_secure(c), samesite);
    if (!hdr) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mc-cookie: cannot build cookie %s", name);
        return;
    }
    apr_table_addn(r->err_headers_out, "Set-Cookie", hdr);
}

static apr_status_t seal_put(request_rec *r, const char *key, const unsigned char *plain,
                             apr_size_t plen, apr_time_t expiry)
{
    mc_srv_cfg *c = mc_srv(r);
    unsigned char *sealed;
    apr_size_t slen;
    apr_status_t rv;

    rv = mc_record_seal(r->pool, c->keyring, key, strlen(key), plain, plen, &sealed, &slen);
    mc_cleanse((void *)plain, plen);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "mc-seal: cannot encrypt a record");
        return rv;
    }
    rv = mc_store_put(r->server, key, expiry, sealed, slen, r->pool);
    if (rv != APR_SUCCESS) {
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
                      "mc-open: a stored record does not decrypt; treating it as absent");
    }
    return rv;
}

/* An opened record into a session; the plaintext is wiped either way. */
static apr_status_t decode_session(request_rec *r, unsigned char *plain, apr_size_t plen,
                                   mc_session_rec **out)
{
    mc_session_rec *s = apr_pcalloc(r->pool, sizeof(*s));
    apr_status_t rv = mc_session_decode(r->pool, plain, plen, s);
    mc_cleanse(plain, plen);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, r, "mc-decode: a session record is malformed");
        return APR_NOTFOUND;
    }
    *out = s;
    return APR_SUCCESS;
}

/* Read and open the record under key; *version is its version slot as of the read. */
static apr_status_t read_record(request_rec *r, const char *key, unsigned char **plain,
                                apr_size_t *plen, apr_uint32_t *version)
{
    unsigned char *data;
    apr_size_t len;
    apr_status_t rv = mc_store_get_versioned(r->server, key, r->pool, &data, &len, version);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    return open_record(r, key, data, len, plain, plen) == APR_SUCCESS ? APR_SUCCESS
                                                                       : APR_NOTFOUND;
}

apr_status_t mc_session_load_key(request_rec *r, const char *key, mc_session_rec **out)
{
    unsigned char *plain;
    apr_size_t plen;
    apr_uint32_t version;
    apr_status_t rv = read_record(r, key, &plain, &plen, &version);
    return rv == APR_SUCCESS ? decode_session(r, plain, plen, out) : rv;
}

/* The session of the cookie's id, from this process's cache when no process has changed it
 * since (mc_reccache.h), else from the store. Sets ctx->store_key. */
static apr_status_t load_by_id(request_rec *r, const char *id, mc_session_rec **out)
{
    mc_req_ctx *ctx = mc_ctx(r);
    mc_reccache *cache = mc_store_cache();
    apr_time_t now = apr_time_now();
    unsigned char *plain;
    apr_size_t plen;
    apr_uint32_t version;
    apr_status_t rv;

    if (cache && mc_reccache_get(cache, id, now, r->pool, &plain, &plen, &ctx->store_key)) {
        return decode_session(r, plain, plen, out);
    }
    if (!(ctx->store_key = mc_store_key(r->pool, 's', id))) {
        return APR_EGENERAL;
    }
    rv = read_record(r, ctx->store_key, &plain, &plen, &version);
    if (rv != APR_SUCCESS) {
        if (cache && APR_STATUS_IS_NOTFOUND(rv)) {
            mc_reccache_forget(cache, id);
        }
        return rv;
    }
    if (cache) {
        mc_reccache_put(cache, id, ctx->store_key, version, now, plain, plen);
    }
    return decode_session(r, plain, plen, out);
}

static apr_time_t session_expiry(request_rec *r, const mc_session_rec *s)
{
    mc_srv_cfg *c = mc_srv(r);
    long inactivity = c->inactivity_timeout != MC_UNSET ? c->inactivity_timeout : 1800;
    long maxdur = c->max_duration != MC_UNSET ? c->max_duration : 28800;
    apr_int64_t end = s->last_active + inactivity + MC_ACTIVITY_GRANULARITY;
    if (end > s->created + maxdur) {
        end = s->created + maxdur;
    }
    if (end <= apr_time_sec(apr_time_now())) {
        end = apr_time_sec(apr_time_now()) + 1;
    }
    return apr_time_from_sec(end);
}

static long activity_granularity(const mc_srv_cfg *c);

mc_sess_result mc_session_load(request_rec *r)
{
    mc_req_ctx *ctx = mc_ctx(r);
    mc_srv_cfg *c = mc_srv(r);
    mc_session_rec *s;
    apr_int64_t now = apr_time_sec(apr_time_now());
    long inactivity = c->inactivity_timeout != MC_UNSET ? c->inactivity_timeout : 1800;
    long maxdur = c->max_duration != MC_UNSET ? c->max_duration : 28800;
    apr_status_t rv;

    if (ctx->session_loaded) {
        return ctx->sess ? MC_SESS_OK : (ctx->store_down ? MC_SESS_STORE_DOWN : MC_SESS_NONE);
    }
    ctx->session_loaded = 1;
    mc_cookies_take(r);
    if (!ctx->session_id) {
        return MC_SESS_NONE;
    }
    rv = load_by_id(r, ctx->session_id, &s);
    if (APR_STATUS_IS_NOTFOUND(rv)) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "mc-session: no session for this cookie");
        return MC_SESS_NONE;
    }
    if (rv != APR_SUCCESS) {
        ctx->store_down = 1;
        mc_store_trouble(r, rv, "cannot read a session");
        return MC_SESS_STORE_DOWN;
    }
    mc_store_recovered(r);
    if (now >= s->created + maxdur) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "mc-session: maximum duration reached");
        mc_session_destroy(r);
        return MC_SESS_NONE;
    }
    if (now >= s->last_active + inactivity) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "mc-session: inactivity timeout");
        mc_session_destroy(r);
        return MC_SESS_NONE;
    }
    if (now - s->last_active >= activity_granularity(c)) {
        s->last_active = now;
        ctx->dirty = 1;
    }
    ctx->sess = s;
    return MC_SESS_OK;
}

apr_status_t mc_session_save(request_rec *r, mc_session_rec *sess, const char *store_key)
{
    unsigned char *plain;
    apr_size_t plen;
    apr_status_t rv = mc_session_encode(r->pool, sess, &plain, &plen);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "mc-encode: session record too large");
        return rv;
    }
    return seal_put(r, store_key, plain, plen, session_expiry(r, sess));
}

typedef struct {
    request_rec *r;
    const char *key;
    apr_int64_t generation;
    const unsigned char *sealed;
    apr_size_t slen;
    apr_time_t expiry;
} finish_baton;

/* Write only over the same token generation: a save that raced a refresh would otherwise
 * put a spent refresh token back into the store. A vanished record stays vanished. */
static apr_status_t save_if_same_generation(void *b, const unsigned char *old,
                                            apr_size_t oldlen, const unsigned char **data,
                                            apr_size_t *len, apr_time_t *expiry)
{
    finish_baton *fb = b;
    unsigned char *plain;
    apr_size_t plen;
    mc_session_rec stored;
    apr_status_t rv;

    if (!old) {
        return APR_NOTFOUND;
    }
    if (mc_record_open(fb->r->pool, mc_srv(fb->r)->keyring, fb->key, strlen(fb->key), old,
                       oldlen, &plain, &plen) != APR_SUCCESS) {
        return APR_EGENERAL;
    }
    rv = mc_session_decode(fb->r->pool, plain, plen, &stored);
    mc_cleanse(plain, plen);
    if (rv != APR_SUCCESS || stored.generation != fb->generation) {
        return APR_EEXIST;
    }
    *data = fb->sealed;
    *len = fb->slen;
    *expiry = fb->expiry;
    return APR_SUCCESS;
}

/* Write back a session changed during the request (activity clock, refreshed snapshot),
 * atomically against a concurrent refresh on this server. */
void mc_session_finish(request_rec *r)
{
    mc_req_ctx *ctx = mc_ctx(r);
    finish_baton fb;
    unsigned char *plain;
    apr_size_t plen;

    if (!ctx->sess || !ctx->dirty || !ctx->store_key) {
        return;
    }
    ctx->dirty = 0;
    if (mc_session_encode(r->pool, ctx->sess, &plain, &plen) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mc-encode: session record too large");
        return;
    }
    memset(&fb, 0, sizeof(fb));
    fb.r = r;
    fb.key = ctx->store_key;
    fb.generation = ctx->sess->generation;
    fb.expiry = session_expiry(r, ctx->sess);
    if (mc_record_seal(r->pool, mc_srv(r)->keyring, fb.key, strlen(fb.key), plain, plen,
                       (unsigned char **)&fb.sealed, &fb.slen) != APR_SUCCESS) {
        mc_cleanse(plain, plen);
        return;
    }
    mc_cleanse(plain, plen);
    mc_store_update(r->server, fb.key, r->pool, save_if_same_generation, &fb);
}

/* How often the inactivity clock is written: once a minute, or more often for short
 * timeouts so that an active user is never taken for an idle one. */
static long activity_granularity(const mc_srv_cfg *c)
{
    long inactivity = c->inactivity_timeout != MC_UNSET ? c->inactivity_timeout : 1800;
    long g = inactivity / 4;
    return g < 1 ? 1 : (g > MC_ACTIVITY_GRANULARITY ? MC_ACTIVITY_GRANULARITY : g);
}

void mc_session_cookie_clear(request_rec *r)
{
    mc_set_cookie(r, mc_cfg_cookie_name(mc_srv(r)), "", 0, 0);
}

void mc_session_destroy(request_rec *r)
{
    mc_req_ctx *ctx = mc_ctx(r);
    if (ctx->store_key) {
        mc_store_remove(r->server, ctx->store_key, r->pool);
    }
    ctx->sess = NULL;
    ctx->dirty = 0;
    mc_session_cookie_clear(r);
}

/* A brand-new session id for a completed login (never the one the browser came with). */
const char *mc_session_create(request_rec *r, mc_session_rec *sess)
{
    mc_req_ctx *ctx = mc_ctx(r);
    const char *id = mc_crypto_random_token(r->pool, MC_ID_BYTES);
    const char *key;

    if (!id) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mc-random: no randomness for a session id");
        return NULL;
    }
    key = mc_store_key(r->pool, 's', id);
    if (mc_session_save(r, sess, key) != APR_SUCCESS) {
        return NULL;
    }
    /* The session the browser had before (if any) ends here: no fixation, no orphan. */
    if (!ctx->store_key && ctx->session_id) {
        ctx->store_key = mc_store_key(r->pool, 's', ctx->session_id);
    }
    if (ctx->store_key) {
        mc_store_remove(r->server, ctx->store_key, r->pool);
    }
    ctx->session_id = id;
    ctx->store_key = key;
    ctx->sess = sess;
    ctx->session_loaded = 1;
    ctx->dirty = 0;
    mc_set_cookie(r, mc_cfg_cookie_name(mc_srv(r)), id, -1, 0);
    return id;
}

apr_status_t mc_state_put(request_rec *r, const char *state, const mc_state_rec *st)
{
    unsigned char *plain;
    apr_size_t plen;
    apr_status_t rv = mc_state_encode(r->pool, st, &plain, &plen);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "mc-encode: login state too large");
        return rv;
    }
    return seal_put(r, mc_store_key(r->pool, 't', state), plain, plen,
                    apr_time_now() + apr_time_from_sec(MC_STATE_TTL));
}

apr_status_t mc_state_take(request_rec *r, const char *state, mc_state_rec *st)
{
    const char *key = mc_store_key(r->pool, 't', state);
    unsigned char *data, *plain;
    apr_size_t len, plen;
    apr_status_t rv = mc_store_take(r->server, key, r->pool, &data, &len);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (open_record(r, key, data, len, &plain, &plen) != APR_SUCCESS) {
        return APR_NOTFOUND;
    }
    rv = mc_state_decode(r->pool, plain, plen, st);
    mc_cleanse(plain, plen);
    return rv == APR_SUCCESS ? APR_SUCCESS : APR_NOTFOUND;
}
