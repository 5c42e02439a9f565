/* mc_text: string hygiene for everything that leaves the module.
 *
 * Values from Monei end up in CGI environments, request headers, HTML error
 * pages and JSON bodies; each destination has its own escaping, and all of
 * them live here so no caller hand-rolls one.  No httpd headers: APR only.
 */
#ifndef MC_TEXT_H
#define MC_TEXT_H

#include <apr_pools.h>

/* Copy of v fit for an environment variable or header value: every control
 * character (0x00-0x1F, 0x7F) becomes a space, valid UTF-8 (including
 * non-ASCII) is kept byte-exact, each byte of an invalid UTF-8 sequence
 * (overlong, surrogate, > U+10FFFF, truncated) becomes '?'.  NULL -> NULL. */
char *mc_sanitize_value(apr_pool_t *p, const char *v);

/* HTML text/attribute escaping of & < > " '.  NULL -> "". */
char *mc_html_escape(apr_pool_t *p, const char *s);

/* A quoted JSON string literal for s (e.g. "a\"b").  Control characters are
 * escaped, valid UTF-8 is kept, invalid UTF-8 bytes become \ufffd so the
 * output is always valid JSON.  NULL -> "null". */
char *mc_json_escape_string(apr_pool_t *p, const char *s);

/* Header name for an exported variable: prefix + the words after "MONEI_",
 * each Capitalized, joined with '-':
 *   ("X-Monei-", "MONEI_WALLET_NAIRA_BALANCE") -> "X-Monei-Wallet-Naira-Balance"
 * A var without the MONEI_ prefix is converted whole (REMOTE_USER ->
 * X-Monei-Remote-User).  Characters outside [A-Za-z0-9] in var are word
 * separators, so the result is always a valid header token.  NULL on NULL. */
char *mc_var_to_header(apr_pool_t *p, const char *prefix, const char *var);

/* Copy of s cut to at most max bytes without splitting a UTF-8 sequence.
 * NULL -> NULL. */
char *mc_utf8_truncate(apr_pool_t *p, const char *s, apr_size_t max);

/* 1 when header name `name` starts with `prefix`, compared without case and
 * with '_' and '-' as the same character (CGI, WSGI and many frameworks fold
 * both into one variable name, so X_Monei_User_Id reads as X-Monei-User-Id).
 * An empty or NULL prefix matches nothing.  No allocation. */
int mc_header_has_prefix(const char *name, const char *prefix);

#endif /* MC_TEXT_H */
