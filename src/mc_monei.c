/* mc_monei: Monei Connect protocol bodies, no I/O. */
#include <string.h>
#include <strings.h>

#include <apr_strings.h>
#include <apr_lib.h>

#include "mc_json.h"
#include "mc_text.h"
#include "mc_monei.h"

/* ------------------------------------------------------------------ */
/* token response                                                      */

/* A token must be usable verbatim in "Authorization: Bearer <t>" and in
 * our store: printable ASCII, no space, bounded. */
static const char *check_token(json_t *obj, const char *key, const char **v)
{
    json_t *j = json_object_get(obj, key);
    const char *s;
    size_t len, i;

    *v = NULL;
    if (!j) return "missing";
    if (!json_is_string(j)) return "not a string";
    s = json_string_value(j);
    len = json_string_length(j);
    if (len == 0) return "empty";
    if (len > MC_TOKEN_MAX_LEN) return "too long";
    for (i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7E) {
            return "has characters outside printable ASCII";
        }
    }
    *v = s;
    return NULL;
}

static int scope_word_valid(const char *s, apr_size_t len)
{
    apr_size_t i, colon = 0;
    int colons = 0;

    if (len == 0 || len > MC_SCOPE_MAX_LEN) return 0;
    for (i = 0; i < len; i++) {
        if (s[i] == ':') {
            colons++;
            colon = i;
        }
        else if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_')) {
            return 0;
        }
    }
    return colons == 1 && colon > 0 && colon < len - 1;
}

apr_status_t mc_monei_parse_token(apr_pool_t *p, const char *body,
                                  apr_size_t len, mc_token_t *tok,
                                  const char **why)
{
    const char *dummy, *reason = NULL, *access, *refresh, *scopes = "";
    json_t *root = NULL, *j;
    apr_status_t rv;
    json_int_t expires;
    size_t i;

    if (!why) why = &dummy;
    *why = NULL;
    if (tok) memset(tok, 0, sizeof(*tok));
    if (!p || !tok || !body) {
        *why = "invalid arguments";
        return APR_EINVAL;
    }

    rv = mc_json_parse(body, len, &root);
    if (rv == APR_ENOSPC) {
        *why = "token response too large";
        return rv;
    }
    if (rv != APR_SUCCESS) {
        *why = "token response is not a JSON object";
        return APR_EGENERAL;
    }

    if ((reason = check_token(root, "access_token", &access))) {
        *why = apr_pstrcat(p, "access_token ", reason, NULL);
        goto fail;
    }
    if ((reason = check_token(root, "refresh_token", &refresh))) {
        *why = apr_pstrcat(p, "refresh_token ", reason, NULL);
        goto fail;
    }

    j = json_object_get(root, "token_type");
    if (j && !json_is_null(j)) {
        if (!json_is_string(j)) {
            *why = "token_type not a string";
            goto fail;
        }
        if (strcasecmp(json_string_value(j), "Bearer")
            || json_string_length(j) != 6) {
            *why = "token_type is not Bearer";
            goto fail;
        }
    }

    j = json_object_get(root, "expires_in");
    if (!j) {
        *why = "expires_in missing";
        goto fail;
    }
    if (!json_is_integer(j)) {
        *why = "expires_in not an integer";
        goto fail;
    }
    expires = json_integer_value(j);
    if (expires <= 0) {
        *why = "expires_in not positive";
        goto fail;
    }
    /* An absurd lifetime would keep a token we can no longer trust in use
     * forever; a year is far beyond Monei's one hour. */
    if (expires > MC_EXPIRES_IN_MAX) expires = MC_EXPIRES_IN_MAX;

    j = json_object_get(root, "scopes");
    if (!j) {
        *why = "scopes missing";
        goto fail;
    }
    if (!json_is_array(j)) {
        *why = "scopes not an array";
        goto fail;
    }
    /* Bounded so the duplicate check below stays cheap. */
    if (json_array_size(j) > MC_SCOPES_MAX_COUNT) {
        *why = "scopes has too many entries";
        goto fail;
    }
    for (i = 0; i < json_array_size(j); i++) {
        json_t *s = json_array_get(j, i);
        const char *w;
        if (!json_is_string(s)) {
            *why = "scopes contains a non-string";
            goto fail;
        }
        w = json_string_value(s);
        if (!scope_word_valid(w, json_string_length(s))) {
            *why = "scopes contains an invalid scope";
            goto fail;
        }
        if (!mc_scope_has(scopes, w)) {
            scopes = *scopes ? apr_pstrcat(p, scopes, " ", w, NULL)
                             : apr_pstrdup(p, w);
        }
    }

    tok->access_token = apr_pstrdup(p, access);
    tok->refresh_token = apr_pstrdup(p, refresh);
    tok->token_type = "Bearer";
    tok->scopes = scopes;
    tok->expires_in = (apr_int64_t)expires;
    json_decref(root);
    return APR_SUCCESS;

fail:
    json_decref(root);
    return APR_EGENERAL;
}

