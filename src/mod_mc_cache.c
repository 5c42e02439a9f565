/* A page served under AuthType MoneiConnect depends on whose session it is: no shared cache
 * (a CDN, mod_cache in front of the location with CacheQuickHandler On) may keep it and hand
 * it to someone else. The headers are set by an output filter that runs after the content
 * (CGI, a proxied backend, mod_expires) set its own and before mod_cache's save filter reads
 * them. */
#include "mod_mc.h"
#include "mod_mc_export.h"

#include "util_filter.h"
#include <apr_strings.h>

APLOG_USE_MODULE(monei_connect);

#define MC_PRIVATE_FILTER "MONEI_CONNECT_PRIVATE"

/* Next comma-separated directive of a Cache-Control value: its name in [*w, *w + *n). */
static const char *next_directive(const char *s, const char **w, apr_size_t *n)
{
    const char *end;
    while (*s == ',' || *s == ' ' || *s == '\t') {
        s++;
    }
    if (!*s) {
        return NULL;
    }
    *w = s;
    for (end = s; *end && *end != ',' && *end != '=' && *end != ' ' && *end != '\t'; end++) {
    }
    *n = (apr_size_t)(end - s);
    /* skip the rest of the directive (an argument, possibly quoted with commas inside) */
    while (*end && *end != ',') {
        if (*end == '"') {
            for (end++; *end && *end != '"'; end++) {
            }
            if (!*end) {
                break;
            }
        }
        end++;
    }
    return end;
}

static int is_directive(const char *w, apr_size_t n, const char *name)
{
    return n == strlen(name) && !strncasecmp(w, name, n);
}

/* The content said no-store or private (without a field list) itself: kept as it is. */
static int already_private(const char *cc)
{
    const char *w, *s = cc;
    apr_size_t n;
    while (s && (s = next_directive(s, &w, &n))) {
        if (is_directive(w, n, "no-store")
            || (is_directive(w, n, "private") && w[n] != '=')) {
            return 1;
        }
    }
    return 0;
}

/* "private" and what the content said, without "public" (which would contradict it). */
static const char *made_private(apr_pool_t *p, const char *cc)
{
    const char *w, *s = cc, *out = "private";
    apr_size_t n;
    while (s && (s = next_directive(s, &w, &n))) {
        if (n && !is_directive(w, n, "public")) {
            out = apr_pstrcat(p, out, ", ", apr_pstrmemdup(p, w, (apr_size_t)(s - w)), NULL);
        }
    }
    return out;
}

static int varies_by_cookie(const char *vary)
{
    const char *w, *s = vary;
    apr_size_t n;
    while (s && (s = next_directive(s, &w, &n))) {
        if (is_directive(w, n, "Cookie") || is_directive(w, n, "*")) {
            return 1;
        }
    }
    return 0;
}

static apr_status_t private_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;
    const char *cc = apr_table_getm(r->pool, r->headers_out, "Cache-Control");
    const char *cc_err = apr_table_getm(r->pool, r->err_headers_out, "Cache-Control");

    if (!already_private(cc) && !already_private(cc_err)) {
        if (cc_err) {
            apr_table_setn(r->err_headers_out, "Cache-Control", made_private(r->pool, cc_err));
        }
        apr_table_setn(r->headers_out, "Cache-Control", made_private(r->pool, cc));
    }
    if (!varies_by_cookie(apr_table_getm(r->pool, r->headers_out, "Vary"))
        && !varies_by_cookie(apr_table_getm(r->pool, r->err_headers_out, "Vary"))) {
        apr_table_mergen(r->headers_out, "Vary", "Cookie");
    }
    ap_remove_output_filter(f);
    return ap_pass_brigade(f->next, bb);
}

void mc_cache_private(request_rec *r)
{
    /* A subrequest's headers are not sent; its main request has its own filter. */
    if (!r->main) {
        ap_add_output_filter(MC_PRIVATE_FILTER, NULL, r, r->connection);
    }
}

void mc_cache_register(apr_pool_t *p)
{
    /* CONTENT_SET: after the content and mod_expires, before mod_cache's CACHE_SAVE. */
    ap_register_output_filter(MC_PRIVATE_FILTER, private_filter, NULL, AP_FTYPE_CONTENT_SET);
}
