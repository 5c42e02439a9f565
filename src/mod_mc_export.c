/* What downstream content sees of a session: the environment (CGI, SSI, PHP, logs) and/or
 * request headers (proxied applications), per MoneiConnectExport. */
#include "mod_mc.h"
#include "mod_mc_export.h"
#include "mc_monei.h"
#include "mc_text.h"

#include <apr_strings.h>
#include <apr_lib.h>

APLOG_USE_MODULE(monei_connect);

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

/* PassAccessToken Bearer: the backend gets the session's token the way OAuth resource
 * servers expect it, and never an Authorization the client sent. */
static void bearer(request_rec *r, const mc_dir_cfg *d, const mc_session_rec *s)
{
    if (mc_cfg_pass_token(d) != MC_PASS_TOKEN_BEARER) {
        return;
    }
    if (s && s->access_token) {
        apr_table_setn(r->headers_in, "Authorization",
                       apr_pstrcat(r->pool, "Bearer ", s->access_token, NULL));
    }
    else {
        apr_table_unset(r->headers_in, "Authorization");
    }
}

void mc_export(request_rec *r, const mc_session_rec *s)
{
    mc_dir_cfg *d = mc_dir(r);
    mc_req_notes *n = mc_notes(r);
    mc_exporter x;

    if (n->exported) {
        return;
    }
    n->exported = 1;
    x.r = r;
    x.mode = mc_cfg_export(d);
    x.prefix = mc_cfg_header_prefix(d);
    /* Again here: an internal redirect carries the headers exported for the request before. */
    if (x.mode & MC_EXPORT_HEADERS) {
        mc_scrub_headers(r, x.prefix);
    }
    bearer(r, d, s);
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
    if (mc_cfg_pass_token(d) != MC_PASS_TOKEN_OFF && s->access_token) {
        put_var(&x, "MONEI_ACCESS_TOKEN", s->access_token);
    }
}
