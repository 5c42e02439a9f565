/* Directive handlers, config create/merge, and startup checks. */
#include "mod_mc_config.h"
#include "mc_return_to.h"
#include "mod_mc.h"
#include "mc_value.h"
#include "mc_monei.h"

#include "http_log.h"
#include "util_cfgtree.h"
#include "ap_provider.h"
#include <apr_strings.h>
#include <ctype.h>
#include <string.h>

APLOG_USE_MODULE(monei_connect);

mc_store_cfg mc_store_config;

/* Scopes Monei knows (docs/protocol.md); anything else would be refused at authorize. */
static const char *const known_scopes[] = {
    "profile:read", "kyc:read", "wallet:read", "wallet:deposit", "wallet:send",
    "wallet:withdraw", "swap:execute", "bills:pay", "offramp:execute", NULL
};

/* The scopes the configuration files name (mc_config_scopes_allowed), in pconf; gathered
 * only while the files are read, before any child exists, so never written concurrently. */
static apr_array_header_t *allowed_scopes;
static int reading_config;

/* ------------------------------------------------------------------ create / merge */

void *mc_create_srv_cfg(apr_pool_t *p, server_rec *s)
{
    mc_srv_cfg *c = apr_pcalloc(p, sizeof(*c));
    c->cookie_secure = MC_UNSET;
    c->inactivity_timeout = MC_UNSET;
    c->max_duration = MC_UNSET;
    c->refresh_before = MC_UNSET;
    c->pkce = MC_UNSET;
    c->connect_timeout = MC_UNSET;
    c->total_timeout = MC_UNSET;
    c->ssl_verify = MC_UNSET;
    c->redirect_port = MC_UNSET;
    return c;
}

#define MERGE_PTR(f)  c->f = add->f ? add->f : base->f
#define MERGE_INT(f)  c->f = (add->f != MC_UNSET) ? add->f : base->f

void *mc_merge_srv_cfg(apr_pool_t *p, void *basev, void *addv)
{
    mc_srv_cfg *base = basev, *add = addv;
    mc_srv_cfg *c = apr_pcalloc(p, sizeof(*c));

    MERGE_PTR(client_id);
    MERGE_PTR(client_secret);
    MERGE_PTR(passphrases);
    MERGE_PTR(authorize_url);
    MERGE_PTR(api_base);
    MERGE_PTR(cookie_name);
    MERGE_PTR(samesite);
    MERGE_INT(cookie_secure);
    MERGE_INT(inactivity_timeout);
    MERGE_INT(max_duration);
    MERGE_INT(refresh_before);
    MERGE_INT(pkce);
    MERGE_PTR(trusted_hosts);
    MERGE_INT(ssl_verify);
    MERGE_PTR(ca_file);
    MERGE_PTR(outbound_proxy);
    /* A virtual host inherits the main server's <Location>s: it scrubs their prefixes too. */
    c->exports_headers = base->exports_headers || add->exports_headers;
    if (base->scrub_prefixes && add->scrub_prefixes) {
        c->scrub_prefixes = apr_array_append(p, base->scrub_prefixes, add->scrub_prefixes);
    }
    else {
        MERGE_PTR(scrub_prefixes);
    }
    /* The redirect URI and its parts travel together. */
    if (add->redirect_uri) {
        c->redirect_uri = add->redirect_uri;
        c->redirect_scheme = add->redirect_scheme;
        c->redirect_host = add->redirect_host;
        c->redirect_port = add->redirect_port;
        c->redirect_path = add->redirect_path;
        c->redirect_uri_at = add->redirect_uri_at;
    }
    else {
        c->redirect_uri = base->redirect_uri;
        c->redirect_scheme = base->redirect_scheme;
        c->redirect_host = base->redirect_host;
        c->redirect_port = base->redirect_port;
        c->redirect_path = base->redirect_path;
        c->redirect_uri_at = base->redirect_uri_at;
    }
    if (add->connect_timeout != MC_UNSET) {
        c->connect_timeout = add->connect_timeout;
        c->total_timeout = add->total_timeout;
    }
    else {
        c->connect_timeout = base->connect_timeout;
        c->total_timeout = base->total_timeout;
    }
    c->client_id_at = add->client_id ? add->client_id_at : base->client_id_at;
    c->client_secret_at = add->client_secret ? add->client_secret_at : base->client_secret_at;
    c->passphrase_at = add->passphrases ? add->passphrase_at : base->passphrase_at;
    return c;
}

void *mc_create_dir_cfg(apr_pool_t *p, char *dir)
{
    mc_dir_cfg *d = apr_pcalloc(p, sizeof(*d));
    d->wallet_max_age = MC_UNSET;
    d->export_mode = MC_UNSET;
    d->pass_access_token = MC_UNSET;
    d->unauth_action = MC_UNSET;
    d->step_up = MC_UNSET;
    return d;
}

void *mc_merge_dir_cfg(apr_pool_t *p, void *basev, void *addv)
{
    mc_dir_cfg *base = basev, *add = addv;
    mc_dir_cfg *c = apr_pcalloc(p, sizeof(*c));

    MERGE_PTR(scope);
    MERGE_INT(wallet_max_age);
    MERGE_PTR(logout_redirect);
    MERGE_PTR(default_return);
    MERGE_PTR(require_scopes);
    MERGE_INT(export_mode);
    MERGE_PTR(header_prefix);
    MERGE_INT(pass_access_token);
    MERGE_INT(unauth_action);
    MERGE_INT(step_up);
    return c;
}

