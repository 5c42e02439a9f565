/* The module's own URLs: the redirect URI path (callback, ?login, ?disconnect, ?info) and
 * the monei-connect-login / -info / -disconnect handlers. */
#include "mod_mc.h"
#include "mc_monei.h"
#include "mc_return_to.h"
#include "mc_text.h"
#include "mod_mc_status.h"

#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_script.h"
#include <apr_strings.h>

APLOG_USE_MODULE(monei_connect);

static const char *arg(request_rec *r, apr_table_t *q, const char *name)
{
    return q ? apr_table_get(q, name) : NULL;
}

static int has_arg(apr_table_t *q, const char *name)
{
    return q && apr_table_get(q, name) != NULL;
}

/* A login started on request: ?login or SetHandler monei-connect-login. */
static int login(request_rec *r, apr_table_t *q)
{
    const char *scope = arg(r, q, "scope");
    if (scope) {
        if (!mc_scope_valid_list(scope) || strlen(scope) > 512) {
            return mc_page(r, HTTP_BAD_REQUEST, "invalid_scope",
                           "The requested permissions are not valid.", NULL);
        }
    }
    else {
        scope = mc_cfg_scope(mc_dir(r));
    }
    /* A step-up extends the browser's current session; the callback unions the scopes. */
    if (has_arg(q, "stepup")) {
        mc_session_t *h;
        if (mc_session_load(r, &h) == MC_SESS_OK) {
            return mc_login_start(r, arg(r, q, "return_to"), scope, h->key);
        }
    }
    return mc_login_start(r, arg(r, q, "return_to"), scope, NULL);
}

static void json_add_raw(apr_pool_t *p, const char **out, const char *key, const char *json)
{
    *out = apr_pstrcat(p, *out, ",\"", key, "\":", json, NULL);
}

/* The seed's /dashboard: {"connected":…,"scopes":[…],"expires_at":…,"wallet":…,"user":…}. */
static int info(request_rec *r)
{
    mc_session_t *h;
    mc_sess_result sr = mc_session_ready(r, &h);
    const mc_session_rec *s = h->rec;
    const char *out;

    mc_no_store(r);
    if (sr == MC_SESS_STORE_DOWN) {
        return mc_page(r, HTTP_SERVICE_UNAVAILABLE, "store_unavailable",
                       "Sessions cannot be read right now. Please try again shortly.", NULL);
    }
    ap_set_content_type(r, "application/json");
    if (sr != MC_SESS_OK || !s) {
        ap_rputs("{\"connected\":false}\n", r);
        return OK;
    }
    {
        char *copy = apr_pstrdup(r->pool, s->scopes ? s->scopes : ""), *last, *w;
        const char *list = "";
        for (w = apr_strtok(copy, " ", &last); w; w = apr_strtok(NULL, " ", &last)) {
            list = apr_pstrcat(r->pool, list, *list ? "," : "",
                               mc_json_escape_string(r->pool, w), NULL);
        }
        out = apr_psprintf(r->pool, "{\"connected\":true,\"scopes\":[%s],\"expires_at\":%"
                           APR_INT64_T_FMT, list, s->expires_at);
    }
    if (s->wallet_json && mc_scope_has(s->scopes, "wallet:read")) {
        json_add_raw(r->pool, &out, "wallet", s->wallet_json);
    }
    if (s->user_json && mc_scope_has(s->scopes, "profile:read")) {
        json_add_raw(r->pool, &out, "user", s->user_json);
    }
    if (s->snapshot_stale) {
        out = apr_pstrcat(r->pool, out, ",\"stale\":true", NULL);
    }
    ap_rputs(out, r);
    ap_rputs("}\n", r);
    mc_session_finish(r, h);
    return OK;
}

