/* The connect flow: starting a login (a sealed state bound to the browser's binding cookie,
 * PKCE, redirect to Monei) and finishing it on the redirect URI (redaction, state and binding
 * checks, the state used once, code exchange, a brand-new session). */
#include "mod_mc.h"
#include "mc_crypto.h"
#include "mc_monei.h"
#include "mc_return_to.h"
#include "mod_mc_state.h"
#include "mod_mc_status.h"

#include "http_protocol.h"
#include "http_core.h"
#include "http_request.h"
#include "util_script.h"
#include <apr_strings.h>

APLOG_USE_MODULE(monei_connect);

#define MC_RANDOM_BYTES 32   /* 256 bits for binding and PKCE verifier */
#define MC_STATE_ID_BYTES 16 /* names a state's single-use marker */

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

/* Where to send the browser back: only paths here or trusted hosts (no open redirect). This
 * server is what httpd made of the request (canonical name, port, scheme), never a raw Host
 * header. */
static const char *safe_return(request_rec *r, const char *value)
{
    const char *safe = NULL;
    mc_origin_t here;

    if (!value) {
        return NULL;
    }
    here.scheme = ap_http_scheme(r);
    here.host = ap_get_server_name_for_url(r);
    here.port = ap_get_server_port(r);
    if (mc_return_to_check(r->pool, value, &here, mc_srv(r)->trusted_hosts, &safe)
        != APR_SUCCESS) {
        return NULL;
    }
    return safe;
}

const char *mc_safe_return(request_rec *r, const char *value)
{
    return safe_return(r, value);
}

/* A login: its sealed state and, when the browser has none, a binding cookie of its own.
 * Each cookie-less start mints a fresh random binding: nothing another client can do
 * (same address, same User-Agent) gets it a binding it did not mint itself. */
static int prepare(request_rec *r, const char *return_to, const char *scope,
                   const char *base_session, int retry, const char **url)
{
    mc_srv_cfg *c = mc_srv(r);
    mc_state_rec st;
    const char *state, *binding, *challenge = NULL;

    memset(&st, 0, sizeof(st));
    binding = mc_session_binding(r);
    if (!binding) {
        binding = mc_crypto_random_token(r->pool, MC_RANDOM_BYTES);
        st.fresh_binding = 1;
    }
    st.id = mc_crypto_random_token(r->pool, MC_STATE_ID_BYTES);
    if (!st.id || !binding) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "MC0028: mc-random: no randomness for a login");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    st.created = apr_time_sec(apr_time_now());
    st.binding = binding_hash(r->pool, binding);
    st.return_to = return_to ? return_to : mc_cfg_default_return(mc_dir(r));
    st.scopes = scope;
    st.base_session = base_session;
    st.retry = retry;
    if (c->pkce != 0) {
        st.verifier = mc_crypto_random_token(r->pool, MC_RANDOM_BYTES);
        challenge = st.verifier ? mc_pkce_challenge(r->pool, st.verifier) : NULL;
        if (!challenge) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    if (!(state = mc_state_seal(r, &st))) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    mc_set_cookie(r, mc_state_cookie_name(c), binding, MC_STATE_TTL, 1);
    *url = mc_monei_authorize_url(r->pool, c->authorize_url, c->client_id, c->redirect_uri,
                                  scope, state, challenge);
    mc_no_store(r);
    mc_stat_inc(MC_STAT_LOGIN_STARTED);
    if (base_session) {
        mc_stat_inc(MC_STAT_STEP_UP);
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "MC0029: mc-login: sending the browser to Monei for "
                  "scopes \"%s\"%s%s", scope, base_session ? " (step-up)" : "",
                  retry ? " (once more, binding lost to another tab)" : "");
    return *url ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

/* Create the login state and its browser-binding cookie; *url is where to send the
 * browser. Returns OK, or an HTTP status after writing nothing (the caller shows a page). */
int mc_login_prepare(request_rec *r, const char *return_to, const char *scope,
                     const char *base_session, const char **url)
{
    return prepare(r, return_to, scope, base_session, 0, url);
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
                          "MC0030: mc-login: return_to refused (not a path here or a trusted host)");
            return mc_page(r, HTTP_BAD_REQUEST, "invalid_return_to",
                           "The page to return to after connecting is not on this site.",
                           NULL);
        }
        return_to = safe;
    }
    rc = mc_login_prepare(r, return_to, scope, base_session, &url);
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
void mc_redact_request_line(request_rec *r)
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

/* The REMOTE_USER rule (README, "What downstream content sees"). */
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