/* ------------------------------------------------------------------ effective values */

mc_srv_cfg *mc_srv(const request_rec *r)
{
    return ap_get_module_config(r->server->module_config, &monei_connect_module);
}

mc_dir_cfg *mc_dir(const request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &monei_connect_module);
}

int mc_server_active(const mc_srv_cfg *c)
{
    return c->client_id && c->client_secret && c->redirect_uri && c->keyring;
}

#define RESOLVE_INT(f, v)  if (c->f == MC_UNSET) c->f = (v)
#define RESOLVE_PTR(f, v)  if (!c->f) c->f = (v)

void mc_config_resolve(server_rec *s)
{
    for (; s; s = s->next) {
        mc_srv_cfg *c = ap_get_module_config(s->module_config, &monei_connect_module);
        RESOLVE_INT(inactivity_timeout, MC_DEFAULT_INACTIVITY);
        RESOLVE_INT(max_duration, MC_DEFAULT_MAX_DURATION);
        RESOLVE_INT(refresh_before, MC_DEFAULT_REFRESH_BEFORE);
        RESOLVE_INT(connect_timeout, MC_DEFAULT_CONNECT_TIMEOUT);
        RESOLVE_INT(total_timeout, MC_DEFAULT_TOTAL_TIMEOUT);
        RESOLVE_PTR(authorize_url, MC_DEFAULT_AUTHORIZE_URL);
        RESOLVE_PTR(api_base, MC_DEFAULT_API_BASE);
    }
}

const char *mc_cfg_scope(const mc_dir_cfg *d)
{
    return d->scope ? d->scope : MC_DEFAULT_SCOPE;
}

long mc_cfg_wallet_max_age(const mc_dir_cfg *d)
{
    return d->wallet_max_age != MC_UNSET ? d->wallet_max_age : MC_DEFAULT_WALLET_MAX_AGE;
}

const char *mc_cfg_logout_redirect(const mc_dir_cfg *d)
{
    return d->logout_redirect ? d->logout_redirect : MC_DEFAULT_LOGOUT_REDIRECT;
}

const char *mc_cfg_default_return(const mc_dir_cfg *d)
{
    return d->default_return ? d->default_return : MC_DEFAULT_RETURN;
}

const char *mc_cfg_login_scope(apr_pool_t *p, const mc_dir_cfg *d)
{
    return d->require_scopes ? mc_scope_union(p, mc_cfg_scope(d), d->require_scopes)
                             : mc_cfg_scope(d);
}

int mc_cfg_export(const mc_dir_cfg *d)
{
    return d->export_mode != MC_UNSET ? d->export_mode : MC_EXPORT_ENV;
}

const char *mc_cfg_header_prefix(const mc_dir_cfg *d)
{
    return d->header_prefix ? d->header_prefix : MC_DEFAULT_HEADER_PREFIX;
}

int mc_cfg_pass_token(const mc_dir_cfg *d)
{
    return d->pass_access_token != MC_UNSET ? d->pass_access_token : MC_PASS_TOKEN_OFF;
}

int mc_cfg_unauth_action(const mc_dir_cfg *d)
{
    return d->unauth_action != MC_UNSET ? d->unauth_action : MC_UNAUTH_AUTH;
}

int mc_cfg_secure(const mc_srv_cfg *c)
{
    if (c->cookie_secure == MC_SECURE_ON) {
        return 1;
    }
    if (c->cookie_secure == MC_SECURE_OFF) {
        return 0;
    }
    return c->redirect_scheme && strcasecmp(c->redirect_scheme, "https") == 0;
}

const char *mc_cfg_cookie_name(const mc_srv_cfg *c)
{
    if (c->cookie_name) {
        return c->cookie_name;
    }
    /* __Host- makes the browser refuse the cookie unless Secure, Path=/ and no Domain. */
    return mc_cfg_secure(c) ? "__Host-" MC_DEFAULT_COOKIE : MC_DEFAULT_COOKIE;
}

/* ------------------------------------------------------------------ directive helpers */

static mc_srv_cfg *srv_cfg(cmd_parms *cmd)
{
    return ap_get_module_config(cmd->server->module_config, &monei_connect_module);
}

static void note_where(cmd_parms *cmd, mc_where_t *w)
{
    w->file = cmd->directive ? cmd->directive->filename : NULL;
    w->line = cmd->directive ? cmd->directive->line_num : 0;
}

static const char *fail(cmd_parms *cmd, const char *why)
{
    return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, why);
}

/* Printable ASCII without spaces: what an id, a header prefix or a cookie name may hold. */
static int is_token(const char *s, const char *forbidden)
{
    if (s == NULL || *s == '\0') {
        return 0;
    }
    for (; *s; s++) {
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || strchr(forbidden, *s)) {
            return 0;
        }
    }
    return 1;
}

static const char *check_scope_list(apr_pool_t *p, const char *list)
{
    char *copy = apr_pstrdup(p, list), *last, *w;
    int n = 0;

    for (w = apr_strtok(copy, " ", &last); w; w = apr_strtok(NULL, " ", &last)) {
        int i, known = 0;
        for (i = 0; known_scopes[i]; i++) {
            known |= (strcmp(known_scopes[i], w) == 0);
        }
        if (!known) {
            return apr_psprintf(p, "unknown scope '%s' (Monei knows profile:read kyc:read "
                                "wallet:read wallet:deposit wallet:send wallet:withdraw "
                                "swap:execute bills:pay offramp:execute)", w);
        }
        n++;
    }
    return n ? NULL : "needs at least one scope";
}

