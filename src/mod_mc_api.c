/* Calls to Monei made on behalf of a request: code exchange, refresh, revoke, snapshots.
 * Protocol bodies and parsing live in mc_monei.c; transport in mc_curl.c. Logs name the
 * step and the outcome, never a token, code or secret. */
#include "mod_mc.h"
#include "mc_monei.h"
#include "mc_crypto.h"
#include "mod_mc_status.h"
#include "mod_mc_store.h"

#include "http_protocol.h"
#include <apr_strings.h>

APLOG_USE_MODULE(monei_connect);

static mc_http_opts mc_api_opts(const mc_srv_cfg *c)
{
    mc_http_opts o;
    o.connect_timeout = c->connect_timeout;
    o.total_timeout = c->total_timeout;
    o.ca_file = c->ca_file;
    o.verify = c->ssl_verify != 0;   /* unset means On */
    o.proxy = c->outbound_proxy;
    return o;
}

/* One call, with the outcome folded into res and logged once. */
static const mc_http_response *call(request_rec *r, const char *what, const char *path,
                                    const char *bearer, const char *body, mc_api_result *res)
{
    mc_srv_cfg *c = mc_srv(r);
    mc_http_opts o = mc_api_opts(c);
    mc_http_response *resp = apr_pcalloc(r->pool, sizeof(*resp));
    const char *url = apr_pstrcat(r->pool, c->api_base, path, NULL);

    memset(res, 0, sizeof(*res));
    res->retry_after = -1;
    mc_http_call(r->pool, &o, url, bearer, body, resp);
    res->transport = resp->err;
    if (resp->err != MC_HTTP_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "MC0003: mc-api: %s: %s after %" APR_TIME_T_FMT " ms (%s)", what,
                      mc_http_err_str(resp->err), apr_time_as_msec(resp->elapsed),
                      resp->detail ? resp->detail : "");
        return resp;
    }
    res->http_status = resp->status;
    res->retry_after = resp->retry_after;
    if (resp->status < 200 || resp->status > 299) {
        mc_monei_parse_error(r->pool, resp->body, resp->len, &res->error, &res->message);
        ap_log_rerror(APLOG_MARK, resp->status == 401 ? APLOG_INFO : APLOG_WARNING, 0, r,
                      "MC0004: mc-api: %s: Monei answered %d%s%s", what, resp->status,
                      res->error ? ": " : "", res->error ? res->error : "");
    }
    else {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "MC0005: mc-api: %s: %d in %" APR_TIME_T_FMT " ms",
                      what, resp->status, apr_time_as_msec(resp->elapsed));
    }
    return resp;
}

/* The status a page shows when a call to Monei failed. */
int mc_api_status_for(const mc_api_result *res)
{
    if (res->transport == MC_HTTP_ETIMEOUT) {
        return HTTP_GATEWAY_TIME_OUT;
    }
    if (res->transport == MC_HTTP_ECONNECT || res->http_status == 429
        || res->http_status == 503) {
        return HTTP_SERVICE_UNAVAILABLE;
    }
    return HTTP_BAD_GATEWAY;
}

static int take_tokens(request_rec *r, const char *what, const mc_http_response *resp,
                       mc_session_rec *sess, mc_api_result *res)
{
    mc_token_t tok;
    const char *why = NULL;
    apr_int64_t now = apr_time_sec(apr_time_now());

    if (mc_monei_parse_token(r->pool, resp->body, resp->len, &tok, &why) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "MC0006: mc-api: %s: unusable token response: %s",
                      what, why ? why : "malformed");
        res->ok = 0;
        return 0;
    }
    sess->access_token = tok.access_token;
    sess->refresh_token = tok.refresh_token;
    sess->expires_at = now + tok.expires_in;
    sess->scopes = tok.scopes;
    sess->generation++;
    sess->refresh_after = 0;
    res->ok = 1;
    return 1;
}

int mc_api_exchange_code(request_rec *r, const char *code, const char *verifier,
                         mc_session_rec *sess, mc_api_result *res)
{
    mc_srv_cfg *c = mc_srv(r);
    const char *body = mc_monei_body_code(r->pool, code, c->client_id, c->client_secret,
                                          c->redirect_uri, verifier);
    const mc_http_response *resp;

    if (!body) {
        memset(res, 0, sizeof(*res));
        return 0;
    }
    resp = call(r, "code exchange", "/connect/token", NULL, body, res);
    if (resp->err != MC_HTTP_OK || resp->status != 200) {
        return 0;
    }
    return take_tokens(r, "code exchange", resp, sess, res);
}

