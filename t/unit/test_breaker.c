/* Unit tests of mc_breaker.c: the bulkhead, the breaker's states and back-off, the token
 * endpoint's wait, and many threads at once against one breaker. */
#include "mc_test.h"
#include "mc_breaker.h"
#include "mc_http.h"

#include <apr_date.h>
#include <apr_strings.h>

#include <apr_general.h>
#include <apr_atomic.h>
#include <apr_thread_proc.h>
#include <string.h>

#define NOW 1700000000u
#define TTL 10
#define PID 4242

static mc_breaker b;
static apr_pool_t *pool;

static void reset(void)
{
    memset(&b, 0, sizeof(b));
}

static void bulkhead(void)
{
    mc_breaker_ticket t1, t2, t3;

    reset();
    CHECK(mc_breaker_state_at(&b, NOW) == MC_BREAKER_CLOSED, "zeroed memory is closed");
    CHECK(mc_breaker_enter(&b, NOW, PID, TTL, &t1) == MC_BREAKER_CALL, "first call admitted");
    CHECK(mc_breaker_enter(&b, NOW, PID, TTL, &t2) == MC_BREAKER_CALL, "second call admitted");
    CHECK(mc_breaker_in_flight(&b, NOW) == 2, "two in flight");
    CHECK(mc_breaker_enter(&b, NOW, PID, TTL, &t3) == MC_BREAKER_BUSY, "third finds it busy");
    CHECK(t3.kind == MC_BREAKER_T_NONE, "a busy answer holds no ticket");
    CHECK(b.busy == 1, "busy answers counted");
    CHECK(mc_breaker_leave(&b, &t1, NOW, 0, -1) == MC_BREAKER_NO_CHANGE, "success: no change");
    CHECK(mc_breaker_in_flight(&b, NOW) == 1, "a slot freed");
    CHECK(mc_breaker_enter(&b, NOW, PID, TTL, &t3) == MC_BREAKER_CALL, "the freed slot is used");
    mc_breaker_leave(&b, &t2, NOW, 0, -1);
    mc_breaker_leave(&b, &t3, NOW, 0, -1);
    CHECK(mc_breaker_in_flight(&b, NOW) == 0, "all slots free");
    CHECK(mc_breaker_leave(&b, &t3, NOW, 0, -1) == MC_BREAKER_NO_CHANGE && t3.kind == 0,
          "leaving twice is harmless");

    /* A holder that died never gives its slot back: it lapses at its expiry. */
    reset();
    mc_breaker_enter(&b, NOW, 1111, TTL, &t1);
    mc_breaker_enter(&b, NOW, 2222, TTL, &t2);
    CHECK(mc_breaker_enter(&b, NOW + TTL - 1, PID, TTL, &t3) == MC_BREAKER_BUSY,
          "slots held until their expiry");
    CHECK(mc_breaker_in_flight(&b, NOW + TTL) == 0, "lapsed slots are not in flight");
    CHECK(mc_breaker_enter(&b, NOW + TTL, PID, TTL, &t3) == MC_BREAKER_CALL,
          "a lapsed slot is taken again");
    /* The late holder's give-back must not free the new holder's slot. */
    mc_breaker_leave(&b, &t1, NOW + TTL, 0, -1);
    mc_breaker_leave(&b, &t2, NOW + TTL, 0, -1);
    CHECK(mc_breaker_in_flight(&b, NOW + TTL) == 1, "a lapsed holder frees nothing of others'");
    mc_breaker_leave(&b, &t3, NOW + TTL, 0, -1);
    CHECK(mc_breaker_in_flight(&b, NOW + TTL) == 0, "the new holder frees its own");

    /* pid 0 still marks a slot as taken */
    reset();
    mc_breaker_enter(&b, 0, 0, 0, &t1);
    CHECK(b.slot[0] != 0, "a word is never 0 when taken");
}

static void backoff(void)
{
    CHECK(mc_breaker_backoff(0) == 1 && mc_breaker_backoff(1) == 1, "1 s after one failure");
    CHECK(mc_breaker_backoff(2) == 2 && mc_breaker_backoff(3) == 4, "doubles");
    CHECK(mc_breaker_backoff(7) == 60 && mc_breaker_backoff(100) == 60
          && mc_breaker_backoff(0xffffffffu) == 60, "at most a minute");
}