static void allow_scopes(apr_pool_t *p, const char *list)
{
    char *copy = apr_pstrdup(p, list), *last, *w;
    if (!reading_config || !allowed_scopes) {
        return;
    }
    for (w = apr_strtok(copy, " ", &last); w; w = apr_strtok(NULL, " ", &last)) {
        if (!mc_config_scopes_allowed(w)) {
            APR_ARRAY_PUSH(allowed_scopes, const char *) = apr_pstrdup(allowed_scopes->pool, w);
        }
    }
}

static int word_in(const char *list, const char *w, apr_size_t len)
{
    const char *l = list, *end;
    while (*l) {
        end = l + strcspn(l, " ");
        if ((apr_size_t)(end - l) == len && !strncmp(l, w, len)) {
            return 1;
        }
        l = *end ? end + 1 : end;
    }
    return 0;
}

int mc_config_scopes_allowed(const char *list)
{
    const char *w = list, *end;
    int i, n = 0;

    while (*w) {
        apr_size_t len;
        int found;
        if (*w == ' ') {
            w++;
            continue;
        }
        end = w + strcspn(w, " ");
        len = (apr_size_t)(end - w);
        /* The default scope is asked for wherever MoneiConnectScope is not set. */
        found = word_in(MC_DEFAULT_SCOPE, w, len);
        for (i = 0; !found && allowed_scopes && i < allowed_scopes->nelts; i++) {
            found = word_in(APR_ARRAY_IDX(allowed_scopes, i, const char *), w, len);
        }
        if (!found) {
            return 0;
        }
        n++;
        w = end;
    }
    return n > 0;
}

/* Collapse runs of spaces so the scope string is sent exactly as Monei expects. */
static const char *normalize_words(apr_pool_t *p, const char *list)
{
    char *copy = apr_pstrdup(p, list), *last, *w;
    const char *out = NULL;
    for (w = apr_strtok(copy, " \t", &last); w; w = apr_strtok(NULL, " \t", &last)) {
        out = out ? apr_pstrcat(p, out, " ", w, NULL) : w;
    }
    return out ? out : "";
}

static const char *resolved(cmd_parms *cmd, const char *arg, const char **out)
{
    const char *why;
    *out = mc_value_resolve(cmd->pool, arg, &why);
    return *out ? NULL : fail(cmd, why);
}

/* ------------------------------------------------------------------ server directives */

static const char *set_client_id(cmd_parms *cmd, void *dummy, const char *arg)
{
    mc_srv_cfg *c = srv_cfg(cmd);
    const char *v, *err = resolved(cmd, arg, &v);
    if (err) {
        return err;
    }
    if (!is_token(v, "\"\\")) {
        return fail(cmd, "must be printable ASCII without spaces");
    }
    c->client_id = v;
    note_where(cmd, &c->client_id_at);
    return NULL;
}

static const char *set_client_secret(cmd_parms *cmd, void *dummy, const char *arg)
{
    mc_srv_cfg *c = srv_cfg(cmd);
    const char *v, *err = resolved(cmd, arg, &v);
    if (err) {
        return err;
    }
    if (!is_token(v, "")) {
        /* Never echo the value: it is a secret. */
        return fail(cmd, "must be printable ASCII without spaces");
    }
    c->client_secret = v;
    note_where(cmd, &c->client_secret_at);
    return NULL;
}

static const char *set_redirect_uri(cmd_parms *cmd, void *dummy, const char *arg)
{
    mc_srv_cfg *c = srv_cfg(cmd);
    const char *err = mc_value_url(cmd->pool, arg, 1, &c->redirect_scheme, &c->redirect_host,
                                   &c->redirect_port, &c->redirect_path);
    if (err) {
        return fail(cmd, err);
    }
    if (strcmp(c->redirect_path, "/") == 0) {
        return fail(cmd, "needs a path of its own (e.g. /monei/callback): the module answers "
                         "every request to that path");
    }
    c->redirect_uri = arg;
    note_where(cmd, &c->redirect_uri_at);
    return NULL;
}

static const char *set_passphrase(cmd_parms *cmd, void *dummy, int argc, char *const argv[])
{
    mc_srv_cfg *c = srv_cfg(cmd);
    int i;

    if (argc < 1) {
        return fail(cmd, "needs at least one passphrase");
    }
    c->passphrases = apr_array_make(cmd->pool, argc, sizeof(const char *));
    for (i = 0; i < argc; i++) {
        const char *v, *err = resolved(cmd, argv[i], &v);
        if (err) {
            return err;
        }
        if (strlen(v) < 16) {
            ap_log_error(APLOG_MARK, APLOG_WARNING | APLOG_STARTUP, 0, cmd->server,
                         "MC0018: mc-cfg-weak: MoneiConnectCryptoPassphrase #%d at %s:%d is shorter "
                         "than 16 characters; use a long random value "
                         "(e.g. openssl rand -base64 32)", i + 1,
                         cmd->directive->filename, cmd->directive->line_num);
        }
        APR_ARRAY_PUSH(c->passphrases, const char *) = v;
    }
    note_where(cmd, &c->passphrase_at);
    return NULL;
}