int mc_api_refresh(request_rec *r, mc_session_rec *sess, mc_api_result *res)
{
    mc_srv_cfg *c = mc_srv(r);
    const char *body = mc_monei_body_refresh(r->pool, sess->refresh_token, c->client_id,
                                             c->client_secret);
    const mc_http_response *resp;
    const char *granted = sess->scopes;

    if (!body) {
        memset(res, 0, sizeof(*res));
        return 0;
    }
    resp = call(r, "refresh", "/connect/token", NULL, body, res);
    if (resp->err != MC_HTTP_OK || resp->status != 200) {
        return 0;
    }
    if (!take_tokens(r, "refresh", resp, sess, res)) {
        return 0;
    }
    /* A refresh answer that omits scopes does not take away what the session had. */
    if (sess->scopes && !*sess->scopes && granted) {
        sess->scopes = granted;
    }
    return 1;
}

void mc_api_revoke(request_rec *r, const char *token)
{
    mc_api_result res;
    const char *body;
    if (!token) {
        return;
    }
    body = mc_monei_body_revoke(r->pool, token);
    if (body) {
        call(r, "revoke", "/connect/token/revoke", NULL, body, &res);
    }
}

/* Fetch one snapshot; returns 1 ok, 0 failed (keep the old one), -1 token rejected (401).
 * res tells how the call went. */
static int fetch(request_rec *r, const char *what, const char *path, const char *token,
                 int is_wallet, const char **out, mc_api_result *res)
{
    const mc_http_response *resp = call(r, what, path, token, NULL, res);
    const char *data = NULL;
    apr_status_t rv;

    if (resp->err != MC_HTTP_OK) {
        return 0;
    }
    if (resp->status == 401) {
        return -1;
    }
    if (resp->status != 200) {
        return 0;
    }
    rv = is_wallet ? mc_monei_wallet_snapshot(r->pool, resp->body, resp->len, &data)
                   : mc_monei_user_snapshot(r->pool, resp->body, resp->len, &data);
    if (rv != APR_SUCCESS || !data) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "MC0007: mc-api: %s: unusable answer", what);
        return 0;
    }
    res->ok = 1;
    *out = data;
    return 1;
}

/* The record with this snapshot still fits one store entry: sealed size within the store's
 * largest record. */
static int record_fits(request_rec *r, const mc_session_rec *sess)
{
    unsigned char *plain;
    apr_size_t plen;
    if (mc_session_encode(r->pool, sess, &plain, &plen) != APR_SUCCESS) {
        return 0;
    }
    mc_cleanse(plain, plen);
    /* the store key travels with the value in some providers' entries: leave room for it */
    return plen + MC_RECORD_OVERHEAD + 256 <= MC_STORE_MAX_RECORD;
}

/* Whatever Monei sends, the session keeps a bounded snapshot (mc_snapshot_bound): a field
 * that does not fit is left out and flagged, never a failed login or a record the store
 * refuses (which would also make every request fetch again). Counted and logged apart from
 * store failures. */
static void keep_bounded(request_rec *r, mc_session_rec *sess, const char *wallet,
                         const char *user)
{
    mc_snapshot_t snap;
    const char *left_out;

    mc_snapshot_bound(r->pool, wallet, user, &snap);
    sess->wallet_json = snap.wallet_json;
    sess->user_json = snap.user_json;
    sess->exports = snap.exports;
    left_out = snap.left_out;
    if (!record_fits(r, sess)) {
        /* Tokens and scopes took the room (Monei's limits allow more than a store entry). */
        sess->wallet_json = NULL;
        sess->user_json = NULL;
        sess->exports = apr_pstrcat(r->pool,
                                    wallet ? "MONEI_WALLET_JSON_TRUNCATED\t1\n" : "",
                                    user ? "MONEI_USER_JSON_TRUNCATED\t1\n" : "", NULL);
        left_out = "the whole snapshot";
    }
    if (left_out) {
        mc_stat_inc(MC_STAT_RECORD_TOO_LARGE);
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "MC0008: mc-record-cap: Monei's wallet/profile "
                      "data is larger than a session keeps (%d bytes a value, %d a snapshot): "
                      "left out %s", MC_SNAPSHOT_VALUE_MAX, MC_SNAPSHOT_MAX, left_out);
    }
}

