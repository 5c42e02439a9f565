/* Configuration of mod_monei_connect: server and directory records, directive handlers,
 * and the startup checks that make `apachectl -t` fail on an incomplete configuration. */
#ifndef MOD_MC_CONFIG_H
#define MOD_MC_CONFIG_H

#include "httpd.h"
#include "http_config.h"
#include "ap_socache.h"
#include "mc_crypto.h"

#define MC_UNSET (-1)

/* Every default, once. Server values are resolved in post_config (mc_config_resolve), so code
 * that runs per request reads the field; directory values through the mc_cfg_* accessors. */
#define MC_DEFAULT_SCOPE            "wallet:read profile:read"
#define MC_DEFAULT_AUTHORIZE_URL    "https://monei.cc/connect/authorize"
#define MC_DEFAULT_API_BASE         "https://api.monei.cc/api/v1"
#define MC_DEFAULT_COOKIE           "monei_session"
#define MC_DEFAULT_HEADER_PREFIX    "X-Monei-"
#define MC_DEFAULT_INACTIVITY       1800
#define MC_DEFAULT_MAX_DURATION     28800
#define MC_DEFAULT_REFRESH_BEFORE   60
#define MC_DEFAULT_WALLET_MAX_AGE   60
#define MC_DEFAULT_CONNECT_TIMEOUT  5
#define MC_DEFAULT_TOTAL_TIMEOUT    10
#define MC_DEFAULT_LOGOUT_REDIRECT  "/"

typedef enum { MC_SECURE_AUTO = 0, MC_SECURE_ON, MC_SECURE_OFF } mc_secure_e;
typedef enum { MC_UNAUTH_AUTH = 0, MC_UNAUTH_401, MC_UNAUTH_PASS } mc_unauth_e;
enum { MC_EXPORT_ENV = 1, MC_EXPORT_HEADERS = 2 };

/* Where a directive was written, for messages that point the admin at it. */
typedef struct {
    const char *file;
    int line;
} mc_where_t;

typedef struct {
    const char *client_id;
    const char *client_secret;          /* resolved value; never logged */
    const char *redirect_uri;
    const char *redirect_scheme;
    const char *redirect_host;
    int redirect_port;
    const char *redirect_path;
    apr_array_header_t *passphrases;    /* const char*: first encrypts, all decrypt */
    const char *authorize_url;
    const char *api_base;
    const char *cookie_name;
    const char *samesite;
    int cookie_secure;                  /* mc_secure_e or MC_UNSET */
    long inactivity_timeout;
    long max_duration;
    long refresh_before;
    int pkce;
    apr_array_header_t *trusted_hosts;  /* const char*, lower case */
    long connect_timeout;
    long total_timeout;
    const char *ca_file;
    int ssl_verify;
    const char *outbound_proxy;

    mc_where_t client_id_at, client_secret_at, redirect_uri_at, passphrase_at;

    mc_keyring_t *keyring;              /* derived from passphrases in post_config */
    const char *state_cookie;           /* session cookie name + "_state", set in post_config */
} mc_srv_cfg;

typedef struct {
    const char *scope;
    long wallet_max_age;
    const char *logout_redirect;
    int export_mode;                    /* MC_EXPORT_* bits, or MC_UNSET */
    const char *header_prefix;
    int pass_access_token;
    int unauth_action;                  /* mc_unauth_e or MC_UNSET */
    int step_up;
} mc_dir_cfg;

/* The session store is global: one provider for the whole server. */
typedef struct {
    const char *provider_name;
    const char *provider_args;
    mc_where_t at;
    const ap_socache_provider_t *provider;
} mc_store_cfg;

extern mc_store_cfg mc_store_config;
extern const command_rec mc_cmds[];

void *mc_create_srv_cfg(apr_pool_t *p, server_rec *s);
void *mc_merge_srv_cfg(apr_pool_t *p, void *basev, void *addv);
void *mc_create_dir_cfg(apr_pool_t *p, char *dir);
void *mc_merge_dir_cfg(apr_pool_t *p, void *basev, void *addv);

/* This request's configuration. */
mc_srv_cfg *mc_srv(const request_rec *r);
mc_dir_cfg *mc_dir(const request_rec *r);
/* The server has what a login needs (the check at startup makes sure where it is used). */
int mc_server_active(const mc_srv_cfg *c);

/* post_config: every server's unset values become their defaults. */
void mc_config_resolve(server_rec *s);

/* Effective values (defaults applied). */
const char *mc_cfg_scope(const mc_dir_cfg *d);
long mc_cfg_wallet_max_age(const mc_dir_cfg *d);
const char *mc_cfg_logout_redirect(const mc_dir_cfg *d);
int mc_cfg_export(const mc_dir_cfg *d);
const char *mc_cfg_header_prefix(const mc_dir_cfg *d);
int mc_cfg_unauth_action(const mc_dir_cfg *d);
int mc_cfg_secure(const mc_srv_cfg *c);
const char *mc_cfg_cookie_name(const mc_srv_cfg *c);

/* pre_config: reset global state (config is read twice at startup). */
void mc_config_pre(apr_pool_t *pconf);

/* check_config: every server that uses AuthType MoneiConnect or a monei-connect-* handler has
 * the required directives, and the session store provider is loaded. */
int mc_config_check(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s);

#endif
