/* mc_monei: the Monei Connect protocol as data - request bodies, URLs,
 * response parsing, scope arithmetic and the flattening of wallet/user
 * snapshots into exported variables.  No I/O and no httpd headers, so all
 * of it is unit-tested and fuzzed on its own (see docs/protocol.md). */
#ifndef MC_MONEI_H
#define MC_MONEI_H

#include <apr_pools.h>
#include <apr_errno.h>
#include <apr_tables.h>

/* Limits on what we accept from Monei's token endpoint. */
#define MC_TOKEN_MAX_LEN        4096
#define MC_SCOPE_MAX_LEN        64
#define MC_SCOPES_MAX_COUNT     64
#define MC_EXPIRES_IN_MAX       (365L * 24 * 3600)   /* one year */
#define MC_ERROR_TEXT_MAX       200

typedef struct {
    const char *access_token;
    const char *refresh_token;
    const char *token_type;     /* always "Bearer" after a successful parse */
    const char *scopes;         /* granted scopes, space-joined, "" if none */
    apr_int64_t expires_in;     /* seconds, 1 .. MC_EXPIRES_IN_MAX */
} mc_token_t;

/* Parse a 200 response of POST /connect/token (code or refresh grant).
 * Requires: access_token and refresh_token strings, non-empty, printable
 * ASCII without space, <= MC_TOKEN_MAX_LEN; token_type "Bearer" (any case)
 * when present and not null; expires_in a JSON integer > 0 (clamped to one
 * year); scopes an array of strings each [a-z_]+:[a-z_]+ and <= 64 bytes
 * (empty array allowed, at most MC_SCOPES_MAX_COUNT entries; duplicates
 * folded).
 * APR_SUCCESS and *tok filled (strings in p); otherwise *tok is zeroed,
 * *why (if why != NULL) names the problem - never any token value - and the
 * result is APR_ENOSPC (body > 1 MiB), APR_EGENERAL (anything else) or
 * APR_EINVAL (NULL arguments).  On success *why is NULL. */
apr_status_t mc_monei_parse_token(apr_pool_t *p, const char *body,
                                  apr_size_t len, mc_token_t *tok,
                                  const char **why);

/* Parse a Monei error body, NestJS style {"statusCode":..,"message":..,
 * "error":..} (message a string or an array of strings, joined with "; ")
 * or OAuth style {"error":..,"error_description":..}.  *error / *message
 * are NULL when absent, otherwise control characters are replaced by
 * spaces and they are cut to MC_ERROR_TEXT_MAX bytes at a UTF-8 boundary.
 * They are still untrusted text: escape them for HTML/JSON output.
 * APR_EGENERAL when the body is not a JSON object (outputs NULL). */
apr_status_t mc_monei_parse_error(apr_pool_t *p, const char *body,
                                  apr_size_t len, const char **error,
                                  const char **message);

/* Request bodies for the token, refresh and revoke endpoints as compact
 * JSON, escaped by jansson.  NULL when a required argument is NULL or not
 * valid UTF-8.  code_verifier NULL = omitted; in the refresh body
 * client_id / client_secret NULL = omitted (Monei does not need them). */
char *mc_monei_body_code(apr_pool_t *p, const char *code,
                         const char *client_id, const char *client_secret,
                         const char *redirect_uri, const char *code_verifier);
char *mc_monei_body_refresh(apr_pool_t *p, const char *refresh_token,
                            const char *client_id, const char *client_secret);
char *mc_monei_body_revoke(apr_pool_t *p, const char *token);

/* The browser redirect to Monei's authorize page:
 *   authorize_url ('?' or '&') client_id=..&redirect_uri=..
 *     &response_type=code&scope=..&state=..
 *     [&code_challenge=..&code_challenge_method=S256]
 * Every value percent-encoded (RFC 3986 unreserved kept, space -> %20).
 * scope/state NULL are omitted; code_challenge NULL = no PKCE.  NULL when
 * authorize_url, client_id or redirect_uri is NULL, or authorize_url has a
 * fragment (RFC 6749 3.1 forbids it and we would append after it). */
char *mc_monei_authorize_url(apr_pool_t *p, const char *authorize_url,
                             const char *client_id, const char *redirect_uri,
                             const char *scope, const char *state,
                             const char *code_challenge);

/* Scope lists are space-separated words; runs of spaces/tabs are tolerated.
 * mc_scope_has: 1 when scope is one of the words of scopes (exact match).
 * mc_scope_union: a's words then b's words not already present, each once;
 *   NULL is taken as ""; result "" when both empty.
 * mc_scope_missing: the words of the required entries (each entry may
 *   itself hold several words) not in granted, space-joined, each once;
 *   "" when none is missing.
 * mc_scope_valid_list: 1 when scopes holds at least one word and every
 *   word is [a-z_]+:[a-z_]+ of at most MC_SCOPE_MAX_LEN bytes. */
