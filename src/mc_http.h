/* Outbound HTTP to Monei, as an interface (mc_curl.c implements it with libcurl), so the
 * protocol code does not depend on a transport (as mod_md's md_http.h). */
#ifndef MC_HTTP_H
#define MC_HTTP_H

#include <apr_pools.h>
#include <apr_errno.h>
#include <apr_time.h>

/* Largest response body we accept from Monei; larger answers are an error, not a truncation.
 * A /wallet/me answer is about 1 KB. */
#define MC_HTTP_MAX_RESPONSE (256 * 1024)

typedef struct {
    long connect_timeout;       /* seconds */
    long total_timeout;         /* seconds */
    const char *ca_file;        /* NULL: the system store */
    int verify;                 /* verify the peer's certificate and host name */
    const char *proxy;          /* NULL: none */
} mc_http_opts;

typedef enum {
    MC_HTTP_OK = 0,             /* an HTTP answer arrived (any status) */
    MC_HTTP_ETIMEOUT,           /* connect or total timeout */
    MC_HTTP_ECONNECT,           /* refused, unreachable, DNS */
    MC_HTTP_ETLS,               /* certificate or handshake failure */
    MC_HTTP_ETOOBIG,            /* answer larger than MC_HTTP_MAX_RESPONSE */
    MC_HTTP_EOTHER
} mc_http_err;

typedef struct {
    mc_http_err err;
    int status;                 /* HTTP status when err == MC_HTTP_OK */
    const char *body;           /* NUL-terminated copy in the caller's pool, "" if none */
    apr_size_t len;
    long retry_after;           /* seconds from a Retry-After header, -1 if absent */
    const char *detail;         /* transport error text for logs (never contains secrets) */
    apr_interval_time_t elapsed;
} mc_http_response;

/* A pool cleanup for the end of a process: frees the calling thread's handle and what the
 * threads shared (worker threads free their own handles when they end, before it runs). */
apr_status_t mc_http_process_end(void *unused);

/* GET when body is NULL, else POST of a JSON body. bearer, if not NULL, is sent as
 * "Authorization: Bearer <bearer>". Never follows redirects. */
apr_status_t mc_http_call(apr_pool_t *p, const mc_http_opts *opts, const char *url,
                          const char *bearer, const char *json_body, mc_http_response *resp);

const char *mc_http_err_str(mc_http_err e);

/* The largest wait a Retry-After may announce (longer ones are taken as this). */
#define MC_HTTP_RETRY_AFTER_MAX 86400L
/* A Retry-After header value (n bytes, not NUL-terminated) as seconds after `now`: both the
 * delta-seconds and the HTTP-date form; -1 when unreadable. */
long mc_http_retry_after(const char *value, apr_size_t n, apr_time_t now);

#endif
