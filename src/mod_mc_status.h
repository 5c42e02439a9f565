/* Counters since start across all processes, for SetHandler monei-connect-status. */
#ifndef MOD_MC_STATUS_H
#define MOD_MC_STATUS_H

#include "httpd.h"

typedef enum {
    MC_STAT_LOGIN_STARTED = 0,
    MC_STAT_LOGIN_COMPLETED,
    MC_STAT_LOGIN_FAILED_STATE,     /* missing, unknown, expired, reused or foreign state */
    MC_STAT_LOGIN_FAILED_DENIED,    /* the user declined at Monei */
    MC_STAT_LOGIN_FAILED_PROVIDER,  /* Monei returned another error on the callback */
    MC_STAT_LOGIN_FAILED_EXCHANGE,  /* the code exchange failed */
    MC_STAT_LOGIN_FAILED_STORE,     /* the session could not be stored */
    MC_STAT_STEP_UP,
    MC_STAT_REFRESH_OK,
    MC_STAT_REFRESH_FAILED,
    MC_STAT_REFRESH_429,
    MC_STAT_REVOKED,                /* Monei rejected a session's tokens: session ended */
    MC_STAT_DISCONNECT,
    MC_STAT_STORE_ERROR,
    MC_STAT_RECORD_TOO_LARGE,       /* Monei's data did not fit a session: some left out */
    MC_STAT_COUNT
} mc_stat;

int mc_status_post_config(apr_pool_t *pconf, server_rec *s);
void mc_stat_inc(mc_stat which);
int mc_status_handler(request_rec *r);

#endif
