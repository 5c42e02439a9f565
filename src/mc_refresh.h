/* mc_refresh: when to refresh a session's access token, as a pure function.
 *
 * The httpd side (mod_mc_refresh.c) loops: it asks mc_refresh_decide what to do, does it
 * (take the session's lock, call Monei, wait, re-read the record) and asks again with what
 * it learnt, until the answer is to use the token or that there is none. Keeping every
 * branch here makes each one testable without httpd or Monei (t/unit/test_refresh.c). */
#ifndef MC_REFRESH_H
#define MC_REFRESH_H

#include <apr.h>

typedef enum {
    MC_LOCK_UNTRIED = 0,    /* this request has not asked for the session's lock yet */
    MC_LOCK_HELD,           /* this request holds it */
    MC_LOCK_BUSY            /* another request (any process, any server) holds it */
} mc_lock_state;

typedef enum {
    MC_REFRESH_USE = 0,     /* serve the request with the token the record has */
    MC_REFRESH_TAKE_LOCK,   /* ask for the lock, then decide again */
    MC_REFRESH_CALL,        /* holding the lock on an up-to-date record: refresh at Monei */
    MC_REFRESH_WAIT,        /* wait a moment for the holder, re-read the record, decide again */
    MC_REFRESH_ADOPT,       /* another request refreshed: use its record, decide again */
    MC_REFRESH_NO_TOKEN,    /* no usable token now (expired and Monei asked us to wait, or
                             * waiting ran out): serve without calling Monei */
    MC_REFRESH_END          /* Monei rejected the refresh token and nobody else refreshed:
                             * the session ends */
} mc_refresh_action;

typedef struct {
    apr_int64_t now;            /* Unix seconds */
    apr_int64_t expires_at;     /* the access token's expiry, from the record */
    apr_int64_t refresh_after;  /* Monei's Retry-After for the token endpoint, 0 = none */
    long before;                /* refresh this long before expiry */
    int force;                  /* Monei refused the token for a call: refresh whatever the
                                 * clock says (still honouring refresh_after) */
    mc_lock_state lock;
    int record_changed;         /* the stored record's token generation differs from ours */
    int rejected;               /* our refresh call was rejected by Monei (400/401/404) */
    int waited_out;             /* waiting for another holder took longer than it may */
} mc_refresh_in;

mc_refresh_action mc_refresh_decide(const mc_refresh_in *in);

/* A short name of an action, for debug logs and test messages. */
const char *mc_refresh_action_name(mc_refresh_action a);

#endif