int mc_scope_has(const char *scopes, const char *scope);
char *mc_scope_union(apr_pool_t *p, const char *a, const char *b);
char *mc_scope_missing(apr_pool_t *p, const char *granted,
                       const apr_array_header_t *required);
int mc_scope_valid_list(const char *scopes);

/* From the full response of GET /wallet/me or GET /user/me, the compact
 * JSON of its "data" object - what the session record stores.
 * APR_EGENERAL when the body is not JSON or data is not an object,
 * APR_ENOSPC when the body exceeds 1 MiB; *data_json NULL then. */
apr_status_t mc_monei_wallet_snapshot(apr_pool_t *p, const char *body,
                                      apr_size_t len, const char **data_json);
apr_status_t mc_monei_user_snapshot(apr_pool_t *p, const char *body,
                                    apr_size_t len, const char **data_json);

/* Add the documented MONEI_* variables derived from a stored snapshot to vars:
 *  wallet: MONEI_WALLET_JSON, MONEI_WALLET_NAIRA_BALANCE,
 *          MONEI_WALLET_VIRTUAL_ACCOUNT_NUMBER, _VIRTUAL_ACCOUNT_BANK
 *          (first subwallet of type FIAT), MONEI_WALLET_EVM_ADDRESS,
 *          MONEI_WALLET_SOLANA_ADDRESS (first CRYPTO subwallet of that
 *          chain);
 *  user:   MONEI_USER_ID, MONEI_USER_EMAIL, MONEI_USER_FIRST_NAME,
 *          MONEI_USER_LAST_NAME, MONEI_USER_JSON.
 * A string value is taken verbatim, a number as JSON prints it; absent,
 * null, boolean, object or array: the variable is not set.  Every value
 * goes through mc_sanitize_value.  A NULL or unparsable data_json adds
 * nothing.  Existing entries of the same name are replaced. */
void mc_export_wallet(apr_pool_t *p, const char *data_json, apr_table_t *vars);
void mc_export_user(apr_pool_t *p, const char *data_json, apr_table_t *vars);

/* REMOTE_USER candidates: the id of the FIAT subwallet / of the user, as a
 * sanitized string (number ids printed), or NULL when absent. */
const char *mc_monei_fiat_id(apr_pool_t *p, const char *wallet_data_json);
const char *mc_monei_user_id(apr_pool_t *p, const char *user_data_json);

/* The variables of a snapshot flattened once, "NAME\tvalue\n"… (values are sanitized, so
 * they hold neither tab nor newline): stored with the session so that requests export them
 * without parsing JSON. MONEI_WALLET_JSON / MONEI_USER_JSON are left out: they are the
 * stored snapshots themselves (compact JSON from jansson, so free of control characters). */
char *mc_snapshot_exports(apr_pool_t *p, const char *wallet_json, const char *user_json);

/* What a session record keeps of a snapshot, whatever Monei sends: each exported variable
 * (and each string inside the stored JSON copies) at most MC_SNAPSHOT_VALUE_MAX bytes, the
 * variables and both JSON copies together at most MC_SNAPSHOT_MAX bytes. */
#define MC_SNAPSHOT_VALUE_MAX   1024
#define MC_SNAPSHOT_MAX         4096

typedef struct {
    const char *wallet_json;    /* stored copy of the wallet data, NULL when left out */
    const char *user_json;      /* stored copy of the user data, NULL when left out */
    const char *exports;        /* mc_snapshot_exports form, with a line
                                 * "<NAME>_TRUNCATED\t1" per variable left out */
    const char *left_out;       /* names left out, space-separated; NULL when none */
} mc_snapshot_t;

/* The bounded snapshot of wallet_json / user_json (the data objects as Monei sent them,
 * either NULL): strings longer than MC_SNAPSHOT_VALUE_MAX are removed from the JSON copies
 * (flag <X>_JSON_TRUNCATED); a variable longer than that is not set (flag <NAME>_TRUNCATED);
 * when the whole is still over MC_SNAPSHOT_MAX, the larger JSON copy, then the other, then
 * the longest variables are left out, flagged the same way. Never fails: at worst the
 * snapshot holds only flags. */
void mc_snapshot_bound(apr_pool_t *p, const char *wallet_json, const char *user_json,
                       mc_snapshot_t *out);

#endif /* MC_MONEI_H */
