/* SetHandler monei-connect-status: counters since start across all processes, in the
 * Prometheus text format (?json for JSON). The counters live in a small anonymous shared
 * memory segment kept by the parent across restarts, incremented with atomic operations. */
#include "mod_mc.h"
#include "mod_mc_status.h"
#include "mod_mc_breaker.h"
#include "mod_mc_store.h"

#include "http_protocol.h"
#include <apr_atomic.h>
#include <apr_shm.h>
#include <apr_strings.h>

APLOG_USE_MODULE(monei_connect);

typedef struct {
    apr_uint32_t started_at;
    apr_uint32_t counter[MC_STAT_COUNT];
} mc_counters;

typedef struct {
    apr_shm_t *shm;
} mc_retained_status;

static mc_counters *counters;

/* One line per counter of the Prometheus output: metric name, label (or NULL), help text
 * (printed once per metric, before its first line), JSON name. */
static const struct {
    const char *name;
    const char *label;
    const char *help;
    const char *json;
} stat_names[MC_STAT_COUNT] = {
    { "monei_connect_logins_started_total", NULL, "Logins sent to Monei.", "logins_started" },
    { "monei_connect_logins_completed_total", NULL, "Logins that ended in a new session.",
      "logins_completed" },
    { "monei_connect_logins_failed_total", "reason=\"state\"",
      "Callbacks that did not end in a session, by reason.", "logins_failed_state" },
    { "monei_connect_logins_failed_total", "reason=\"denied\"", NULL, "logins_failed_denied" },
    { "monei_connect_logins_failed_total", "reason=\"provider_error\"", NULL,
      "logins_failed_provider_error" },
    { "monei_connect_logins_failed_total", "reason=\"exchange\"", NULL,
      "logins_failed_exchange" },
    { "monei_connect_logins_failed_total", "reason=\"store\"", NULL, "logins_failed_store" },
    { "monei_connect_step_ups_total", NULL, "Users sent to Monei for missing scopes.",
      "step_ups" },
    { "monei_connect_refreshes_total", "result=\"ok\"", "Access token refreshes, by result.",
      "refreshes_ok" },
    { "monei_connect_refreshes_total", "result=\"failed\"", NULL, "refreshes_failed" },
    { "monei_connect_refreshes_total", "result=\"rate_limited\"", NULL,
      "refreshes_rate_limited" },
    { "monei_connect_revocations_total", NULL,
      "Sessions ended because Monei rejected their tokens.", "revocations" },
    { "monei_connect_disconnects_total", NULL, "Disconnects.", "disconnects" },
    { "monei_connect_store_errors_total", NULL, "Session store failures.", "store_errors" },
    { "monei_connect_records_too_large_total", NULL,
      "Snapshots of Monei data larger than a session keeps (fields left out).",
      "records_too_large" },
};

int mc_status_post_config(apr_pool_t *pconf, server_rec *s)
{
    mc_retained_status *kept = ap_retained_data_get("mod_monei_connect-status");
    apr_status_t rv;

    if (!kept) {
        kept = ap_retained_data_create("mod_monei_connect-status", sizeof(*kept));
    }
    if (!kept->shm) {
        rv = apr_shm_create(&kept->shm, sizeof(mc_counters), NULL, s->process->pool);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                         "MC0080: mc-status: no shared memory for counters; status page disabled");
            counters = NULL;
            return OK;
        }
        counters = apr_shm_baseaddr_get(kept->shm);
        memset(counters, 0, sizeof(*counters));
        counters->started_at = (apr_uint32_t)apr_time_sec(apr_time_now());
    }
    counters = apr_shm_baseaddr_get(kept->shm);
    return OK;
}

void mc_stat_inc(mc_stat which)
{
    if (counters && which < MC_STAT_COUNT) {
        apr_atomic_inc32(&counters->counter[which]);
    }
}

int mc_status_handler(request_rec *r)
{
    mc_store_fill_t fill;
    int i;

    if (!counters) {
        return HTTP_SERVICE_UNAVAILABLE;
    }
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (r->args && (!strcmp(r->args, "json") || !strncmp(r->args, "json&", 5))) {
        ap_set_content_type(r, "application/json");
        ap_rprintf(r, "{\"version\":\"%s\",\"started_at\":%u", MC_VERSION,
                   apr_atomic_read32(&counters->started_at));
        for (i = 0; i < MC_STAT_COUNT; i++) {
            ap_rprintf(r, ",\"%s\":%u", stat_names[i].json,
                       apr_atomic_read32(&counters->counter[i]));
        }
        mc_breaker_status(r, 1);
        if (mc_store_fill(&fill)) {
            ap_rprintf(r, ",\"store_sessions\":%u,\"store_records\":%u,\"store_slots\":%u,"
                       "\"store_evictions\":%" APR_UINT64_T_FMT, fill.sessions, fill.records,
                       fill.slots, fill.evictions);
        }
        ap_rputs("}\n", r);
        return OK;
    }
    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    for (i = 0; i < MC_STAT_COUNT; i++) {
        if (stat_names[i].help) {
            ap_rprintf(r, "# HELP %s %s\n# TYPE %s counter\n", stat_names[i].name,
                       stat_names[i].help, stat_names[i].name);
        }
        ap_rprintf(r, "%s%s%s%s %u\n", stat_names[i].name, stat_names[i].label ? "{" : "",
                   stat_names[i].label ? stat_names[i].label : "",
                   stat_names[i].label ? "}" : "", apr_atomic_read32(&counters->counter[i]));
    }
    ap_rprintf(r, "# HELP monei_connect_build_info The module's version.\n"
               "# TYPE monei_connect_build_info gauge\n"
               "monei_connect_build_info{version=\"%s\"} 1\n", MC_VERSION);
    ap_rprintf(r, "# HELP monei_connect_start_time_seconds When the counters started.\n"
               "# TYPE monei_connect_start_time_seconds gauge\n"
               "monei_connect_start_time_seconds %u\n",
               apr_atomic_read32(&counters->started_at));
    mc_breaker_status(r, 0);
    if (mc_store_fill(&fill)) {
        /* The built-in store's fill, so that an administrator sees a full store coming. */
        ap_rprintf(r, "# HELP monei_connect_store_sessions Sessions the store is sized for.\n"
                   "# TYPE monei_connect_store_sessions gauge\n"
                   "monei_connect_store_sessions %u\n"
                   "# HELP monei_connect_store_records Records held: sessions, login states, "
                   "locks.\n# TYPE monei_connect_store_records gauge\n"
                   "monei_connect_store_records %u\n"
                   "# HELP monei_connect_store_slots Records the store holds at most.\n"
                   "# TYPE monei_connect_store_slots gauge\n"
                   "monei_connect_store_slots %u\n"
                   "# HELP monei_connect_store_evictions_total Live records evicted to make "
                   "room.\n# TYPE monei_connect_store_evictions_total counter\n"
                   "monei_connect_store_evictions_total %" APR_UINT64_T_FMT "\n",
                   fill.sessions, fill.records, fill.slots, fill.evictions);
    }
    return OK;
}