/* ------------------------------------------------------------------ */
/* error response                                                      */

static const char *clean_text(apr_pool_t *p, const char *s)
{
    if (!s) return NULL;
    /* Cut first so the sanitizer works on bounded input; the cut is on a
     * UTF-8 boundary so no '?' appears at the end. */
    return mc_sanitize_value(p, mc_utf8_truncate(p, s, MC_ERROR_TEXT_MAX));
}

apr_status_t mc_monei_parse_error(apr_pool_t *p, const char *body,
                                  apr_size_t len, const char **error,
                                  const char **message)
{
    json_t *root = NULL, *j;
    const char *msg = NULL;
    apr_status_t rv;
    size_t i;

    if (error) *error = NULL;
    if (message) *message = NULL;
    if (!p || !body) return APR_EINVAL;

    rv = mc_json_parse(body, len, &root);
    if (rv != APR_SUCCESS) return APR_EGENERAL;

    j = json_object_get(root, "message");
    if (json_is_string(j)) {
        msg = json_string_value(j);
    }
    else if (json_is_array(j)) {
        /* NestJS validation errors: one string per failed constraint.
         * Stop joining once past the limit - the rest is cut anyway. */
        char *joined = NULL;
        for (i = 0; i < json_array_size(j); i++) {
            json_t *e = json_array_get(j, i);
            if (!json_is_string(e)) continue;
            joined = joined ? apr_pstrcat(p, joined, "; ", json_string_value(e), NULL)
                            : apr_pstrdup(p, json_string_value(e));
            if (strlen(joined) > MC_ERROR_TEXT_MAX) break;
        }
        msg = joined;
    }
    if (!msg) {
        j = json_object_get(root, "error_description");
        if (json_is_string(j)) msg = json_string_value(j);
    }

    if (message) *message = clean_text(p, msg);
    if (error) {
        j = json_object_get(root, "error");
        *error = json_is_string(j) ? clean_text(p, json_string_value(j)) : NULL;
    }
    json_decref(root);
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* request bodies                                                      */

/* Set obj[key] = value; value NULL is skipped when optional.  Returns 0
 * on failure (required NULL, or not valid UTF-8 so jansson refuses it). */
static int put_str(json_t *obj, const char *key, const char *value, int optional)
{
    json_t *s;

    if (!value) return optional;
    s = json_string(value);
    if (!s) return 0;
    return json_object_set_new(obj, key, s) == 0;
}

static char *dump_and_free(apr_pool_t *p, json_t *obj, int ok)
{
    char *out = ok ? mc_json_compact(p, obj) : NULL;
    json_decref(obj);
    return out;
}

char *mc_monei_body_code(apr_pool_t *p, const char *code,
                         const char *client_id, const char *client_secret,
                         const char *redirect_uri, const char *code_verifier)
{
    json_t *o = json_object();
    int ok;

    if (!o) return NULL;
    ok = put_str(o, "grant_type", "authorization_code", 0)
        && put_str(o, "code", code, 0)
        && put_str(o, "client_id", client_id, 0)
        && put_str(o, "client_secret", client_secret, 0)
        && put_str(o, "redirect_uri", redirect_uri, 0)
        && put_str(o, "code_verifier", code_verifier, 1);
    return dump_and_free(p, o, ok);
}

char *mc_monei_body_refresh(apr_pool_t *p, const char *refresh_token,
                            const char *client_id, const char *client_secret)
{
    json_t *o = json_object();
    int ok;

    if (!o) return NULL;
    ok = put_str(o, "grant_type", "refresh_token", 0)
        && put_str(o, "refresh_token", refresh_token, 0)
        && put_str(o, "client_id", client_id, 1)
        && put_str(o, "client_secret", client_secret, 1);
    return dump_and_free(p, o, ok);
}

char *mc_monei_body_revoke(apr_pool_t *p, const char *token)
{
    json_t *o = json_object();
    int ok;

    if (!o) return NULL;
    ok = put_str(o, "token", token, 0);
    return dump_and_free(p, o, ok);
}

/* ------------------------------------------------------------------ */
/* authorize URL                                                       */

static char *pct_encode(apr_pool_t *p, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    apr_size_t len = strlen(s);
    char *out = apr_palloc(p, len * 3 + 1), *o = out;

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x80 && apr_isalnum(c)) || c == '-' || c == '.' || c == '_'
            || c == '~') {
            *o++ = (char)c;
        }
        else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 0xF];
        }
    }
    *o = '\0';
    return out;
}