/* Is this the kind of failure that says Monei is down, slow or busy? */
static int monei_in_trouble(const mc_api_result *res)
{
    return res->transport != MC_HTTP_OK ? res->transport != MC_HTTP_ETOOBIG
                                        : res->http_status == 429 || res->http_status >= 500;
}

/* Refresh the wallet/profile snapshot for the granted scopes. Returns 1 when fresh, 0 when
 * Monei failed (the old snapshot is kept and marked stale), -1 when Monei rejected the token.
 * *trouble is the first call that failed (ok = 1 when none did). */
int mc_api_snapshot_ex(request_rec *r, mc_session_rec *sess, mc_api_result *trouble)
{
    const char *wallet = sess->wallet_json, *user = sess->user_json;
    int ok = 1, rc;
    mc_api_result res;

    memset(trouble, 0, sizeof(*trouble));
    trouble->ok = 1;
    trouble->retry_after = -1;
    if (mc_scope_has(sess->scopes, "wallet:read")) {
        rc = fetch(r, "wallet", "/wallet/me", sess->access_token, 1, &wallet, &res);
        if (rc < 0) {
            return -1;
        }
        if (!rc) {
            *trouble = res;
        }
        ok &= rc;
    }
    else {
        wallet = NULL;
    }
    /* When the wallet call timed out or was refused for load, a second call would only
     * double the wait: the profile keeps its last snapshot too. */
    if (mc_scope_has(sess->scopes, "profile:read") && !(!ok && monei_in_trouble(trouble))) {
        rc = fetch(r, "user", "/user/me", sess->access_token, 0, &user, &res);
        if (rc < 0) {
            return -1;
        }
        if (!rc && ok) {
            *trouble = res;
        }
        ok &= rc;
    }
    else if (!mc_scope_has(sess->scopes, "profile:read")) {
        user = NULL;
    }
    keep_bounded(r, sess, wallet, user);
    if (ok) {
        sess->snapshot_at = apr_time_sec(apr_time_now());
        sess->snapshot_stale = 0;
    }
    else {
        sess->snapshot_stale = 1;
    }
    return ok;
}

int mc_api_snapshot(request_rec *r, mc_session_rec *sess)
{
    mc_api_result trouble;
    return mc_api_snapshot_ex(r, sess, &trouble);
}

/* What a page says when a call to Monei failed at login: what happened, in a sentence, and
 * a short error code for programs. *retry_after is the wait to announce (Retry-After), 0 for
 * none. The status is mc_api_status_for's. */
const char *mc_api_trouble_message(request_rec *r, const mc_api_result *res,
                                   const char **error, long *retry_after)
{
    *retry_after = 0;
    switch (res->transport) {
    case MC_HTTP_ETIMEOUT:
        *error = "monei_timeout";
        return "Monei did not answer in time. Please try again.";
    case MC_HTTP_ECONNECT:
        *error = "monei_unreachable";
        return "This site cannot reach Monei right now. Please try again in a few minutes.";
    case MC_HTTP_ETLS:
        *error = "monei_unreachable";
        return "This site cannot connect to Monei securely right now. Please try again "
               "later.";
    case MC_HTTP_OK:
        break;
    default:
        *error = "monei_error";
        return "Monei's answer was cut off or unreadable. Please try again.";
    }
    if (res->http_status == 429) {
        *retry_after = res->retry_after > 0 ? res->retry_after : MC_DEFAULT_RETRY_AFTER;
        *error = "monei_busy";
        return apr_psprintf(r->pool, "Monei is busy; try again in %ld seconds.", *retry_after);
    }
    if (res->http_status >= 500) {
        *retry_after = res->http_status == 503 && res->retry_after > 0 ? res->retry_after : 0;
        *error = "monei_unavailable";
        return "Monei is having trouble right now. Nothing went wrong on this site; please "
               "try again in a few minutes.";
    }
    *error = res->error ? res->error : "token_exchange_failed";
    return "Monei did not accept the connection. Please try again.";
}
