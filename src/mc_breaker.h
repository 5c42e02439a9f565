/* mc_breaker: a circuit breaker and a bulkhead for calls to Monei's API, as a pure state
 * machine over a small struct that lives in shared memory (every process of the server
 * uses the same one). Only atomic operations, no lock: a request that finds a fresh
 * snapshot never comes here, and one that does pays a few compare-and-swaps.
 *
 * - Bulkhead: at most MC_BREAKER_SLOTS snapshot fetches are in flight at any moment. A slot
 *   holds its owner's pid and an expiry, so the slot of a process that died while holding
 *   it frees itself when the expiry passes.
 * - Breaker: a timeout, a connection failure, a 5xx or a 429 opens it. While open (until
 *   Monei's Retry-After, else a back-off growing 1, 2, 4 .. 60 s with each failure) no
 *   snapshot call is made; after that, one probe at a time may call. The probe's success
 *   closes the breaker, its failure opens it again for longer.
 * - Token endpoint: a 429 from it names a time before which no refresh is made, by anyone.
 *
 * Times are Unix seconds given by the caller, so every branch is testable without a clock
 * (t/unit/test_breaker.c). No httpd headers. */
#ifndef MC_BREAKER_H
#define MC_BREAKER_H

#include <apr.h>

#define MC_BREAKER_SLOTS 2
#define MC_BREAKER_MIN_BACKOFF 1
#define MC_BREAKER_MAX_BACKOFF 60
/* A Retry-After is honoured up to this long; beyond, it is taken as this. */
#define MC_BREAKER_MAX_RETRY_AFTER 3600

/* Shared by every process; zeroed memory is a closed breaker with free slots. 64-bit words
 * hold (expiry << 32 | pid), 0 when free. */
typedef struct {
    apr_uint64_t probe;                     /* the probe in flight, if any */
    apr_uint64_t slot[MC_BREAKER_SLOTS];    /* snapshot fetches in flight */
    apr_uint32_t failures;                  /* consecutive failures; 0 = closed */
    apr_uint32_t open_until;                /* no snapshot call before this */
    apr_uint32_t token_not_before;          /* no refresh call before this (token 429) */
    apr_uint32_t opened;                    /* how often it opened (status page) */
    apr_uint32_t busy;                      /* requests served at once: bulkhead full */
    apr_uint32_t skipped;                   /* requests served at once: breaker open */
} mc_breaker;

typedef enum {
    MC_BREAKER_CLOSED = 0,
    MC_BREAKER_OPEN,            /* backing off: no call */
    MC_BREAKER_HALF_OPEN        /* back-off over: the next caller probes */
} mc_breaker_state;

typedef enum {
    MC_BREAKER_CALL = 0,        /* call Monei, then mc_breaker_leave with the ticket */
    MC_BREAKER_BUSY,            /* every slot is taken: serve what there is, at once */
    MC_BREAKER_BACK_OFF         /* open, or another request probes: serve what there is */
} mc_breaker_go;

typedef enum {
    MC_BREAKER_T_NONE = 0,
    MC_BREAKER_T_SLOT,
    MC_BREAKER_T_PROBE
} mc_breaker_ticket_kind;

typedef struct {
    mc_breaker_ticket_kind kind;
    int index;                  /* which slot */
    apr_uint64_t word;          /* what was written, to free exactly that */
} mc_breaker_ticket;

/* What a call's outcome changed, for the caller to log (each transition once: only the
 * call that made it sees it). */
typedef enum {
    MC_BREAKER_NO_CHANGE = 0,
    MC_BREAKER_OPENED,          /* closed -> open */
    MC_BREAKER_REOPENED,        /* the probe failed: open again, for longer */
    MC_BREAKER_CLOSED_AGAIN     /* the probe succeeded */
} mc_breaker_event;

/* Ask to make a snapshot call at `now`. ttl: how long the caller may take at most (its slot
 * or probe frees itself after that). *t is filled when the answer is MC_BREAKER_CALL. */
mc_breaker_go mc_breaker_enter(mc_breaker *b, apr_uint32_t now, apr_uint32_t pid,
                               apr_uint32_t ttl, mc_breaker_ticket *t);

/* The call made with ticket t ended: failed = Monei timed out, could not be reached,
 * answered 5xx or 429 (retry_after > 0 when it said how long to wait). Any other answer
 * (even a 401) shows Monei is there. Frees the slot or probe. */
mc_breaker_event mc_breaker_leave(mc_breaker *b, mc_breaker_ticket *t, apr_uint32_t now,
                                  int failed, long retry_after);

/* A failure of a call made without a ticket (a token refresh): opens the breaker like a
 * snapshot call's failure, never closes it. */
mc_breaker_event mc_breaker_failure(mc_breaker *b, apr_uint32_t now, long retry_after);

/* The token endpoint said 429: no refresh before now + retry_after. */
void mc_breaker_token_wait(mc_breaker *b, apr_uint32_t now, long retry_after);
apr_uint32_t mc_breaker_token_not_before(const mc_breaker *b);

/* Back-off after `failures` consecutive failures: 1, 2, 4 .. MC_BREAKER_MAX_BACKOFF s. */
apr_uint32_t mc_breaker_backoff(apr_uint32_t failures);

mc_breaker_state mc_breaker_state_at(const mc_breaker *b, apr_uint32_t now);
const char *mc_breaker_state_name(mc_breaker_state s);
/* Snapshot calls in flight at `now` (slots and probe). */
unsigned mc_breaker_in_flight(const mc_breaker *b, apr_uint32_t now);

#endif
