/* mc_cookie: reading, stripping and writing the module's cookies.
 * No httpd headers: callers pass header values as strings. */
#ifndef MC_COOKIE_H
#define MC_COOKIE_H

#include <apr_pools.h>

/* Bounds past which a Cookie header is treated as hostile and ignored. */
#define MC_COOKIE_MAX_HEADER  (16 * 1024)
#define MC_COOKIE_MAX_COUNT   200

/* Value of cookie `name` in a Cookie request header (RFC 6265 5.4 syntax,
 * tolerant of extra spaces/tabs and empty pairs; surrounding double quotes
 * stripped).  Names compare case-sensitively; the first pair with the name
 * wins (browsers send the most specific path first).  NULL when the header
 * or name is NULL, the cookie is absent or its value is empty, or the header
 * is longer than MC_COOKIE_MAX_HEADER or holds more than MC_COOKIE_MAX_COUNT
 * pairs. */
const char *mc_cookie_get(apr_pool_t *p, const char *cookie_header,
                          const char *name);

/* The Cookie header without every pair named in names[0..n-1], the other
 * pairs kept as sent and joined with "; ".  NULL when nothing is left (the
 * caller then unsets the header).  Not bounded like mc_cookie_get: removal
 * must work on any header, or a big one would smuggle our cookies through. */
char *mc_cookie_remove(apr_pool_t *p, const char *cookie_header,
                       const char *const *names, int n);

/* A Set-Cookie value:  name=value; Path=/[; Max-Age=N[; Expires=...]]
 *                      [; Secure]; HttpOnly[; SameSite=X]
 * max_age -1: session cookie (no Max-Age); 0: delete (Max-Age=0 and an
 * Expires in 1970); > 0: Max-Age=max_age.  samesite "Lax"/"Strict"/"None"
 * (any case; anything else or NULL: attribute omitted).
 * NULL when name is not an RFC 6265 token or value contains a byte outside
 * cookie-octet (space, ", ',', ';', '\\', controls, non-ASCII): we never
 * emit a header a browser would parse differently from us.  value NULL is
 * treated as "" (useful for deletion). */
char *mc_cookie_set_header(apr_pool_t *p, const char *name, const char *value,
                           long max_age, int secure, const char *samesite);

#endif /* MC_COOKIE_H */
