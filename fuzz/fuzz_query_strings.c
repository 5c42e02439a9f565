/* fuzz_query_strings: what the module does with strings taken from a
 * query (?scope=, ?state=, ?error=, ?error_description=, ?return_to=) or
 * from cookies, after httpd's ap_args_to_table has split the query:
 *  - scope lists: mc_scope_valid_list, mc_scope_has, mc_scope_union,
 *    mc_scope_missing (checked against a word-set model written here);
 *  - output escaping: mc_html_escape, mc_json_escape_string (output parses
 *    as a JSON string with jansson; valid UTF-8 input comes back
 *    byte-exact), mc_sanitize_value, mc_utf8_truncate;
 *  - ids: mc_store_key('t', state) shape (hash first, then ":t"),
 *    mc_b64url_decode canonical round trip (decode -> encode gives the
 *    input back).
 *
 * Input: newline-separated fields "a\nb\nrequired1\nrequired2...";
 * scope functions see at most the first 4 KiB (their callers bound
 * scope strings to 512 bytes / 64 words, and union/missing are quadratic
 * by design). */
#include <jansson.h>
#include "fuzz_common.h"
#include "mc_crypto.h"
#include "mc_monei.h"
#include "mc_text.h"

#define NF 8

static int is_sep(char c) { return c == ' ' || c == '\t'; }

/* Words of s (split on space/tab) into a pool array. */
static apr_array_header_t *words(apr_pool_t *p, const char *s)
{
    apr_array_header_t *a = apr_array_make(p, 8, sizeof(const char *));
    while (s && *s) {
        const char *w;
        while (is_sep(*s)) s++;
        if (!*s) break;
        w = s;
        while (*s && !is_sep(*s)) s++;
        APR_ARRAY_PUSH(a, const char *) = apr_pstrmemdup(p, w, (size_t)(s - w));
    }
    return a;
}

static int in_words(const apr_array_header_t *a, const char *w)
{
    int i;
    for (i = 0; i < a->nelts; i++) {
        if (!strcmp(APR_ARRAY_IDX(a, i, const char *), w)) return 1;
    }
    return 0;
}

static int word_valid(const char *w)
{
    size_t n = strlen(w), i, colon = 0;
    int colons = 0;
    if (n == 0 || n > MC_SCOPE_MAX_LEN) return 0;
    for (i = 0; i < n; i++) {
        if (w[i] == ':') { colons++; colon = i; }
        else if (!(w[i] >= 'a' && w[i] <= 'z') && w[i] != '_') return 0;
    }
    return colons == 1 && colon > 0 && colon < n - 1;
}

/* A result list: single spaces, no leading/trailing space, no duplicates,
 * no tabs. */
static apr_array_header_t *check_list(apr_pool_t *p, const char *r)
{
    apr_array_header_t *w;
    int i;
    FZ_CHECK(r != NULL);
    FZ_CHECK(strchr(r, '\t') == NULL);
    if (*r) {
        FZ_CHECK(r[0] != ' ' && r[strlen(r) - 1] != ' ' && !strstr(r, "  "));
    }
    w = words(p, r);
    for (i = 0; i < w->nelts; i++) {
        const char *x = APR_ARRAY_IDX(w, i, const char *);
        int j;
        for (j = i + 1; j < w->nelts; j++) {
            FZ_CHECK(strcmp(x, APR_ARRAY_IDX(w, j, const char *)) != 0);
        }
    }
    return w;
}