char *mc_monei_authorize_url(apr_pool_t *p, const char *authorize_url,
                             const char *client_id, const char *redirect_uri,
                             const char *scope, const char *state,
                             const char *code_challenge)
{
    const char *sep, *q;
    apr_size_t len;

    if (!authorize_url || !client_id || !redirect_uri) return NULL;
    if (strchr(authorize_url, '#')) return NULL;
    len = strlen(authorize_url);
    q = strchr(authorize_url, '?');
    if (!q) sep = "?";
    else if (authorize_url[len - 1] == '?' || authorize_url[len - 1] == '&') sep = "";
    else sep = "&";

    return apr_pstrcat(p, authorize_url, sep,
                       "client_id=", pct_encode(p, client_id),
                       "&redirect_uri=", pct_encode(p, redirect_uri),
                       "&response_type=code",
                       scope ? "&scope=" : "", scope ? pct_encode(p, scope) : "",
                       state ? "&state=" : "", state ? pct_encode(p, state) : "",
                       code_challenge ? "&code_challenge=" : "",
                       code_challenge ? pct_encode(p, code_challenge) : "",
                       code_challenge ? "&code_challenge_method=S256" : "",
                       NULL);
}

/* ------------------------------------------------------------------ */
/* scopes                                                              */

static int is_sep(char c)
{
    return c == ' ' || c == '\t';
}

/* Next word of a scope list: sets *w and *wl, returns the position after it,
 * or NULL when no word is left. */
static const char *next_word(const char *s, const char **w, apr_size_t *wl)
{
    if (!s) return NULL;
    while (is_sep(*s)) s++;
    if (!*s) return NULL;
    *w = s;
    while (*s && !is_sep(*s)) s++;
    *wl = (apr_size_t)(s - *w);
    return s;
}

static int has_word(const char *scopes, const char *word, apr_size_t len)
{
    const char *w;
    apr_size_t wl;
    const char *s = scopes;

    while ((s = next_word(s, &w, &wl))) {
        if (wl == len && memcmp(w, word, len) == 0) return 1;
    }
    return 0;
}

int mc_scope_has(const char *scopes, const char *scope)
{
    if (!scopes || !scope || !*scope) return 0;
    return has_word(scopes, scope, strlen(scope));
}

/* Append every word of src not yet in *acc (and, when exclude is given,
 * not in exclude) to *acc. */
static void add_words(apr_pool_t *p, char **acc, const char *src,
                      const char *exclude)
{
    const char *w, *s = src;
    apr_size_t wl;

    while ((s = next_word(s, &w, &wl))) {
        if (has_word(*acc, w, wl)) continue;
        if (exclude && has_word(exclude, w, wl)) continue;
        *acc = **acc ? apr_pstrcat(p, *acc, " ", apr_pstrmemdup(p, w, wl), NULL)
                     : apr_pstrmemdup(p, w, wl);
    }
}

char *mc_scope_union(apr_pool_t *p, const char *a, const char *b)
{
    char *acc = apr_pstrdup(p, "");

    add_words(p, &acc, a, NULL);
    add_words(p, &acc, b, NULL);
    return acc;
}

char *mc_scope_missing(apr_pool_t *p, const char *granted,
                       const apr_array_header_t *required)
{
    char *acc = apr_pstrdup(p, "");
    int i;

    if (!required) return acc;
    for (i = 0; i < required->nelts; i++) {
        const char *r = APR_ARRAY_IDX(required, i, const char *);
        add_words(p, &acc, r, granted ? granted : "");
    }
    return acc;
}

int mc_scope_valid_list(const char *scopes)
{
    const char *w, *s = scopes;
    apr_size_t wl;
    int n = 0;

    while ((s = next_word(s, &w, &wl))) {
        if (!scope_word_valid(w, wl)) return 0;
        n++;
    }
    return n > 0;
}