static void breaker(void)
{
    mc_breaker_ticket t1, t2, p1, p2;

    reset();
    mc_breaker_enter(&b, NOW, PID, TTL, &t1);
    mc_breaker_enter(&b, NOW, PID, TTL, &t2);
    CHECK(mc_breaker_leave(&b, &t1, NOW + 4, 1, -1) == MC_BREAKER_OPENED, "a failure opens");
    CHECK(b.opened == 1 && b.failures == 1, "counted once");
    CHECK(mc_breaker_state_at(&b, NOW + 4) == MC_BREAKER_OPEN, "open");
    CHECK(b.open_until == NOW + 5, "for one second");
    CHECK(mc_breaker_leave(&b, &t2, NOW + 4, 1, -1) == MC_BREAKER_NO_CHANGE,
          "a second failure is no new transition");
    CHECK(b.open_until == NOW + 6, "but backs off longer");
    CHECK(mc_breaker_enter(&b, NOW + 5, PID, TTL, &t1) == MC_BREAKER_BACK_OFF,
          "no call while open");
    CHECK(b.skipped == 1, "skips counted");
    CHECK(mc_breaker_state_at(&b, NOW + 6) == MC_BREAKER_HALF_OPEN, "half-open after");
    CHECK(mc_breaker_enter(&b, NOW + 6, PID, TTL, &p1) == MC_BREAKER_CALL
          && p1.kind == MC_BREAKER_T_PROBE, "one probe");
    CHECK(mc_breaker_enter(&b, NOW + 6, PID, TTL, &p2) == MC_BREAKER_BACK_OFF,
          "only one probe at a time");
    CHECK(mc_breaker_leave(&b, &p1, NOW + 7, 1, -1) == MC_BREAKER_REOPENED,
          "a failed probe reopens");
    CHECK(b.open_until == NOW + 7 + 4, "for longer (4 s after three failures)");
    CHECK(mc_breaker_in_flight(&b, NOW + 7) == 0, "the probe is given back");
    CHECK(mc_breaker_enter(&b, NOW + 11, PID, TTL, &p1) == MC_BREAKER_CALL, "next probe");
    CHECK(mc_breaker_leave(&b, &p1, NOW + 11, 0, -1) == MC_BREAKER_CLOSED_AGAIN,
          "a successful probe closes");
    CHECK(mc_breaker_state_at(&b, NOW + 11) == MC_BREAKER_CLOSED && b.failures == 0, "closed");
    CHECK(mc_breaker_enter(&b, NOW + 11, PID, TTL, &t1) == MC_BREAKER_CALL
          && t1.kind == MC_BREAKER_T_SLOT, "closed: calls take slots again");
    mc_breaker_leave(&b, &t1, NOW + 11, 0, -1);

    /* The probe's holder died: the probe lapses and another request probes. */
    reset();
    mc_breaker_failure(&b, NOW, -1);
    CHECK(mc_breaker_enter(&b, NOW + 1, 1111, TTL, &p1) == MC_BREAKER_CALL, "probe taken");
    CHECK(mc_breaker_enter(&b, NOW + 1 + TTL, PID, TTL, &p2) == MC_BREAKER_CALL,
          "a lapsed probe is taken again");
    mc_breaker_leave(&b, &p2, NOW + 1 + TTL, 0, -1);

    /* A call that was in flight when the breaker opened does not close it. */
    reset();
    mc_breaker_enter(&b, NOW, PID, TTL, &t1);
    mc_breaker_enter(&b, NOW, PID, TTL, &t2);
    mc_breaker_leave(&b, &t1, NOW, 1, 20);
    CHECK(mc_breaker_leave(&b, &t2, NOW + 1, 0, -1) == MC_BREAKER_NO_CHANGE,
          "a slot's success leaves the breaker open");
    CHECK(mc_breaker_state_at(&b, NOW + 19) == MC_BREAKER_OPEN, "Retry-After still honoured");
}

static void retry_after(void)
{
    mc_breaker_ticket t;

    reset();
    CHECK(mc_breaker_failure(&b, NOW, 20) == MC_BREAKER_OPENED, "429 opens");
    CHECK(b.open_until == NOW + 20, "for Retry-After seconds");
    CHECK(mc_breaker_state_at(&b, NOW + 19) == MC_BREAKER_OPEN, "open one second before");
    CHECK(mc_breaker_enter(&b, NOW + 20, PID, TTL, &t) == MC_BREAKER_CALL, "probe at the date");
    mc_breaker_failure(&b, NOW + 20, -1);
    CHECK(b.open_until >= NOW + 21, "a later failure backs off from then");
    /* a shorter back-off never cuts a longer Retry-After */
    reset();
    mc_breaker_failure(&b, NOW, 30);
    mc_breaker_failure(&b, NOW + 1, -1);
    CHECK(b.open_until == NOW + 30, "the longest wait wins");
    reset();
    mc_breaker_failure(&b, NOW, 999999);
    CHECK(b.open_until == NOW + MC_BREAKER_MAX_RETRY_AFTER, "an absurd Retry-After is capped");

    reset();
    CHECK(mc_breaker_token_not_before(&b) == 0, "no token wait at first");
    mc_breaker_token_wait(&b, NOW, 20);
    CHECK(mc_breaker_token_not_before(&b) == NOW + 20, "token 429: no refresh before the date");
    mc_breaker_token_wait(&b, NOW + 1, 5);
    CHECK(mc_breaker_token_not_before(&b) == NOW + 20, "a shorter wait does not shorten it");
    mc_breaker_token_wait(&b, NOW + 1, -1);
    CHECK(mc_breaker_token_not_before(&b) == NOW + 20, "no Retry-After: unchanged");
    CHECK(mc_breaker_state_at(&b, NOW) == MC_BREAKER_CLOSED, "the snapshot breaker untouched");
}

