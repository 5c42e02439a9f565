/* mc_record.h - binary codec of the records mod_monei_connect stores.
 *
 * These are the plaintexts that mc_record_seal() encrypts; they never leave
 * the server unencrypted. The format is small and forward compatible:
 *
 *   format byte | field* | end      field = tag (1) | length (2, big endian) | value
 *                                   end   = 0x00 0x00 0x00 (tag 0, length 0)
 *
 *   - the end field must come last and nothing may follow it, so a record
 *     cut short at a field boundary is detected rather than read as a
 *     record with fewer fields (tag 0 is reserved for it);
 *   - integers are 8-byte big-endian two's complement (length must be 8);
 *   - snapshot_stale is one byte, 0 or 1;
 *   - strings are raw bytes without terminator, at most 65535 of them, and
 *     may not contain NUL; an absent field decodes as NULL (or 0), an empty
 *     string stays "" so NULL and "" survive a round trip;
 *   - unknown tags are skipped, so a newer module can add fields that an
 *     older one (during a rolling upgrade) ignores;
 *   - a known tag appearing twice is malformed (rejected rather than "last
 *     wins", so no two readers can disagree on what a record says).
 *
 * Session and state records carry different format bytes so that one can
 * never be decoded as the other.
 */
#ifndef MC_RECORD_H
#define MC_RECORD_H

#include <apr_pools.h>
#include <apr_errno.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MC_RECORD_FMT_SESSION  0x53   /* 'S', format 1 of the session record */
#define MC_RECORD_FMT_STATE    0x54   /* 'T', format 1 of the state record */
#define MC_RECORD_MAX_STRING   65535

typedef struct {
    apr_int64_t created;        /* unix seconds, session start (max duration counts from here) */
    apr_int64_t last_active;    /* unix seconds, inactivity clock (written at most once a minute by the caller) */
    apr_int64_t expires_at;     /* access token expiry, unix seconds */
    apr_int64_t snapshot_at;    /* when wallet/user snapshot was fetched, 0 = never */
    apr_int64_t refresh_after;  /* don't try refresh before this (429 Retry-After), 0 = none */
    apr_int64_t generation;     /* bumped on each token rotation (refresh race detection) */
    const char *access_token;   /* NULL if absent */
    const char *refresh_token;
    const char *scopes;         /* space separated, as granted */
    const char *subject;        /* REMOTE_USER value */
    const char *wallet_json;    /* compact JSON of /wallet/me data, NULL if none */
    const char *user_json;      /* compact JSON of /user/me data, NULL if none */
    int snapshot_stale;         /* 1 when last fetch failed and an older snapshot is served */
    const char *declined;       /* scopes the user declined at the last step-up, NULL if none */
    apr_int64_t declined_at;    /* when; a page needing them shows 403 instead of looping */
    const char *exports;        /* the snapshot's variables, flattened once when it was
                                 * fetched: "NAME\tvalue\n"…, so requests need no JSON parse */
} mc_session_rec;

typedef struct {
    apr_int64_t created;
    const char *binding;        /* hash of the browser-binding cookie value */
    const char *return_to;      /* original URL (path+query) or absolute URL */
    const char *verifier;       /* PKCE code_verifier, NULL when PKCE off */
    const char *scopes;         /* scopes requested */
    const char *base_session;   /* for step-up: store-key of the session being extended, NULL otherwise */
    const char *id;             /* random: names the state's single-use marker */
    int fresh_binding;          /* 1 when the binding cookie was minted by this login start */
    int retry;                  /* 1 for the one fresh login after a lost binding race */
} mc_state_rec;

/* Encode s into *out and *len (allocated in p, wiped when p is cleared since it
 * holds tokens). APR_ENOSPC if a string exceeds MC_RECORD_MAX_STRING,
 * APR_EINVAL on NULL arguments. */
apr_status_t mc_session_encode(apr_pool_t *p, const mc_session_rec *s,
                               unsigned char **out, apr_size_t *len);

/* Decode in[0..len) into *s; strings are NUL-terminated copies in p (wiped
 * when p is cleared). APR_EGENERAL on any malformed input, in which case *s
 * is zeroed. Safe on arbitrary bytes. */
apr_status_t mc_session_decode(apr_pool_t *p, const unsigned char *in, apr_size_t len,
                               mc_session_rec *s);

apr_status_t mc_state_encode(apr_pool_t *p, const mc_state_rec *s,
                             unsigned char **out, apr_size_t *len);

apr_status_t mc_state_decode(apr_pool_t *p, const unsigned char *in, apr_size_t len,
                             mc_state_rec *s);

#ifdef __cplusplus
}
#endif

#endif /* MC_RECORD_H */