/* ------------------------------------------------------------------ */
/* snapshots                                                           */

static apr_status_t snapshot(apr_pool_t *p, const char *body, apr_size_t len,
                             const char **data_json)
{
    json_t *root = NULL, *data;
    apr_status_t rv;

    if (data_json) *data_json = NULL;
    if (!p || !body || !data_json) return APR_EINVAL;
    rv = mc_json_parse(body, len, &root);
    if (rv == APR_ENOSPC) return rv;
    if (rv != APR_SUCCESS) return APR_EGENERAL;
    data = json_object_get(root, "data");
    if (json_is_object(data)) {
        *data_json = mc_json_compact(p, data);
    }
    json_decref(root);
    return *data_json ? APR_SUCCESS : APR_EGENERAL;
}

apr_status_t mc_monei_wallet_snapshot(apr_pool_t *p, const char *body,
                                      apr_size_t len, const char **data_json)
{
    return snapshot(p, body, len, data_json);
}

apr_status_t mc_monei_user_snapshot(apr_pool_t *p, const char *body,
                                    apr_size_t len, const char **data_json)
{
    return snapshot(p, body, len, data_json);
}

/* The stored snapshot, parsed back; NULL when absent or damaged. */
static json_t *load_data(const char *data_json)
{
    json_t *j = NULL;

    if (!data_json) return NULL;
    if (mc_json_parse(data_json, strlen(data_json), &j) != APR_SUCCESS) return NULL;
    return j;
}

/* vars[name] = sanitized text of a string/number JSON value, if it is one. */
static void export_scalar(apr_pool_t *p, apr_table_t *vars, const char *name,
                          const json_t *v)
{
    const char *s = mc_json_scalar_str(p, v);
    if (s) apr_table_set(vars, name, mc_sanitize_value(p, s));
}

static int str_is(const json_t *v, const char *want)
{
    return json_is_string(v) && !strcasecmp(json_string_value(v), want);
}

/* First element of data.subwallets with the given type (and chain, when
 * chain is not NULL); NULL when there is none. */
static json_t *find_subwallet(json_t *data, const char *type, const char *chain)
{
    json_t *subs = json_object_get(data, "subwallets");
    size_t i;

    if (!json_is_array(subs)) return NULL;
    for (i = 0; i < json_array_size(subs); i++) {
        json_t *w = json_array_get(subs, i);
        if (!json_is_object(w)) continue;
        if (!str_is(json_object_get(w, "type"), type)) continue;
        if (chain && !str_is(json_object_get(w, "chain"), chain)) continue;
        return w;
    }
    return NULL;
}

void mc_export_wallet(apr_pool_t *p, const char *data_json, apr_table_t *vars)
{
    json_t *data, *w, *va;

    if (!vars || !(data = load_data(data_json))) return;
    apr_table_set(vars, "MONEI_WALLET_JSON", mc_sanitize_value(p, data_json));
    export_scalar(p, vars, "MONEI_WALLET_NAIRA_BALANCE",
                  json_object_get(data, "nairaBalance"));

    if ((w = find_subwallet(data, "FIAT", NULL))) {
        va = json_object_get(w, "virtualAccount");
        if (json_is_object(va)) {
            export_scalar(p, vars, "MONEI_WALLET_VIRTUAL_ACCOUNT_NUMBER",
                          json_object_get(va, "accountNumber"));
            export_scalar(p, vars, "MONEI_WALLET_VIRTUAL_ACCOUNT_BANK",
                          json_object_get(va, "bankName"));
        }
    }
    if ((w = find_subwallet(data, "CRYPTO", "EVM"))) {
        export_scalar(p, vars, "MONEI_WALLET_EVM_ADDRESS",
                      json_object_get(w, "publicAddress"));
    }
    if ((w = find_subwallet(data, "CRYPTO", "SOLANA"))) {
        export_scalar(p, vars, "MONEI_WALLET_SOLANA_ADDRESS",
                      json_object_get(w, "publicAddress"));
    }
    json_decref(data);
}

void mc_export_user(apr_pool_t *p, const char *data_json, apr_table_t *vars)
{
    json_t *data;

    if (!vars || !(data = load_data(data_json))) return;
    export_scalar(p, vars, "MONEI_USER_ID", json_object_get(data, "id"));
    export_scalar(p, vars, "MONEI_USER_EMAIL", json_object_get(data, "email"));
    export_scalar(p, vars, "MONEI_USER_FIRST_NAME",
                  json_object_get(data, "firstName"));
    export_scalar(p, vars, "MONEI_USER_LAST_NAME",
                  json_object_get(data, "lastName"));
    apr_table_set(vars, "MONEI_USER_JSON", mc_sanitize_value(p, data_json));
    json_decref(data);
}

