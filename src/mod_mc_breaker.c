/* The breaker and bulkhead for Monei's API in httpd (the state machine is mc_breaker.c).
 *
 * One breaker per API base (virtual hosts that talk to the same Monei share it), in a small
 * anonymous shared memory segment made once by the parent and kept across restarts, like
 * the status counters: every child of every generation sees the same breaker, and a child
 * of the old generation that finishes a call after a graceful restart still writes to
 * memory that exists. Transitions are logged by the request that made them, once each. */
#include "mod_mc.h"
#include "mod_mc_breaker.h"
#include "mc_text.h"

#include "http_protocol.h"
#include <apr_atomic.h>
#include <apr_hash.h>
#include <apr_shm.h>
#include <apr_strings.h>
#include <unistd.h>

APLOG_USE_MODULE(monei_connect);

/* Distinct API bases with a breaker of their own; any more share the last one. */
#define MC_BREAKERS 16

typedef struct {
    apr_shm_t *shm;
} mc_retained_breakers;

static mc_breaker *breakers;
static apr_hash_t *by_server;       /* server_rec * -> breaker index + 1 */
static const char *api_of[MC_BREAKERS];

int mc_breaker_post_config(apr_pool_t *pconf, server_rec *s)
{
    mc_retained_breakers *kept = ap_retained_data_get("mod_monei_connect-breakers");
    apr_status_t rv;
    server_rec *vs;
    int n = 0, i;

    if (!kept) {
        kept = ap_retained_data_create("mod_monei_connect-breakers", sizeof(*kept));
    }
    if (!kept->shm) {
        rv = apr_shm_create(&kept->shm, sizeof(mc_breaker) * MC_BREAKERS, NULL,
                            s->process->pool);
        if (rv != APR_SUCCESS) {
            /* Without it every snapshot call goes to Monei as before: worse, not broken. */
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, "MC0012: mc-breaker: no shared memory for the "
                         "breaker; calls to Monei are not limited");
            breakers = NULL;
            return OK;
        }
        memset(apr_shm_baseaddr_get(kept->shm), 0, sizeof(mc_breaker) * MC_BREAKERS);
    }
    breakers = apr_shm_baseaddr_get(kept->shm);
    by_server = apr_hash_make(pconf);
    memset(api_of, 0, sizeof(api_of));
    for (vs = s; vs; vs = vs->next) {
        mc_srv_cfg *c = ap_get_module_config(vs->module_config, &monei_connect_module);
        const char *api = c && c->api_base ? c->api_base : "";
        int *idx = apr_palloc(pconf, sizeof(*idx));
        for (i = 0; i < n && strcmp(api_of[i], api); i++) {
        }
        if (i == n) {
            if (n < MC_BREAKERS) {
                api_of[n++] = apr_pstrdup(pconf, api);
            }
            else {
                i = MC_BREAKERS - 1;
            }
        }
        *idx = i;
        apr_hash_set(by_server, apr_pmemdup(pconf, &vs, sizeof(vs)), sizeof(vs), idx);
    }
    return OK;
}

static mc_breaker *breaker_of(const request_rec *r)
{
    const int *idx;
    if (!breakers || !by_server) {
        return NULL;
    }
    idx = apr_hash_get(by_server, &r->server, sizeof(r->server));
    return idx ? &breakers[*idx] : &breakers[0];
}

static apr_uint32_t now_sec(void)
{
    return (apr_uint32_t)apr_time_sec(apr_time_now());
}

int mc_breaker_counts(const mc_api_result *res)
{
    if (res->transport != MC_HTTP_OK) {
        /* Timeouts, refused connections, handshakes that fail, answers cut off: each one
         * costs a worker its time. An answer too large is an answer. */
        return res->transport != MC_HTTP_ETOOBIG;
    }
    return res->http_status == 429 || res->http_status >= 500;
}

static const char *what_failed(request_rec *r, const mc_api_result *res)
{
    if (res->transport != MC_HTTP_OK) {
        return mc_http_err_str(res->transport);
    }
    return apr_psprintf(r->pool, "HTTP %d", res->http_status);
}

static void log_event(request_rec *r, mc_breaker *b, mc_breaker_event ev,
                      const mc_api_result *res)
{
    long wait = (long)apr_atomic_read32(&b->open_until) - (long)now_sec();
    switch (ev) {
    case MC_BREAKER_OPENED:
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "MC0013: mc-breaker: Monei's API is failing "
                      "(%s); breaker open: no wallet/profile call for %ld s, pages get the "
                      "last snapshot marked stale", what_failed(r, res), wait > 0 ? wait : 0);
        break;
    case MC_BREAKER_REOPENED:
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "MC0014: mc-breaker: the probe failed (%s); "
                      "breaker open again for %ld s", what_failed(r, res), wait > 0 ? wait : 0);
        break;
    case MC_BREAKER_CLOSED_AGAIN:
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r,
                      "MC0015: mc-breaker: Monei answers again; breaker closed");
        break;
    default:
        break;
    }
}

