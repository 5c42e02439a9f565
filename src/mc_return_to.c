/* mc_return_to: open-redirect guard.
 *
 * The rule is an allow-list of two shapes (local path, http(s) URL on a
 * known host) plus refusing every byte and every encoding that browsers are
 * known to reinterpret.  We never "clean up" a value: anything doubtful is
 * refused and the caller falls back to its default landing page. */
#include <string.h>
#include <strings.h>

#include <apr_strings.h>
#include <apr_lib.h>

#include "mc_return_to.h"

/* How many rounds of percent-decoding we look through: enough for the
 * double- and triple-encoding tricks, bounded so work stays linear. */
#define DECODE_ROUNDS 3

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One round of percent-decoding of in[0..len) into a new pool buffer.
 * strict: a '%' not followed by two hex digits is an error (the raw value
 * must be well-formed); otherwise it is kept as a literal '%'.
 * Fails when a decoded byte is a control character (including NUL) or a
 * backslash: after any decoding those are never legitimate in a redirect. */
static apr_status_t decode_once(apr_pool_t *p, const char *in, apr_size_t len,
                                int strict, char **out, apr_size_t *out_len,
                                int *changed)
{
    char *o = apr_palloc(p, len + 1);
    apr_size_t i = 0, n = 0;
    int hi, lo;

    *changed = 0;
    while (i < len) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%' && i + 2 < len && (hi = hexval(in[i + 1])) >= 0
            && (lo = hexval(in[i + 2])) >= 0) {
            c = (unsigned char)(hi * 16 + lo);
            i += 3;
            *changed = 1;
        }
        else if (c == '%' && strict) {
            return APR_EINVAL;
        }
        else {
            i++;
        }
        if (c < 0x20 || c == 0x7F || c == '\\') return APR_EINVAL;
        o[n++] = (char)c;
    }
    o[n] = '\0';
    *out = o;
    *out_len = n;
    return APR_SUCCESS;
}

/* Split an authority "host[:port]" or "[v6][:port]" (s[0..len)) and return
 * the host as a pool string (*port the port, 0 when none is written), or NULL
 * when it is not a plain DNS name / IP literal with an optional numeric port.
 * Refusing '%', '@' and anything non-ASCII here is what keeps userinfo and
 * IDN/percent tricks out. */
static const char *authority_host(apr_pool_t *p, const char *s, apr_size_t len, int *port_out)
{
    const char *host, *port = NULL, *end = s + len, *c;
    apr_size_t host_len, port_len;
    long v = 0;

    *port_out = 0;
    if (len == 0) return NULL;
    if (s[0] == '[') {
        const char *rb = memchr(s, ']', len);
        if (!rb || rb == s + 1) return NULL;
        host = s + 1;
        host_len = (apr_size_t)(rb - host);
        for (c = host; c < rb; c++) {
            if (!(apr_isxdigit(*c) || *c == ':' || *c == '.')) return NULL;
        }
        if (rb + 1 < end) {
            if (rb[1] != ':') return NULL;
            port = rb + 2;
        }
    }
    else {
        const char *colon = memchr(s, ':', len);
        host = s;
        host_len = colon ? (apr_size_t)(colon - s) : len;
        if (colon) port = colon + 1;
        if (host_len == 0) return NULL;
        for (c = host; c < host + host_len; c++) {
            if (!((unsigned char)*c < 0x80
                  && (apr_isalnum(*c) || *c == '.' || *c == '-'))) {
                return NULL;
            }
        }
    }
    if (port) {
        port_len = (apr_size_t)(end - port);
        if (port_len == 0 || port_len > 5) return NULL;
        for (c = port; c < end; c++) {
            if (!apr_isdigit(*c)) return NULL;
            v = v * 10 + (*c - '0');
        }
        if (v < 1 || v > 65535) return NULL;
        *port_out = (int)v;
    }
    return apr_pstrmemdup(p, host, host_len);
}

static int default_port(const char *scheme)
{
    return !strcasecmp(scheme, "https") ? 443 : 80;
}

/* The URL's scheme, host and effective port name this server or a trusted host. */
static int origin_allowed(apr_pool_t *p, const char *scheme, const char *host, int port,
                          const mc_origin_t *here, const apr_array_header_t *trusted)
{
    const char *h;
    int i, hp;

    if (here && here->host && here->scheme && !strcasecmp(scheme, here->scheme)
        && port == here->port) {
        h = authority_host(p, here->host, strlen(here->host), &hp);
        if (h && !strcasecmp(h, host)) return 1;
    }
    if (trusted) {
        for (i = 0; i < trusted->nelts; i++) {
            const char *t = APR_ARRAY_IDX(trusted, i, const char *);
            if (!t) continue;
            h = authority_host(p, t, strlen(t), &hp);
            if (h && !strcasecmp(h, host) && port == (hp ? hp : default_port(scheme))) {
                return 1;
            }
        }
    }
    return 0;
}

static int starts_double_slash(const char *s)
{
    return s[0] == '/' && (s[1] == '/' || s[1] == '\\');
}

apr_status_t mc_return_to_check(apr_pool_t *p, const char *value,
                                const mc_origin_t *here,
                                const apr_array_header_t *trusted_hosts,
                                const char **safe)
{
    apr_size_t len, cur_len, i;
    const char *cur;
    char *dec;
    int local, round, changed;

    if (!safe) return APR_EINVAL;
    *safe = NULL;
    if (!value || !*value) return APR_EINVAL;
    len = strnlen(value, MC_RETURN_TO_MAX_LEN + 1);
    if (len > MC_RETURN_TO_MAX_LEN) return APR_EINVAL;

    /* Printable ASCII only: browsers silently drop tab/CR/LF and treat '\'
     * like '/', so "/\t/evil" or "/\evil" would leave the site. */
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c < 0x21 || c > 0x7E || c == '\\') return APR_EINVAL;
    }

    if (value[0] == '/') {
        if (starts_double_slash(value)) return APR_EINVAL;
        local = 1;
    }
    else {
        const char *auth, *auth_end, *host, *scheme;
        int port;

        if (!strncasecmp(value, "https://", 8)) auth = value + 8, scheme = "https";
        else if (!strncasecmp(value, "http://", 7)) auth = value + 7, scheme = "http";
        else return APR_EINVAL;     /* javascript:, data:, https:x, ... */

        auth_end = auth + strcspn(auth, "/?#");
        if (memchr(auth, '@', (apr_size_t)(auth_end - auth))) return APR_EINVAL;
        host = authority_host(p, auth, (apr_size_t)(auth_end - auth), &port);
        if (!host || !origin_allowed(p, scheme, host, port ? port : default_port(scheme),
                                     here, trusted_hosts)) {
            return APR_EINVAL;
        }
        local = 0;
    }

    /* Look through the encodings a server or browser further down might
     * undo: "/%2F%2Fevil", "/%5Cevil", "/%252F/evil", "%0d%0a". */
    cur = value;
    cur_len = len;
    for (round = 0; round < DECODE_ROUNDS; round++) {
        if (!memchr(cur, '%', cur_len)) break;
        if (decode_once(p, cur, cur_len, round == 0, &dec, &cur_len, &changed)
            != APR_SUCCESS) {
            return APR_EINVAL;
        }
        cur = dec;
        if (local && starts_double_slash(cur)) return APR_EINVAL;
        if (!changed) break;
    }

    *safe = value;
    return APR_SUCCESS;
}
