/* The connect flow: starting a login (state, PKCE, redirect to Monei) and finishing it on
 * the redirect URI (state check, code exchange, a brand-new session). */
#include "mod_mc.h"
#include "mc_crypto.h"
#include "mc_monei.h"
#include "mc_return_to.h"
#include "mod_mc_store.h"
#include "mod_mc_status.h"

#include "http_protocol.h"
#include "http_core.h"
#include "http_request.h"
#include "util_script.h"
#include <apr_strings.h>

APLOG_USE_MODULE(monei_connect);

#define MC_RANDOM_BYTES 32   /* 256 bits for state, binding and PKCE verifier */

static const char *safe_return(request_rec *r, const char *value);

/* The URL to come back to after login: this request's path and query (GET only). */
const char *mc_original_url(request_rec *r)
{
    const request_rec *m = r;
    while (m->prev) {
        m = m->prev;   /* the URL the browser asked for, not an internal redirect target */
    }
    if (m->method_number != M_GET || !m->unparsed_uri) {
        return "/";
    }
    /* "GET //evil.example/" is a valid request line but must not become a redirect there. */
    return safe_return(r, m->unparsed_uri) ? m->unparsed_uri : "/";
}

static const char *binding_hash(apr_pool_t *p, const char *binding)
{
    unsigned char h[MC_SHA256_LEN];
    mc_sha256(binding, strlen(binding), h);
    return mc_b64url_encode(p, h, sizeof(h));
}

/* Where to send the browser back: only paths here or trusted hosts (no open redirect). */
static const char *safe_return(request_rec *r, const char *value)
{
    const char *safe = NULL;
    const char *host = apr_table_get(r->headers_in, "Host");
    if (!value) {
        return NULL;
    }
    if (mc_return_to_check(r->pool, value, host ? host : ap_get_server_name(r),
                           mc_srv(r)->trusted_hosts, &safe) != APR_SUCCESS) {
        return NULL;
    }
    return safe;
}

/* Tabs of one browser that start logins at the same moment all arrive without the binding
 * cookie; if each got its own, the browser would keep only the last and the other tabs'
 * callbacks would fail. So a binding minted for a client (address + User-Agent) is handed to
 * that client's other cookie-less login starts for MC_BINDING_SHARE seconds. The record is
 * sealed like every other and lives a few seconds. Trade-off (README, Security): another
 * browser behind the same address with the same User-Agent starting a login within those
 * seconds would share the binding. */
#define MC_BINDING_SHARE 3

typedef struct {
    request_rec *r;
    const char *key;
    const char *binding;        /* in: a fresh one; out: the one to use */
} binding_baton;

static apr_status_t share_binding(void *b, const unsigned char *old, apr_size_t oldlen,
                                  const unsigned char **data, apr_size_t *len,
                                  apr_time_t *expiry)
{
    binding_baton *bb = b;
    request_rec *r = bb->r;
    const mc_keyring_t *kr = mc_srv(r)->keyring;
    unsigned char *plain, *sealed;
    apr_size_t plen, slen;

    if (old && mc_record_open(r->pool, kr, bb->key, strlen(bb->key), old, oldlen, &plain,
                              &plen) == APR_SUCCESS) {
        bb->binding = apr_pstrmemdup(r->pool, (const char *)plain, plen);
        return APR_EEXIST;     /* keep the record as it is */
    }
    if (mc_record_seal(r->pool, kr, bb->key, strlen(bb->key),
                       (const unsigned char *)bb->binding, strlen(bb->binding), &sealed,
                       &slen) != APR_SUCCESS) {
        return APR_EGENERAL;
    }
    *data = sealed;
    *len = slen;
    *expiry = apr_time_now() + apr_time_from_sec(MC_BINDING_SHARE);
    return APR_SUCCESS;
}

static const char *new_binding(request_rec *r)
{
    binding_baton bb;
    const char *ua = apr_table_get(r->headers_in, "User-Agent");
    bb.r = r;
    bb.binding = mc_crypto_random_token(r->pool, MC_RANDOM_BYTES);
    if (!bb.binding) {
        return NULL;
    }
    bb.key = mc_store_key(r->pool, 'b', mc_srv(r)->client_id,
                          apr_pstrcat(r->pool, r->useragent_ip, "\n", ua ? ua : "", NULL));
    /* Store trouble only costs the sharing: the fresh binding still works for this tab. */
    mc_store_update(r->server, bb.key, r->pool, share_binding, &bb);
    return bb.binding;
}