const char *mc_monei_fiat_id(apr_pool_t *p, const char *wallet_data_json)
{
    json_t *data, *w;
    const char *id = NULL;

    if (!(data = load_data(wallet_data_json))) return NULL;
    if ((w = find_subwallet(data, "FIAT", NULL))) {
        id = mc_json_scalar_str(p, json_object_get(w, "id"));
    }
    json_decref(data);
    return id && *id ? mc_sanitize_value(p, id) : NULL;
}

const char *mc_monei_user_id(apr_pool_t *p, const char *user_data_json)
{
    json_t *data;
    const char *id;

    if (!(data = load_data(user_data_json))) return NULL;
    id = mc_json_scalar_str(p, json_object_get(data, "id"));
    json_decref(data);
    return id && *id ? mc_sanitize_value(p, id) : NULL;
}

typedef struct {
    apr_pool_t *p;
    const char *out;
} flat_baton;

static int flatten_one(void *rec, const char *key, const char *value)
{
    flat_baton *fb = rec;
    /* The JSON variables are the stored snapshots themselves: not stored twice. */
    if (!strcmp(key, "MONEI_WALLET_JSON") || !strcmp(key, "MONEI_USER_JSON")) {
        return 1;
    }
    fb->out = apr_pstrcat(fb->p, fb->out, key, "\t", value, "\n", NULL);
    return 1;
}

char *mc_snapshot_exports(apr_pool_t *p, const char *wallet_json, const char *user_json)
{
    apr_table_t *vars = apr_table_make(p, 12);
    flat_baton fb;

    if (wallet_json) {
        mc_export_wallet(p, wallet_json, vars);
    }
    if (user_json) {
        mc_export_user(p, user_json, vars);
    }
    fb.p = p;
    fb.out = "";
    apr_table_do(flatten_one, &fb, vars, NULL);
    return (char *)fb.out;
}

/* ------------------------------------------------------------------ */
/* bounded snapshots                                                   */

/* Remove every string longer than max from j, at any depth (an object member or an array
 * element). Returns how many were removed. */
static int prune_long_strings(json_t *j, apr_size_t max)
{
    int n = 0;
    if (json_is_object(j)) {
        const char *key;
        json_t *v, *tmp;
        json_object_foreach_safe(j, tmp, key, v) {
            if (json_is_string(v) && json_string_length(v) > max) {
                json_object_del(j, key);
                n++;
            }
            else {
                n += prune_long_strings(v, max);
            }
        }
    }
    else if (json_is_array(j)) {
        size_t i = 0;
        while (i < json_array_size(j)) {
            json_t *v = json_array_get(j, i);
            if (json_is_string(v) && json_string_length(v) > max) {
                json_array_remove(j, i);
                n++;
                continue;
            }
            n += prune_long_strings(v, max);
            i++;
        }
    }
    return n;
}

/* The stored copy of data_json without over-long strings; *pruned set when some were. */
static const char *bounded_copy(apr_pool_t *p, const char *data_json, int *pruned)
{
    json_t *j = load_data(data_json);
    const char *out;
    *pruned = 0;
    if (!j) return NULL;
    *pruned = prune_long_strings(j, MC_SNAPSHOT_VALUE_MAX) > 0;
    out = *pruned ? mc_json_compact(p, j) : data_json;
    json_decref(j);
    return out;
}

typedef struct {
    apr_pool_t *p;
    apr_array_header_t *names;   /* variables kept, const char* */
    apr_array_header_t *values;
    const char *left_out;
} bound_baton;

static void note_left_out(bound_baton *b, const char *name)
{
    if (b->left_out && has_word(b->left_out, name, strlen(name))) return;
    b->left_out = b->left_out ? apr_pstrcat(b->p, b->left_out, " ", name, NULL)
                              : apr_pstrdup(b->p, name);
}

