/* What people and programs see when something stops them: short HTML pages for browsers,
 * {"error","message"} JSON for API clients, redirects with the right cache headers. */
#include "mod_mc.h"
#include "mc_text.h"

#include "http_protocol.h"
#include "util_script.h"
#include "http_core.h"
#include "http_request.h"
#include "mod_core.h"
#include <apr_strings.h>

APLOG_USE_MODULE(monei_connect);

/* What an error response must look like once httpd writes it (see mc_page_as_error): the
 * status our page is about, and its type (NULL when an ErrorDocument supplies the body). */
struct mc_error_look {
    int status;
    const char *type;
};

/* The rule: scripts and fetches are never redirected to Monei. */
int mc_is_api_client(const request_rec *r)
{
    const char *v;

    v = apr_table_get(r->headers_in, "X-Requested-With");
    if (v && !strcasecmp(v, "XMLHttpRequest")) {
        return 1;
    }
    v = apr_table_get(r->headers_in, "Sec-Fetch-Mode");
    if (v && strcasecmp(v, "navigate")) {
        return 1;
    }
    v = apr_table_get(r->headers_in, "Sec-Fetch-Dest");
    if (v && strcasecmp(v, "document")) {
        return 1;
    }
    v = apr_table_get(r->headers_in, "Accept");
    if (v && !ap_strcasestr(v, "text/html") && !ap_strcasestr(v, "application/xhtml+xml")
        && !ap_strstr_c(v, "*/*")) {
        return 1;
    }
    return 0;
}

void mc_no_store(request_rec *r)
{
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->err_headers_out, "Pragma", "no-cache");
    apr_table_setn(r->err_headers_out, "Referrer-Policy", "no-referrer");
}

int mc_redirect(request_rec *r, const char *location)
{
    mc_no_store(r);
    apr_table_setn(r->err_headers_out, "Location", location);
    return HTTP_MOVED_TEMPORARILY;
}

/* A redirect the browser makes from a page of this site. Needed after the callback when the
 * session cookie is SameSite=Strict: the callback is the end of a chain that started on
 * Monei's site, and browsers withhold Strict cookies on every redirect of such a chain. */
int mc_redirect_same_site(request_rec *r, const char *location)
{
    const char *esc = mc_html_escape(r->pool, location);
    mc_no_store(r);
    ap_set_content_type(r, "text/html; charset=utf-8");
    ap_rprintf(r, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
               "<meta http-equiv=\"refresh\" content=\"0;url=%s\">"
               "<title>Connected</title></head><body><p>Connected. "
               "<a href=\"%s\">Continue</a></p></body></html>\n", esc, esc);
    return DONE;
}

/* The disconnect a browser did not say came from this site asks first. The form posts back
 * with a token only this server can make for this session; the page cannot be framed, so
 * another site cannot dress the button up as something else. */
