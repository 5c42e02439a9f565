/* The module's own URLs: the redirect URI path (callback, ?login, ?disconnect, ?info) and
 * the monei-connect-login / -info / -disconnect handlers. */
#include "mod_mc.h"
#include "mc_monei.h"
#include "mc_return_to.h"
#include "mc_text.h"
#include "mod_mc_status.h"
#include "mc_crypto.h"

#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_main.h"
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
        /* Only what the configuration could ever ask for: a link cannot make this site ask
         * a user for more (wallet:withdraw, a made-up admin scope). */
        if (strlen(scope) > 512 || !mc_scope_valid_list(scope)
            || !mc_config_scopes_allowed(scope)) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "MC0023: mc-login: scope= names a scope "
                          "this server's configuration does not use; refused");
            return mc_page(r, HTTP_BAD_REQUEST, "invalid_scope",
                           "The requested permissions are not valid.", NULL);
        }
    }
    else {
        scope = mc_cfg_login_scope(r->pool, mc_dir(r));
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

/* The disconnect form's token: only this server can make it, and only for this session. */
static const char *disconnect_token(request_rec *r, const mc_session_t *h)
{
    return h->id ? mc_keyring_mac(r->pool, mc_srv(r)->keyring, "disconnect", h->id) : NULL;
}

/* The fields of a small urlencoded form (the confirmation's POST). */
static apr_table_t *read_form(request_rec *r)
{
    apr_table_t *form = apr_table_make(r->pool, 4);
    apr_array_header_t *pairs = NULL;
    int i;

    if (ap_parse_form_data(r, NULL, &pairs, 8, 4096) != OK || !pairs) {
        return form;
    }
    for (i = 0; i < pairs->nelts; i++) {
        ap_form_pair_t *pair = &APR_ARRAY_IDX(pairs, i, ap_form_pair_t);
        apr_off_t len;
        apr_size_t size;
        char *buf;
        if (apr_brigade_length(pair->value, 1, &len) != APR_SUCCESS || len > 4096) {
            continue;
        }
        size = (apr_size_t)len;
        buf = apr_palloc(r->pool, size + 1);
        if (apr_brigade_flatten(pair->value, buf, &size) == APR_SUCCESS) {
            buf[size] = '\0';
            apr_table_setn(form, pair->name, buf);
        }
    }
    return form;
}

static int same_text(const char *a, const char *b)
{
    apr_size_t n;
    if (!a || !b || (n = strlen(a)) != strlen(b)) {
        return 0;
    }
    return mc_ct_equal(a, b, n);
}

/* A GET acts only when the browser says it comes from this site or from the user (address
 * bar, bookmark); any other GET (another site's link or image, another site of the same
 * registrable domain, an old browser that says nothing) gets a confirmation page whose form
 * POSTs with the session's token. */
static int mc_disconnect(request_rec *r, int on_redirect_path)
{
    apr_table_t *q = NULL;
    const char *site = apr_table_get(r->headers_in, "Sec-Fetch-Site");
    const char *return_to, *target;
    int is_post = r->method_number == M_POST;
    mc_session_t *h;
    mc_sess_result sr;

    ap_args_to_table(r, &q);
    if (is_post) {
        q = read_form(r);
    }
    return_to = arg(r, q, "return_to");
    target = mc_cfg_logout_redirect(mc_dir(r));
    if (return_to) {
        const char *safe = mc_safe_return(r, return_to);
        if (!safe) {
            return mc_page(r, HTTP_BAD_REQUEST, "invalid_return_to",
                           "The page to return to is not on this site.", NULL);
        }
        target = safe;
    }
    sr = mc_session_load(r, &h);
    if (sr == MC_SESS_OK && is_post) {
        if (!same_text(arg(r, q, "token"), disconnect_token(r, h))) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                          "MC0024: mc-disconnect: POST without this session's token refused");
            return mc_page(r, HTTP_FORBIDDEN, "invalid_token",
                           "This disconnect request did not come from this site's "
                           "confirmation page. You are still connected.", NULL);
        }
    }
    else if (sr == MC_SESS_OK
             && !(site && (!strcasecmp(site, "same-origin") || !strcasecmp(site, "none")))) {
        const char *token = disconnect_token(r, h);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "MC0025: mc-disconnect: GET not known to come "
                      "from this site (Sec-Fetch-Site %s): asking first",
                      site ? ap_escape_logitem(r->pool, site) : "absent");
        if (mc_is_api_client(r) || !token) {
            return mc_page(r, HTTP_FORBIDDEN, "confirmation_required",
                           "Disconnecting needs a POST with this session's token, or a "
                           "request from this site.", NULL);
        }
        return mc_page_confirm_disconnect(r, on_redirect_path
                                             ? apr_pstrcat(r->pool, r->uri, "?disconnect",
                                                           NULL)
                                             : r->uri, token, return_to);
    }
    if (sr == MC_SESS_OK) {
        mc_stat_inc(MC_STAT_DISCONNECT);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "MC0026: mc-disconnect: session ended");
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
    if (r->args && strlen(r->args) > 8192) {
        mc_redact_request_line(r);
        return as_handler_result(mc_page(r, HTTP_REQUEST_URI_TOO_LARGE, "invalid_request",
                                         "The address is too long.", NULL));
    }
    ap_args_to_table(r, &q);
    /* POST only for the disconnect confirmation's form. */
    if (r->method_number != M_GET
        && !(r->method_number == M_POST && has_arg(q, "disconnect") && !has_arg(q, "code")
             && !has_arg(q, "error") && !has_arg(q, "state") && !has_arg(q, "login"))) {
        mc_redact_request_line(r);
        r->allowed = (AP_METHOD_BIT << M_GET) | (AP_METHOD_BIT << M_POST);
        /* Our page rather than httpd's: it has a way out, like every page of the module. */
        apr_table_setn(r->err_headers_out, "Allow", "GET, POST");
        return as_handler_result(mc_page(r, HTTP_METHOD_NOT_ALLOWED, "invalid_request",
                                         "This address takes sign-in responses only.", NULL));
    }
    if (has_arg(q, "code") || has_arg(q, "error") || has_arg(q, "state")) {
        return as_handler_result(mc_login_callback(r));
    }
    if (has_arg(q, "login")) {
        return as_handler_result(login(r, q));
    }
    if (has_arg(q, "disconnect")) {
        return as_handler_result(mc_disconnect(r, 1));
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
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "MC0027: mc-config: SetHandler %s needs "
                      "MoneiConnectClientID/ClientSecret/RedirectURI/CryptoPassphrase",
                      r->handler);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (!strcmp(r->handler, "monei-connect-disconnect")
        && (r->method_number == M_GET || r->method_number == M_POST)) {
        return as_handler_result(mc_disconnect(r, 0));
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
    return DECLINED;
}

