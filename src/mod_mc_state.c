/* Login states, sealed into the `state` parameter itself.
 *
 * A login start writes nothing to the store: its state record (binding hash, return_to, PKCE
 * verifier, scopes, step-up base) is encrypted and authenticated with the server's keyring
 * and travels to Monei and back as the `state` value. So anonymous traffic that starts
 * logins cannot take store space from sessions, whatever its rate. The one thing a sealed
 * value cannot keep by itself, being used once, is kept by a small marker written when a
 * callback that passed every other check uses the state (mc_state_claim), living no longer
 * than the state could. */
#include "mod_mc.h"
#include "mc_crypto.h"
#include "mod_mc_state.h"
#include "mod_mc_store.h"

#include <apr_strings.h>

APLOG_USE_MODULE(monei_connect);

/* The marker's content is never read, only whether it exists. */
#define MC_USED_VALUE "used"

/* Authenticated with every sealed state: a state of another client id (virtual host) or a
 * sealed record of another kind never opens as a state here. */
static const char *state_aad(request_rec *r)
{
    return apr_pstrcat(r->pool, "mod_monei_connect state v1\n", mc_srv(r)->client_id, NULL);
}

const char *mc_state_seal(request_rec *r, const mc_state_rec *st)
{
    const char *aad = state_aad(r);
    unsigned char *plain, *sealed;
    apr_size_t plen, slen;
    apr_status_t rv;
    const char *out;

    if ((rv = mc_state_encode(r->pool, st, &plain, &plen)) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "MC0076: mc-state: login state too large");
        return NULL;
    }
    rv = mc_record_seal(r->pool, mc_srv(r)->keyring, aad, strlen(aad), plain, plen, &sealed,
                        &slen);
    mc_cleanse(plain, plen);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "MC0077: mc-state: cannot seal a login state");
        return NULL;
    }
    out = mc_b64url_encode(r->pool, sealed, slen);
    if (out && strlen(out) > MC_STATE_MAX_LEN) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "MC0078: mc-state: sealed login state too long");
        return NULL;
    }
    return out;
}

apr_status_t mc_state_open(request_rec *r, const char *state, mc_state_rec *st)
{
    const char *aad = state_aad(r);
    unsigned char *sealed, *plain;
    apr_size_t slen, plen, n = state ? strlen(state) : 0;
    apr_status_t rv;

    memset(st, 0, sizeof(*st));
    if (n == 0 || n > MC_STATE_MAX_LEN
        || mc_b64url_decode(r->pool, state, n, &sealed, &slen) != APR_SUCCESS
        || mc_record_open(r->pool, mc_srv(r)->keyring, aad, strlen(aad), sealed, slen, &plain,
                          &plen) != APR_SUCCESS) {
        return APR_NOTFOUND;
    }
    rv = mc_state_decode(r->pool, plain, plen, st);
    mc_cleanse(plain, plen);
    if (rv != APR_SUCCESS || !st->id || !st->binding || !st->return_to || !st->scopes) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, r, "MC0079: mc-state: a sealed login state is "
                      "malformed");
        return APR_NOTFOUND;
    }
    return APR_SUCCESS;
}

apr_status_t mc_state_claim(request_rec *r, const mc_state_rec *st)
{
    const char *key = mc_store_key(r->pool, 'u', mc_srv(r)->client_id, st->id);
    /* Past this time the state is refused as expired anyway; a minute covers clock skew
     * between servers sharing a store. */
    apr_time_t expiry = apr_time_from_sec(st->created + MC_STATE_TTL + 60);
    apr_status_t rv;

    if (!key) {
        return APR_EGENERAL;
    }
    if (expiry <= apr_time_now()) {
        expiry = apr_time_now() + apr_time_from_sec(1);
    }
    rv = mc_store_add(r->server, key, expiry, (const unsigned char *)MC_USED_VALUE,
                      sizeof(MC_USED_VALUE) - 1, r->pool);
    if (rv != APR_SUCCESS && rv != APR_EEXIST) {
        mc_store_trouble(r, rv, "cannot mark a login state used");
    }
    return rv;
}
