/* Login states sealed into the `state` parameter, used once (mod_mc_state.c). */
#ifndef MOD_MC_STATE_H
#define MOD_MC_STATE_H

#include "httpd.h"
#include "mc_record.h"

/* Longest sealed state we issue or accept: a return_to of MC_RETURN_TO_MAX_LEN and the
 * rest of the record, sealed and base64url-encoded, fit with room to spare. */
#define MC_STATE_MAX_LEN 4096

/* The state value for st (base64url of the sealed record), NULL on failure (logged). */
const char *mc_state_seal(request_rec *r, const mc_state_rec *st);

/* Open a state value sealed here: APR_NOTFOUND for anything forged, foreign (another client
 * id or passphrase), malformed or truncated. Writes nothing; the state stays usable. */
apr_status_t mc_state_open(request_rec *r, const char *state, mc_state_rec *st);

/* Use the state once: APR_SUCCESS the first time, APR_EEXIST ever after (atomic across
 * processes and servers sharing the store), another status when the store is down. */
apr_status_t mc_state_claim(request_rec *r, const mc_state_rec *st);

#endif