static int mc_disconnect(request_rec *r)
{
    apr_table_t *q = NULL;
    const char *site = apr_table_get(r->headers_in, "Sec-Fetch-Site");
    const char *return_to, *target;
    mc_session_t *h;

    ap_args_to_table(r, &q);
    /* A link or form on another site must not be able to log a user out. */
    if (site && !strcasecmp(site, "cross-site")) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "mc-disconnect: cross-site request refused");
        return mc_page(r, HTTP_FORBIDDEN, "cross_site",
                       "Disconnecting is only possible from this site.", NULL);
    }
    return_to = arg(r, q, "return_to");
    target = mc_cfg_logout_redirect(mc_dir(r));
    if (return_to) {
        const char *safe = NULL;
        const char *host = apr_table_get(r->headers_in, "Host");
        if (mc_return_to_check(r->pool, return_to, host ? host : ap_get_server_name(r),
                               mc_srv(r)->trusted_hosts, &safe) != APR_SUCCESS) {
            return mc_page(r, HTTP_BAD_REQUEST, "invalid_return_to",
                           "The page to return to is not on this site.", NULL);
        }
        target = safe;
    }
    if (mc_session_load(r, &h) == MC_SESS_OK) {
        mc_stat_inc(MC_STAT_DISCONNECT);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "mc-disconnect: session ended");
    }
    /* Gone from the store after any refresh in flight, and both tokens revoked at Monei;
     * local state goes whatever Monei answers. */
    mc_session_destroy(r, h, 1);
    return mc_redirect(r, target);
}

static int as_handler_result(int rc)
{
    return rc == DONE ? OK : rc;
}

/* Requests to the redirect URI's path belong to the module wherever it is, before
 * translation, mod_proxy or any authentication (as mod_md answers ACME challenges). */
int mc_quick_handler(request_rec *r, int lookup)
{
    mc_srv_cfg *c = mc_srv(r);
    apr_table_t *q = NULL;

    if (lookup || r->main || !mc_server_active(c) || !r->parsed_uri.path
        || strcmp(r->parsed_uri.path, c->redirect_path) != 0) {
        return DECLINED;
    }
    if (r->method_number != M_GET) {
        r->allowed = (AP_METHOD_BIT << M_GET);
        return HTTP_METHOD_NOT_ALLOWED;
    }
    if (r->args && strlen(r->args) > 8192) {
        return as_handler_result(mc_page(r, HTTP_REQUEST_URI_TOO_LARGE, "invalid_request",
                                         "The address is too long.", NULL));
    }
    ap_args_to_table(r, &q);
    if (has_arg(q, "code") || has_arg(q, "error") || has_arg(q, "state")) {
        return as_handler_result(mc_login_callback(r));
    }
    if (has_arg(q, "login")) {
        return as_handler_result(login(r, q));
    }
    if (has_arg(q, "disconnect")) {
        return as_handler_result(mc_disconnect(r));
    }
    if (has_arg(q, "info")) {
        return as_handler_result(info(r));
    }
    return as_handler_result(mc_page(r, HTTP_BAD_REQUEST, "invalid_request",
                                     "This address is used by Monei Connect and expects "
                                     "a sign-in response.", "/"));
}

int mc_handler(request_rec *r)
{
    apr_table_t *q = NULL;

    if (!r->handler || strncmp(r->handler, "monei-connect-", 14) != 0) {
        return DECLINED;
    }
    if (!strcmp(r->handler, "monei-connect-status")) {
        return r->method_number == M_GET ? mc_status_handler(r) : HTTP_METHOD_NOT_ALLOWED;
    }
    if (!mc_server_active(mc_srv(r))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mc-config: SetHandler %s needs "
                      "MoneiConnectClientID/ClientSecret/RedirectURI/CryptoPassphrase",
                      r->handler);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (r->method_number != M_GET) {
        r->allowed = (AP_METHOD_BIT << M_GET);
        return HTTP_METHOD_NOT_ALLOWED;
    }
    ap_args_to_table(r, &q);
    if (!strcmp(r->handler, "monei-connect-login")) {
        return as_handler_result(login(r, q));
    }
    if (!strcmp(r->handler, "monei-connect-info")) {
        return as_handler_result(info(r));
    }
    if (!strcmp(r->handler, "monei-connect-disconnect")) {
        return as_handler_result(mc_disconnect(r));
    }
    return DECLINED;
}