/* The path of a request line ("GET /p?q HTTP/1.1", absolute form too, or cut short by
 * LimitRequestLine) and where its query starts, without trusting anything parsed from it. */
static int line_targets(const char *line, const char *path, const char **query)
{
    const char *p = ap_strchr_c(line, ' '), *end;
    apr_size_t n = strlen(path);

    if (!p) {
        return 0;
    }
    p++;
    if (!strncasecmp(p, "http://", 7) || !strncasecmp(p, "https://", 8)) {
        p = ap_strchr_c(p + 7 + (p[4] == 's' || p[4] == 'S'), '/');
        if (!p) {
            return 0;
        }
    }
    end = p + strcspn(p, "? ");
    if ((apr_size_t)(end - p) != n || strncmp(p, path, n) || *end != '?') {
        return 0;
    }
    *query = end;
    return 1;
}

/* log_transaction, before mod_log_config: whatever answered a request to a redirect URI path
 * (httpd's own 405 or 414, another module, a page of ours), its query (code, state) never
 * reaches an access log. */
int mc_log_redact(request_rec *r)
{
    server_rec *s;
    const char *query = NULL;

    if (!r->the_request) {
        return DECLINED;
    }
    for (s = ap_server_conf; s; s = s->next) {
        mc_srv_cfg *c = ap_get_module_config(s->module_config, &monei_connect_module);
        if (c && c->redirect_path && line_targets(r->the_request, c->redirect_path, &query)) {
            const char *sp = ap_strchr_c(query, ' ');
            r->the_request = apr_pstrcat(r->pool, apr_pstrmemdup(r->pool, r->the_request,
                                                                 query - r->the_request),
                                         "?[redacted]", sp ? sp : "", NULL);
            r->args = NULL;
            if (r->uri) {
                r->unparsed_uri = r->uri;
            }
            r->parsed_uri.query = NULL;
            break;
        }
    }
    return DECLINED;
}