mc_breaker_go mc_breaker_admit(request_rec *r, mc_breaker_ticket *t)
{
    mc_breaker *b = breaker_of(r);
    mc_srv_cfg *c = mc_srv(r);
    mc_breaker_go go;

    t->kind = MC_BREAKER_T_NONE;
    if (!b) {
        return MC_BREAKER_CALL;
    }
    /* A snapshot is at most two calls, and a refused token adds a refresh and two more: a
     * slot lapses only after its holder must have given up. */
    go = mc_breaker_enter(b, now_sec(), (apr_uint32_t)getpid(),
                          (apr_uint32_t)(5 * c->total_timeout + 1), t);
    if (go == MC_BREAKER_CALL && t->kind == MC_BREAKER_T_PROBE) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "MC0016: mc-breaker: back-off over; this request probes Monei");
    }
    else if (go != MC_BREAKER_CALL) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "MC0017: mc-breaker: %s; the last snapshot is "
                      "served", go == MC_BREAKER_BUSY ? "two snapshot calls already in flight"
                                                      : "backing off");
    }
    return go;
}

void mc_breaker_done(request_rec *r, mc_breaker_ticket *t, const mc_api_result *res)
{
    mc_breaker *b = breaker_of(r);
    int failed = res && mc_breaker_counts(res);

    if (!b || t->kind == MC_BREAKER_T_NONE) {
        return;
    }
    log_event(r, b, mc_breaker_leave(b, t, now_sec(), failed, failed ? res->retry_after : -1),
              res);
}

void mc_breaker_refresh_failed(request_rec *r, const mc_api_result *res)
{
    mc_breaker *b = breaker_of(r);
    apr_uint32_t now = now_sec();

    if (!b || !mc_breaker_counts(res)) {
        return;
    }
    if (res->http_status == 429) {
        mc_breaker_token_wait(b, now, res->retry_after);
    }
    log_event(r, b, mc_breaker_failure(b, now, res->retry_after), res);
}

apr_int64_t mc_breaker_refresh_not_before(request_rec *r)
{
    mc_breaker *b = breaker_of(r);
    return b ? mc_breaker_token_not_before(b) : 0;
}

void mc_breaker_status(request_rec *r, int json)
{
    mc_breaker *b = breaker_of(r);
    apr_uint32_t now = now_sec();
    const char *api;
    long retry_in, token_in;
    mc_breaker_state st;

    if (!b) {
        return;
    }
    api = api_of[b - breakers] ? api_of[b - breakers] : "";
    st = mc_breaker_state_at(b, now);
    retry_in = (long)apr_atomic_read32(&b->open_until) - (long)now;
    token_in = (long)mc_breaker_token_not_before(b) - (long)now;
    retry_in = st == MC_BREAKER_CLOSED || retry_in < 0 ? 0 : retry_in;
    token_in = token_in < 0 ? 0 : token_in;
    if (json) {
        ap_rprintf(r, ",\"breaker\":{\"api\":%s,\"state\":\"%s\",\"failures\":%u,"
                   "\"retry_in\":%ld,\"in_flight\":%u,\"opened\":%u,\"served_busy\":%u,"
                   "\"served_backing_off\":%u,\"refresh_retry_in\":%ld}",
                   mc_json_escape_string(r->pool, api), mc_breaker_state_name(st),
                   apr_atomic_read32(&b->failures), retry_in, mc_breaker_in_flight(b, now),
                   apr_atomic_read32(&b->opened), apr_atomic_read32(&b->busy),
                   apr_atomic_read32(&b->skipped), token_in);
        return;
    }
    api = ap_escape_quotes(r->pool, api);
    ap_rprintf(r,
        "# HELP monei_connect_breaker_state Breaker for Monei's API: 0 closed, 1 open, "
        "2 half-open (the next call probes).\n"
        "# TYPE monei_connect_breaker_state gauge\n"
        "monei_connect_breaker_state{api=\"%s\"} %d\n"
        "# HELP monei_connect_breaker_retry_seconds Seconds until the next call may probe.\n"
        "# TYPE monei_connect_breaker_retry_seconds gauge\n"
        "monei_connect_breaker_retry_seconds{api=\"%s\"} %ld\n"
        "# HELP monei_connect_monei_calls_in_flight Snapshot calls to Monei in flight.\n"
        "# TYPE monei_connect_monei_calls_in_flight gauge\n"
        "monei_connect_monei_calls_in_flight{api=\"%s\"} %u\n"
        "# HELP monei_connect_breaker_opened_total Times the breaker opened.\n"
        "# TYPE monei_connect_breaker_opened_total counter\n"
        "monei_connect_breaker_opened_total{api=\"%s\"} %u\n"
        "# HELP monei_connect_stale_served_total Requests served the last snapshot at once "
        "instead of calling Monei, by reason.\n"
        "# TYPE monei_connect_stale_served_total counter\n"
        "monei_connect_stale_served_total{api=\"%s\",reason=\"busy\"} %u\n"
        "monei_connect_stale_served_total{api=\"%s\",reason=\"backing_off\"} %u\n",
        api, (int)st, api, retry_in, api, mc_breaker_in_flight(b, now), api,
        apr_atomic_read32(&b->opened), api, apr_atomic_read32(&b->busy), api,
        apr_atomic_read32(&b->skipped));
}
