/* Resolving directive values written as `file:/path` or `env:NAME`.
 * Pure (APR only) so it can be unit-tested without httpd. */
#ifndef MC_VALUE_H
#define MC_VALUE_H

#include <apr_pools.h>

/* Largest secret file we read; a client secret or passphrase is far smaller. */
#define MC_VALUE_FILE_MAX 4096

/* Resolve `file:/path` (contents, trailing CR/LF stripped) and `env:NAME`; any other value is
 * returned as written. On failure returns NULL and sets *why to a reason for the admin. */
const char *mc_value_resolve(apr_pool_t *p, const char *raw, const char **why);

/* Parse a non-negative number of seconds within [min, max]. Returns NULL on success,
 * else a reason. */
const char *mc_value_seconds(const char *arg, long min, long max, long *out);

/* An absolute http(s) URL with a host: fills scheme/host/port/path (path "/" if empty).
 * Returns NULL on success, else a reason. */
const char *mc_value_url(apr_pool_t *p, const char *arg, int require_https_or_http,
                         const char **scheme, const char **host, int *port,
                         const char **path);

#endif