static int keep_var(void *rec, const char *key, const char *value)
{
    bound_baton *b = rec;
    if (!strcmp(key, "MONEI_WALLET_JSON") || !strcmp(key, "MONEI_USER_JSON")) {
        return 1;
    }
    if (strlen(value) > MC_SNAPSHOT_VALUE_MAX) {
        note_left_out(b, key);
        return 1;
    }
    APR_ARRAY_PUSH(b->names, const char *) = key;
    APR_ARRAY_PUSH(b->values, const char *) = value;
    return 1;
}

/* Bytes the stored exports take: variables, plus one flag line per name left out. */
static apr_size_t exports_size(const bound_baton *b)
{
    apr_size_t n = 0;
    const char *w, *s = b->left_out;
    apr_size_t wl;
    int i;
    for (i = 0; i < b->names->nelts; i++) {
        n += strlen(APR_ARRAY_IDX(b->names, i, const char *))
             + strlen(APR_ARRAY_IDX(b->values, i, const char *)) + 2;
    }
    while ((s = next_word(s, &w, &wl))) {
        n += wl + sizeof("_TRUNCATED\t1\n") - 1;
    }
    return n;
}

void mc_snapshot_bound(apr_pool_t *p, const char *wallet_json, const char *user_json,
                       mc_snapshot_t *out)
{
    apr_table_t *vars = apr_table_make(p, 12);
    bound_baton b;
    int pruned, i;
    const char *w, *s, *ex = "";
    apr_size_t wl;

    b.p = p;
    b.names = apr_array_make(p, 12, sizeof(const char *));
    b.values = apr_array_make(p, 12, sizeof(const char *));
    b.left_out = NULL;

    /* The variables come from what Monei sent, so a value over the cap is seen and flagged
     * rather than silently missing from a pruned copy. */
    if (wallet_json) mc_export_wallet(p, wallet_json, vars);
    if (user_json) mc_export_user(p, user_json, vars);
    apr_table_do(keep_var, &b, vars, NULL);

    out->wallet_json = wallet_json ? bounded_copy(p, wallet_json, &pruned) : NULL;
    if (wallet_json && pruned) note_left_out(&b, "MONEI_WALLET_JSON");
    out->user_json = user_json ? bounded_copy(p, user_json, &pruned) : NULL;
    if (user_json && pruned) note_left_out(&b, "MONEI_USER_JSON");

#define MC_SNAPSHOT_SIZE() (exports_size(&b) \
        + (out->wallet_json ? strlen(out->wallet_json) : 0) \
        + (out->user_json ? strlen(out->user_json) : 0))
    /* The larger JSON copy goes first: a grown wallet does not cost the profile (whose id
     * is REMOTE_USER). */
    while (MC_SNAPSHOT_SIZE() > MC_SNAPSHOT_MAX && (out->wallet_json || out->user_json)) {
        if (out->wallet_json && (!out->user_json
                                 || strlen(out->wallet_json) >= strlen(out->user_json))) {
            out->wallet_json = NULL;
            note_left_out(&b, "MONEI_WALLET_JSON");
        }
        else {
            out->user_json = NULL;
            note_left_out(&b, "MONEI_USER_JSON");
        }
    }
    while (MC_SNAPSHOT_SIZE() > MC_SNAPSHOT_MAX && b.names->nelts > 0) {
        int longest = 0;
        for (i = 1; i < b.names->nelts; i++) {
            if (strlen(APR_ARRAY_IDX(b.values, i, const char *))
                > strlen(APR_ARRAY_IDX(b.values, longest, const char *))) {
                longest = i;
            }
        }
        note_left_out(&b, APR_ARRAY_IDX(b.names, longest, const char *));
        for (i = longest + 1; i < b.names->nelts; i++) {
            APR_ARRAY_IDX(b.names, i - 1, const char *) = APR_ARRAY_IDX(b.names, i, const char *);
            APR_ARRAY_IDX(b.values, i - 1, const char *) = APR_ARRAY_IDX(b.values, i, const char *);
        }
        b.names->nelts--;
        b.values->nelts--;
    }
#undef MC_SNAPSHOT_SIZE

    for (i = 0; i < b.names->nelts; i++) {
        ex = apr_pstrcat(p, ex, APR_ARRAY_IDX(b.names, i, const char *), "\t",
                         APR_ARRAY_IDX(b.values, i, const char *), "\n", NULL);
    }
    for (s = b.left_out; (s = next_word(s, &w, &wl));) {
        ex = apr_pstrcat(p, ex, apr_pstrmemdup(p, w, wl), "_TRUNCATED\t1\n", NULL);
    }
    out->exports = ex;
    out->left_out = b.left_out;
}
