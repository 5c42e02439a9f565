/* Shared declarations of the httpd side of mod_monei_connect. */
#ifndef MOD_MC_H
#define MOD_MC_H

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "mod_mc_config.h"
#include "mc_record.h"
#include "mc_http.h"
#include "mod_mc_session.h"

extern module AP_MODULE_DECLARE_DATA monei_connect_module;

#define MC_AUTH_TYPE "MoneiConnect"
/* A login state lives ten minutes, like Monei's codes. */
#define MC_STATE_TTL 600
/* The inactivity clock is written at most this often, so the hot path does not write. */
#define MC_ACTIVITY_GRANULARITY 60

/* True when some configuration uses AuthType MoneiConnect or a monei-connect-* handler. */
extern int mc_config_in_use;

/* The module's notes on one request, in that request's request_config: never shared with
 * another request (a subrequest or internal redirect has its own). Each field has one
 * owner, the file named beside it. */
typedef struct {
    int cookies_taken;          /* mod_mc_session.c: our cookies were read from this request */
    const char *session_id;     /* mod_mc_session.c: session cookie value, NULL if none */
    const char *binding;        /* mod_mc_session.c: state (browser-binding) cookie value */
    struct mc_session_t *session; /* mod_mc_session.c: this request's session handle */
    int exported;               /* mod_mc_auth.c: variables set for this request */
    struct mc_error_look *error_look; /* mod_mc_pages.c: how an authz denial's page looks */
} mc_req_notes;

/* mod_mc_session.c */
mc_req_notes *mc_notes(request_rec *r);

/* mod_mc_store.c lifecycle */
int mc_store_check(apr_pool_t *pconf, apr_pool_t *ptemp);
int mc_store_pre_config(apr_pool_t *pconf);
int mc_store_post_config(apr_pool_t *pconf, server_rec *s);
void mc_store_child_init(apr_pool_t *p, server_rec *s);

/* mod_mc_refresh.c: the session loaded, its token refreshed when due and its snapshot
 * fetched when old (this request's handle in *out, whatever the result). */
mc_sess_result mc_session_ready(request_rec *r, mc_session_t **out);

/* mod_mc_api.c: calls to Monei from a request */
typedef struct {
    int ok;                     /* the call succeeded (2xx with a usable body) */
    int http_status;            /* Monei's status, 0 when no answer */
    mc_http_err transport;
    long retry_after;
    const char *error;          /* Monei's error string (untrusted) */
    const char *message;        /* Monei's message (untrusted) */
} mc_api_result;
int mc_api_exchange_code(request_rec *r, const char *code, const char *verifier,
                         mc_session_rec *sess, mc_api_result *res);
int mc_api_refresh(request_rec *r, mc_session_rec *sess, mc_api_result *res);
void mc_api_revoke(request_rec *r, const char *token);
int mc_api_snapshot(request_rec *r, mc_session_rec *sess);
int mc_api_status_for(const mc_api_result *res);

/* mod_mc_pages.c */
int mc_is_api_client(const request_rec *r);
void mc_no_store(request_rec *r);
int mc_page(request_rec *r, int status, const char *error, const char *message,
            const char *retry_url);
int mc_redirect(request_rec *r, const char *location);
int mc_redirect_same_site(request_rec *r, const char *location);
int mc_page_with(request_rec *r, int status, const char *error, const char *message,
                 const char *retry_url, const char *retry_label);
#define MC_TYPE_FILTER "MONEI_CONNECT_TYPE"
void mc_pages_register(apr_pool_t *p);
void mc_page_as_error(request_rec *r, int status, const char *error, const char *message,
                      const char *retry_url, const char *retry_label);
void mc_redirect_as_error(request_rec *r, const char *url);
void mc_insert_error_filter(request_rec *r);
int mc_note_auth_failure(request_rec *r, const char *auth_type);

/* mod_mc_authz.c */
void mc_authz_register(apr_pool_t *p);

/* mod_mc_login.c */
int mc_login_start(request_rec *r, const char *return_to, const char *scope,
                   const char *base_session);
int mc_login_callback(request_rec *r);
int mc_login_prepare(request_rec *r, const char *return_to, const char *scope,
                     const char *base_session, const char **url);
const char *mc_original_url(request_rec *r);
const char *mc_stepup_url(request_rec *r, const char *scopes, const char *return_to);

/* mod_mc_auth.c */
int mc_check_authn(request_rec *r);
int mc_fixups(request_rec *r);
int mc_post_read_request(request_rec *r);

/* mod_mc_handlers.c */
int mc_quick_handler(request_rec *r, int lookup);
int mc_handler(request_rec *r);

#endif
