/* Sessions: the handle a request holds, and every operation on the stored record.
 *
 * One owner. A session reaches other files only as an mc_session_t handle, made by this
 * file for one request, from that request's pool: a subrequest or an internal redirect gets
 * a handle of its own (it only borrows the cookie values, which live in the pool of the
 * request the browser sent, longer than its own). Other files read the record through the
 * handle; only this file and the token upkeep (mod_mc_refresh.c, through the functions
 * below) change it.
 *
 * Writes to a stored session happen only under the session's lock, a record put with the
 * store's atomic put-if-absent (mc_store_add), on every store: so a write is a
 * compare-and-save (it lands only on a record that still exists with the token generation
 * the writer started from), a refresh is done once across every process and server, and a
 * destroyed session is never written back. The one exception is the activity stamp: where
 * the store can note it on a live record in one atomic step (mc_store_touch), it is noted
 * without the lock; that step never brings back a removed record and changes no token. */
#ifndef MOD_MC_SESSION_H
#define MOD_MC_SESSION_H

#include "httpd.h"
#include "mod_mc_config.h"
#include "mc_record.h"

typedef enum {
    MC_SESS_OK = 0,             /* a valid session */
    MC_SESS_NONE,               /* no session (none, expired, unknown, revoked) */
    MC_SESS_STORE_DOWN          /* the store could not be read */
} mc_sess_result;

typedef struct mc_session_t {
    const char *id;             /* cookie value; NULL when the browser sent none */
    const char *key;            /* store key of id in this server's realm; NULL until read */
    mc_session_rec *rec;        /* the opened record; NULL when there is no session */
    apr_int64_t generation;     /* token generation of the stored record rec was read from */
    int dirty;                  /* rec changed (tokens, snapshot): worth a write */
    int active;                 /* the inactivity clock moved: worth noting in the store */
    int loaded;                 /* a load was attempted in this request */
    mc_sess_result result;      /* what it gave */
    int ready;                  /* token and snapshot brought up to date (mc_session_ready) */
} mc_session_t;

/* Lifecycle of the module. */
int mc_session_post_config(apr_pool_t *pconf, server_rec *s);
/* post_read_request: our cookies leave the Cookie header before anything else sees it. */
void mc_cookies_take(request_rec *r);
/* The browser-binding (state) cookie's value this request came with, or NULL. */
const char *mc_session_binding(request_rec *r);
const char *mc_state_cookie_name(const mc_srv_cfg *c);
void mc_set_cookie(request_rec *r, const char *name, const char *value, long max_age,
                   int lax_at_least);

/* This request's handle, loaded once: the cookie's session if valid (its inactivity clock
 * moved when due). *out is always set. */
mc_sess_result mc_session_load(request_rec *r, mc_session_t **out);

/* The session's lock (one writer at a time, across servers): APR_EBUSY at once when another
 * holds it. */
apr_status_t mc_session_lock(request_rec *r, mc_session_t *h);
void mc_session_unlock(request_rec *r, mc_session_t *h);
/* How long a lock lives: longer than the longest call to Monei its holder may make. */
apr_interval_time_t mc_session_lock_ttl(request_rec *r);

/* Read the stored record again. *changed is 1 when its token generation differs from the
 * handle's: the handle then holds the stored record (our activity clock kept). APR_NOTFOUND
 * when the session no longer exists. */
apr_status_t mc_session_reread(request_rec *r, mc_session_t *h, int *changed);

/* With the lock held: write h->rec if the stored record still has the handle's generation.
 * APR_EEXIST when another generation is stored, APR_NOTFOUND when it is gone. */
apr_status_t mc_session_save_locked(request_rec *r, mc_session_t *h);

/* End of a request: write a changed record if the lock is free (an activity stamp or a
 * snapshot can wait for the next request; a refresh in flight writes its own). */
void mc_session_finish(request_rec *r, mc_session_t *h);

/* End the session: removed from the store under its lock (after any refresh in flight has
 * written), the cookie cleared, and with `revoke` both tokens of what was stored revoked
 * at Monei. */
void mc_session_destroy(request_rec *r, mc_session_t *h, int revoke);

/* A completed login: a brand-new session id (never the one the browser came with) holding
 * rec. The session the browser had, and `replaces` (the store key of a session being
 * extended by a step-up), end. Returns the id, or NULL when it could not be stored. */
const char *mc_session_create(request_rec *r, mc_session_rec *rec, const char *replaces);

/* The session under a store key (a step-up's base), read and opened; NULL if none. */
mc_session_rec *mc_session_read_key(request_rec *r, const char *key);
/* Remember a declined step-up in the session under key (best effort, under its lock). */
void mc_session_note_decline(request_rec *r, const char *key, const char *scopes);

#endif
