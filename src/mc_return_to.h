/* mc_return_to: the open-redirect guard for `return_to`.  No httpd headers. */
#ifndef MC_RETURN_TO_H
#define MC_RETURN_TO_H

#include <apr_pools.h>
#include <apr_errno.h>
#include <apr_tables.h>

#define MC_RETURN_TO_MAX_LEN 2048

/* Decide whether `value` may be sent as a Location after login/disconnect.
 * value is the already query-decoded parameter.
 *
 * Accepted, and only these:
 *  - a local path: starts with exactly one '/', not "//" or "/\";
 *  - an absolute http:// or https:// URL (scheme in any case) naming this
 *    server: the same scheme, host (case-insensitive) and port (the URL's,
 *    or its scheme's default) as `here`;
 *  - or an absolute http(s) URL on one of trusted_hosts: an entry "host"
 *    admits that host on its scheme's default port (80, 443), an entry
 *    "host:port" (or "[v6]:port") that host on that port, either scheme.
 * Always refused: length > MC_RETURN_TO_MAX_LEN; any byte outside printable
 * ASCII 0x21-0x7E (controls, CR/LF, space, raw non-ASCII); a backslash
 * anywhere; '@' in the authority (no userinfo at all); malformed percent
 * escapes; and, after percent-decoding (repeated, so %252F is seen too):
 * a backslash or control character anywhere, or a local path starting
 * with "//".  Browsers treat '\' as '/' and drop tabs/newlines, so each of
 * these can turn a "path" into a foreign host.
 *
 * APR_SUCCESS with *safe = value (unchanged) when accepted; APR_EINVAL with
 * *safe = NULL otherwise (including NULL/empty value). */
/* This server as the browser addresses it: the canonical name and port of the request, never
 * a raw Host header. host may be a bracketed IPv6 literal; NULL matches no URL. */
typedef struct {
    const char *scheme;         /* "http" or "https" */
    const char *host;
    int port;
} mc_origin_t;

apr_status_t mc_return_to_check(apr_pool_t *p, const char *value,
                                const mc_origin_t *here,
                                const apr_array_header_t *trusted_hosts,
                                const char **safe);

#endif /* MC_RETURN_TO_H */
