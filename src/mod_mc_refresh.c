/* Token upkeep: a session made ready for a request (mc_session_ready), refreshing its access
 * token when due (once across every process and server: under the session's lock), honouring
 * Monei's 429 back-off, waiting for another request's refresh, and refreshing after Monei
 * refused the token. What to do next is always mc_refresh_decide's answer (mc_refresh.c);
 * this file only carries it out. */
#include "mod_mc.h"
#include "mod_mc_status.h"
#include "mod_mc_breaker.h"
#include "mc_refresh.h"
#include "mc_monei.h"

#include <apr_strings.h>

APLOG_USE_MODULE(monei_connect);

#define MC_WAIT_POLL apr_time_from_msec(50)

typedef enum {
    MC_TOKEN_OK = 0,        /* the record's token may be used */
    MC_TOKEN_ENDED,         /* the session is gone (refresh token rejected, or destroyed) */
    MC_TOKEN_UNUSABLE       /* no usable token right now: serve without calling Monei */
} mc_token_state;

/* Carry out one refresh call while holding the lock. Returns the next input to decide on,
 * or sets *done to the final answer. */
static void call_monei(request_rec *r, mc_session_t *h, mc_refresh_in *in, int *done,
                       mc_token_state *result)
{
    mc_api_result res;
    apr_status_t rv;
    int changed = 0;

    if (mc_api_refresh(r, h->rec, &res)) {
        mc_stat_inc(MC_STAT_REFRESH_OK);
        rv = mc_session_save_locked(r, h);
        if (rv == APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "MC0042: mc-refresh: tokens rotated");
            *done = 1, *result = MC_TOKEN_OK;
        }
        else if (rv == APR_EEXIST || APR_STATUS_IS_NOTFOUND(rv)) {
            /* The session was ended (a disconnect) while Monei answered: the new pair must
             * not outlive it, and nothing may write it back. */
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "MC0043: mc-refresh: the session ended during "
                          "its refresh; the new tokens are revoked");
            mc_api_revoke(r, h->rec->access_token);
            mc_api_revoke(r, h->rec->refresh_token);
            *done = 1, *result = MC_TOKEN_ENDED;
        }
        else {
            /* The store failed: this request can still use the new token. */
            *done = 1, *result = MC_TOKEN_OK;
        }
        return;
    }
    mc_stat_inc(res.http_status == 429 ? MC_STAT_REFRESH_429 : MC_STAT_REFRESH_FAILED);
    /* Monei slow, down or busy: every session's refresh and snapshot backs off, not only
     * this one's. */
    mc_breaker_refresh_failed(r, &res);
    if (res.http_status == 429) {
        /* Everyone waits: the back-off is part of the record, under the lock we hold. */
        h->rec->refresh_after = in->now + (res.retry_after > 0 ? res.retry_after
                                                               : MC_DEFAULT_RETRY_AFTER);
        mc_session_save_locked(r, h);
        return;
    }
    if (res.http_status == 401 || res.http_status == 400 || res.http_status == 404) {
        /* Rejected. Someone may have rotated the pair before we took the lock. */
        rv = mc_session_reread(r, h, &changed);
        if (APR_STATUS_IS_NOTFOUND(rv)) {
            *done = 1, *result = MC_TOKEN_ENDED;
            return;
        }
        in->rejected = 1;
        in->record_changed = changed;
        return;
    }
    /* Monei unreachable or failing: try again with a later request. */
    *done = 1;
    *result = (in->force || in->now >= h->rec->expires_at) ? MC_TOKEN_UNUSABLE : MC_TOKEN_OK;
}

