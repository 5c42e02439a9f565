/* Calls to Monei made on behalf of a request: code exchange, refresh, revoke, snapshots.
 * Protocol bodies and parsing live in mc_monei.c; transport in mc_curl.c. Logs name the
 * step and the outcome, never a token, code or secret. */
#include "mod_mc.h"
#include "mc_monei.h"

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
                      "mc-api: %s: %s after %" APR_TIME_T_FMT " ms (%s)", what,
                      mc_http_err_str(resp->err), apr_time_as_msec(resp->elapsed),
                      resp->detail ? resp->detail : "");
        return resp;
    }
    res->http_status = resp->status;
    res->retry_after = resp->retry_after;
    if (resp->status < 200 || resp->status > 299) {
        mc_monei_parse_error(r->pool, resp->body, resp->len, &res->error, &res->message);
        ap_log_rerror(APLOG_MARK, resp->status == 401 ? APLOG_INFO : APLOG_WARNING, 0, r,
                      "mc-api: %s: Monei answered %d%s%s", what, resp->status,
                      res->error ? ": " : "", res->error ? res->error : "");
    }
    else {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "mc-api: %s: %d in %" APR_TIME_T_FMT " ms",
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
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mc-api: %s: unusable token response: %s",
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

/* Fetch one snapshot; returns 1 ok, 0 failed (keep the old one), -1 token rejected (401). */
static int fetch(request_rec *r, const char *what, const char *path, const char *token,
                 int is_wallet, const char **out)
{
    mc_api_result res;
    const mc_http_response *resp = call(r, what, path, token, NULL, &res);
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
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "mc-api: %s: unusable answer", what);
        return 0;
    }
    *out = data;
    return 1;
}

/* Refresh the wallet/profile snapshot for the granted scopes. Returns 1 when fresh, 0 when
 * Monei failed (the old snapshot is kept and marked stale), -1 when Monei rejected the token. */
int mc_api_snapshot(request_rec *r, mc_session_rec *sess)
{
    const char *wallet = sess->wallet_json, *user = sess->user_json;
    int ok = 1, rc;

    if (mc_scope_has(sess->scopes, "wallet:read")) {
        rc = fetch(r, "wallet", "/wallet/me", sess->access_token, 1, &wallet);
        if (rc < 0) {
            return -1;
        }
        ok &= rc;
    }
    else {
        wallet = NULL;
    }
    if (mc_scope_has(sess->scopes, "profile:read")) {
        rc = fetch(r, "user", "/user/me", sess->access_token, 0, &user);
        if (rc < 0) {
            return -1;
        }
        ok &= rc;
    }
    else {
        user = NULL;
    }
    sess->wallet_json = wallet;
    sess->user_json = user;
    sess->exports = mc_snapshot_exports(r->pool, wallet, user);
    if (ok) {
        sess->snapshot_at = apr_time_sec(apr_time_now());
        sess->snapshot_stale = 0;
    }
    else {
        sess->snapshot_stale = 1;
    }
    return ok;
}