static const char *set_url(cmd_parms *cmd, const char *arg, const char **slot)
{
    const char *err = mc_value_url(cmd->pool, arg, 1, NULL, NULL, NULL, NULL);
    if (err) {
        return fail(cmd, err);
    }
    *slot = arg;
    return NULL;
}

static const char *set_authorize_url(cmd_parms *cmd, void *dummy, const char *arg)
{
    return set_url(cmd, arg, &srv_cfg(cmd)->authorize_url);
}

static const char *set_api_base(cmd_parms *cmd, void *dummy, const char *arg)
{
    mc_srv_cfg *c = srv_cfg(cmd);
    const char *err = set_url(cmd, arg, &c->api_base);
    apr_size_t n;
    if (err) {
        return err;
    }
    /* Endpoints are appended as "/connect/token": drop a trailing slash once here. */
    n = strlen(c->api_base);
    if (n > 0 && c->api_base[n - 1] == '/') {
        c->api_base = apr_pstrndup(cmd->pool, c->api_base, n - 1);
    }
    return NULL;
}

static const char *set_session_store(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    const char *colon;
    if (err) {
        return err;
    }
    colon = ap_strchr_c(arg, ':');
    mc_store_config.provider_name = colon ? apr_pstrmemdup(cmd->pool, arg, colon - arg)
                                          : apr_pstrdup(cmd->pool, arg);
    mc_store_config.provider_args = colon ? colon + 1 : NULL;
    if (*mc_store_config.provider_name == '\0'
        || !is_token(mc_store_config.provider_name, ":/()\"\\")) {
        return fail(cmd, "must be shm[:SESSIONS] (the built-in store) or name an ap_socache "
                         "provider, e.g. redis:host:port, memcache:host:port, shmcb");
    }
    note_where(cmd, &mc_store_config.at);
    return NULL;
}

static const char *set_cookie_name(cmd_parms *cmd, void *dummy, const char *arg)
{
    /* RFC 6265 token: no separators. */
    if (!is_token(arg, "()<>@,;:\\\"/[]?={}")) {
        return fail(cmd, "must be a cookie name (letters, digits, - _ . etc., no separators)");
    }
    srv_cfg(cmd)->cookie_name = arg;
    return NULL;
}

static const char *set_samesite(cmd_parms *cmd, void *dummy, const char *arg)
{
    mc_srv_cfg *c = srv_cfg(cmd);
    if (!strcasecmp(arg, "Lax")) {
        c->samesite = "Lax";
    }
    else if (!strcasecmp(arg, "Strict")) {
        c->samesite = "Strict";
    }
    else if (!strcasecmp(arg, "None")) {
        c->samesite = "None";
    }
    else {
        return fail(cmd, "must be Lax, Strict or None");
    }
    return NULL;
}

static const char *set_cookie_secure(cmd_parms *cmd, void *dummy, const char *arg)
{
    mc_srv_cfg *c = srv_cfg(cmd);
    if (!strcasecmp(arg, "On")) {
        c->cookie_secure = MC_SECURE_ON;
    }
    else if (!strcasecmp(arg, "Off")) {
        c->cookie_secure = MC_SECURE_OFF;
    }
    else if (!strcasecmp(arg, "Auto")) {
        c->cookie_secure = MC_SECURE_AUTO;
    }
    else {
        return fail(cmd, "must be On, Off or Auto");
    }
    return NULL;
}

static const char *set_seconds(cmd_parms *cmd, const char *arg, long min, long max, long *slot)
{
    const char *err = mc_value_seconds(arg, min, max, slot);
    if (err) {
        return fail(cmd, apr_psprintf(cmd->pool, "'%s' %s (%ld to %ld seconds)",
                                      arg, err, min, max));
    }
    return NULL;
}

static const char *set_inactivity(cmd_parms *cmd, void *dummy, const char *arg)
{
    return set_seconds(cmd, arg, 1, 31536000, &srv_cfg(cmd)->inactivity_timeout);
}

static const char *set_max_duration(cmd_parms *cmd, void *dummy, const char *arg)
{
    return set_seconds(cmd, arg, 1, 31536000, &srv_cfg(cmd)->max_duration);
}

static const char *set_refresh_before(cmd_parms *cmd, void *dummy, const char *arg)
{
    return set_seconds(cmd, arg, 0, 86400, &srv_cfg(cmd)->refresh_before);
}

static const char *set_pkce(cmd_parms *cmd, void *dummy, int on)
{
    srv_cfg(cmd)->pkce = on;
    return NULL;
}

static const char *set_ssl_verify(cmd_parms *cmd, void *dummy, int on)
{
    srv_cfg(cmd)->ssl_verify = on;
    if (!on) {
        ap_log_error(APLOG_MARK, APLOG_WARNING | APLOG_STARTUP, 0, cmd->server,
                     "MC0019: mc-cfg-noverify: MoneiConnectSSLVerify Off at %s:%d: TLS certificates of "
                     "the Monei API are NOT verified; use this with a sandbox only",
                     cmd->directive->filename, cmd->directive->line_num);
    }
    return NULL;
}