/* Retry-After as Monei may send it: seconds or an HTTP-date (mc_curl.c). */
static long ra(const char *v, apr_time_t now)
{
    return mc_http_retry_after(v, strlen(v), now);
}

static void retry_after_header(void)
{
    apr_time_t now = apr_time_from_sec(NOW);
    char date[APR_RFC822_DATE_LEN];

    CHECK(ra("30", now) == 30, "delta-seconds");
    CHECK(ra(" 30\r\n", now) == 30, "delta-seconds with blanks and CRLF");
    CHECK(ra("0", now) == 0, "zero");
    apr_rfc822_date(date, now + apr_time_from_sec(20));
    CHECK(ra(date, now) == 20, "an HTTP-date 20 s ahead");
    CHECK(ra(apr_pstrcat(pool, " ", date, "\r\n", NULL), now) == 20,
          "an HTTP-date with blanks and CRLF");
    CHECK(ra(date, now + apr_time_from_msec(500)) == 20, "part of a second rounds up");
    apr_rfc822_date(date, now - apr_time_from_sec(5));
    CHECK(ra(date, now) == 0, "a date in the past: now");
    CHECK(ra("Sunday, 06-Nov-94 08:49:37 GMT", now) == 0, "the RFC 850 form is read too");
    CHECK(ra("", now) == -1 && ra("  \r\n", now) == -1, "empty: absent");
    CHECK(ra("12abc", now) == -1 && ra("-5", now) == -1 && ra("soon", now) == -1,
          "unreadable: absent");
    CHECK(ra("99999999999999", now) == MC_HTTP_RETRY_AFTER_MAX, "a huge delay is capped");
}

/* Many threads against one breaker: never more than MC_BREAKER_SLOTS in flight. */
#define THREADS 8
#define ROUNDS 20000
static apr_uint32_t inside, worst, admitted;

static void *APR_THREAD_FUNC hammer(apr_thread_t *th, void *arg)
{
    int i;
    (void)th;
    for (i = 0; i < ROUNDS; i++) {
        mc_breaker_ticket t;
        if (mc_breaker_enter(&b, NOW, (apr_uint32_t)(apr_uintptr_t)arg, TTL, &t)
            == MC_BREAKER_CALL) {
            apr_uint32_t n = apr_atomic_inc32(&inside) + 1, w;
            while ((w = apr_atomic_read32(&worst)) < n && apr_atomic_cas32(&worst, n, w) != w) {
            }
            apr_atomic_inc32(&admitted);
            apr_atomic_dec32(&inside);
            mc_breaker_leave(&b, &t, NOW, 0, -1);
        }
    }
    return NULL;
}

static void threads(apr_pool_t *p)
{
    apr_thread_t *th[THREADS];
    apr_status_t rv;
    int i;

    reset();
    for (i = 0; i < THREADS; i++) {
        apr_thread_create(&th[i], NULL, hammer, (void *)(apr_uintptr_t)(100 + i), p);
    }
    for (i = 0; i < THREADS; i++) {
        apr_thread_join(&rv, th[i]);
    }
    NOTE("admitted %u of %u, at most %u at once", admitted, THREADS * ROUNDS, worst);
    CHECK(worst >= 1 && worst <= MC_BREAKER_SLOTS, "never more than the slots in flight");
    CHECK(admitted > 0, "calls were admitted");
    CHECK(mc_breaker_in_flight(&b, NOW) == 0, "every slot given back");
}

int main(void)
{
    apr_pool_t *p;
    apr_initialize();
    apr_pool_create(&p, NULL);
    apr_atomic_init(p);
    pool = p;
    retry_after_header();
    bulkhead();
    backoff();
    breaker();
    retry_after();
    threads(p);
    CHECK(strcmp(mc_breaker_state_name(MC_BREAKER_HALF_OPEN), "half-open") == 0, "names");
    apr_pool_destroy(p);
    apr_terminate();
    return mc_test_done();
}
