/* mod_monei_connect: "Connect your Monei wallet" for any Apache site.
 *
 * This file holds only the module record, the directive table and the hook registration;
 * configuration lives in src/mod_mc_config.c, the session store in src/mod_mc_store.c,
 * and the httpd-independent core (crypto, records, Monei protocol) in src/mc_*.c. */
#include "mod_mc.h"
#include "mod_mc_config.h"
#include "mod_mc_status.h"
#include "mod_mc_export.h"
#include "mod_mc_breaker.h"

#include "http_request.h"
#include "http_core.h"
#include "mod_auth.h"
#include "http_protocol.h"
#include "ap_mpm.h"
#include <curl/curl.h>


int mc_config_in_use;

static int mc_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    mc_config_pre(pconf);
    mc_config_in_use = 0;
    return mc_store_pre_config(pconf);
}

static apr_status_t mc_curl_cleanup(void *unused)
{
    curl_global_cleanup();
    return APR_SUCCESS;
}

static int mc_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                          server_rec *s)
{
    /* httpd runs post_config once to check and once for real at startup: set up on the
     * second pass only (the first one's pconf is thrown away anyway). */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    /* Like httpd's own startup line: which build an administrator is looking at. */
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, "MC0001: mod_monei_connect/%s (libcurl/%s) loaded",
                 MC_VERSION, curl_version_info(CURLVERSION_NOW)->version);
    if (!mc_config_in_use && !mc_store_config.provider) {
        return OK;
    }
    /* Once per configuration cycle, in the parent, before any thread exists. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "MC0002: mc-curl-init: curl_global_init failed");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    apr_pool_cleanup_register(pconf, NULL, mc_curl_cleanup, apr_pool_cleanup_null);
    mc_config_resolve(s);
    if (mc_session_post_config(pconf, s) != OK || mc_status_post_config(pconf, s) != OK
        || mc_breaker_post_config(pconf, s) != OK) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return mc_store_post_config(pconf, s);
}

static void mc_child_init(apr_pool_t *p, server_rec *s)
{
    mc_store_child_init(p, s);
    apr_pool_cleanup_register(p, NULL, mc_http_process_end, apr_pool_cleanup_null);
}

static void mc_register_hooks(apr_pool_t *p)
{
    ap_hook_pre_config(mc_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(mc_config_check, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(mc_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(mc_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    /* Our cookies leave the Cookie header before anything else sees the request. */
    ap_hook_post_read_request(mc_post_read_request, NULL, NULL, APR_HOOK_REALLY_FIRST);
    /* Then no forged header with one of our prefixes survives, wherever the request goes. */
    ap_hook_post_read_request(mc_scrub_post_read_request, NULL, NULL, APR_HOOK_REALLY_FIRST);
    /* The redirect URI path answers before mod_proxy or any Location config. */
    ap_hook_quick_handler(mc_quick_handler, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_check_authn(mc_check_authn, NULL, NULL, APR_HOOK_MIDDLE, AP_AUTH_INTERNAL_PER_CONF);
    ap_hook_fixups(mc_fixups, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_handler(mc_handler, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_note_auth_failure(mc_note_auth_failure, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_insert_error_filter(mc_insert_error_filter, NULL, NULL, APR_HOOK_MIDDLE);
    /* Before mod_log_config: no code in the access log, whoever answered. */
    ap_hook_log_transaction(mc_log_redact, NULL, NULL, APR_HOOK_REALLY_FIRST);
    mc_authz_register(p);
    mc_pages_register(p);
    mc_cache_register(p);
}

AP_DECLARE_MODULE(monei_connect) = {
    STANDARD20_MODULE_STUFF,
    mc_create_dir_cfg,
    mc_merge_dir_cfg,
    mc_create_srv_cfg,
    mc_merge_srv_cfg,
    mc_cmds,
    mc_register_hooks
};
