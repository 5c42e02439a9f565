/* What downstream content sees, and what it must never see from a client: the exported
 * variables and headers (mod_mc_export.c), the scrub of forged request headers
 * (mod_mc_scrub.c), and the cache headers of responses that depend on the session
 * (mod_mc_cache.c). */
#ifndef MOD_MC_EXPORT_H
#define MOD_MC_EXPORT_H

#include "httpd.h"
#include "mc_record.h"

/* The session's variables for this request, once (s NULL: MONEI_CONNECTED=0). */
void mc_export(request_rec *r, const mc_session_rec *s);

/* post_read_request: request headers a client may not send leave before anything reads them. */
int mc_scrub_post_read_request(request_rec *r);
/* Remove every request header whose name starts with one of this server's header prefixes
 * or with `also` (NULL: none), compared without case and with '_' equal to '-'. Allocates
 * nothing when no header matches. */
void mc_scrub_headers(request_rec *r, const char *also);

/* The response depends on the session: Cache-Control private and Vary: Cookie. */
void mc_cache_private(request_rec *r);
void mc_cache_register(apr_pool_t *p);

#endif