/* The session being extended belongs to the Monei account of the new grant: its subject is
 * one of the ids the new grant shows (the user id, or the NGN sub-wallet id when the session
 * began with the wallet only), or a pseudonym on either side, which cannot tell. */
static int same_account(request_rec *r, const char *old, const mc_session_rec *s)
{
    const char *id;

    if (!old || !s->subject || !strncmp(old, "monei:", 6) || !strncmp(s->subject, "monei:", 6)
        || !strcmp(old, s->subject)) {
        return 1;
    }
    if (s->user_json && mc_scope_has(s->scopes, "profile:read")
        && (id = mc_monei_user_id(r->pool, s->user_json)) && !strcmp(old, id)) {
        return 1;
    }
    if (s->wallet_json && mc_scope_has(s->scopes, "wallet:read")
        && (id = mc_monei_fiat_id(r->pool, s->wallet_json)) && !strcmp(old, id)) {
        return 1;
    }
    return 0;
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

static int same_text(const char *a, const char *b)
{
    apr_size_t n = strlen(a);
    return n == strlen(b) && mc_ct_equal(a, b, n);
}

/* ?login on the redirect URI path, as a link on a page (the "try again" of a page). */
static const char *login_url(request_rec *r, const char *scopes, const char *return_to)
{
    mc_srv_cfg *c = mc_srv(r);
    const char *base = c->redirect_uri;
    const char *q = ap_strchr_c(base, '?');
    if (q) {
        base = apr_pstrmemdup(r->pool, base, q - base);
    }
    return apr_pstrcat(r->pool, base, "?login&scope=", ap_escape_urlencoded(r->pool, scopes),
                       "&return_to=", ap_escape_urlencoded(r->pool, return_to), NULL);
}

/* The state is not this browser's. Tabs of one browser that started logins at about the same
 * time race for the binding cookie: each start without a cookie mints one, and the browser
 * keeps whichever answer came last, which may replace the cookie a tab started with (its
 * state bound to the one before). Such a tab comes back with a cookie, a different one. It is
 * sent once through a fresh login for the same page, bound to the cookie it has now; nothing
 * of the state is used but where to return and what to ask for (no code is exchanged), so an
 * attacker's callback URL opened elsewhere gains nothing but a login of the victim's own.
 * Without any cookie, or a second time, it is an error page. */
static int binding_mismatch(request_rec *r, const char *binding, const mc_state_rec *st)
{
    mc_stat_inc(MC_STAT_LOGIN_FAILED_STATE);
    if (binding && !st->retry && !mc_is_api_client(r)) {
        const char *url = NULL, *base = NULL;
        mc_session_t *h;
        /* A step-up extends this browser's own session, never the one the state names. */
        if (st->base_session && mc_session_load(r, &h) == MC_SESS_OK) {
            base = h->key;
        }
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "MC0031: mc-callback: state bound to another "
                      "binding cookie (%s by its login start; a tab that lost the race for it?): "
                      "one fresh login", st->fresh_binding ? "minted" : "present");
        if (prepare(r, st->return_to, st->scopes, base, 1, &url) == OK) {
            return mc_redirect(r, url);
        }
    }
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                  "MC0032: mc-callback: state belongs to another browser (binding cookie %s)",
                  binding ? "differs" : "missing");
    return mc_page(r, HTTP_BAD_REQUEST, "invalid_state",
                   "This sign-in was started in another browser or has expired. "
                   "Please start again here.", login_url(r, st->scopes, st->return_to));
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
    /* In this order: the code leaves every log first, the state is checked and found to be
     * this browser's before it is used up, and only then is the code exchanged. */
    mc_redact_request_line(r);
    mc_no_store(r);
    binding = mc_session_binding(r);

    if (!state || !*state) {
        mc_stat_inc(MC_STAT_LOGIN_FAILED_STATE);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "MC0033: mc-callback: no state in the callback");
        return mc_page(r, HTTP_BAD_REQUEST, "invalid_state",
                       "This sign-in link is incomplete. Please start again.", "/");
    }
    if (mc_state_open(r, state, &st) != APR_SUCCESS) {
        mc_stat_inc(MC_STAT_LOGIN_FAILED_STATE);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "MC0034: mc-callback: a state this server did not issue");
        return mc_page(r, HTTP_BAD_REQUEST, "invalid_state",
                       "This sign-in link has expired or was already used. "
                       "Please start again.", "/");
    }
    if (now - st.created > MC_STATE_TTL || now < st.created - 60) {
        mc_stat_inc(MC_STAT_LOGIN_FAILED_STATE);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "MC0035: mc-callback: state expired");
        return mc_page(r, HTTP_BAD_REQUEST, "invalid_state",
                       "This sign-in link has expired. Please start again.", st.return_to);
    }
    if (!binding || !same_text(binding_hash(r->pool, binding), st.binding)) {
        return binding_mismatch(r, binding, &st);
    }
    rv = mc_state_claim(r, &st);
    if (rv == APR_EEXIST) {
        mc_stat_inc(MC_STAT_LOGIN_FAILED_STATE);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "MC0036: mc-callback: state already used");
        return mc_page(r, HTTP_BAD_REQUEST, "invalid_state",
                       "This sign-in link was already used. Please start again.",
                       st.return_to);
    }
    if (rv != APR_SUCCESS) {
        mc_stat_inc(MC_STAT_LOGIN_FAILED_STORE);
        return mc_page(r, HTTP_SERVICE_UNAVAILABLE, "store_unavailable",
                       "Sessions cannot be stored right now. Please try again shortly.",
                       st.return_to);
    }
    if (error) {
        const char *desc = apr_table_get(q, "error_description");
        mc_stat_inc(!strcmp(error, "access_denied") ? MC_STAT_LOGIN_FAILED_DENIED
                                                    : MC_STAT_LOGIN_FAILED_PROVIDER);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "MC0037: mc-callback: Monei returned an error "
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
                           "shared with this site.", login_url(r, st.scopes, st.return_to));
        }
        return mc_page(r, HTTP_BAD_GATEWAY, error,
                       desc ? apr_pstrcat(r->pool, "Monei could not complete the connection: ",
                                          desc, NULL)
                            : "Monei could not complete the connection.",
                       login_url(r, st.scopes, st.return_to));
    }
    if (!code || !*code || strlen(code) > 2048) {
        return mc_page(r, HTTP_BAD_REQUEST, "invalid_request",
                       "This sign-in link is incomplete. Please start again.", st.return_to);
    }

    sess = apr_pcalloc(r->pool, sizeof(*sess));
    if (!mc_api_exchange_code(r, code, st.verifier, sess, &res)) {
        int status = mc_api_status_for(&res);
        const char *err, *msg;
        long wait;
        mc_stat_inc(MC_STAT_LOGIN_FAILED_EXCHANGE);
        /* Say what happened at Monei (busy, in trouble, slow, unreachable), and when a 429
         * said when to come back, tell this user. */
        msg = mc_api_trouble_message(r, &res, &err, &wait);
        if (wait > 0) {
            apr_table_setn(r->err_headers_out, "Retry-After", apr_psprintf(r->pool, "%ld", wait));
        }
        return mc_page(r, status, err, msg, st.return_to);
    }
    if (!sess->scopes || !*sess->scopes) {
        /* Approved with nothing ticked: a token for nothing is no connection. */
        mc_stat_inc(MC_STAT_LOGIN_FAILED_DENIED);
        mc_api_revoke(r, sess->access_token);
        mc_api_revoke(r, sess->refresh_token);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "MC0038: mc-callback: Monei granted no scope; "
                      "no session");
        return mc_page_with(r, HTTP_FORBIDDEN, "nothing_shared",
                            "You approved without choosing any permission, so nothing was "
                            "shared with this site and you are not connected.",
                            login_url(r, st.scopes, st.return_to), "Try again");
    }
    sess->created = now;
    sess->last_active = now;
    base = mc_session_read_key(r, st.base_session);
    if (mc_api_snapshot(r, sess) < 0) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "MC0039: mc-callback: Monei rejected the new token when reading the wallet");
    }
    set_subject(r, sess, base ? base->subject : NULL);
    /* Step-up: the new grant adds to what the session already had, if it is the same
     * Monei account (someone else may have signed in on Monei's page). */
    if (base && same_account(r, base->subject, sess)) {
        const char *missing = scopes_not_granted(r, st.scopes, sess->scopes);
        /* One account id for the life of a session: a step-up that adds profile:read
         * does not turn REMOTE_USER from the wallet's id into the user's. */
        if (base->subject) {
            sess->subject = base->subject;
        }
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
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "MC0040: mc-callback: step-up returned another "
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
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "MC0041: mc-callback: connected (scopes \"%s\")",
                  sess->scopes);
    if (mc_srv(r)->samesite && !strcmp(mc_srv(r)->samesite, "Strict")) {
        return mc_redirect_same_site(r, st.return_to);
    }
    return mc_redirect(r, st.return_to);
}
