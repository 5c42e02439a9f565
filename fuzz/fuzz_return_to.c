/* fuzz_return_to: mc_return_to_check, the open-redirect guard.
 *
 * Input: "<return_to>\n<this server: scheme://host:port>\n<trusted hosts,
 * space separated>"; missing fields default to "https://app.example:3000"
 * and trusted "shop.example:8443 pay.example".
 *
 * Invariants for an accepted value (re-derived here independently, the
 * way a browser reads a Location):
 *  - *safe == value, 1..MC_RETURN_TO_MAX_LEN bytes, printable ASCII only,
 *    no backslash;
 *  - a local path starts with exactly one '/', and none of up to 3 rounds
 *    of percent-decoding yields a leading "//" or "/\", a backslash or a
 *    control character;
 *  - otherwise it is http:// or https:// (any case), its authority has no
 *    '@', and either its scheme, host ([v6] unbracketed, case-insensitive)
 *    and port (default 80/443) equal this server's, or its host and port
 *    equal a trusted entry's (an entry without port: the scheme's default).
 * A refused value has *safe == NULL. */
#include <strings.h>
#include "fuzz_common.h"
#include "mc_return_to.h"

static int hexv(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Host part of "host[:port]" / "[v6][:port]" as a pool string, *port its
 * port (0 when none); no validation beyond the split (the validation is
 * what we check). */
static const char *host_of(apr_pool_t *p, const char *a, size_t len, int *port)
{
    const char *colon;
    *port = 0;
    if (len && a[0] == '[') {
        const char *rb = memchr(a, ']', len);
        if (!rb) return NULL;
        if ((size_t)(rb - a) + 1 < len && rb[1] == ':') *port = atoi(rb + 2);
        return apr_pstrmemdup(p, a + 1, (size_t)(rb - a - 1));
    }
    colon = memchr(a, ':', len);
    if (colon) *port = atoi(apr_pstrmemdup(p, colon + 1, len - (size_t)(colon - a) - 1));
    return apr_pstrmemdup(p, a, colon ? (size_t)(colon - a) : len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_pool();
    char *f[3];
    const char *value, *origin, *safe = (const char *)1;
    mc_origin_t here;
    apr_array_header_t *trusted = apr_array_make(p, 4, sizeof(const char *));
    apr_status_t rv;
    int n = fz_split(p, data, size, f, 3);
    size_t len, i;

    value = f[0];
    origin = n >= 2 ? f[1] : "https://app.example:3000";
    {
        const char *sep = strstr(origin, "://");
        const char *a = sep ? sep + 3 : origin;
        here.scheme = sep ? apr_pstrmemdup(p, origin, (size_t)(sep - origin)) : "https";
        here.host = apr_pstrmemdup(p, a, strcspn(a, ":"));
        here.port = a[strcspn(a, ":")] ? atoi(a + strcspn(a, ":") + 1) : 443;
        if (a[0] == '[') {
            const char *rb = strchr(a, ']');
            here.host = rb ? apr_pstrmemdup(p, a, (size_t)(rb - a) + 1) : a;
            here.port = rb && rb[1] == ':' ? atoi(rb + 2) : 443;
        }
    }
    {
        char *last, *w, *t = apr_pstrdup(p, n >= 3 ? f[2] : "shop.example:8443 pay.example");
        for (w = apr_strtok(t, " ", &last); w; w = apr_strtok(NULL, " ", &last)) {
            APR_ARRAY_PUSH(trusted, const char *) = w;
        }
    }

    rv = mc_return_to_check(p, value, &here, trusted, &safe);
    if (rv != APR_SUCCESS) {
        FZ_CHECK(safe == NULL);
        apr_pool_destroy(p);
        return 0;
    }

    FZ_CHECK(safe == value);
    len = strlen(value);
    FZ_CHECK(len >= 1 && len <= MC_RETURN_TO_MAX_LEN);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        FZ_CHECK(c >= 0x21 && c <= 0x7E && c != '\\');
    }

    if (value[0] == '/') {
        /* Local path. */
        const char *cur = value;
        int round;
        FZ_CHECK(value[1] != '/' && value[1] != '\\');
        for (round = 0; round < 3 && strchr(cur, '%'); round++) {
            size_t cl = strlen(cur), j = 0, o = 0;
            char *dec = apr_palloc(p, cl + 1);
            int changed = 0;
            while (j < cl) {
                int hi, lo;
                unsigned char c = (unsigned char)cur[j];
                if (c == '%' && j + 2 < cl && (hi = hexv(cur[j + 1])) >= 0
                    && (lo = hexv(cur[j + 2])) >= 0) {
                    c = (unsigned char)(hi * 16 + lo);
                    j += 3;
                    changed = 1;
                }
                else {
                    if (c == '%' && round == 0) {
                        /* the raw value must be well-formed */
                        FZ_CHECK(!"accepted a malformed percent escape");
                    }
                    j++;
                }
                FZ_CHECK(c >= 0x20 && c != 0x7F && c != '\\');
                FZ_CHECK(c != 0);
                dec[o++] = (char)c;
            }
            dec[o] = '\0';
            FZ_CHECK(!(dec[0] == '/' && (dec[1] == '/' || dec[1] == '\\')));
            if (!changed) break;
            cur = dec;
        }
    }
    else {
        /* Absolute URL on an allowed host. */
        const char *auth, *auth_end, *h, *hh, *scheme = "";
        int ok = 0, port, hp, dflt;
        if (!strncasecmp(value, "https://", 8)) auth = value + 8, scheme = "https";
        else if (!strncasecmp(value, "http://", 7)) auth = value + 7, scheme = "http";
        else { FZ_CHECK(!"accepted a scheme other than http(s)"); auth = value; }
        dflt = !strcmp(scheme, "https") ? 443 : 80;
        auth_end = auth + strcspn(auth, "/?#\\");
        FZ_CHECK(auth_end > auth);
        FZ_CHECK(memchr(auth, '@', (size_t)(auth_end - auth)) == NULL);
        h = host_of(p, auth, (size_t)(auth_end - auth), &port);
        if (!port) port = dflt;
        FZ_CHECK(h != NULL && *h != '\0');
        for (i = 0; h[i]; i++) {
            FZ_CHECK(h[i] != '%' && h[i] != '@');
        }
        hh = host_of(p, here.host, strlen(here.host), &hp);
        if (hh && !strcasecmp(hh, h) && !strcasecmp(scheme, here.scheme) && port == here.port) {
            ok = 1;
        }
        for (i = 0; !ok && i < (size_t)trusted->nelts; i++) {
            const char *t = APR_ARRAY_IDX(trusted, i, const char *);
            const char *th = host_of(p, t, strlen(t), &hp);
            if (th && !strcasecmp(th, h) && port == (hp ? hp : dflt)) ok = 1;
        }
        FZ_CHECK(ok);
    }

    apr_pool_destroy(p);
    return 0;
}
