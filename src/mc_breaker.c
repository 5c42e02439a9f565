/* mc_breaker: the breaker and bulkhead for Monei's API (see mc_breaker.h). */
#include "mc_breaker.h"

#include <apr_atomic.h>

static apr_uint64_t word_of(apr_uint32_t expiry, apr_uint32_t pid)
{
    /* pid 0 would make a taken word look free at expiry 0: never let a word be 0. */
    return ((apr_uint64_t)expiry << 32) | (pid ? pid : 1);
}

static apr_uint32_t expiry_of(apr_uint64_t w)
{
    return (apr_uint32_t)(w >> 32);
}

/* Take a word that is free or whose holder's time ran out. */
static int take(apr_uint64_t *mem, apr_uint32_t now, apr_uint64_t mine)
{
    apr_uint64_t cur = apr_atomic_read64(mem);
    if (cur != 0 && expiry_of(cur) > now) {
        return 0;
    }
    return apr_atomic_cas64(mem, mine, cur) == cur;
}

/* Free it only if it is still ours (it may have lapsed and been taken since). */
static void give_back(apr_uint64_t *mem, apr_uint64_t mine)
{
    apr_atomic_cas64(mem, 0, mine);
}

/* Raise a time to at least `t` (several processes may race; the latest wins). */
static void raise_to(apr_uint32_t *mem, apr_uint32_t t)
{
    apr_uint32_t cur;
    do {
        cur = apr_atomic_read32(mem);
        if (cur >= t) {
            return;
        }
    } while (apr_atomic_cas32(mem, t, cur) != cur);
}

static apr_uint32_t wait_for(long retry_after)
{
    if (retry_after > MC_BREAKER_MAX_RETRY_AFTER) {
        return MC_BREAKER_MAX_RETRY_AFTER;
    }
    return retry_after > 0 ? (apr_uint32_t)retry_after : 0;
}

apr_uint32_t mc_breaker_backoff(apr_uint32_t failures)
{
    apr_uint32_t s = MC_BREAKER_MIN_BACKOFF;
    while (failures > 1 && s < MC_BREAKER_MAX_BACKOFF) {
        s *= 2;
        failures--;
    }
    return s < MC_BREAKER_MAX_BACKOFF ? s : MC_BREAKER_MAX_BACKOFF;
}

mc_breaker_state mc_breaker_state_at(const mc_breaker *b, apr_uint32_t now)
{
    mc_breaker *m = (mc_breaker *)b;
    if (apr_atomic_read32(&m->failures) == 0) {
        return MC_BREAKER_CLOSED;
    }
    return now < apr_atomic_read32(&m->open_until) ? MC_BREAKER_OPEN : MC_BREAKER_HALF_OPEN;
}

const char *mc_breaker_state_name(mc_breaker_state s)
{
    switch (s) {
    case MC_BREAKER_CLOSED: return "closed";
    case MC_BREAKER_OPEN: return "open";
    case MC_BREAKER_HALF_OPEN: return "half-open";
    }
    return "?";
}

unsigned mc_breaker_in_flight(const mc_breaker *b, apr_uint32_t now)
{
    mc_breaker *m = (mc_breaker *)b;
    unsigned n = 0;
    int i;
    apr_uint64_t w;
    for (i = 0; i < MC_BREAKER_SLOTS; i++) {
        w = apr_atomic_read64(&m->slot[i]);
        n += w != 0 && expiry_of(w) > now;
    }
    w = apr_atomic_read64(&m->probe);
    return n + (w != 0 && expiry_of(w) > now);
}

mc_breaker_go mc_breaker_enter(mc_breaker *b, apr_uint32_t now, apr_uint32_t pid,
                               apr_uint32_t ttl, mc_breaker_ticket *t)
{
    apr_uint64_t mine = word_of(now + (ttl ? ttl : 1), pid);
    int i;

    t->kind = MC_BREAKER_T_NONE;
    switch (mc_breaker_state_at(b, now)) {
    case MC_BREAKER_OPEN:
        apr_atomic_inc32(&b->skipped);
        return MC_BREAKER_BACK_OFF;
    case MC_BREAKER_HALF_OPEN:
        /* One probe at a time tests whether Monei is back; everyone else serves at once. */
        if (take(&b->probe, now, mine)) {
            t->kind = MC_BREAKER_T_PROBE;
            t->word = mine;
            return MC_BREAKER_CALL;
        }
        apr_atomic_inc32(&b->skipped);
        return MC_BREAKER_BACK_OFF;
    case MC_BREAKER_CLOSED:
    default:
        break;
    }
    for (i = 0; i < MC_BREAKER_SLOTS; i++) {
        if (take(&b->slot[i], now, mine)) {
            t->kind = MC_BREAKER_T_SLOT;
            t->index = i;
            t->word = mine;
            return MC_BREAKER_CALL;
        }
    }
    apr_atomic_inc32(&b->busy);
    return MC_BREAKER_BUSY;
}

mc_breaker_event mc_breaker_failure(mc_breaker *b, apr_uint32_t now, long retry_after)
{
    apr_uint32_t f = apr_atomic_inc32(&b->failures) + 1;   /* inc32 returns the old value */
    apr_uint32_t wait = wait_for(retry_after);

    if (!wait) {
        wait = mc_breaker_backoff(f);
    }
    raise_to(&b->open_until, now + wait);
    if (f == 1) {
        apr_atomic_inc32(&b->opened);
        return MC_BREAKER_OPENED;
    }
    return MC_BREAKER_NO_CHANGE;
}

mc_breaker_event mc_breaker_leave(mc_breaker *b, mc_breaker_ticket *t, apr_uint32_t now,
                                  int failed, long retry_after)
{
    mc_breaker_event ev = MC_BREAKER_NO_CHANGE;

    if (t->kind == MC_BREAKER_T_NONE) {
        return ev;
    }
    if (failed) {
        ev = mc_breaker_failure(b, now, retry_after);
        if (t->kind == MC_BREAKER_T_PROBE && ev == MC_BREAKER_NO_CHANGE) {
            ev = MC_BREAKER_REOPENED;
        }
    }
    else if (t->kind == MC_BREAKER_T_PROBE) {
        /* Only a probe closes: a call that started before the breaker opened and ends well
         * must not cut short a Retry-After Monei gave meanwhile. */
        if (apr_atomic_xchg32(&b->failures, 0) != 0) {
            ev = MC_BREAKER_CLOSED_AGAIN;
        }
    }
    give_back(t->kind == MC_BREAKER_T_PROBE ? &b->probe : &b->slot[t->index], t->word);
    t->kind = MC_BREAKER_T_NONE;
    return ev;
}

void mc_breaker_token_wait(mc_breaker *b, apr_uint32_t now, long retry_after)
{
    apr_uint32_t wait = wait_for(retry_after);
    if (wait) {
        raise_to(&b->token_not_before, now + wait);
    }
}

apr_uint32_t mc_breaker_token_not_before(const mc_breaker *b)
{
    return apr_atomic_read32(&((mc_breaker *)b)->token_not_before);
}