static const char *add_trusted_host(cmd_parms *cmd, void *dummy, const char *arg)
{
    mc_srv_cfg *c = srv_cfg(cmd);
    char *h = apr_pstrdup(cmd->pool, arg);
    if (!is_token(h, "/\\@?#\"'<>") || strchr(h, ':') != strrchr(h, ':')) {
        return fail(cmd, "must be a host name, optionally with :port");
    }
    ap_str_tolower(h);
    if (!c->trusted_hosts) {
        c->trusted_hosts = apr_array_make(cmd->pool, 2, sizeof(const char *));
    }
    APR_ARRAY_PUSH(c->trusted_hosts, const char *) = h;
    return NULL;
}

static const char *set_http_timeout(cmd_parms *cmd, void *dummy, const char *a1, const char *a2)
{
    mc_srv_cfg *c = srv_cfg(cmd);
    long conn, total;
    const char *err = set_seconds(cmd, a1, 1, 300, &conn);
    if (err) {
        return err;
    }
    if (a2) {
        if ((err = set_seconds(cmd, a2, 1, 600, &total))) {
            return err;
        }
    }
    else {
        total = conn * 2;
    }
    if (total < conn) {
        return fail(cmd, "the total timeout must not be shorter than the connect timeout");
    }
    c->connect_timeout = conn;
    c->total_timeout = total;
    return NULL;
}

static const char *set_ca_file(cmd_parms *cmd, void *dummy, const char *arg)
{
    mc_srv_cfg *c = srv_cfg(cmd);
    const char *path = ap_server_root_relative(cmd->pool, arg);
    apr_finfo_t fi;
    if (!path || apr_stat(&fi, path, APR_FINFO_TYPE, cmd->pool) != APR_SUCCESS
        || fi.filetype != APR_REG) {
        return fail(cmd, apr_psprintf(cmd->pool, "'%s' is not a readable file", arg));
    }
    c->ca_file = path;
    return NULL;
}

static const char *set_proxy(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *scheme;
    const char *err = mc_value_url(cmd->pool, arg, 0, &scheme, NULL, NULL, NULL);
    if (err) {
        return fail(cmd, err);
    }
    if (strcasecmp(scheme, "http") && strcasecmp(scheme, "https") && strcasecmp(scheme, "socks5")
        && strcasecmp(scheme, "socks5h") && strcasecmp(scheme, "socks4")) {
        return fail(cmd, "must be an http, https, socks4, socks5 or socks5h URL");
    }
    srv_cfg(cmd)->outbound_proxy = arg;
    return NULL;
}

/* ------------------------------------------------------------------ directory directives */

static const char *set_scope(cmd_parms *cmd, void *dv, const char *arg)
{
    mc_dir_cfg *d = dv;
    const char *norm = normalize_words(cmd->pool, arg);
    const char *err = check_scope_list(cmd->pool, norm);
    if (err) {
        return fail(cmd, err);
    }
    d->scope = norm;
    allow_scopes(cmd->pool, norm);
    return NULL;
}

const char *mc_config_require_scopes(cmd_parms *cmd, const char *list)
{
    const char *norm = normalize_words(cmd->pool, list);
    const char *err = check_scope_list(cmd->pool, norm ? norm : "");
    mc_dir_cfg *d;

    if (err) {
        return apr_pstrcat(cmd->pool, "Require monei-scope: ", err, NULL);
    }
    allow_scopes(cmd->pool, norm);
    /* cmd->context is the per-directory configuration of the section being read. */
    d = cmd->context ? ap_get_module_config(cmd->context, &monei_connect_module) : NULL;
    if (d) {
        d->require_scopes = d->require_scopes
                                ? mc_scope_union(cmd->pool, d->require_scopes, norm) : norm;
    }
    return NULL;
}

static const char *set_default_return(cmd_parms *cmd, void *dv, const char *arg)
{
    mc_dir_cfg *d = dv;
    if (arg[0] == '/' && arg[1] != '/' && arg[1] != '\\' && is_token(arg, "\\")) {
        d->default_return = arg;
        return NULL;
    }
    return fail(cmd, "must be a local path (/...)");
}

static const char *set_wallet_max_age(cmd_parms *cmd, void *dv, const char *arg)
{
    return set_seconds(cmd, arg, 0, 86400, &((mc_dir_cfg *)dv)->wallet_max_age);
}

static const char *set_logout_redirect(cmd_parms *cmd, void *dv, const char *arg)
{
    mc_dir_cfg *d = dv;
    if (arg[0] == '/' && arg[1] != '/' && arg[1] != '\\' && is_token(arg, "\\")) {
        d->logout_redirect = arg;
        return NULL;
    }
    if (mc_value_url(cmd->pool, arg, 1, NULL, NULL, NULL, NULL) == NULL) {
        d->logout_redirect = arg;
        return NULL;
    }
    return fail(cmd, "must be a local path (/...) or an absolute http(s) URL");
}

static const char *set_export_mode(cmd_parms *cmd, mc_dir_cfg *d, const char *arg);

/* Remember a header prefix of this server for the scrub (the default one first). */
static void add_scrub_prefix(cmd_parms *cmd, const char *prefix)
{
    mc_srv_cfg *c = srv_cfg(cmd);
    int i;
    if (!c->scrub_prefixes) {
        c->scrub_prefixes = apr_array_make(cmd->pool, 2, sizeof(const char *));
        APR_ARRAY_PUSH(c->scrub_prefixes, const char *) = MC_DEFAULT_HEADER_PREFIX;
    }
    for (i = 0; i < c->scrub_prefixes->nelts; i++) {
        if (!strcasecmp(APR_ARRAY_IDX(c->scrub_prefixes, i, const char *), prefix)) {
            return;
        }
    }
    APR_ARRAY_PUSH(c->scrub_prefixes, const char *) = prefix;
}

