/* AuthType MoneiConnect: authentication (the session made ready by mod_mc_refresh.c); what
 * downstream content then sees is mod_mc_export.c's. */
#include "mod_mc.h"
#include "mod_mc_export.h"

#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"
#include <apr_strings.h>
#include <apr_lib.h>

APLOG_USE_MODULE(monei_connect);

static int is_ours(request_rec *r)
{
    const char *t = ap_auth_type(r);
    return t && !strcasecmp(t, MC_AUTH_TYPE);
}

/* mod_authz_core asks the AuthType's module to describe the challenge of a 401. */
int mc_note_auth_failure(request_rec *r, const char *auth_type)
{
    if (!auth_type || strcasecmp(auth_type, MC_AUTH_TYPE)) {
        return DECLINED;
    }
    apr_table_setn(r->err_headers_out, "WWW-Authenticate",
                   apr_psprintf(r->pool, "%s realm=\"%s\"", MC_AUTH_TYPE,
                                ap_escape_quotes(r->pool, ap_get_server_name(r))));
    return OK;
}

int mc_post_read_request(request_rec *r)
{
    mc_cookies_take(r);
    return DECLINED;
}

/* ---------------------------------------------------------------- hooks */

static int unauthenticated(request_rec *r, mc_sess_result sr)
{
    int action = mc_cfg_unauth_action(mc_dir(r));

    if (sr == MC_SESS_STORE_DOWN) {
        return mc_page(r, HTTP_SERVICE_UNAVAILABLE, "store_unavailable",
                       "Sessions cannot be read right now. Please try again shortly.",
                       mc_original_url(r));
    }
    if (action == MC_UNAUTH_PASS) {
        mc_export(r, NULL);
        /* The anonymous version of a page that differs once connected: not shared either. */
        mc_cache_private(r);
        /* Let Require valid-user through with an empty user: the app sees MONEI_CONNECTED=0. */
        r->user = "";
        r->ap_auth_type = MC_AUTH_TYPE;
        return OK;
    }
    if (action == MC_UNAUTH_401 || mc_is_api_client(r) || r->method_number != M_GET
        || r->main) {
        return mc_page(r, HTTP_UNAUTHORIZED, "unauthorized",
                       "Connect your Monei wallet to use this page.", NULL);
    }
    return mc_login_start(r, mc_original_url(r), mc_cfg_login_scope(r->pool, mc_dir(r)), NULL);
}

/* A connected user: REMOTE_USER, the variables, and the record written back if it changed. */
static void connected(request_rec *r, mc_session_t *h)
{
    r->user = apr_pstrdup(r->pool, h->rec->subject ? h->rec->subject : "");
    r->ap_auth_type = MC_AUTH_TYPE;
    mc_export(r, h->rec);
    mc_cache_private(r);
    mc_session_finish(r, h);
}

int mc_check_authn(request_rec *r)
{
    mc_session_t *h;
    mc_sess_result sr;

    if (!is_ours(r)) {
        return DECLINED;
    }
    if (!mc_server_active(mc_srv(r))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "MC0009: mc-config: AuthType MoneiConnect is used "
                      "here but this server lacks MoneiConnectClientID/ClientSecret/"
                      "RedirectURI/CryptoPassphrase");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    sr = mc_session_ready(r, &h);
    if (sr != MC_SESS_OK) {
        return unauthenticated(r, sr);
    }
    connected(r, h);
    return OK;
}

/* Locations that say AuthType MoneiConnect but need no user (Require all granted) never
 * reach check_authn; they still get the variables, as under MoneiConnectUnauthAction pass. */
int mc_fixups(request_rec *r)
{
    mc_session_t *h;
    if (!is_ours(r) || !mc_server_active(mc_srv(r)) || mc_notes(r)->exported) {
        return DECLINED;
    }
    if (mc_session_ready(r, &h) == MC_SESS_OK) {
        connected(r, h);
    }
    else {
        mc_export(r, NULL);
        mc_cache_private(r);
    }
    return DECLINED;
}