int mc_page_confirm_disconnect(request_rec *r, const char *action, const char *token,
                               const char *return_to)
{
    mc_no_store(r);
    apr_table_setn(r->headers_out, "X-Frame-Options", "DENY");
    apr_table_setn(r->headers_out, "Content-Security-Policy",
                   "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                   "frame-ancestors 'none'");
    ap_set_content_type(r, "text/html; charset=utf-8");
    ap_rprintf(r, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
               "<title>Disconnect your Monei wallet?</title></head><body>"
               "<h1>Disconnect your Monei wallet?</h1>"
               "<p>This site will no longer see your wallet until you connect again.</p>"
               "<form method=\"post\" action=\"%s\">"
               "<input type=\"hidden\" name=\"token\" value=\"%s\">",
               mc_html_escape(r->pool, action), mc_html_escape(r->pool, token));
    if (return_to) {
        ap_rprintf(r, "<input type=\"hidden\" name=\"return_to\" value=\"%s\">",
                   mc_html_escape(r->pool, return_to));
    }
    ap_rputs("<button type=\"submit\">Disconnect</button> <a href=\"/\">Stay connected</a>"
             "</form></body></html>\n", r);
    return DONE;
}

static const char *title_for(int status)
{
    switch (status) {
    case HTTP_BAD_REQUEST: return "This sign-in link cannot be used";
    case HTTP_UNAUTHORIZED: return "Please connect your Monei wallet";
    case HTTP_FORBIDDEN: return "Access not granted";
    case HTTP_BAD_GATEWAY: return "Monei did not complete the request";
    case HTTP_SERVICE_UNAVAILABLE: return "Temporarily unavailable";
    case HTTP_GATEWAY_TIME_OUT: return "Monei did not answer in time";
    default: return "Something went wrong";
    }
}

/* Is there an ErrorDocument for this status here? httpd answers that itself (2.4 keeps the
 * directive's documents as expressions, evaluated per request). Asked before this request
 * registers a page of its own with ap_custom_response, which the same lookup would return. */
static int mc_error_document_for(request_rec *r, int status)
{
    return ap_response_code_string(r, ap_index_of_response(status)) != NULL;
}

/* What an ErrorDocument (or a log format) learns about the error: MONEI_ERROR, a stable code
 * ([a-z0-9_], Monei's own OAuth codes pass; anything else reads provider_error), and
 * MONEI_ERROR_DESCRIPTION, the sentence of our page, HTML-escaped (it may quote Monei's
 * untrusted text). A replacement reached by internal redirect sees them as REDIRECT_MONEI_ERROR
 * and, through mc_error_fixups, as MONEI_ERROR. */
#define MC_ERROR_CODE_MAX 64
#define MC_ERROR_TEXT_MAX 400
static void mc_error_vars(request_rec *r, const char *error, const char *message)
{
    const char *c;
    int ok = error && *error && strlen(error) <= MC_ERROR_CODE_MAX;
    for (c = error; ok && *c; c++) {
        ok = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_';
    }
    apr_table_setn(r->subprocess_env, "MONEI_ERROR", ok ? error : "provider_error");
    apr_table_setn(r->subprocess_env, "MONEI_ERROR_DESCRIPTION",
                   mc_html_escape(r->pool, mc_sanitize_value(r->pool, mc_utf8_truncate(
                       r->pool, message ? message : "", MC_ERROR_TEXT_MAX))));
}

/* The ErrorDocument's own request: the variables under their plain names too, and the status
 * our page was about (mod_authz_core sends a denied user's 403 as 401). */
static int mc_error_fixups(request_rec *r)
{
    const char *e, *d;
    mc_req_notes *prev = r->prev ? ap_get_module_config(r->prev->request_config,
                                                        &monei_connect_module) : NULL;
    if (prev && prev->error_look && prev->error_look->status
        && r->status != prev->error_look->status && ap_is_HTTP_ERROR(r->status)) {
        r->status = prev->error_look->status;
        r->status_line = NULL;
        if (r->status != HTTP_UNAUTHORIZED) {
            apr_table_unset(r->err_headers_out, "WWW-Authenticate");
        }
    }
    if (r->prev && (e = apr_table_get(r->subprocess_env, "REDIRECT_MONEI_ERROR"))
        && !apr_table_get(r->subprocess_env, "MONEI_ERROR")) {
        apr_table_setn(r->subprocess_env, "MONEI_ERROR", e);
        if ((d = apr_table_get(r->subprocess_env, "REDIRECT_MONEI_ERROR_DESCRIPTION"))) {
            apr_table_setn(r->subprocess_env, "MONEI_ERROR_DESCRIPTION", d);
        }
    }
    return DECLINED;
}

/* Every page has a way out: back to the return_to this request named when it is safe, else
 * to the configured default return; never to the page that refused (that would only refuse
 * again), then to the site's root. */
static const char *mc_way_out(request_rec *r)
{
    apr_table_t *q = NULL;
    const char *v = NULL, *out = NULL;

    if (r->args && strlen(r->args) <= 8192) {
        ap_args_to_table(r, &q);
        v = apr_table_get(q, "return_to");
    }
    if (v && *v) {
        out = mc_safe_return(r, v);
    }
    if (!out) {
        out = mc_cfg_default_return(mc_dir(r));
    }
    if (!out || !*out || (r->uri && !strcmp(out, r->uri))) {
        out = "/";
    }
    return out;
}

/* The page itself: HTML for people, {"error","message"} for programs. */
static const char *mc_page_body(request_rec *r, int status, const char *error, const char *message,
                         const char *retry_url, const char *retry_label, int api)
{
    const char *way_out;

    if (api) {
        return apr_psprintf(r->pool, "{\"error\":%s,\"message\":%s}\n",
                            mc_json_escape_string(r->pool, error),
                            mc_json_escape_string(r->pool, message));
    }
    way_out = mc_way_out(r);
    return apr_psprintf(r->pool,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width\">"
        "<title>%s</title>"
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:34em;"
        "margin:4em auto;padding:0 1em;color:#222}a.button{display:inline-block;"
        "padding:.5em 1em;background:#0b5;color:#fff;border-radius:4px;"
        "text-decoration:none}small{color:#777}</style></head><body>"
        "<h1>%s</h1><p>%s</p>%s%s<p><small>Error: %s (HTTP %d)</small></p>"
        "</body></html>\n",
        mc_html_escape(r->pool, title_for(status)), mc_html_escape(r->pool, title_for(status)),
        mc_html_escape(r->pool, message),
        retry_url ? apr_psprintf(r->pool, "<p><a class=\"button\" href=\"%s\">%s</a></p>",
                                 mc_html_escape(r->pool, retry_url),
                                 mc_html_escape(r->pool, retry_label ? retry_label
                                                                     : "Try again"))
                  : "",
        retry_url && !strcmp(retry_url, way_out) ? ""
            : apr_psprintf(r->pool, "<p><a id=\"way-out\" href=\"%s\">%s</a></p>",
                           mc_html_escape(r->pool, way_out),
                           "Back to the site"),
        mc_html_escape(r->pool, error), status);
}

/* Writes the page and returns what the calling hook must return. An ErrorDocument the
 * admin configured for this status wins over our page. */
int mc_page(request_rec *r, int status, const char *error, const char *message,
            const char *retry_url)
{
    return mc_page_with(r, status, error, message, retry_url, NULL);
}

int mc_page_with(request_rec *r, int status, const char *error, const char *message,
                 const char *retry_url, const char *retry_label)
{
    int api = mc_is_api_client(r);

    mc_no_store(r);
    if (status == HTTP_UNAUTHORIZED) {
        apr_table_setn(r->err_headers_out, "WWW-Authenticate",
                       apr_psprintf(r->pool, "%s realm=\"%s\"", MC_AUTH_TYPE,
                                    ap_escape_quotes(r->pool, ap_get_server_name(r))));
    }
    mc_error_vars(r, error, message);
    if (mc_error_document_for(r, status)) {
        /* httpd's error path serves the admin's document (ap_die). */
        return status;
    }
    r->status = status;
    ap_set_content_type(r, api ? "application/json" : "text/html; charset=utf-8");
    ap_rputs(mc_page_body(r, status, error, message, retry_url, retry_label, api), r);
    return DONE;
}


/* httpd writes error bodies as text/html; charset=iso-8859-1, and mod_authz_core answers an
 * authenticated user it denies with 401 unless AuthzSendForbiddenOnFailure is on. When our
 * page travels as the body of such an error response, this filter (which runs before the
 * headers are written) puts back the type and the status the page is about. */
static apr_status_t look_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    const struct mc_error_look *look = f->ctx;
    request_rec *r = f->r;

    if (look->status && r->status != look->status && ap_is_HTTP_ERROR(r->status)) {
        r->status = look->status;
        r->status_line = NULL;
        if (look->status != HTTP_UNAUTHORIZED) {
            apr_table_unset(r->headers_out, "WWW-Authenticate");
        }
    }
    if (ap_is_HTTP_ERROR(r->status) && look->type) {
        ap_set_content_type(r, look->type);
    }
    ap_remove_output_filter(f);
    return ap_pass_brigade(f->next, bb);
}

