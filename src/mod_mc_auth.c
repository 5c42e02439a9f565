/* AuthType MoneiConnect: authentication (the session made ready by mod_mc_refresh.c), and
 * what downstream content sees (environment and/or request headers). */
#include "mod_mc.h"
#include "mc_monei.h"
#include "mc_text.h"

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

/* ---------------------------------------------------------------- export */

static int header_prefixed(void *rec, const char *key, const char *value)
{
    apr_array_header_t *drop = rec;
    const char *prefix = ((const char **)drop->elts)[0];
    if (!strncasecmp(key, prefix, strlen(prefix))) {
        APR_ARRAY_PUSH(drop, const char *) = key;
    }
    return 1;
}

/* No client can forge our headers: anything with the prefix is removed first. */
static void mc_scrub_headers(request_rec *r)
{
    apr_array_header_t *drop = apr_array_make(r->pool, 4, sizeof(const char *));
    int i;
    APR_ARRAY_PUSH(drop, const char *) = mc_cfg_header_prefix(mc_dir(r));
    apr_table_do(header_prefixed, drop, r->headers_in, NULL);
    for (i = 1; i < drop->nelts; i++) {
        apr_table_unset(r->headers_in, APR_ARRAY_IDX(drop, i, const char *));
    }
}

/* Where this location's variables go. This runs on every request, so: no intermediate
 * table, no apr_strtok (a strchr per byte), and no apr_table_setn where it can be avoided
 * (our names all share their first four letters, apr_table's checksum, so each setn compares
 * against every variable set before). Every name is set once: the names are distinct
 * (mc_snapshot_exports keeps one value per name) and the header prefix was scrubbed. Only
 * when the environment already holds MONEI_ variables (a subrequest, SetEnv) are they
 * replaced one by one. */
typedef struct {
    request_rec *r;
    int mode;
    const char *prefix;
    int env_replace;
} mc_exporter;

static int has_prefixed_key(const apr_table_t *t, const char *prefix)
{
    const apr_array_header_t *a = apr_table_elts(t);
    const apr_table_entry_t *e = (const apr_table_entry_t *)a->elts;
    apr_size_t n = strlen(prefix);
    int i;
    for (i = 0; i < a->nelts; i++) {
        if (e[i].key && !strncasecmp(e[i].key, prefix, n)) {
            return 1;
        }
    }
    return 0;
}

static void put_var(const mc_exporter *x, const char *name, const char *value)
{
    if (x->mode & MC_EXPORT_ENV) {
        if (x->env_replace) {
            apr_table_setn(x->r->subprocess_env, name, value);
        }
        else {
            apr_table_addn(x->r->subprocess_env, name, value);
        }
    }
    if (x->mode & MC_EXPORT_HEADERS) {
        apr_table_addn(x->r->headers_in, mc_var_to_header(x->r->pool, x->prefix, name),
                       mc_sanitize_value(x->r->pool, value));
    }
}

/* MONEI_SCOPES and one MONEI_SCOPE_<S>=1 per granted scope (stored scopes never repeat:
 * the token parser and mc_scope_union drop repeats). */
static void put_scopes(const mc_exporter *x, const char *scopes)
{
    const char *w = scopes ? scopes : "", *end;
    put_var(x, "MONEI_SCOPES", w);
    for (; *w; w = end) {
        char *name, *ch;
        apr_size_t n;
        while (*w == ' ') {
            w++;
        }
        if (!(end = strchr(w, ' '))) {
            end = w + strlen(w);
        }
        if (!(n = (apr_size_t)(end - w))) {
            continue;
        }
        name = apr_palloc(x->r->pool, sizeof("MONEI_SCOPE_") + n);
        memcpy(name, "MONEI_SCOPE_", sizeof("MONEI_SCOPE_") - 1);
        for (ch = name + sizeof("MONEI_SCOPE_") - 1; w < end; w++) {
            *ch++ = (*w == ':') ? '_' : apr_toupper(*w);
        }
        *ch = '\0';
        put_var(x, name, "1");
    }
}

/* Variables flattened when the snapshot was fetched (mc_snapshot_exports): "NAME\tvalue\n"
 * lines, split in a copy. */
static void put_flattened(const mc_exporter *x, const char *flat)
{
    char *line = apr_pstrdup(x->r->pool, flat), *nl, *tab;
    for (; *line; line = nl) {
        if ((nl = strchr(line, '\n'))) {
            *nl++ = '\0';
        }
        else {
            nl = line + strlen(line);
        }
        if ((tab = strchr(line, '\t'))) {
            *tab = '\0';
            put_var(x, line, tab + 1);
        }
    }
}

/* The variables a snapshot older than the exports field gives (records written before it). */
static int put_table_var(void *rec, const char *key, const char *value)
{
    put_var(rec, key, value);
    return 1;
}

static void mc_export(request_rec *r, const mc_session_rec *s)
{
    mc_dir_cfg *d = mc_dir(r);
    mc_req_notes *n = mc_notes(r);
    mc_exporter x;

    if (n->exported) {
        return;
    }
    n->exported = 1;
    mc_scrub_headers(r);
    x.r = r;
    x.mode = mc_cfg_export(d);
    x.prefix = mc_cfg_header_prefix(d);
    x.env_replace = (x.mode & MC_EXPORT_ENV) && has_prefixed_key(r->subprocess_env, "MONEI_");
    if (!s) {
        put_var(&x, "MONEI_CONNECTED", "0");
        return;
    }
    put_var(&x, "MONEI_CONNECTED", "1");
    put_scopes(&x, s->scopes);
    put_var(&x, "MONEI_TOKEN_EXPIRES", apr_off_t_toa(r->pool, (apr_off_t)s->expires_at));
    if (s->exports) {
        put_flattened(&x, s->exports);
        if (s->wallet_json) {
            put_var(&x, "MONEI_WALLET_JSON", s->wallet_json);
        }
        if (s->user_json) {
            put_var(&x, "MONEI_USER_JSON", s->user_json);
        }
    }
    else {
        apr_table_t *vars = apr_table_make(r->pool, 16);
        if (s->wallet_json && mc_scope_has(s->scopes, "wallet:read")) {
            mc_export_wallet(r->pool, s->wallet_json, vars);
        }
        if (s->user_json && mc_scope_has(s->scopes, "profile:read")) {
            mc_export_user(r->pool, s->user_json, vars);
        }
        apr_table_do(put_table_var, &x, vars, NULL);
    }
    /* Snapshot bookkeeping only exists when something was granted to snapshot. */
    if (mc_scope_has(s->scopes, "wallet:read") || mc_scope_has(s->scopes, "profile:read")) {
        if (s->snapshot_at) {
            put_var(&x, "MONEI_WALLET_UPDATED",
                    apr_off_t_toa(r->pool, (apr_off_t)s->snapshot_at));
        }
        if (s->snapshot_stale) {
            put_var(&x, "MONEI_WALLET_STALE", "1");
        }
    }
    if (d->pass_access_token == 1 && s->access_token) {
        put_var(&x, "MONEI_ACCESS_TOKEN", s->access_token);
    }
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
    return mc_login_start(r, mc_original_url(r), mc_cfg_scope(mc_dir(r)), NULL);
}

/* A connected user: REMOTE_USER, the variables, and the record written back if it changed. */
static void connected(request_rec *r, mc_session_t *h)
{
    r->user = apr_pstrdup(r->pool, h->rec->subject ? h->rec->subject : "");
    r->ap_auth_type = MC_AUTH_TYPE;
    mc_export(r, h->rec);
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
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mc-config: AuthType MoneiConnect is used "
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
    }
    return DECLINED;
}