static const char *set_export(cmd_parms *cmd, void *dv, const char *arg)
{
    mc_dir_cfg *d = dv;
    const char *err = set_export_mode(cmd, d, arg);
    if (!err && d->export_mode & MC_EXPORT_HEADERS) {
        srv_cfg(cmd)->exports_headers = 1;
        add_scrub_prefix(cmd, MC_DEFAULT_HEADER_PREFIX);
    }
    return err;
}

static const char *set_export_mode(cmd_parms *cmd, mc_dir_cfg *d, const char *arg)
{
    if (!strcasecmp(arg, "env")) {
        d->export_mode = MC_EXPORT_ENV;
    }
    else if (!strcasecmp(arg, "headers")) {
        d->export_mode = MC_EXPORT_HEADERS;
    }
    else if (!strcasecmp(arg, "both")) {
        d->export_mode = MC_EXPORT_ENV | MC_EXPORT_HEADERS;
    }
    else if (!strcasecmp(arg, "none")) {
        d->export_mode = 0;
    }
    else {
        return fail(cmd, "must be env, headers, both or none");
    }
    return NULL;
}

static const char *set_header_prefix(cmd_parms *cmd, void *dv, const char *arg)
{
    if (!is_token(arg, "()<>@,;:\\\"/[]?={}")) {
        return fail(cmd, "must be a header-name prefix such as X-Monei-");
    }
    ((mc_dir_cfg *)dv)->header_prefix = arg;
    add_scrub_prefix(cmd, arg);
    return NULL;
}

static const char *set_pass_token(cmd_parms *cmd, void *dv, const char *arg)
{
    mc_dir_cfg *d = dv;
    if (!strcasecmp(arg, "on")) {
        d->pass_access_token = MC_PASS_TOKEN_ON;
    }
    else if (!strcasecmp(arg, "off")) {
        d->pass_access_token = MC_PASS_TOKEN_OFF;
    }
    else if (!strcasecmp(arg, "bearer")) {
        d->pass_access_token = MC_PASS_TOKEN_BEARER;
    }
    else {
        return fail(cmd, "must be On, Off or Bearer");
    }
    return NULL;
}

static const char *set_unauth(cmd_parms *cmd, void *dv, const char *arg)
{
    mc_dir_cfg *d = dv;
    if (!strcasecmp(arg, "auth")) {
        d->unauth_action = MC_UNAUTH_AUTH;
    }
    else if (!strcmp(arg, "401")) {
        d->unauth_action = MC_UNAUTH_401;
    }
    else if (!strcasecmp(arg, "pass")) {
        d->unauth_action = MC_UNAUTH_PASS;
    }
    else {
        return fail(cmd, "must be auth, 401 or pass");
    }
    return NULL;
}

static const char *set_step_up(cmd_parms *cmd, void *dv, int on)
{
    ((mc_dir_cfg *)dv)->step_up = on;
    return NULL;
}

#define SRV RSRC_CONF
/* What decides what is asked of Monei and what leaves the server: server, <VirtualHost>,
 * <Location>, <Directory>, never .htaccess (httpd refuses it there, naming the directive). */
#define LOC (RSRC_CONF | ACCESS_CONF)
/* Also .htaccess under AllowOverride AuthConfig. */
#define DIR (RSRC_CONF | ACCESS_CONF | OR_AUTHCFG)