void mc_pages_register(apr_pool_t *p)
{
    ap_register_output_filter(MC_TYPE_FILTER, look_filter, NULL, AP_FTYPE_RESOURCE);
    ap_hook_fixups(mc_error_fixups, NULL, NULL, APR_HOOK_MIDDLE);
}

/* Our page as the body of the error response httpd will send after an authz denial. */
void mc_page_as_error(request_rec *r, int status, const char *error, const char *message,
                      const char *retry_url, const char *retry_label)
{
    int api = mc_is_api_client(r);
    struct mc_error_look *look = apr_pcalloc(r->pool, sizeof(*look));
    const char *body;

    const char *doc;

    mc_no_store(r);
    mc_error_vars(r, error, message);
    if ((doc = ap_response_code_string(r, ap_index_of_response(status)))) {
        /* mod_authz_core may send the denial as 401 (AuthzSendForbiddenOnFailure Off): the
         * admin's document for our status answers that one too. */
        if (status != HTTP_UNAUTHORIZED
            && !ap_response_code_string(r, ap_index_of_response(HTTP_UNAUTHORIZED))) {
            ap_custom_response(r, HTTP_UNAUTHORIZED, *doc == '"' ? doc + 1 : doc);
        }
        look->status = status;
        mc_notes(r)->error_look = look;
        return;
    }
    body = mc_page_body(r, status, error, message, retry_url, retry_label, api);
    ap_custom_response(r, HTTP_UNAUTHORIZED, body);
    ap_custom_response(r, HTTP_FORBIDDEN, body);
    look->status = status;
    look->type = api ? "application/json" : "text/html; charset=utf-8";
    mc_notes(r)->error_look = look;
}

/* Error responses drop the request's filters; this hook puts ours back for them. */
void mc_insert_error_filter(request_rec *r)
{
    mc_req_notes *n = ap_get_module_config(r->request_config, &monei_connect_module);
    if (n && n->error_look) {
        ap_add_output_filter(MC_TYPE_FILTER, n->error_look, r, r->connection);
        n->error_look = NULL;
    }
}

/* An authz denial that must become a redirect (step-up): ap_die redirects an error whose
 * custom response is an absolute URL. */
void mc_redirect_as_error(request_rec *r, const char *url)
{
    mc_no_store(r);
    ap_custom_response(r, HTTP_UNAUTHORIZED, url);
    ap_custom_response(r, HTTP_FORBIDDEN, url);
}