static void check_scopes(apr_pool_t *p, char **f, int n)
{
    const char *a = f[0], *b = n > 1 ? f[1] : NULL;
    apr_array_header_t *wa = words(p, a), *wb = words(p, b);
    apr_array_header_t *req = apr_array_make(p, NF, sizeof(const char *));
    apr_array_header_t *wreq = apr_array_make(p, 8, sizeof(const char *));
    apr_array_header_t *wu, *wm;
    char *u, *m;
    int i, valid;

    /* valid_list against the model */
    valid = wa->nelts > 0;
    for (i = 0; i < wa->nelts; i++) {
        if (!word_valid(APR_ARRAY_IDX(wa, i, const char *))) valid = 0;
    }
    FZ_CHECK(mc_scope_valid_list(a) == valid);

    /* has */
    for (i = 0; i < wa->nelts; i++) {
        FZ_CHECK(mc_scope_has(a, APR_ARRAY_IDX(wa, i, const char *)));
    }
    if (b && *b) FZ_CHECK(mc_scope_has(a, b) == in_words(wa, b));

    /* union: exactly the words of a then b */
    u = mc_scope_union(p, a, b);
    wu = check_list(p, u);
    for (i = 0; i < wa->nelts; i++) FZ_CHECK(in_words(wu, APR_ARRAY_IDX(wa, i, const char *)));
    for (i = 0; i < wb->nelts; i++) FZ_CHECK(in_words(wu, APR_ARRAY_IDX(wb, i, const char *)));
    for (i = 0; i < wu->nelts; i++) {
        const char *x = APR_ARRAY_IDX(wu, i, const char *);
        FZ_CHECK(in_words(wa, x) || in_words(wb, x));
    }
    if (valid && b && mc_scope_valid_list(b)) FZ_CHECK(mc_scope_valid_list(u));
    FZ_CHECK(strcmp(mc_scope_union(p, u, NULL), u) == 0);

    /* missing: the required words not granted (a = granted) */
    for (i = 1; i < n; i++) {
        apr_array_header_t *w = words(p, f[i]);
        int k;
        APR_ARRAY_PUSH(req, const char *) = f[i];
        for (k = 0; k < w->nelts; k++) {
            APR_ARRAY_PUSH(wreq, const char *) = APR_ARRAY_IDX(w, k, const char *);
        }
    }
    m = mc_scope_missing(p, a, req);
    wm = check_list(p, m);
    for (i = 0; i < wm->nelts; i++) {
        const char *x = APR_ARRAY_IDX(wm, i, const char *);
        FZ_CHECK(in_words(wreq, x) && !in_words(wa, x));
    }
    for (i = 0; i < wreq->nelts; i++) {
        const char *x = APR_ARRAY_IDX(wreq, i, const char *);
        FZ_CHECK(in_words(wa, x) || in_words(wm, x));
    }
    /* granting the union of everything leaves nothing missing */
    FZ_CHECK(*mc_scope_missing(p, mc_scope_union(p, a, m), req) == '\0');
}

static void check_escapes(apr_pool_t *p, const char *s)
{
    const char *h, *c;
    char *q, *t;
    json_t *j;
    json_error_t err;
    size_t n = strlen(s), max;

    /* HTML: no raw metacharacter, every '&' starts one of our entities */
    h = mc_html_escape(p, s);
    FZ_CHECK(strpbrk(h, "<>\"'") == NULL);
    for (c = h; (c = strchr(c, '&')); c++) {
        FZ_CHECK(!strncmp(c, "&amp;", 5) || !strncmp(c, "&lt;", 4)
                 || !strncmp(c, "&gt;", 4) || !strncmp(c, "&quot;", 6)
                 || !strncmp(c, "&#39;", 5));
    }

    /* JSON: always a valid JSON string literal */
    q = mc_json_escape_string(p, s);
    FZ_CHECK(q[0] == '"');
    FZ_CHECK(fz_no_controls(q));
    j = json_loads(q, JSON_DECODE_ANY, &err);
    FZ_CHECK(j != NULL && json_is_string(j));
    if (fz_utf8_valid((const unsigned char *)s, n)) {
        FZ_CHECK(json_string_length(j) == n
                 && memcmp(json_string_value(j), s, n) == 0);
    }
    json_decref(j);

    /* sanitize */
    t = mc_sanitize_value(p, s);
    FZ_CHECK(strlen(t) == n && fz_no_controls(t)
             && fz_utf8_valid((const unsigned char *)t, n));

    /* truncate: a prefix, <= max, never splitting a valid sequence */
    max = n ? (unsigned char)s[0] % (n + 1) : 0;
    t = mc_utf8_truncate(p, s, max);
    FZ_CHECK(strlen(t) <= max && strncmp(t, s, strlen(t)) == 0);
    if (fz_utf8_valid((const unsigned char *)s, n)) {
        FZ_CHECK(fz_utf8_valid((const unsigned char *)t, strlen(t)));
    }
}

static void check_ids(apr_pool_t *p, const char *s)
{
    const char *k = mc_store_key(p, 't', NULL, s);
    unsigned char *out = NULL;
    apr_size_t olen = 0;
    size_t i;

    /* "<32 base64url chars of the hash>:<kind>" */
    FZ_CHECK(k != NULL && strlen(k) == 32 + 2 && k[32] == ':' && k[33] == 't');
    for (i = 0; i < 32; i++) {
        char c = k[i];
        FZ_CHECK((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
                 || (c >= '0' && c <= '9') || c == '-' || c == '_');
    }
    if (mc_b64url_decode(p, s, strlen(s), &out, &olen) == APR_SUCCESS) {
        const char *re = mc_b64url_encode(p, out, olen);
        FZ_CHECK(re != NULL && strcmp(re, s) == 0);
        FZ_CHECK(out[olen] == '\0');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_pool();
    char *f[NF];
    const char *whole = fz_cstr(p, data, size);
    int n, i;

    check_escapes(p, whole);
    check_ids(p, whole);

    n = fz_split(p, data, size > 4096 ? 4096 : size, f, NF);
    for (i = 0; i < n; i++) {
        check_escapes(p, f[i]);
    }
    check_scopes(p, f, n);

    apr_pool_destroy(p);
    return 0;
}
