/* AuthType MoneiConnect: authentication, token upkeep on the way, and what downstream
 * content sees (environment and/or request headers). */
#include "mod_mc.h"
#include "mod_mc_store.h"
#include "mod_mc_status.h"
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

/* Use a record another request wrote after refreshing (keep our activity stamp). */
static int adopt_if_refreshed(request_rec *r, mc_session_rec **s)
{
    mc_req_ctx *ctx = mc_ctx(r);
    mc_session_rec *fresh = NULL;
    if (mc_session_load_key(r, ctx->store_key, &fresh) == APR_SUCCESS
        && fresh->generation != (*s)->generation) {
        fresh->last_active = (*s)->last_active;
        ctx->sess = *s = fresh;
        return 1;
    }
    if (fresh) {
        ctx->sess = *s = fresh;
    }
    return 0;
}

/* Refresh the access token when due. Returns 1 when the session may be used, 0 when the
 * session ended (refresh token rejected), -1 when no usable token could be had.
 *
 * One refresh per session at a time: a lock record in the store (expiring only after the
 * longest possible call to Monei). Requests whose token still works do not wait; requests
 * whose token has expired wait for the holder and take the record it wrote. A request that
 * loses a race across servers (Monei answers 401 for a rotated token) re-reads the store. */
static int upkeep_token(request_rec *r, mc_session_rec *s, int force)
{
    mc_srv_cfg *c = mc_srv(r);
    mc_req_ctx *ctx = mc_ctx(r);
    long before = c->refresh_before != MC_UNSET ? c->refresh_before : 60;
    mc_http_opts o = mc_api_opts(c);
    apr_interval_time_t ttl = apr_time_from_sec(o.total_timeout + 10);
    apr_time_t deadline = apr_time_now() + ttl;
    apr_int64_t now = apr_time_sec(apr_time_now());
    int must = force || now >= s->expires_at;
    const char *lock_key;
    mc_api_result res;
    apr_status_t rv;

    if (!force && now < s->expires_at - before) {
        return 1;
    }
    if (!force && s->refresh_after > now) {
        /* Monei asked us to wait (429): use the token while it lasts. */
        return must ? -1 : 1;
    }
    lock_key = mc_store_key(r->pool, 'l', ctx->session_id);
    while ((rv = mc_store_lock(r->server, lock_key, ttl, r->pool)) == APR_EBUSY) {
        if (!must) {
            return 1;
        }
        apr_sleep(apr_time_from_msec(50));
        if (adopt_if_refreshed(r, &s)) {
            return 1;
        }
        if (apr_time_now() > deadline) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          "mc-refresh: gave up waiting for another request's refresh");
            return -1;
        }
    }
    if (rv != APR_SUCCESS) {
        return must ? -1 : 1;
    }
    if (adopt_if_refreshed(r, &s)) {
        mc_store_remove(r->server, lock_key, r->pool);
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      "mc-refresh: another request refreshed this session already");
        return 1;
    }
    if (mc_api_refresh(r, s, &res)) {
        mc_stat_inc(MC_STAT_REFRESH_OK);
        mc_session_save(r, s, ctx->store_key);
        ctx->dirty = 0;
        mc_store_remove(r->server, lock_key, r->pool);
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "mc-refresh: tokens rotated");
        return 1;
    }
    mc_stat_inc(res.http_status == 429 ? MC_STAT_REFRESH_429 : MC_STAT_REFRESH_FAILED);
    if (res.http_status == 429) {
        s->refresh_after = now + (res.retry_after > 0 ? res.retry_after : 30);
        mc_session_save(r, s, ctx->store_key);
        ctx->dirty = 0;
        mc_store_remove(r->server, lock_key, r->pool);
        return must ? -1 : 1;
    }
    mc_store_remove(r->server, lock_key, r->pool);
    if (res.http_status == 401 || res.http_status == 400 || res.http_status == 404) {
        /* Another server may have won a race for the same refresh token. */
        if (adopt_if_refreshed(r, &s)) {
            return 1;
        }
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "mc-refresh: Monei rejected the refresh token; the session ends");
        return 0;
    }
    return must ? -1 : 1;
}