const command_rec mc_cmds[] = {
    AP_INIT_TAKE1("MoneiConnectClientID", set_client_id, NULL, SRV,
        "The app's Monei Connect client id (mc_...); file:/path and env:NAME accepted"),
    AP_INIT_TAKE1("MoneiConnectClientSecret", set_client_secret, NULL, SRV,
        "The client secret (mcs_...), best as file:/path or env:NAME; never logged"),
    AP_INIT_TAKE1("MoneiConnectRedirectURI", set_redirect_uri, NULL, SRV,
        "The registered redirect URI, absolute; the module answers requests to its path"),
    AP_INIT_TAKE_ARGV("MoneiConnectCryptoPassphrase", set_passphrase, NULL, SRV,
        "Session encryption passphrases: the first encrypts, all decrypt (key rotation)"),
    AP_INIT_TAKE1("MoneiConnectAuthorizeURL", set_authorize_url, NULL, SRV,
        "Monei's authorize page (default " MC_DEFAULT_AUTHORIZE_URL ")"),
    AP_INIT_TAKE1("MoneiConnectAPIBase", set_api_base, NULL, SRV,
        "Base URL of Monei's API (default " MC_DEFAULT_API_BASE ")"),
    AP_INIT_TAKE1("MoneiConnectSessionStore", set_session_store, NULL, RSRC_CONF,
        "Session store: shm[:SESSIONS] (built-in, default shm:10000), or an ap_socache "
        "provider: redis:host:port, memcache:host:port, shmcb[:/path(bytes)], dbm:/path"),
    AP_INIT_TAKE1("MoneiConnectSessionCookie", set_cookie_name, NULL, SRV,
        "Session cookie name (default monei_session, __Host-monei_session on https)"),
    AP_INIT_TAKE1("MoneiConnectCookieSameSite", set_samesite, NULL, SRV,
        "SameSite attribute of the module's cookies: Lax (default), Strict or None"),
    AP_INIT_TAKE1("MoneiConnectCookieSecure", set_cookie_secure, NULL, SRV,
        "Secure attribute: On, Off or Auto (default: Secure when the redirect URI is https)"),
    AP_INIT_TAKE1("MoneiConnectSessionInactivityTimeout", set_inactivity, NULL, SRV,
        "Seconds of inactivity after which a session ends (default "
        APR_STRINGIFY(MC_DEFAULT_INACTIVITY) ")"),
    AP_INIT_TAKE1("MoneiConnectSessionMaxDuration", set_max_duration, NULL, SRV,
        "Seconds after login after which a session ends, however active (default "
        APR_STRINGIFY(MC_DEFAULT_MAX_DURATION) ")"),
    AP_INIT_TAKE1("MoneiConnectRefreshBeforeExpiry", set_refresh_before, NULL, SRV,
        "Refresh the access token this many seconds before it expires (default "
        APR_STRINGIFY(MC_DEFAULT_REFRESH_BEFORE) ")"),
    AP_INIT_TAKE1("MoneiConnectWalletMaxAge", set_wallet_max_age, NULL, DIR,
        "Maximum age in seconds of the cached wallet/profile snapshot (default "
        APR_STRINGIFY(MC_DEFAULT_WALLET_MAX_AGE) ", 0 = always)"),
    AP_INIT_TAKE1("MoneiConnectExport", set_export, NULL, LOC,
        "How downstream content sees the session: env (default), headers, both or none"),
    AP_INIT_TAKE1("MoneiConnectHeaderPrefix", set_header_prefix, NULL, LOC,
        "Prefix of exported request headers (default X-Monei-)"),
    AP_INIT_TAKE1("MoneiConnectPassAccessToken", set_pass_token, NULL, LOC,
        "Export MONEI_ACCESS_TOKEN to the application: On, Off (default) or Bearer (also "
        "Authorization: Bearer <token> to content and proxied backends)"),
    AP_INIT_TAKE1("MoneiConnectUnauthAction", set_unauth, NULL, DIR,
        "Without a session: auth (default: redirect browsers, 401 API clients), 401 or pass"),
    AP_INIT_FLAG("MoneiConnectStepUp", set_step_up, NULL, DIR,
        "Ask Monei for missing Require monei-scope scopes (On, default) or answer 403 (Off)"),
    AP_INIT_FLAG("MoneiConnectPKCE", set_pkce, NULL, SRV,
        "Send a PKCE S256 code_challenge (default On)"),
    AP_INIT_TAKE1("MoneiConnectScope", set_scope, NULL, LOC,
        "Scopes asked for when a login starts here (default \"wallet:read profile:read\")"),
    AP_INIT_TAKE1("MoneiConnectLogoutRedirect", set_logout_redirect, NULL, LOC,
        "Where a disconnect lands (default /)"),
    AP_INIT_TAKE1("MoneiConnectDefaultReturn", set_default_return, NULL, LOC,
        "Where a login started without return_to lands (default " MC_DEFAULT_RETURN ")"),
    AP_INIT_ITERATE("MoneiConnectTrustedReturnHost", add_trusted_host, NULL, SRV,
        "Hosts (host or host:port) besides this one that return_to may name"),
    AP_INIT_TAKE12("MoneiConnectHTTPTimeout", set_http_timeout, NULL, SRV,
        "Connect and total timeout in seconds for calls to Monei (default "
        APR_STRINGIFY(MC_DEFAULT_CONNECT_TIMEOUT) " " APR_STRINGIFY(MC_DEFAULT_TOTAL_TIMEOUT) ")"),
    AP_INIT_TAKE1("MoneiConnectCAFile", set_ca_file, NULL, SRV,
        "CA certificates (PEM) to verify Monei's API with (default: the system store)"),
    AP_INIT_FLAG("MoneiConnectSSLVerify", set_ssl_verify, NULL, SRV,
        "Verify the TLS certificate of Monei's API (default On; Off for sandboxes only)"),
    AP_INIT_TAKE1("MoneiConnectOutboundProxy", set_proxy, NULL, SRV,
        "Proxy URL for calls to Monei (default none)"),
    { NULL }
};

/* ------------------------------------------------------------------ startup checks */

void mc_config_pre(apr_pool_t *pconf)
{
    memset(&mc_store_config, 0, sizeof(mc_store_config));
    allowed_scopes = apr_array_make(pconf, 8, sizeof(const char *));
    reading_config = 1;
}

typedef struct {
    const char *what;      /* "AuthType MoneiConnect" or "SetHandler monei-connect-info" */
    const char *file;
    int line;
    const char *vhost_file; /* the enclosing <VirtualHost>, NULL for the main server */
    int vhost_line;
} mc_use_t;

static int arg_is(const char *args, const char *word, int prefix)
{
    apr_size_t n = strlen(word);
    if (*args == '"') {
        args++;
    }
    return prefix ? strncasecmp(args, word, n) == 0
                  : (strncasecmp(args, word, n) == 0 && (args[n] == '\0' || args[n] == '"'));
}