/* Create the login state and its browser-binding cookie; *url is where to send the
 * browser. Returns OK, or an HTTP status after writing nothing (the caller shows a page). */
int mc_login_prepare(request_rec *r, const char *return_to, const char *scope,
                     const char *base_session, const char **url)
{
    mc_srv_cfg *c = mc_srv(r);
    mc_state_rec st;
    const char *state, *binding, *challenge = NULL;

    memset(&st, 0, sizeof(st));
    state = mc_crypto_random_token(r->pool, MC_RANDOM_BYTES);
    /* One binding cookie per browser, shared by every tab that logs in at once. */
    binding = mc_session_binding(r);
    if (!binding) {
        binding = new_binding(r);
    }
    if (!state || !binding) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mc-random: no randomness for a login");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    st.created = apr_time_sec(apr_time_now());
    st.binding = binding_hash(r->pool, binding);
    st.return_to = return_to ? return_to : "/";
    st.scopes = scope;
    st.base_session = base_session;
    if (c->pkce != 0) {
        st.verifier = mc_crypto_random_token(r->pool, MC_RANDOM_BYTES);
        challenge = st.verifier ? mc_pkce_challenge(r->pool, st.verifier) : NULL;
        if (!challenge) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    if (mc_state_put(r, state, &st) != APR_SUCCESS) {
        return HTTP_SERVICE_UNAVAILABLE;
    }
    mc_set_cookie(r, mc_state_cookie_name(c), binding, MC_STATE_TTL, 1);
    *url = mc_monei_authorize_url(r->pool, c->authorize_url, c->client_id, c->redirect_uri,
                                  scope, state, challenge);
    mc_no_store(r);
    mc_stat_inc(MC_STAT_LOGIN_STARTED);
    if (base_session) {
        mc_stat_inc(MC_STAT_STEP_UP);
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "mc-login: sending the browser to Monei for "
                  "scopes \"%s\"%s", scope, base_session ? " (step-up)" : "");
    return *url ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

int mc_login_start(request_rec *r, const char *return_to, const char *scope,
                   const char *base_session)
{
    const char *url = NULL;
    int rc;

    if (return_to) {
        const char *safe = safe_return(r, return_to);
        if (!safe) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                          "mc-login: return_to refused (not a path here or a trusted host)");
            return mc_page(r, HTTP_BAD_REQUEST, "invalid_return_to",
                           "The page to return to after connecting is not on this site.",
                           NULL);
        }
        return_to = safe;
    }
    rc = mc_login_prepare(r, return_to, scope, base_session, &url);
    if (rc == HTTP_SERVICE_UNAVAILABLE) {
        return mc_page(r, rc, "store_unavailable",
                       "Sessions cannot be stored right now. Please try again shortly.",
                       mc_original_url(r));
    }
    if (rc != OK) {
        return mc_page(r, rc, "server_error", "The login could not be started.", NULL);
    }
    return mc_redirect(r, url);
}

/* Absolute URL of the redirect URI path that starts a step-up login: ap_custom_response
 * turns a 403 into a redirect only for absolute URLs, and the login itself (state, cookie)
 * then happens in a request of its own. */
const char *mc_stepup_url(request_rec *r, const char *scopes, const char *return_to)
{
    mc_srv_cfg *c = mc_srv(r);
    const char *base = c->redirect_uri;
    const char *q = ap_strchr_c(base, '?');
    if (q) {
        base = apr_pstrmemdup(r->pool, base, q - base);
    }
    return apr_pstrcat(r->pool, base, "?login&stepup&scope=",
                       ap_escape_urlencoded(r->pool, scopes), "&return_to=",
                       ap_escape_urlencoded(r->pool, return_to), NULL);
}

/* Keep the code and state out of the access log (mod_log_config reads these fields). */
static void redact_request_line(request_rec *r)
{
    const char *q = ap_strchr_c(r->the_request, '?');
    if (q) {
        const char *sp = ap_strchr_c(q, ' ');
        r->the_request = apr_pstrcat(r->pool, apr_pstrmemdup(r->pool, r->the_request,
                                                             q - r->the_request),
                                     "?[redacted]", sp ? sp : "", NULL);
    }
    r->args = NULL;
    r->unparsed_uri = r->uri;
    r->parsed_uri.query = NULL;
}

