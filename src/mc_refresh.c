/* mc_refresh: the refresh policy (see mc_refresh.h). */
#include "mc_refresh.h"

mc_refresh_action mc_refresh_decide(const mc_refresh_in *in)
{
    /* The token no longer works: a request cannot be served with it. */
    int expired = in->force || in->now >= in->expires_at;
    int due = expired || in->now >= in->expires_at - in->before;

    /* What someone else did to the record comes first: a refreshed record settles it. */
    if (in->record_changed) {
        return MC_REFRESH_ADOPT;
    }
    if (in->rejected) {
        /* Rejected, and the record is the one we tried with: the grant is gone, unless a
         * holder we do not know of rotated the pair and has yet to write it. */
        return in->lock == MC_LOCK_BUSY ? MC_REFRESH_WAIT : MC_REFRESH_END;
    }
    if (!due) {
        return MC_REFRESH_USE;
    }
    /* Monei asked us to wait (429): no call before then, by anyone. */
    if (in->refresh_after > in->now) {
        return expired ? MC_REFRESH_NO_TOKEN : MC_REFRESH_USE;
    }
    switch (in->lock) {
    case MC_LOCK_HELD:
        return MC_REFRESH_CALL;
    case MC_LOCK_BUSY:
        /* Someone is refreshing. A token that still works serves this request; one that
         * does not waits for the holder's record, for as long as a holder may take. */
        if (!expired) {
            return MC_REFRESH_USE;
        }
        return in->waited_out ? MC_REFRESH_NO_TOKEN : MC_REFRESH_WAIT;
    case MC_LOCK_UNTRIED:
    default:
        return MC_REFRESH_TAKE_LOCK;
    }
}

const char *mc_refresh_action_name(mc_refresh_action a)
{
    static const char *const names[] = {
        "use", "take-lock", "call", "wait", "adopt", "no-token", "end"
    };
    return (unsigned)a < sizeof(names) / sizeof(names[0]) ? names[a] : "?";
}