static void find_uses(apr_pool_t *p, const ap_directive_t *d, const ap_directive_t *vhost,
                      apr_array_header_t *uses)
{
    for (; d; d = d->next) {
        const char *what = NULL;
        if (!strcasecmp(d->directive, "AuthType") && d->args && arg_is(d->args, "MoneiConnect", 0)) {
            what = "AuthType MoneiConnect";
        }
        else if ((!strcasecmp(d->directive, "SetHandler") || !strcasecmp(d->directive, "AddHandler"))
                 && d->args && arg_is(d->args, "monei-connect-", 1)) {
            what = apr_pstrcat(p, d->directive, " ", d->args, NULL);
        }
        if (what) {
            mc_use_t *u = apr_array_push(uses);
            u->what = what;
            u->file = d->filename;
            u->line = d->line_num;
            u->vhost_file = vhost ? vhost->filename : NULL;
            u->vhost_line = vhost ? vhost->line_num : 0;
        }
        if (d->first_child) {
            find_uses(p, d->first_child,
                      !strcasecmp(d->directive, "<VirtualHost") ? d : vhost, uses);
        }
    }
}

static server_rec *server_of(server_rec *main_s, const mc_use_t *u)
{
    server_rec *s;
    if (!u->vhost_file) {
        return main_s;
    }
    for (s = main_s->next; s; s = s->next) {
        if (s->defn_name && !strcmp(s->defn_name, u->vhost_file)
            && (int)s->defn_line_number == u->vhost_line) {
            return s;
        }
    }
    return main_s;
}

static int require(server_rec *s, const mc_use_t *u, const void *value, const char *name)
{
    if (value) {
        return OK;
    }
    ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, 0, NULL,
                 "MC0020: mod_monei_connect: %s is required: %s is used at %s:%d but server %s:%d "
                 "has no %s", name, u->what, u->file, u->line,
                 s->server_hostname ? s->server_hostname : "(main)", s->port, name);
    return !OK;
}

/* A MoneiConnectLogoutRedirect must be a target return_to could name too: a path here, this
 * server's own name or a MoneiConnectTrustedReturnHost. Checked once the whole configuration
 * is read (the trusted hosts may come after it). */
static int check_logout_redirects(apr_pool_t *p, server_rec *main_s, const ap_directive_t *d,
                                  const ap_directive_t *vhost)
{
    int rc = OK;
    for (; d; d = d->next) {
        if (!strcasecmp(d->directive, "MoneiConnectLogoutRedirect") && d->args) {
            mc_use_t u = { "MoneiConnectLogoutRedirect", d->filename, d->line_num,
                           vhost ? vhost->filename : NULL, vhost ? vhost->line_num : 0 };
            server_rec *vs = server_of(main_s, &u);
            mc_srv_cfg *c = ap_get_module_config(vs->module_config, &monei_connect_module);
            const char *args = d->args;
            const char *value = ap_getword_conf(p, &args);
            const char *safe = NULL;
            mc_origin_t here;
            /* This server as its redirect URI names it (requests are checked against their
             * own canonical name and port). */
            here.scheme = c->redirect_scheme ? c->redirect_scheme : "http";
            here.host = c->redirect_host ? c->redirect_host : vs->server_hostname;
            here.port = c->redirect_port != MC_UNSET ? c->redirect_port : vs->port;
            if (mc_return_to_check(p, value, &here, c->trusted_hosts, &safe) != APR_SUCCESS) {
                ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, 0, NULL,
                             "MC0021: mod_monei_connect: MoneiConnectLogoutRedirect at %s:%d: '%s' is "
                             "neither a path on this site nor a URL on this server's name or "
                             "a MoneiConnectTrustedReturnHost (what return_to refuses is "
                             "refused here too)", d->filename, d->line_num, value);
                rc = !OK;
            }
        }
        if (d->first_child && check_logout_redirects(p, main_s, d->first_child,
                                                     !strcasecmp(d->directive, "<VirtualHost")
                                                     ? d : vhost) != OK) {
            rc = !OK;
        }
    }
    return rc;
}

int mc_config_check(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    apr_array_header_t *uses = apr_array_make(ptemp, 4, sizeof(mc_use_t));
    int i, rc = OK;

    /* The files are read: a Require parsed from now on comes from an .htaccess file. */
    reading_config = 0;
    find_uses(ptemp, ap_conftree, NULL, uses);
    for (i = 0; i < uses->nelts; i++) {
        const mc_use_t *u = &APR_ARRAY_IDX(uses, i, mc_use_t);
        server_rec *vs = server_of(s, u);
        mc_srv_cfg *c = ap_get_module_config(vs->module_config, &monei_connect_module);

        if (require(vs, u, c->client_id, "MoneiConnectClientID") != OK
            || require(vs, u, c->client_secret, "MoneiConnectClientSecret") != OK
            || require(vs, u, c->redirect_uri, "MoneiConnectRedirectURI") != OK
            || require(vs, u, c->passphrases, "MoneiConnectCryptoPassphrase") != OK) {
            rc = !OK;
            continue;
        }
        if (c->samesite && !strcmp(c->samesite, "None") && !mc_cfg_secure(c)) {
            ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, 0, NULL,
                         "MC0022: mod_monei_connect: MoneiConnectCookieSameSite None needs Secure "
                         "cookies (browsers drop SameSite=None without Secure): set "
                         "MoneiConnectCookieSecure On or use an https redirect URI");
            rc = !OK;
        }
    }
    if (check_logout_redirects(ptemp, s, ap_conftree, NULL) != OK) {
        rc = !OK;
    }
    if (rc == OK && (uses->nelts > 0 || mc_store_config.provider_name)) {
        rc = mc_store_check(pconf, ptemp);
    }
    mc_config_in_use = uses->nelts > 0;
    return rc;
}