/* The REMOTE_USER rule of SPEC.md. */
static void set_subject(request_rec *r, mc_session_rec *s, const char *old_subject)
{
    const char *id = NULL;
    if (s->user_json && mc_scope_has(s->scopes, "profile:read")) {
        id = mc_monei_user_id(r->pool, s->user_json);
    }
    if (!id && s->wallet_json && mc_scope_has(s->scopes, "wallet:read")) {
        id = mc_monei_fiat_id(r->pool, s->wallet_json);
    }
    if (!id) {
        id = (old_subject && !strncmp(old_subject, "monei:", 6))
             ? old_subject
             : apr_pstrcat(r->pool, "monei:", mc_crypto_random_token(r->pool, 16), NULL);
    }
    s->subject = id;
}

/* Both subjects name the same Monei account, or neither can tell (pseudonyms). */
static int same_account(const char *a, const char *b)
{
    if (!a || !b || !strncmp(a, "monei:", 6) || !strncmp(b, "monei:", 6)) {
        return 1;
    }
    return strcmp(a, b) == 0;
}

static const char *scopes_not_granted(request_rec *r, const char *asked, const char *granted)
{
    apr_array_header_t *need = apr_array_make(r->pool, 4, sizeof(const char *));
    char *copy = apr_pstrdup(r->pool, asked ? asked : ""), *last, *w;
    for (w = apr_strtok(copy, " ", &last); w; w = apr_strtok(NULL, " ", &last)) {
        APR_ARRAY_PUSH(need, const char *) = w;
    }
    return need->nelts ? mc_scope_missing(r->pool, granted ? granted : "", need) : "";
}

