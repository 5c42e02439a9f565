/* Shared declarations of the httpd side of mod_monei_connect. */
#ifndef MOD_MC_H
#define MOD_MC_H

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "mod_mc_config.h"
#include "mc_record.h"
#include "mc_http.h"

extern module AP_MODULE_DECLARE_DATA monei_connect_module;

#define MC_AUTH_TYPE "MoneiConnect"
/* A login state lives ten minutes, like Monei's codes. */
#define MC_STATE_TTL 600
/* The inactivity clock is written at most this often, so the hot path does not write. */
#define MC_ACTIVITY_GRANULARITY 60

/* True when some configuration uses AuthType MoneiConnect or a monei-connect-* handler. */
extern int mc_config_in_use;

/* Per-request state, kept in r->request_config. */
typedef struct {
    int cookies_taken;          /* our cookies were read and removed from the Cookie header */
    const char *session_id;     /* session cookie value, NULL if none */
    const char *binding;        /* state (browser-binding) cookie value, NULL if none */
    int session_loaded;         /* a load was attempted */
    mc_session_rec *sess;       /* the loaded, valid session; NULL if none */
    const char *store_key;      /* store key of sess */
    int dirty;                  /* sess must be written back */
    int exported;               /* variables already set for this request */
    int store_down;             /* the store failed during this request */
    struct mc_error_look *error_look; /* how an authz denial's error page must look */
} mc_req_ctx;

/* Outcome of getting a usable session for a request. */
typedef enum {
    MC_SESS_OK = 0,             /* valid session in ctx->sess */
    MC_SESS_NONE,               /* no session (none, expired, unknown, revoked) */
    MC_SESS_STORE_DOWN          /* the store could not be read */
} mc_sess_result;

/* mod_monei_connect.c helpers */
mc_srv_cfg *mc_srv(const request_rec *r);
mc_dir_cfg *mc_dir(const request_rec *r);
mc_req_ctx *mc_ctx(request_rec *r);
int mc_server_active(const mc_srv_cfg *c);

/* mod_mc_store.c lifecycle */
int mc_store_check(apr_pool_t *pconf, apr_pool_t *ptemp);
int mc_store_pre_config(apr_pool_t *pconf);
int mc_store_post_config(apr_pool_t *pconf, server_rec *s);
void mc_store_child_init(apr_pool_t *p, server_rec *s);

/* mod_mc_session.c */
int mc_session_post_config(apr_pool_t *pconf, server_rec *s);
void mc_cookies_take(request_rec *r);
mc_sess_result mc_session_load(request_rec *r);
apr_status_t mc_session_save(request_rec *r, mc_session_rec *sess, const char *store_key);
void mc_session_destroy(request_rec *r);
const char *mc_session_create(request_rec *r, mc_session_rec *sess);
void mc_session_cookie_clear(request_rec *r);
void mc_session_finish(request_rec *r);
apr_status_t mc_state_put(request_rec *r, const char *state, const mc_state_rec *st);
apr_status_t mc_state_take(request_rec *r, const char *state, mc_state_rec *st);
void mc_set_cookie(request_rec *r, const char *name, const char *value, long max_age,
                   int lax_at_least);
const char *mc_state_cookie_name(const mc_srv_cfg *c);
apr_status_t mc_session_load_key(request_rec *r, const char *key, mc_session_rec **out);

/* mod_mc_api.c: calls to Monei from a request */
typedef struct {
    int ok;                     /* the call succeeded (2xx with a usable body) */
    int http_status;            /* Monei's status, 0 when no answer */
    mc_http_err transport;
    long retry_after;
    const char *error;          /* Monei's error string (untrusted) */
    const char *message;        /* Monei's message (untrusted) */
} mc_api_result;
mc_http_opts mc_api_opts(const mc_srv_cfg *c);
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
int mc_error_document_for(request_rec *r, int status);
const char *mc_page_body(request_rec *r, int status, const char *error, const char *message,
                         const char *retry_url, const char *retry_label, int api);
void mc_page_as_error(request_rec *r, int status, const char *error, const char *message,
                      const char *retry_url, const char *retry_label);
void mc_redirect_as_error(request_rec *r, const char *url);
void mc_insert_error_filter(request_rec *r);
int mc_note_auth_failure(request_rec *r, const char *auth_type);

/* mod_mc_authz.c */
void mc_authz_register(apr_pool_t *p);
const char *mc_stepup_url(request_rec *r, const char *scopes, const char *return_to);

/* mod_mc_login.c */
int mc_login_start(request_rec *r, const char *return_to, const char *scope,
                   const char *base_session);
int mc_login_callback(request_rec *r);
int mc_login_prepare(request_rec *r, const char *return_to, const char *scope,
                     const char *base_session, const char **url);
const char *mc_original_url(request_rec *r);

/* mod_mc_auth.c */
int mc_check_authn(request_rec *r);
int mc_fixups(request_rec *r);
int mc_post_read_request(request_rec *r);
void mc_export(request_rec *r, const mc_session_rec *sess);
void mc_scrub_headers(request_rec *r);
mc_sess_result mc_session_ready(request_rec *r);

/* mod_mc_handlers.c */
int mc_quick_handler(request_rec *r, int lookup);
int mc_handler(request_rec *r);
int mc_disconnect(request_rec *r);

#endif