/* Load the session and bring token and snapshot up to date. */
mc_sess_result mc_session_ready(request_rec *r)
{
    mc_req_ctx *ctx = mc_ctx(r);
    mc_sess_result sr = mc_session_load(r);
    long max_age = mc_cfg_wallet_max_age(mc_dir(r));
    apr_int64_t now = apr_time_sec(apr_time_now());
    int rc;

    if (sr != MC_SESS_OK || ctx->exported) {
        return sr;
    }
    rc = upkeep_token(r, ctx->sess, 0);
    if (rc == 0) {
        mc_stat_inc(MC_STAT_REVOKED);
        mc_session_destroy(r);
        return MC_SESS_NONE;
    }
    if (rc > 0 && (max_age == 0 || now - ctx->sess->snapshot_at >= max_age)) {
        mc_session_rec *s = ctx->sess;
        int was_stale = s->snapshot_stale;
        int snap = mc_api_snapshot(r, s);
        if (snap < 0) {
            /* The token was refused: one refresh, then one more try. */
            rc = upkeep_token(r, s, 1);
            if (rc == 0) {
                mc_stat_inc(MC_STAT_REVOKED);
                mc_session_destroy(r);
                return MC_SESS_NONE;
            }
            s = ctx->sess;
            snap = rc > 0 ? mc_api_snapshot(r, s) : 0;
            if (snap < 0) {
                ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                              "mc-session: Monei refuses the session's tokens; it ends");
                mc_stat_inc(MC_STAT_REVOKED);
                mc_session_destroy(r);
                return MC_SESS_NONE;
            }
        }
        /* Write fresh data, or the first failure; not every request while Monei is down. */
        if (snap > 0 || s->snapshot_stale != was_stale) {
            ctx->dirty = 1;
        }
    }
    else if (rc < 0 && (max_age == 0 || now - ctx->sess->snapshot_at >= max_age)
             && !ctx->sess->snapshot_stale) {
        /* No usable token (Monei unreachable): the page gets the last snapshot, marked. */
        ctx->sess->snapshot_stale = 1;
        ctx->dirty = 1;
    }
    return MC_SESS_OK;
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
void mc_scrub_headers(request_rec *r)
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

void mc_export(request_rec *r, const mc_session_rec *s)
{
    mc_dir_cfg *d = mc_dir(r);
    mc_req_ctx *ctx = mc_ctx(r);
    mc_exporter x;

    if (ctx->exported) {
        return;
    }
    ctx->exported = 1;
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

int mc_check_authn(request_rec *r)
{
    mc_sess_result sr;
    mc_req_ctx *ctx;

    if (!is_ours(r)) {
        return DECLINED;
    }
    if (!mc_server_active(mc_srv(r))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mc-config: AuthType MoneiConnect is used "
                      "here but this server lacks MoneiConnectClientID/ClientSecret/"
                      "RedirectURI/CryptoPassphrase");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    ctx = mc_ctx(r);
    sr = mc_session_ready(r);
    if (sr != MC_SESS_OK) {
        return unauthenticated(r, sr);
    }
    r->user = apr_pstrdup(r->pool, ctx->sess->subject ? ctx->sess->subject : "");
    r->ap_auth_type = MC_AUTH_TYPE;
    mc_export(r, ctx->sess);
    mc_session_finish(r);
    return OK;
}

/* Locations that say AuthType MoneiConnect but need no user (Require all granted) never
 * reach check_authn; they still get the variables, as under MoneiConnectUnauthAction pass. */
int mc_fixups(request_rec *r)
{
    mc_req_ctx *ctx;
    if (!is_ours(r) || !mc_server_active(mc_srv(r))) {
        return DECLINED;
    }
    ctx = mc_ctx(r);
    if (ctx->exported) {
        return DECLINED;
    }
    if (mc_session_ready(r) == MC_SESS_OK) {
        r->user = apr_pstrdup(r->pool, ctx->sess->subject ? ctx->sess->subject : "");
        r->ap_auth_type = MC_AUTH_TYPE;
        mc_export(r, ctx->sess);
        mc_session_finish(r);
    }
    else {
        mc_export(r, NULL);
    }
    return DECLINED;
}