int mc_login_callback(request_rec *r)
{
    apr_table_t *q;
    const char *state, *code, *error, *binding;
    mc_state_rec st;
    mc_session_rec *sess, *base = NULL;
    mc_api_result res;
    apr_status_t rv;
    apr_int64_t now = apr_time_sec(apr_time_now());

    ap_args_to_table(r, &q);
    state = apr_table_get(q, "state");
    code = apr_table_get(q, "code");
    error = apr_table_get(q, "error");
    redact_request_line(r);
    mc_no_store(r);
    binding = mc_session_binding(r);

    /* State first, before anything in the query is trusted or the code is used. */
    if (!state || !*state || strlen(state) > 128) {
        mc_stat_inc(MC_STAT_LOGIN_FAILED_STATE);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "mc-callback: no state in the callback");
        return mc_page(r, HTTP_BAD_REQUEST, "invalid_state",
                       "This sign-in link is incomplete. Please start again.", "/");
    }
    rv = mc_state_take(r, state, &st);
    if (rv != APR_SUCCESS && !APR_STATUS_IS_NOTFOUND(rv)) {
        mc_store_trouble(r, rv, "cannot read a login state");
        mc_stat_inc(MC_STAT_LOGIN_FAILED_STORE);
        return mc_page(r, HTTP_SERVICE_UNAVAILABLE, "store_unavailable",
                       "Sessions cannot be read right now. Please try again shortly.", "/");
    }
    if (APR_STATUS_IS_NOTFOUND(rv)) {
        mc_stat_inc(MC_STAT_LOGIN_FAILED_STATE);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "mc-callback: unknown, expired or already used state");
        return mc_page(r, HTTP_BAD_REQUEST, "invalid_state",
                       "This sign-in link has expired or was already used. "
                       "Please start again.", "/");
    }
    if (!binding || strcmp(binding_hash(r->pool, binding), st.binding) != 0) {
        mc_stat_inc(MC_STAT_LOGIN_FAILED_STATE);
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "mc-callback: state belongs to another browser (binding cookie %s)",
                      binding ? "differs" : "missing");
        return mc_page(r, HTTP_BAD_REQUEST, "invalid_state",
                       "This sign-in was started in another browser or has expired. "
                       "Please start again here.", st.return_to);
    }
    if (now - st.created > MC_STATE_TTL || now < st.created - 60) {
        mc_stat_inc(MC_STAT_LOGIN_FAILED_STATE);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "mc-callback: state expired");
        return mc_page(r, HTTP_BAD_REQUEST, "invalid_state",
                       "This sign-in link has expired. Please start again.", st.return_to);
    }
    if (error) {
        const char *desc = apr_table_get(q, "error_description");
        mc_stat_inc(!strcmp(error, "access_denied") ? MC_STAT_LOGIN_FAILED_DENIED
                                                    : MC_STAT_LOGIN_FAILED_PROVIDER);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "mc-callback: Monei returned an error "
                      "(%s)", ap_escape_logitem(r->pool, error));
        if (!strcmp(error, "access_denied") && st.base_session) {
            mc_session_note_decline(r, st.base_session, st.scopes);
            return mc_page_with(r, HTTP_FORBIDDEN, "access_denied",
                                apr_psprintf(r->pool, "You did not grant the permission this "
                                             "page needs: %s.", st.scopes),
                                mc_stepup_url(r, st.scopes, st.return_to), "Grant permission");
        }
        if (!strcmp(error, "access_denied")) {
            return mc_page(r, HTTP_FORBIDDEN, "access_denied",
                           "You chose not to connect your Monei wallet, so nothing was "
                           "shared with this site.", st.return_to);
        }
        return mc_page(r, HTTP_BAD_GATEWAY, error,
                       desc ? apr_pstrcat(r->pool, "Monei could not complete the connection: ",
                                          desc, NULL)
                            : "Monei could not complete the connection.", st.return_to);
    }
    if (!code || !*code || strlen(code) > 2048) {
        return mc_page(r, HTTP_BAD_REQUEST, "invalid_request",
                       "This sign-in link is incomplete. Please start again.", st.return_to);
    }

    sess = apr_pcalloc(r->pool, sizeof(*sess));
    if (!mc_api_exchange_code(r, code, st.verifier, sess, &res)) {
        int status = mc_api_status_for(&res);
        mc_stat_inc(MC_STAT_LOGIN_FAILED_EXCHANGE);
        if (res.retry_after > 0) {
            apr_table_setn(r->err_headers_out, "Retry-After",
                           apr_psprintf(r->pool, "%ld", res.retry_after));
        }
        return mc_page(r, status, res.error ? res.error : "token_exchange_failed",
                       status == HTTP_GATEWAY_TIME_OUT
                           ? "Monei did not answer in time. Please try again."
                           : "Monei did not accept the connection. Please try again.",
                       st.return_to);
    }
    sess->created = now;
    sess->last_active = now;
    base = mc_session_read_key(r, st.base_session);
    if (mc_api_snapshot(r, sess) < 0) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "mc-callback: Monei rejected the new token when reading the wallet");
    }
    set_subject(r, sess, base ? base->subject : NULL);
    /* Step-up: the new grant adds to what the session already had, if it is the same
     * Monei account (someone else may have signed in on Monei's page). */
    if (base && (same_account(base->subject, sess->subject))) {
        const char *missing = scopes_not_granted(r, st.scopes, sess->scopes);
        sess->scopes = mc_scope_union(r->pool, base->scopes, sess->scopes);
        sess->created = base->created;
        if (*missing) {
            sess->declined = missing;
            sess->declined_at = now;
        }
        if (base->access_token && sess->access_token
            && strcmp(base->access_token, sess->access_token)) {
            mc_api_revoke(r, base->access_token);
        }
    }
    else if (base) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "mc-callback: step-up returned another "
                      "Monei account; starting a new session instead of extending");
    }
    /* The session being extended ends with the new one, whether or not it was this
     * browser's cookie. */
    if (!mc_session_create(r, sess, st.base_session)) {
        mc_stat_inc(MC_STAT_LOGIN_FAILED_STORE);
        return mc_page(r, HTTP_SERVICE_UNAVAILABLE, "store_unavailable",
                       "Your session could not be stored. Please try again shortly.",
                       st.return_to);
    }
    mc_stat_inc(MC_STAT_LOGIN_COMPLETED);
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "mc-callback: connected (scopes \"%s\")",
                  sess->scopes);
    if (mc_srv(r)->samesite && !strcmp(mc_srv(r)->samesite, "Strict")) {
        return mc_redirect_same_site(r, st.return_to);
    }
    return mc_redirect(r, st.return_to);
}
