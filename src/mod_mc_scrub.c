/* No client can forge what the module hands downstream. Any request header whose name starts
 * with a header prefix used on this server is removed, compared the way CGI, WSGI and many
 * frameworks read names (case ignored, '_' and '-' the same): X_Monei_User_Id would otherwise
 * arrive as HTTP_X_MONEI_USER_ID next to, or instead of, the real one. It runs in every request
 * of a server that exports headers anywhere, protected location or not, so a ProxyPass beside
 * a protected location forwards no forged identity either. */
#include "mod_mc.h"
#include "mod_mc_export.h"
#include "mc_text.h"

APLOG_USE_MODULE(monei_connect);

static int forbidden(const mc_srv_cfg *c, const char *also, const char *name)
{
    int i;
    if (also && mc_header_has_prefix(name, also)) {
        return 1;
    }
    if (c->scrub_prefixes) {
        for (i = 0; i < c->scrub_prefixes->nelts; i++) {
            if (mc_header_has_prefix(name, APR_ARRAY_IDX(c->scrub_prefixes, i, const char *))) {
                return 1;
            }
        }
    }
    return 0;
}

void mc_scrub_headers(request_rec *r, const char *also)
{
    const mc_srv_cfg *c = mc_srv(r);
    const apr_array_header_t *a = apr_table_elts(r->headers_in);
    const apr_table_entry_t *e = (const apr_table_entry_t *)a->elts;
    int i = 0;

    /* apr_table_unset removes every entry of that name (duplicates too) and moves the rest
     * down in place: the same index is looked at again. */
    while (i < a->nelts) {
        const char *name = e[i].key;
        if (name && forbidden(c, also, name)) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "MC0048: mc-scrub: request header %s removed",
                          ap_escape_logitem(r->pool, name));
            apr_table_unset(r->headers_in, name);
            continue;
        }
        i++;
    }
}

int mc_scrub_post_read_request(request_rec *r)
{
    if (mc_srv(r)->exports_headers) {
        mc_scrub_headers(r, NULL);
    }
    return DECLINED;
}