static mc_token_state upkeep(request_rec *r, mc_session_t *h, int force)
{
    mc_srv_cfg *c = mc_srv(r);
    mc_refresh_in in;
    apr_time_t wait_until = 0;
    mc_token_state result = MC_TOKEN_OK;
    int held = 0, done = 0, changed;
    apr_status_t rv;

    memset(&in, 0, sizeof(in));
    in.before = c->refresh_before;
    in.force = force;
    while (!done) {
        mc_refresh_action act;
        in.now = apr_time_sec(apr_time_now());
        in.expires_at = h->rec->expires_at;
        in.refresh_after = h->rec->refresh_after;
        if (in.force || in.now >= in.expires_at - in.before) {
            /* Due: a 429 the token endpoint gave any session holds this refresh back too. */
            apr_int64_t shared = mc_breaker_refresh_not_before(r);
            in.refresh_after = shared > in.refresh_after ? shared : in.refresh_after;
        }
        act = mc_refresh_decide(&in);
        switch (act) {
        case MC_REFRESH_USE:
            done = 1, result = MC_TOKEN_OK;
            break;
        case MC_REFRESH_NO_TOKEN:
            done = 1, result = MC_TOKEN_UNUSABLE;
            break;
        case MC_REFRESH_END:
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                          "MC0044: mc-refresh: Monei rejected the refresh token; the session ends");
            done = 1, result = MC_TOKEN_ENDED;
            break;
        case MC_REFRESH_ADOPT:
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                          "MC0045: mc-refresh: another request refreshed this session already");
            /* The adopted record's token is the newest there is. */
            in.record_changed = in.rejected = in.force = 0;
            break;
        case MC_REFRESH_TAKE_LOCK:
            rv = mc_session_lock(r, h);
            if (rv == APR_EBUSY) {
                in.lock = MC_LOCK_BUSY;
                break;
            }
            if (rv != APR_SUCCESS) {
                done = 1;
                result = in.force || in.now >= in.expires_at ? MC_TOKEN_UNUSABLE : MC_TOKEN_OK;
                break;
            }
            held = 1;
            in.lock = MC_LOCK_HELD;
            /* What we read may predate a refresh that finished before we got the lock. */
            rv = mc_session_reread(r, h, &changed);
            if (APR_STATUS_IS_NOTFOUND(rv)) {
                done = 1, result = MC_TOKEN_ENDED;
            }
            else if (rv != APR_SUCCESS) {
                done = 1, result = MC_TOKEN_UNUSABLE;
            }
            in.record_changed = changed;
            break;
        case MC_REFRESH_WAIT:
            if (!wait_until) {
                /* A holder may keep the lock its whole life; if it died, the lock lapses and
                 * a refresh of our own takes one more call. */
                wait_until = apr_time_now() + mc_session_lock_ttl(r)
                             + apr_time_from_sec(c->total_timeout);
            }
            apr_sleep(MC_WAIT_POLL);
            rv = mc_session_reread(r, h, &changed);
            if (APR_STATUS_IS_NOTFOUND(rv)) {
                done = 1, result = MC_TOKEN_ENDED;
                break;
            }
            in.record_changed = rv == APR_SUCCESS && changed;
            in.lock = MC_LOCK_UNTRIED;
            in.waited_out = apr_time_now() > wait_until;
            if (in.waited_out) {
                ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                              "MC0046: mc-refresh: gave up waiting for another request's refresh");
            }
            break;
        case MC_REFRESH_CALL:
            call_monei(r, h, &in, &done, &result);
            break;
        }
    }
    if (held) {
        mc_session_unlock(r, h);
    }
    return result;
}

static mc_sess_result ended(request_rec *r, mc_session_t *h)
{
    mc_stat_inc(MC_STAT_REVOKED);
    mc_session_destroy(r, h, 0);
    return MC_SESS_NONE;
}

mc_sess_result mc_session_ready(request_rec *r, mc_session_t **out)
{
    mc_sess_result sr = mc_session_load(r, out);
    mc_session_t *h = *out;
    long max_age = mc_cfg_wallet_max_age(mc_dir(r));
    apr_int64_t now = apr_time_sec(apr_time_now());
    mc_token_state ts;

    if (sr != MC_SESS_OK || h->ready) {
        return sr;
    }
    h->ready = 1;
    ts = upkeep(r, h, 0);
    if (ts == MC_TOKEN_ENDED) {
        return ended(r, h);
    }
    if (max_age != 0 && now - h->rec->snapshot_at < max_age) {
        return MC_SESS_OK;
    }
    if (ts == MC_TOKEN_OK) {
        int was_stale = h->rec->snapshot_stale;
        mc_breaker_ticket ticket;
        mc_api_result trouble;
        int snap;

        ticket.kind = MC_BREAKER_T_NONE;
        /* A grant with neither scope has no snapshot to fetch: Monei is not called, and the
         * breaker is not asked. */
        if ((mc_scope_has(h->rec->scopes, "wallet:read")
             || mc_scope_has(h->rec->scopes, "profile:read"))
            && mc_breaker_admit(r, &ticket) != MC_BREAKER_CALL) {
            /* Monei is backing us off, or two calls already wait on it: the last snapshot,
             * at once, marked for this request (the record is not rewritten for it). */
            h->rec->snapshot_stale = 1;
            return MC_SESS_OK;
        }
        snap = mc_api_snapshot_ex(r, h->rec, &trouble);
        if (snap < 0) {
            /* The token was refused: one refresh, then one more try. */
            ts = upkeep(r, h, 1);
            snap = ts == MC_TOKEN_OK ? mc_api_snapshot_ex(r, h->rec, &trouble) : 0;
        }
        /* A refused token says Monei answers: only failures count against it. */
        mc_breaker_done(r, &ticket, snap != 0 ? NULL : &trouble);
        if (ts == MC_TOKEN_ENDED) {
            return ended(r, h);
        }
        if (snap < 0) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                          "MC0047: mc-session: Monei refuses the session's tokens; it ends");
            return ended(r, h);
        }
        /* Write fresh data, or the first failure; not every request while Monei is down. */
        if (snap > 0 || h->rec->snapshot_stale != was_stale) {
            h->dirty = 1;
        }
    }
    else if (!h->rec->snapshot_stale) {
        /* No usable token (Monei unreachable): the page gets the last snapshot, marked. */
        h->rec->snapshot_stale = 1;
        h->dirty = 1;
    }
    return MC_SESS_OK;
}
