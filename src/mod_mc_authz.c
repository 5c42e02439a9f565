/* Require monei-scope s1 [s2 …]: an authz provider like Apache's own, with step-up.
 * A connected user lacking a scope is sent (through the redirect URI's ?login&stepup) to
 * Monei for just the missing scopes, or shown a 403 page naming them. */
#include "mod_mc.h"
#include "mc_monei.h"

#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"
#include "mod_auth.h"
#include <apr_strings.h>

APLOG_USE_MODULE(monei_connect);

/* A declined step-up is remembered this long, so a page that needs the scope shows its 403
 * page instead of sending the user back to Monei in a loop. */
#define MC_DECLINE_MEMORY 300

static const char *scope_parse(cmd_parms *cmd, const char *require_line, const void **parsed)
{
    apr_array_header_t *need = apr_array_make(cmd->pool, 2, sizeof(const char *));
    const char *line = require_line, *w, *words = "", *err;

    while (*line && (w = ap_getword_conf(cmd->pool, &line)) && *w) {
        APR_ARRAY_PUSH(need, const char *) = w;
        words = apr_pstrcat(cmd->pool, words, *words ? " " : "", w, NULL);
    }
    /* Known scopes only (a typo fails apachectl -t with file:line); the section's logins
     * ask for them in their first consent, and ?login may ask for them. */
    if ((err = mc_config_require_scopes(cmd, words)) != NULL) {
        return err;
    }
    *parsed = need;
    return NULL;
}

static int recently_declined(const mc_session_rec *s, const char *missing, apr_pool_t *p)
{
    char *copy, *last, *w;
    if (!s->declined || apr_time_sec(apr_time_now()) - s->declined_at > MC_DECLINE_MEMORY) {
        return 0;
    }
    copy = apr_pstrdup(p, missing);
    for (w = apr_strtok(copy, " ", &last); w; w = apr_strtok(NULL, " ", &last)) {
        if (!mc_scope_has(s->declined, w)) {
            return 0;
        }
    }
    return 1;
}

static authz_status scope_check(request_rec *r, const char *require_line, const void *parsed)
{
    const apr_array_header_t *need = parsed;
    const char *t = ap_auth_type(r);
    mc_session_t *h;
    const char *missing, *page_url;
    mc_dir_cfg *d = mc_dir(r);

    if (!r->user) {
        return AUTHZ_DENIED_NO_USER;
    }
    if (!t || strcasecmp(t, MC_AUTH_TYPE) || !mc_server_active(mc_srv(r))) {
        return AUTHZ_DENIED;
    }
    /* The handle check_authn made for this request (loaded already: no store access). */
    if (mc_session_load(r, &h) != MC_SESS_OK) {
        /* MoneiConnectUnauthAction pass without a session: nothing is granted. */
        mc_page_as_error(r, HTTP_FORBIDDEN, "not_connected",
                         "Connect your Monei wallet to use this page.",
                         mc_stepup_url(r, mc_cfg_login_scope(r->pool, d), mc_original_url(r)), "Connect");
        return AUTHZ_DENIED;
    }
    missing = mc_scope_missing(r->pool, h->rec->scopes, need);
    if (!missing || !*missing) {
        return AUTHZ_GRANTED;
    }
    page_url = mc_stepup_url(r, missing, mc_original_url(r));
    if (d->step_up != 0 && !mc_is_api_client(r) && r->method_number == M_GET && !r->main
        && !recently_declined(h->rec, missing, r->pool)) {
        const char *url = NULL;
        /* ap_die turns a 403 whose custom response is an absolute URL into a redirect. */
        if (mc_login_prepare(r, mc_original_url(r), missing, h->key, &url) == OK) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "MC0010: mc-authz: missing \"%s\": step-up",
                          missing);
            mc_redirect_as_error(r, url);
            return AUTHZ_DENIED;
        }
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "MC0011: mc-authz: missing \"%s\": denied", missing);
    mc_page_as_error(r, HTTP_FORBIDDEN, "insufficient_scope",
                     apr_psprintf(r->pool, "This page needs a permission your Monei wallet "
                                  "has not granted to this site: %s.", missing),
                     page_url, "Grant permission");
    return AUTHZ_DENIED;
}

static const authz_provider scope_provider = {
    &scope_check,
    &scope_parse,
};

void mc_authz_register(apr_pool_t *p)
{
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "monei-scope", AUTHZ_PROVIDER_VERSION,
                              &scope_provider, AP_AUTH_INTERNAL_PER_CONF);
}
