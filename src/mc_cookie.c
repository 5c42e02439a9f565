/* mc_cookie: Cookie / Set-Cookie handling. */
#include <string.h>
#include <strings.h>

#include <apr_strings.h>
#include <apr_lib.h>

#include "mc_cookie.h"

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* One "name=value" pair of a Cookie header, as pointers into the header. */
typedef struct {
    const char *pair;   apr_size_t pair_len;    /* trimmed whole pair */
    const char *name;   apr_size_t name_len;    /* trimmed name */
    const char *value;  apr_size_t value_len;   /* trimmed, unquoted value */
    int has_eq;
} cookie_pair_t;

/* Split the pair in [s, e) and trim it.  Returns 0 for an empty pair. */
static int split_pair(const char *s, const char *e, cookie_pair_t *cp)
{
    const char *eq;

    while (s < e && is_ows(*s)) s++;
    while (e > s && is_ows(e[-1])) e--;
    if (s == e) return 0;
    cp->pair = s;
    cp->pair_len = (apr_size_t)(e - s);

    eq = memchr(s, '=', (apr_size_t)(e - s));
    cp->has_eq = eq != NULL;
    if (!eq) {
        /* RFC 6265bis: a pair without '=' is a value with an empty name;
         * it can never match one of our names. */
        cp->name = s; cp->name_len = 0;
        cp->value = s; cp->value_len = (apr_size_t)(e - s);
        return 1;
    }
    cp->name = s;
    cp->name_len = (apr_size_t)(eq - s);
    while (cp->name_len > 0 && is_ows(s[cp->name_len - 1])) cp->name_len--;

    cp->value = eq + 1;
    while (cp->value < e && is_ows(*cp->value)) cp->value++;
    cp->value_len = (apr_size_t)(e - cp->value);
    if (cp->value_len >= 2 && cp->value[0] == '"'
        && cp->value[cp->value_len - 1] == '"') {
        cp->value++;
        cp->value_len -= 2;
    }
    return 1;
}

static int name_is(const cookie_pair_t *cp, const char *name)
{
    apr_size_t n = strlen(name);
    return cp->has_eq && cp->name_len == n && memcmp(cp->name, name, n) == 0;
}

const char *mc_cookie_get(apr_pool_t *p, const char *cookie_header,
                          const char *name)
{
    const char *s, *e, *found = NULL;
    apr_size_t found_len = 0, len;
    int count = 0;
    cookie_pair_t cp;

    if (!cookie_header || !name || !*name) return NULL;
    len = strnlen(cookie_header, MC_COOKIE_MAX_HEADER + 1);
    if (len > MC_COOKIE_MAX_HEADER) return NULL;

    /* Count every pair (not just up to the match) so the bound does not
     * depend on where our cookie happens to sit. */
    for (s = cookie_header; ; s = e + 1) {
        e = strchr(s, ';');
        if (!e) e = s + strlen(s);
        if (split_pair(s, e, &cp)) {
            if (++count > MC_COOKIE_MAX_COUNT) return NULL;
            if (!found && name_is(&cp, name)) {
                found = cp.value;
                found_len = cp.value_len;
            }
        }
        if (!*e) break;
    }
    if (!found || found_len == 0) return NULL;
    return apr_pstrmemdup(p, found, found_len);
}

char *mc_cookie_remove(apr_pool_t *p, const char *cookie_header,
                       const char *const *names, int n)
{
    const char *s, *e;
    char *out, *o;
    cookie_pair_t cp;
    int i, drop;

    if (!cookie_header) return NULL;
    /* Each kept pair is copied and preceded by "; ": a bare ";" in the
     * input grows by one byte, so twice the input always suffices. */
    out = o = apr_palloc(p, 2 * strlen(cookie_header) + 1);
    for (s = cookie_header; ; s = e + 1) {
        e = strchr(s, ';');
        if (!e) e = s + strlen(s);
        if (split_pair(s, e, &cp)) {
            drop = 0;
            for (i = 0; i < n && names; i++) {
                if (names[i] && name_is(&cp, names[i])) {
                    drop = 1;
                    break;
                }
            }
            if (!drop) {
                if (o != out) { *o++ = ';'; *o++ = ' '; }
                memcpy(o, cp.pair, cp.pair_len);
                o += cp.pair_len;
            }
        }
        if (!*e) break;
    }
    *o = '\0';
    return o == out ? NULL : out;
}

/* RFC 7230 tchar, which RFC 6265 uses for cookie names. */
static int is_token(const char *s)
{
    if (!s || !*s) return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x80 || !(apr_isalnum(c) || strchr("!#$%&'*+-.^_`|~", c))) {
            return 0;
        }
    }
    return 1;
}

/* RFC 6265 cookie-octet: printable ASCII minus space " , ; \ */
static int is_cookie_value(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x21 || c > 0x7E || c == '"' || c == ',' || c == ';'
            || c == '\\') {
            return 0;
        }
    }
    return 1;
}

char *mc_cookie_set_header(apr_pool_t *p, const char *name, const char *value,
                           long max_age, int secure, const char *samesite)
{
    const char *age = "", *ss = NULL;

    if (!value) value = "";
    if (!is_token(name) || !is_cookie_value(value)) return NULL;

    if (max_age == 0) {
        /* Both: Max-Age for RFC 6265 clients, Expires for the old ones. */
        age = "; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT";
    }
    else if (max_age > 0) {
        age = apr_psprintf(p, "; Max-Age=%ld", max_age);
    }

    if (samesite) {
        if (!strcasecmp(samesite, "Lax")) ss = "Lax";
        else if (!strcasecmp(samesite, "Strict")) ss = "Strict";
        else if (!strcasecmp(samesite, "None")) ss = "None";
    }

    return apr_pstrcat(p, name, "=", value, "; Path=/", age,
                       secure ? "; Secure" : "", "; HttpOnly",
                       ss ? "; SameSite=" : "", ss ? ss : "", NULL);
}
