/* The breaker and bulkhead for Monei's API (mc_breaker.h) in httpd: one per API base, in
 * shared memory kept by the parent across restarts, reached from a request. A request that
 * finds a fresh snapshot never calls any of these. */
#ifndef MOD_MC_BREAKER_H
#define MOD_MC_BREAKER_H

#include "mod_mc.h"
#include "mc_breaker.h"

int mc_breaker_post_config(apr_pool_t *pconf, server_rec *s);

/* May this request fetch a snapshot now? MC_BREAKER_CALL: yes, and *t must be given back
 * with mc_breaker_done; otherwise serve the last snapshot at once. */
mc_breaker_go mc_breaker_admit(request_rec *r, mc_breaker_ticket *t);
/* The snapshot call made with *t ended with `res` (res->ok or a failure). */
void mc_breaker_done(request_rec *r, mc_breaker_ticket *t, const mc_api_result *res);

/* A refresh failed: a 429 holds back every refresh until its Retry-After; a timeout, a
 * connection failure, a 5xx or a 429 opens the breaker for snapshots too. */
void mc_breaker_refresh_failed(request_rec *r, const mc_api_result *res);
/* No refresh before this (Unix seconds; 0 = none), whichever session asks. */
apr_int64_t mc_breaker_refresh_not_before(request_rec *r);

/* Does this outcome count against Monei (timeout, unreachable, 5xx, 429)? */
int mc_breaker_counts(const mc_api_result *res);

/* The status page's lines about the breaker of r's server. */
void mc_breaker_status(request_rec *r, int json);

#endif
