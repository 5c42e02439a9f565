/* Unit tests of mc_refresh.c: every branch of the refresh policy. */
#include "mc_test.h"
#include "mc_refresh.h"

#include <string.h>

#define NOW 1000000
#define BEFORE 60

static mc_refresh_in at(apr_int64_t expires_at)
{
    mc_refresh_in in;
    memset(&in, 0, sizeof(in));
    in.now = NOW;
    in.expires_at = expires_at;
    in.before = BEFORE;
    return in;
}

static int is(mc_refresh_in in, mc_refresh_action want)
{
    mc_refresh_action got = mc_refresh_decide(&in);
    if (got != want) {
        NOTE("got %s, want %s", mc_refresh_action_name(got), mc_refresh_action_name(want));
    }
    return got == want;
}

int main(void)
{
    mc_refresh_in in;
    mc_lock_state locks[] = { MC_LOCK_UNTRIED, MC_LOCK_HELD, MC_LOCK_BUSY };
    unsigned i;

    /* not due */
    for (i = 0; i < 3; i++) {
        in = at(NOW + BEFORE + 1);
        in.lock = locks[i];
        CHECK(is(in, MC_REFRESH_USE), "a token not due is used whatever the lock");
    }
    in = at(NOW + BEFORE);
    CHECK(is(in, MC_REFRESH_TAKE_LOCK), "due exactly `before` seconds ahead: take the lock");

    /* due */
    in = at(NOW + 10);
    CHECK(is(in, MC_REFRESH_TAKE_LOCK), "due, lock untried: take the lock");
    in.lock = MC_LOCK_HELD;
    CHECK(is(in, MC_REFRESH_CALL), "due, lock held: call Monei");
    in = at(NOW);
    in.lock = MC_LOCK_HELD;
    CHECK(is(in, MC_REFRESH_CALL), "expired, lock held: call Monei");
    in = at(NOW + 10);
    in.force = 1;
    CHECK(is(in, MC_REFRESH_TAKE_LOCK), "forced (token refused) far from expiry: take the lock");
    in = at(NOW + 3600);
    in.force = 1;
    in.lock = MC_LOCK_HELD;
    CHECK(is(in, MC_REFRESH_CALL), "forced with the lock: call Monei");

    /* 429 window */
    in = at(NOW + 10);
    in.refresh_after = NOW + 30;
    CHECK(is(in, MC_REFRESH_USE), "due in the Retry-After window, token still valid: use it");
    in.lock = MC_LOCK_HELD;
    CHECK(is(in, MC_REFRESH_USE), "in the window even holding the lock: no call");
    in = at(NOW - 1);
    in.refresh_after = NOW + 30;
    CHECK(is(in, MC_REFRESH_NO_TOKEN), "expired in the Retry-After window: no token, no call");
    in = at(NOW + 3600);
    in.force = 1;
    in.refresh_after = NOW + 30;
    CHECK(is(in, MC_REFRESH_NO_TOKEN), "forced in the Retry-After window: no call");
    in = at(NOW + 10);
    in.refresh_after = NOW;
    CHECK(is(in, MC_REFRESH_TAKE_LOCK), "the window has passed: take the lock");

    /* lock busy */
    in = at(NOW + 10);
    in.lock = MC_LOCK_BUSY;
    CHECK(is(in, MC_REFRESH_USE), "lock busy with a usable token: use it, do not wait");
    in = at(NOW - 5);
    in.lock = MC_LOCK_BUSY;
    CHECK(is(in, MC_REFRESH_WAIT), "lock busy with an expired token: wait for the holder");
    in.waited_out = 1;
    CHECK(is(in, MC_REFRESH_NO_TOKEN), "waited as long as a holder may take: no token");

    /* another request refreshed */
    for (i = 0; i < 3; i++) {
        in = at(NOW - 5);
        in.lock = locks[i];
        in.record_changed = 1;
        CHECK(is(in, MC_REFRESH_ADOPT), "a refreshed record is adopted whatever the lock");
    }
    in = at(NOW - 5);
    in.rejected = 1;
    in.record_changed = 1;
    CHECK(is(in, MC_REFRESH_ADOPT), "lost race: rejected but the record changed: adopt");

    /* rejected */
    in = at(NOW - 5);
    in.rejected = 1;
    CHECK(is(in, MC_REFRESH_END), "rejected, record unchanged, nobody holds the lock: end");
    in.lock = MC_LOCK_BUSY;
    CHECK(is(in, MC_REFRESH_WAIT), "rejected while another holds the lock: wait, never end");

    CHECK(!strcmp(mc_refresh_action_name(MC_REFRESH_END), "end")
          && !strcmp(mc_refresh_action_name((mc_refresh_action)99), "?"), "action names");
    return MC_TEST_DONE();
}
