/* Unit tests for mc_monei: token/error parsing, request bodies, the
 * authorize URL, scope helpers, snapshots and exported variables. */
#include <string.h>
#include <stdlib.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "mc_test.h"
#include "mc_monei.h"

#define STREQ(a, b) ((a) && (b) && strcmp((a), (b)) == 0)

static apr_pool_t *pool;

/* ---- token ---- */

static apr_status_t tok_parse(const char *body, mc_token_t *t, const char **why)
{
    return mc_monei_parse_token(pool, body, strlen(body), t, why);
}

/* A token response with one field replaced (or removed when val is NULL). */
static const char *tok_body(const char *field, const char *val)
{
    const char *names[] = { "access_token", "refresh_token", "token_type",
                            "expires_in", "scopes" };
    const char *vals[] = { "\"mct_abc123\"", "\"mcr_def456\"", "\"Bearer\"",
                           "3600", "[\"wallet:read\",\"profile:read\"]" };
    const char *out = "{";
    int i, first = 1;

    for (i = 0; i < 5; i++) {
        const char *v = vals[i];
        if (field && !strcmp(field, names[i])) {
            if (!val) continue;
            v = val;
        }
        out = apr_psprintf(pool, "%s%s\"%s\":%s", out, first ? "" : ",", names[i], v);
        first = 0;
    }
    return apr_pstrcat(pool, out, "}", NULL);
}

static int why_clean(const char *why)
{
    /* *why must never carry a token value */
    return why && !strstr(why, "mct_") && !strstr(why, "mcr_");
}

static void expect_token_error(const char *field, const char *val, const char *want_why,
                               const char *msg)
{
    mc_token_t t;
    const char *why = NULL;
    apr_status_t rv = tok_parse(tok_body(field, val), &t, &why);

    CHECK(rv == APR_EGENERAL && t.access_token == NULL && t.refresh_token == NULL
          && why_clean(why) && (!want_why || STREQ(why, want_why)),
          apr_psprintf(pool, "token error: %s (why=%s)", msg, why ? why : "NULL"));
}

static void test_token(void)
{
    mc_token_t t;
    const char *why = "x";
    apr_status_t rv;
    char *big;

    rv = tok_parse("{\"access_token\":\"mct_abc123\",\"refresh_token\":\"mcr_def456\","
                   "\"token_type\":\"Bearer\",\"expires_in\":3600,"
                   "\"scopes\":[\"wallet:read\",\"profile:read\"]}", &t, &why);
    CHECK(rv == APR_SUCCESS && why == NULL, "token: Monei's documented response parses");
    CHECK(STREQ(t.access_token, "mct_abc123"), "token: access_token");
    CHECK(STREQ(t.refresh_token, "mcr_def456"), "token: refresh_token");
    CHECK(STREQ(t.token_type, "Bearer"), "token: token_type");
    CHECK(t.expires_in == 3600, "token: expires_in");
    CHECK(STREQ(t.scopes, "wallet:read profile:read"), "token: scopes space-joined in order");

    CHECK(tok_parse(tok_body("scopes", "[]"), &t, &why) == APR_SUCCESS && STREQ(t.scopes, ""),
          "token: empty scopes array is a valid (partial) grant");
    CHECK(tok_parse(tok_body("scopes", "[\"wallet:read\"]"), &t, &why) == APR_SUCCESS
          && STREQ(t.scopes, "wallet:read"), "token: partial grant");
    CHECK(tok_parse(tok_body("scopes", "[\"wallet:read\",\"wallet:read\"]"), &t, &why) == APR_SUCCESS
          && STREQ(t.scopes, "wallet:read"), "token: duplicate scopes folded");
    CHECK(tok_parse(tok_body("token_type", "\"bearer\""), &t, &why) == APR_SUCCESS,
          "token: token_type case-insensitive");
    CHECK(tok_parse(tok_body("token_type", NULL), &t, &why) == APR_SUCCESS
          && STREQ(t.token_type, "Bearer"), "token: token_type absent -> Bearer");
    CHECK(tok_parse(tok_body("token_type", "null"), &t, &why) == APR_SUCCESS,
          "token: token_type null -> Bearer");
    CHECK(tok_parse(tok_body("expires_in", "1"), &t, &why) == APR_SUCCESS && t.expires_in == 1,
          "token: expires_in 1");
    CHECK(tok_parse(tok_body("expires_in", "31536000"), &t, &why) == APR_SUCCESS
          && t.expires_in == 31536000, "token: expires_in exactly one year kept");
    CHECK(tok_parse(tok_body("expires_in", "31536001"), &t, &why) == APR_SUCCESS
          && t.expires_in == 31536000, "token: expires_in > 1 year clamped");
    CHECK(tok_parse(tok_body("expires_in", "9223372036854775807"), &t, &why) == APR_SUCCESS
          && t.expires_in == 31536000, "token: expires_in INT64_MAX clamped");
    CHECK(tok_parse("{\"extra\":{\"x\":[1,2]},\"access_token\":\"a\",\"refresh_token\":\"r\","
                    "\"expires_in\":60,\"scopes\":[]}", &t, &why) == APR_SUCCESS,
          "token: unknown fields ignored");

    expect_token_error("expires_in", "\"3600\"", "expires_in not an integer", "expires_in as string");
    expect_token_error("expires_in", "3600.5", "expires_in not an integer", "expires_in as real");
    expect_token_error("expires_in", "null", "expires_in not an integer", "expires_in null");
    expect_token_error("expires_in", "0", "expires_in not positive", "expires_in zero");
    expect_token_error("expires_in", "-5", "expires_in not positive", "expires_in negative");
    expect_token_error("expires_in", "-9223372036854775808", "expires_in not positive", "expires_in INT64_MIN");
    expect_token_error("expires_in", "99999999999999999999999", NULL, "expires_in beyond int64");
    expect_token_error("expires_in", NULL, "expires_in missing", "expires_in missing");
    expect_token_error("scopes", "\"wallet:read profile:read\"", "scopes not an array", "scopes as string");
    expect_token_error("scopes", "{}", "scopes not an array", "scopes as object");
    expect_token_error("scopes", NULL, "scopes missing", "scopes missing");
    expect_token_error("scopes", "[1]", "scopes contains a non-string", "scopes with a number");
    expect_token_error("scopes", "[\"wallet:read\",null]", "scopes contains a non-string", "scopes with null");
    expect_token_error("scopes", "[\"WALLET:READ\"]", "scopes contains an invalid scope", "scope upper case");
    expect_token_error("scopes", "[\"wallet read\"]", "scopes contains an invalid scope", "scope with space");
    expect_token_error("scopes", "[\"wallet\"]", "scopes contains an invalid scope", "scope without colon");
    expect_token_error("scopes", "[\"wallet:read:x\"]", "scopes contains an invalid scope", "scope two colons");
    expect_token_error("scopes", "[\":read\"]", "scopes contains an invalid scope", "scope empty resource");
    expect_token_error("scopes", "[\"\"]", "scopes contains an invalid scope", "scope empty");
    expect_token_error("scopes", "[\"wallet:read\\r\\nX: y\"]", "scopes contains an invalid scope", "scope with CRLF");
    expect_token_error("scopes",
                       "[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:bbbbb\"]",
                       "scopes contains an invalid scope", "scope longer than 64");
    expect_token_error("access_token", "12345", "access_token not a string", "access_token a number");
    expect_token_error("access_token", "null", "access_token not a string", "access_token null");
    expect_token_error("access_token", "\"\"", "access_token empty", "access_token empty");
    expect_token_error("access_token", NULL, "access_token missing", "access_token missing");
    expect_token_error("access_token", "\"mct_a b\"", "access_token has characters outside printable ASCII",
                       "access_token with space");
    expect_token_error("access_token", "\"mct_a\\r\\nX-Evil: 1\"", NULL, "access_token with CRLF");
    expect_token_error("access_token", "\"mct_\xC3\xA9\"", NULL, "access_token non-ASCII");
    expect_token_error("refresh_token", NULL, "refresh_token missing", "refresh_token missing");
    expect_token_error("refresh_token", "[\"mcr_x\"]", "refresh_token not a string", "refresh_token an array");
    expect_token_error("token_type", "\"mac\"", "token_type is not Bearer", "token_type mac");
    expect_token_error("token_type", "\"Bearerx\"", "token_type is not Bearer", "token_type Bearerx");
    expect_token_error("token_type", "1", "token_type not a string", "token_type number");

    big = apr_pcalloc(pool, MC_TOKEN_MAX_LEN + 4);
    memset(big + 1, 'a', MC_TOKEN_MAX_LEN);
    big[0] = '"';
    big[MC_TOKEN_MAX_LEN + 1] = '"';
    CHECK(tok_parse(tok_body("access_token", big), &t, &why) == APR_SUCCESS,
          "token: access_token of exactly 4096 accepted");
    big[MC_TOKEN_MAX_LEN + 1] = 'a';
    big[MC_TOKEN_MAX_LEN + 2] = '"';
    expect_token_error("access_token", big, "access_token too long", "access_token 4097 bytes");

    why = NULL;
    rv = tok_parse("<html>502 Bad Gateway</html>", &t, &why);
    CHECK(rv == APR_EGENERAL && STREQ(why, "token response is not a JSON object"), "token: HTML body");
    rv = tok_parse("{\"access_token\":\"mct_abc123\",\"refresh_tok", &t, &why);
    CHECK(rv == APR_EGENERAL && why_clean(why), "token: truncated JSON");
    rv = tok_parse("[]", &t, &why);
    CHECK(rv == APR_EGENERAL, "token: JSON array");
    rv = tok_parse("", &t, &why);
    CHECK(rv == APR_EGENERAL, "token: empty body");
    rv = tok_parse("{\"access_token\":\"mct_a\",\"access_token\":\"mct_b\",\"refresh_token\":\"r\","
                   "\"expires_in\":60,\"scopes\":[]}", &t, &why);
    CHECK(rv == APR_EGENERAL, "token: duplicate access_token keys refused");

    big = malloc(2 * 1024 * 1024);
    memset(big, ' ', 2 * 1024 * 1024);
    big[0] = '{';
    big[2 * 1024 * 1024 - 1] = '}';
    rv = mc_monei_parse_token(pool, big, 2 * 1024 * 1024, &t, &why);
    CHECK(rv == APR_ENOSPC && STREQ(why, "token response too large"), "token: 2 MiB body refused");
    free(big);

    big = apr_pstrdup(pool, "[");
    for (rv = 0; rv < 65; rv++) big = apr_pstrcat(pool, big, rv ? "," : "", "\"a:b\"", NULL);
    expect_token_error("scopes", apr_pstrcat(pool, big, "]", NULL), "scopes has too many entries",
                       "65 scopes");

    CHECK(mc_monei_parse_token(pool, NULL, 0, &t, &why) == APR_EINVAL, "token: NULL body");
    CHECK(mc_monei_parse_token(pool, "{}", 2, NULL, &why) == APR_EINVAL, "token: NULL tok");
    CHECK(mc_monei_parse_token(pool, "{}", 2, &t, NULL) == APR_EGENERAL, "token: NULL why is fine");
}

/* ---- error bodies ---- */

static void test_error(void)
{
    const char *e, *m;
    apr_status_t rv;
    char *longmsg;
    int i;

#define PE(body) mc_monei_parse_error(pool, body, strlen(body), &e, &m)
    rv = PE("{\"statusCode\":401,\"message\":\"Invalid or expired token\",\"error\":\"Unauthorized\"}");
    CHECK(rv == APR_SUCCESS && STREQ(e, "Unauthorized") && STREQ(m, "Invalid or expired token"),
          "error: Monei NestJS body");
    rv = PE("{\"error\":\"invalid_grant\",\"error_description\":\"code expired\"}");
    CHECK(rv == APR_SUCCESS && STREQ(e, "invalid_grant") && STREQ(m, "code expired"), "error: OAuth body");
    rv = PE("{\"statusCode\":400,\"message\":[\"code must be a string\",\"redirect_uri is required\"],"
            "\"error\":\"Bad Request\"}");
    CHECK(rv == APR_SUCCESS && STREQ(m, "code must be a string; redirect_uri is required"),
          "error: message array joined with '; '");
    rv = PE("{\"message\":[1,\"only\",null]}");
    CHECK(rv == APR_SUCCESS && STREQ(m, "only") && e == NULL, "error: non-strings in message array skipped");
    rv = PE("{\"message\":[]}");
    CHECK(rv == APR_SUCCESS && m == NULL, "error: empty message array -> NULL");
    rv = PE("{\"statusCode\":500}");
    CHECK(rv == APR_SUCCESS && e == NULL && m == NULL, "error: neither field -> both NULL");
    rv = PE("{\"error\":42,\"message\":{\"x\":1}}");
    CHECK(rv == APR_SUCCESS && e == NULL && m == NULL, "error: wrong types -> NULL");
    rv = PE("{\"message\":\"m\",\"error_description\":\"d\"}");
    CHECK(rv == APR_SUCCESS && STREQ(m, "m"), "error: message preferred over error_description");
    rv = PE("{\"error\":\"x\\r\\nSet-Cookie: a=b\",\"message\":\"<b>\\u0000</b>\"}");
    CHECK(rv == APR_EGENERAL, "error: \\u0000 refused by the parser");
    rv = PE("{\"error\":\"x\\r\\nSet-Cookie: a=b\",\"message\":\"<b>hi</b>\"}");
    CHECK(rv == APR_SUCCESS && STREQ(e, "x  Set-Cookie: a=b") && STREQ(m, "<b>hi</b>"),
          "error: controls replaced, HTML left for the caller to escape");
    rv = PE("Bad Gateway");
    CHECK(rv == APR_EGENERAL && e == NULL && m == NULL, "error: not JSON -> APR_EGENERAL");
    rv = PE("[\"error\"]");
    CHECK(rv == APR_EGENERAL, "error: JSON array -> APR_EGENERAL");
    rv = PE("{\"error\":\"x\"");
    CHECK(rv == APR_EGENERAL, "error: truncated JSON");

    /* 300 bytes of "é" (2 bytes each) must be cut to 200 bytes = 100 chars. */
    longmsg = apr_pstrdup(pool, "{\"message\":\"x");
    for (i = 0; i < 150; i++) longmsg = apr_pstrcat(pool, longmsg, "\xC3\xA9", NULL);
    longmsg = apr_pstrcat(pool, longmsg, "\",\"error\":\"", NULL);
    for (i = 0; i < 300; i++) longmsg = apr_pstrcat(pool, longmsg, "E", NULL);
    longmsg = apr_pstrcat(pool, longmsg, "\"}", NULL);
    rv = PE(longmsg);
    CHECK(rv == APR_SUCCESS && m && strlen(m) == 199 && (unsigned char)m[198] == 0xA9,
          "error: message truncated to <= 200 bytes at a UTF-8 boundary");
    CHECK(e && strlen(e) == 200, "error: error truncated to 200 bytes");

    longmsg = apr_pstrdup(pool, "{\"message\":[");
    for (i = 0; i < 1000; i++) longmsg = apr_pstrcat(pool, longmsg, i ? "," : "", "\"constraint failed\"", NULL);
    longmsg = apr_pstrcat(pool, longmsg, "]}", NULL);
    rv = PE(longmsg);
    CHECK(rv == APR_SUCCESS && m && strlen(m) <= 200, "error: long message array truncated");

    CHECK(mc_monei_parse_error(pool, "{}", 2, NULL, NULL) == APR_SUCCESS, "error: NULL outputs allowed");
#undef PE
}

/* ---- request bodies and URL ---- */

static void test_bodies(void)
{
    const char *s;

    s = mc_monei_body_code(pool, "c0de", "mc_a3f9", "mcs_s\"ec\\ret", "https://app.example/monei/callback", NULL);
    CHECK(STREQ(s, "{\"grant_type\":\"authorization_code\",\"code\":\"c0de\",\"client_id\":\"mc_a3f9\","
                   "\"client_secret\":\"mcs_s\\\"ec\\\\ret\",\"redirect_uri\":\"https://app.example/monei/callback\"}"),
          "body code without PKCE, escaped secret, '/' not escaped");
    s = mc_monei_body_code(pool, "c", "id", "sec", "https://a/cb", "verif-._~");
    CHECK(STREQ(s, "{\"grant_type\":\"authorization_code\",\"code\":\"c\",\"client_id\":\"id\","
                   "\"client_secret\":\"sec\",\"redirect_uri\":\"https://a/cb\",\"code_verifier\":\"verif-._~\"}"),
          "body code with code_verifier");
    s = mc_monei_body_code(pool, "a\nb\x01", "id", "sec", "https://a/cb", NULL);
    CHECK(s && strstr(s, "\"code\":\"a\\nb\\u0001\""), "body code escapes control characters");
    CHECK(mc_monei_body_code(pool, NULL, "id", "sec", "u", NULL) == NULL, "body code NULL code");
    CHECK(mc_monei_body_code(pool, "c", "id", NULL, "u", NULL) == NULL, "body code NULL secret");
    CHECK(mc_monei_body_code(pool, "c\xFF", "id", "s", "u", NULL) == NULL, "body code invalid UTF-8");

    s = mc_monei_body_refresh(pool, "mcr_x", "mc_id", "mcs_s");
    CHECK(STREQ(s, "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"mcr_x\","
                   "\"client_id\":\"mc_id\",\"client_secret\":\"mcs_s\"}"), "body refresh");
    s = mc_monei_body_refresh(pool, "mcr_x", NULL, NULL);
    CHECK(STREQ(s, "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"mcr_x\"}"),
          "body refresh without client credentials");
    CHECK(mc_monei_body_refresh(pool, NULL, "a", "b") == NULL, "body refresh NULL token");

    CHECK(STREQ(mc_monei_body_revoke(pool, "mct_x"), "{\"token\":\"mct_x\"}"), "body revoke");
    CHECK(mc_monei_body_revoke(pool, NULL) == NULL, "body revoke NULL");
}

static void test_authorize_url(void)
{
    const char *u;

    u = mc_monei_authorize_url(pool, "https://monei.cc/connect/authorize", "mc_a3f9b2c1d4e5",
                               "https://app.example.com/monei/callback", "wallet:read profile:read",
                               "St4te_-.~", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    CHECK(STREQ(u, "https://monei.cc/connect/authorize?client_id=mc_a3f9b2c1d4e5"
                   "&redirect_uri=https%3A%2F%2Fapp.example.com%2Fmonei%2Fcallback"
                   "&response_type=code&scope=wallet%3Aread%20profile%3Aread&state=St4te_-.~"
                   "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
                   "&code_challenge_method=S256"), "authorize URL with PKCE");
    u = mc_monei_authorize_url(pool, "https://m/a?tenant=x", "id", "https://c", "a:b", "s", NULL);
    CHECK(STREQ(u, "https://m/a?tenant=x&client_id=id&redirect_uri=https%3A%2F%2Fc"
                   "&response_type=code&scope=a%3Ab&state=s"), "authorize URL: existing query -> '&', no PKCE");
    u = mc_monei_authorize_url(pool, "https://m/a?", "id", "r", NULL, NULL, NULL);
    CHECK(STREQ(u, "https://m/a?client_id=id&redirect_uri=r&response_type=code"),
          "authorize URL: trailing '?' reused; NULL scope/state omitted");
    u = mc_monei_authorize_url(pool, "https://m/a?x=1&", "id", "r", NULL, NULL, NULL);
    CHECK(STREQ(u, "https://m/a?x=1&client_id=id&redirect_uri=r&response_type=code"),
          "authorize URL: trailing '&' reused");
    u = mc_monei_authorize_url(pool, "https://m/a", "i&d=1", "r", "s+x#y", "a/b?c \xC3\xA9", NULL);
    CHECK(STREQ(u, "https://m/a?client_id=i%26d%3D1&redirect_uri=r&response_type=code"
                   "&scope=s%2Bx%23y&state=a%2Fb%3Fc%20%C3%A9"), "authorize URL: hostile values encoded");
    CHECK(mc_monei_authorize_url(pool, "https://m/a#frag", "i", "r", NULL, NULL, NULL) == NULL,
          "authorize URL with fragment refused");
    CHECK(mc_monei_authorize_url(pool, NULL, "i", "r", NULL, NULL, NULL) == NULL, "authorize URL NULL base");
    CHECK(mc_monei_authorize_url(pool, "https://m", NULL, "r", NULL, NULL, NULL) == NULL,
          "authorize URL NULL client_id");
}

/* ---- scopes ---- */

static apr_array_header_t *arr(const char *a, const char *b, const char *c)
{
    apr_array_header_t *x = apr_array_make(pool, 3, sizeof(const char *));
    if (a) APR_ARRAY_PUSH(x, const char *) = a;
    if (b) APR_ARRAY_PUSH(x, const char *) = b;
    if (c) APR_ARRAY_PUSH(x, const char *) = c;
    return x;
}

static void test_scopes(void)
{
    CHECK(mc_scope_has("wallet:read profile:read", "profile:read"), "scope_has last");
    CHECK(mc_scope_has("wallet:read profile:read", "wallet:read"), "scope_has first");
    CHECK(!mc_scope_has("wallet:read profile:read", "wallet"), "scope_has prefix is no match");
    CHECK(!mc_scope_has("wallet:readx", "wallet:read"), "scope_has longer word is no match");
    CHECK(!mc_scope_has("wallet:read", "wallet:read profile:read"), "scope_has multi-word query no match");
    CHECK(mc_scope_has("  wallet:read\t profile:read ", "profile:read"), "scope_has extra whitespace");
    CHECK(!mc_scope_has("", "wallet:read"), "scope_has empty list");
    CHECK(!mc_scope_has(NULL, "wallet:read"), "scope_has NULL list");
    CHECK(!mc_scope_has("wallet:read", ""), "scope_has empty scope");
    CHECK(!mc_scope_has("wallet:read", NULL), "scope_has NULL scope");

    CHECK(STREQ(mc_scope_union(pool, "wallet:read profile:read", "wallet:send wallet:read"),
                "wallet:read profile:read wallet:send"), "union order and dedupe");
    CHECK(STREQ(mc_scope_union(pool, "a:b a:b", "a:b"), "a:b"), "union dedupes within a");
    CHECK(STREQ(mc_scope_union(pool, NULL, " x:y "), "x:y"), "union NULL a");
    CHECK(STREQ(mc_scope_union(pool, "x:y", NULL), "x:y"), "union NULL b");
    CHECK(STREQ(mc_scope_union(pool, "", ""), ""), "union both empty");

    CHECK(STREQ(mc_scope_missing(pool, "wallet:read", arr("wallet:read", "wallet:send", "profile:read")),
                "wallet:send profile:read"), "missing two");
    CHECK(STREQ(mc_scope_missing(pool, "wallet:read profile:read", arr("wallet:read", "profile:read", NULL)),
                ""), "missing none");
    CHECK(STREQ(mc_scope_missing(pool, "", arr("wallet:send wallet:read", "wallet:send", NULL)),
                "wallet:send wallet:read"), "missing: entries with several words, deduped");
    CHECK(STREQ(mc_scope_missing(pool, NULL, arr("a:b", NULL, NULL)), "a:b"), "missing NULL granted");
    CHECK(STREQ(mc_scope_missing(pool, "a:b", NULL), ""), "missing NULL required");
    CHECK(STREQ(mc_scope_missing(pool, "wallet:read", arr("wallet:readx", NULL, NULL)), "wallet:readx"),
          "missing exact-match only");

    CHECK(mc_scope_valid_list("wallet:read profile:read"), "valid list");
    CHECK(mc_scope_valid_list("offramp:execute"), "valid single with underscore-free");
    CHECK(mc_scope_valid_list("a_b:c_d"), "valid underscores");
    CHECK(!mc_scope_valid_list("wallet:Read"), "invalid upper case");
    CHECK(!mc_scope_valid_list("wallet:read,profile:read"), "invalid comma-separated");
    CHECK(!mc_scope_valid_list("wallet"), "invalid no colon");
    CHECK(!mc_scope_valid_list("wallet:"), "invalid empty action");
    CHECK(!mc_scope_valid_list("wallet:read1"), "invalid digit");
    CHECK(!mc_scope_valid_list(""), "invalid empty list");
    CHECK(!mc_scope_valid_list(NULL), "invalid NULL");
    CHECK(!mc_scope_valid_list("wallet:read\r\nx:y"), "invalid CRLF");
}

/* ---- snapshots and export ---- */

#define WALLET_ME \
    "{\"statusCode\":200,\"message\":\"User wallet retrieved successfully\"," \
    "\"data\":{\"nairaBalance\":\"1805.00\",\"subwallets\":[" \
    "{\"id\":\"sw_fiat_1\",\"type\":\"FIAT\",\"currency\":\"NGN\",\"balance\":1805,\"chain\":null," \
    "\"publicAddress\":null,\"virtualAccount\":{\"accountNumber\":\"0123456789\",\"bankName\":\"Wema Bank\"}}," \
    "{\"id\":\"sw_evm\",\"type\":\"CRYPTO\",\"chain\":\"EVM\",\"publicAddress\":\"0xAbC123\",\"balance\":0}," \
    "{\"id\":\"sw_sol\",\"type\":\"CRYPTO\",\"chain\":\"SOLANA\",\"publicAddress\":\"So1anaAddr\",\"balance\":0}]}}"

#define YORUBA_FIRST "Ad\xC3\xA9" "b\xC3\xA1" "y\xE1\xBB\x8D\xCC\x80"
#define YORUBA_LAST  "\xE1\xBB\x8Cl\xC3\xA1" "b\xC3\xAD" "s\xC3\xAD"

static const char *wallet_data(const char *data)
{
    const char *body = apr_pstrcat(pool, "{\"statusCode\":200,\"data\":", data, "}", NULL);
    const char *out = NULL;
    if (mc_monei_wallet_snapshot(pool, body, strlen(body), &out) != APR_SUCCESS) return NULL;
    return out;
}

static void test_wallet(void)
{
    const char *d = NULL;
    apr_table_t *v;
    apr_status_t rv;

    rv = mc_monei_wallet_snapshot(pool, WALLET_ME, strlen(WALLET_ME), &d);
    CHECK(rv == APR_SUCCESS && d && !strncmp(d, "{\"nairaBalance\":\"1805.00\",\"subwallets\":[{\"id\":\"sw_fiat_1\"", 52),
          "wallet snapshot: compact data, order kept");
    CHECK(d && !strstr(d, "statusCode") && !strstr(d, "\": ") && !strstr(d, ", "),
          "wallet snapshot holds only data, no whitespace between tokens");
    v = apr_table_make(pool, 8);
    mc_export_wallet(pool, d, v);
    CHECK(STREQ(apr_table_get(v, "MONEI_WALLET_JSON"), d), "export: WALLET_JSON is the snapshot");
    CHECK(STREQ(apr_table_get(v, "MONEI_WALLET_NAIRA_BALANCE"), "1805.00"), "export: nairaBalance string verbatim");
    CHECK(STREQ(apr_table_get(v, "MONEI_WALLET_VIRTUAL_ACCOUNT_NUMBER"), "0123456789"),
          "export: virtual account number keeps leading zero");
    CHECK(STREQ(apr_table_get(v, "MONEI_WALLET_VIRTUAL_ACCOUNT_BANK"), "Wema Bank"), "export: bank name");
    CHECK(STREQ(apr_table_get(v, "MONEI_WALLET_EVM_ADDRESS"), "0xAbC123"), "export: EVM address");
    CHECK(STREQ(apr_table_get(v, "MONEI_WALLET_SOLANA_ADDRESS"), "So1anaAddr"), "export: Solana address");
    CHECK(STREQ(mc_monei_fiat_id(pool, d), "sw_fiat_1"), "fiat id");

    /* nairaBalance as a number */
    v = apr_table_make(pool, 8);
    mc_export_wallet(pool, wallet_data("{\"nairaBalance\":1805}"), v);
    CHECK(STREQ(apr_table_get(v, "MONEI_WALLET_NAIRA_BALANCE"), "1805"), "export: integer balance printed");
    CHECK(apr_table_get(v, "MONEI_WALLET_VIRTUAL_ACCOUNT_NUMBER") == NULL, "export: missing subwallets -> unset");
    CHECK(apr_table_get(v, "MONEI_WALLET_EVM_ADDRESS") == NULL, "export: missing subwallets -> no EVM");
    CHECK(apr_table_get(v, "MONEI_WALLET_JSON") != NULL, "export: JSON set even when fields absent");
    v = apr_table_make(pool, 8);
    mc_export_wallet(pool, wallet_data("{\"nairaBalance\":1805.5}"), v);
    CHECK(STREQ(apr_table_get(v, "MONEI_WALLET_NAIRA_BALANCE"), "1805.5"), "export: real balance printed");
    v = apr_table_make(pool, 8);
    mc_export_wallet(pool, wallet_data("{\"nairaBalance\":-0.25}"), v);
    CHECK(STREQ(apr_table_get(v, "MONEI_WALLET_NAIRA_BALANCE"), "-0.25"), "export: negative real balance");

    /* null virtualAccount, null fields, wrong types */
    v = apr_table_make(pool, 8);
    mc_export_wallet(pool, wallet_data(
        "{\"nairaBalance\":null,\"subwallets\":["
        "{\"id\":7,\"type\":\"FIAT\",\"virtualAccount\":null},"
        "{\"type\":\"CRYPTO\",\"chain\":\"EVM\",\"publicAddress\":null},"
        "{\"type\":\"CRYPTO\",\"chain\":\"SOLANA\",\"publicAddress\":{\"a\":1}}]}"), v);
    CHECK(apr_table_get(v, "MONEI_WALLET_NAIRA_BALANCE") == NULL, "export: null balance -> unset");
    CHECK(apr_table_get(v, "MONEI_WALLET_VIRTUAL_ACCOUNT_NUMBER") == NULL, "export: null virtualAccount -> unset");
    CHECK(apr_table_get(v, "MONEI_WALLET_VIRTUAL_ACCOUNT_BANK") == NULL, "export: null virtualAccount -> no bank");
    CHECK(apr_table_get(v, "MONEI_WALLET_EVM_ADDRESS") == NULL, "export: null address -> unset");
    CHECK(apr_table_get(v, "MONEI_WALLET_SOLANA_ADDRESS") == NULL, "export: object address -> unset");

    v = apr_table_make(pool, 8);
    d = wallet_data("{\"nairaBalance\":true,\"subwallets\":["
                    "\"junk\",null,42,"
                    "{\"type\":\"FIAT\",\"virtualAccount\":{\"accountNumber\":123456789,\"bankName\":[\"x\"]}},"
                    "{\"type\":\"FIAT\",\"id\":\"second\",\"virtualAccount\":{\"accountNumber\":\"999\"}},"
                    "{\"type\":\"CRYPTO\",\"chain\":\"EVM\",\"publicAddress\":\"0xfirst\"},"
                    "{\"type\":\"CRYPTO\",\"chain\":\"EVM\",\"publicAddress\":\"0xsecond\"},"
                    "{\"type\":\"CRYPTO\",\"publicAddress\":\"nochain\"},"
                    "{\"type\":\"FIAT\",\"chain\":\"SOLANA\",\"publicAddress\":\"notcrypto\"}]}");
    mc_export_wallet(pool, d, v);
    CHECK(apr_table_get(v, "MONEI_WALLET_NAIRA_BALANCE") == NULL, "export: boolean balance -> unset");
    CHECK(STREQ(apr_table_get(v, "MONEI_WALLET_VIRTUAL_ACCOUNT_NUMBER"), "123456789"),
          "export: number where string expected printed; junk elements skipped");
    CHECK(apr_table_get(v, "MONEI_WALLET_VIRTUAL_ACCOUNT_BANK") == NULL, "export: array bankName -> unset");
    CHECK(STREQ(apr_table_get(v, "MONEI_WALLET_EVM_ADDRESS"), "0xfirst"), "export: first EVM wallet wins");
    CHECK(apr_table_get(v, "MONEI_WALLET_SOLANA_ADDRESS") == NULL, "export: SOLANA only from CRYPTO wallets");
    CHECK(mc_monei_fiat_id(pool, d) == NULL, "fiat id absent in first FIAT -> NULL");
    CHECK(STREQ(mc_monei_fiat_id(pool, wallet_data("{\"subwallets\":[{\"type\":\"FIAT\",\"id\":7}]}")), "7"),
          "fiat id numeric printed");

    v = apr_table_make(pool, 8);
    mc_export_wallet(pool, wallet_data("{\"subwallets\":{\"type\":\"FIAT\"}}"), v);
    CHECK(apr_table_get(v, "MONEI_WALLET_VIRTUAL_ACCOUNT_NUMBER") == NULL, "export: subwallets not an array");

    /* control characters and CRLF in values */
    v = apr_table_make(pool, 8);
    d = wallet_data("{\"nairaBalance\":\"1\\r\\nX-Evil: 1\",\"subwallets\":[{\"type\":\"FIAT\","
                    "\"virtualAccount\":{\"accountNumber\":\"01\\u0000\",\"bankName\":\"Bank\\tName\\u007f\"}}]}");
    CHECK(d == NULL, "wallet snapshot with \\u0000 refused");
    d = wallet_data("{\"nairaBalance\":\"1\\r\\nX-Evil: 1\",\"subwallets\":[{\"type\":\"FIAT\","
                    "\"virtualAccount\":{\"accountNumber\":\"01\\u001b[31m\",\"bankName\":\"Bank\\tName\\u007f\"}}]}");
    mc_export_wallet(pool, d, v);
    CHECK(STREQ(apr_table_get(v, "MONEI_WALLET_NAIRA_BALANCE"), "1  X-Evil: 1"), "export: CRLF sanitized");
    CHECK(STREQ(apr_table_get(v, "MONEI_WALLET_VIRTUAL_ACCOUNT_NUMBER"), "01 [31m"), "export: ESC sanitized");
    CHECK(STREQ(apr_table_get(v, "MONEI_WALLET_VIRTUAL_ACCOUNT_BANK"), "Bank Name "), "export: tab/DEL sanitized");
    CHECK(!strchr(apr_table_get(v, "MONEI_WALLET_JSON"), '\n'), "export: WALLET_JSON has no raw newline");

    /* snapshot failures */
    CHECK(mc_monei_wallet_snapshot(pool, "{\"data\":null}", 13, &d) == APR_EGENERAL && d == NULL,
          "wallet snapshot: data null");
    CHECK(mc_monei_wallet_snapshot(pool, "{\"data\":[1]}", 12, &d) == APR_EGENERAL, "wallet snapshot: data array");
    CHECK(mc_monei_wallet_snapshot(pool, "{\"statusCode\":200}", 18, &d) == APR_EGENERAL,
          "wallet snapshot: data missing");
    CHECK(mc_monei_wallet_snapshot(pool, "<html>", 6, &d) == APR_EGENERAL, "wallet snapshot: not JSON");
    CHECK(mc_monei_wallet_snapshot(pool, "{\"data\":{", 9, &d) == APR_EGENERAL, "wallet snapshot: truncated");
    CHECK(mc_monei_wallet_snapshot(pool, "{\"data\":{}}", 11, &d) == APR_SUCCESS && STREQ(d, "{}"),
          "wallet snapshot: empty data object");

    /* export of damaged stored JSON adds nothing */
    v = apr_table_make(pool, 8);
    mc_export_wallet(pool, "{broken", v);
    mc_export_wallet(pool, NULL, v);
    mc_export_wallet(pool, "[]", v);
    CHECK(apr_is_empty_table(v), "export: damaged/NULL snapshot adds nothing");
    CHECK(mc_monei_fiat_id(pool, NULL) == NULL, "fiat id NULL");
}

static void test_user(void)
{
    const char *body =
        "{\"statusCode\":200,\"message\":\"User retrieved successfully\","
        "\"data\":{\"id\":\"usr_42\",\"email\":\"ade@example.ng\",\"firstName\":\"" YORUBA_FIRST "\","
        "\"lastName\":\"" YORUBA_LAST "\",\"phoneNumber\":\"+2348000000000\",\"status\":\"active\","
        "\"createdAt\":\"2024-01-01T00:00:00.000Z\"}}";
    const char *d = NULL;
    apr_table_t *v = apr_table_make(pool, 8);
    apr_status_t rv;

    rv = mc_monei_user_snapshot(pool, body, strlen(body), &d);
    CHECK(rv == APR_SUCCESS && d && !strncmp(d, "{\"id\":\"usr_42\",", 15), "user snapshot");
    CHECK(d && strstr(d, YORUBA_FIRST) && strstr(d, YORUBA_LAST), "user snapshot keeps UTF-8 unescaped");
    mc_export_user(pool, d, v);
    CHECK(STREQ(apr_table_get(v, "MONEI_USER_ID"), "usr_42"), "user export: id");
    CHECK(STREQ(apr_table_get(v, "MONEI_USER_EMAIL"), "ade@example.ng"), "user export: email");
    CHECK(STREQ(apr_table_get(v, "MONEI_USER_FIRST_NAME"), YORUBA_FIRST), "user export: Ad\xC3\xA9" "b\xC3\xA1y... byte-exact");
    CHECK(STREQ(apr_table_get(v, "MONEI_USER_LAST_NAME"), YORUBA_LAST), "user export: \xE1\xBB\x8Cl\xC3\xA1" "b\xC3\xADs\xC3\xAD byte-exact");
    CHECK(STREQ(apr_table_get(v, "MONEI_USER_JSON"), d), "user export: USER_JSON is the snapshot");
    CHECK(STREQ(mc_monei_user_id(pool, d), "usr_42"), "user id");

    /* escaped UTF-8 in Monei's JSON comes out as raw UTF-8 */
    body = "{\"data\":{\"id\":12345,\"firstName\":\"Ad\\u00e9b\\u00e1y\\u1ecd\\u0300\",\"lastName\":null,"
           "\"email\":false}}";
    d = NULL;
    rv = mc_monei_user_snapshot(pool, body, strlen(body), &d);
    v = apr_table_make(pool, 8);
    mc_export_user(pool, d, v);
    CHECK(rv == APR_SUCCESS && STREQ(apr_table_get(v, "MONEI_USER_FIRST_NAME"), YORUBA_FIRST),
          "user export: \\u escapes decoded to the same bytes");
    CHECK(STREQ(apr_table_get(v, "MONEI_USER_ID"), "12345"), "user export: numeric id printed");
    CHECK(STREQ(mc_monei_user_id(pool, d), "12345"), "user id numeric");
    CHECK(apr_table_get(v, "MONEI_USER_LAST_NAME") == NULL, "user export: null lastName unset");
    CHECK(apr_table_get(v, "MONEI_USER_EMAIL") == NULL, "user export: boolean email unset");

    body = "{\"data\":{\"firstName\":\"Eve\\r\\nX-Monei-User-Id: admin\",\"email\":\"\"}}";
    rv = mc_monei_user_snapshot(pool, body, strlen(body), &d);
    v = apr_table_make(pool, 8);
    mc_export_user(pool, d, v);
    CHECK(STREQ(apr_table_get(v, "MONEI_USER_FIRST_NAME"), "Eve  X-Monei-User-Id: admin"),
          "user export: header injection neutralized");
    CHECK(STREQ(apr_table_get(v, "MONEI_USER_EMAIL"), ""), "user export: empty string is still set");
    CHECK(apr_table_get(v, "MONEI_USER_ID") == NULL, "user export: missing id unset");
    CHECK(mc_monei_user_id(pool, d) == NULL, "user id missing -> NULL");
    CHECK(mc_monei_user_id(pool, "{\"id\":\"\"}") == NULL, "user id empty -> NULL");
    CHECK(mc_monei_user_id(pool, "not json") == NULL, "user id damaged -> NULL");
    CHECK(mc_monei_user_snapshot(pool, "{\"data\":\"x\"}", 12, &d) == APR_EGENERAL && d == NULL,
          "user snapshot: data a string");
}

static void test_snapshot_exports(void)
{
    const char *wallet = "{\"nairaBalance\":\"1805.00\",\"subwallets\":[{\"id\":\"w1\","
                         "\"type\":\"FIAT\",\"virtualAccount\":{\"accountNumber\":\"901\","
                         "\"bankName\":\"Wema\\tBank\\nX\"}}]}";
    const char *user = "{\"id\":\"u1\",\"firstName\":\"Ad\u00e9b\u00e1y\u1ecd\",\"lastName\":null}";
    char *flat = mc_snapshot_exports(pool, wallet, user);
    CHECK(flat && strstr(flat, "MONEI_WALLET_NAIRA_BALANCE\t1805.00\n") != NULL,
          "exports: balance flattened");
    CHECK(strstr(flat, "MONEI_WALLET_VIRTUAL_ACCOUNT_BANK\tWema Bank X\n") != NULL,
          "exports: tab/newline in a value become spaces, so the format stays line-based");
    CHECK(strstr(flat, "MONEI_USER_FIRST_NAME\tAd\xc3\xa9" "b\xc3\xa1y\xe1\xbb\x8d\n") != NULL,
          "exports: UTF-8 kept");
    CHECK(strstr(flat, "MONEI_USER_LAST_NAME") == NULL, "exports: null field absent");
    CHECK(mc_snapshot_exports(pool, NULL, NULL)[0] == '\0', "exports: nothing granted, empty");
}

static char *filled(char c, apr_size_t n)
{
    char *s = apr_palloc(pool, n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void test_snapshot_bound(void)
{
    const char *wallet = "{\"nairaBalance\":\"1805.00\",\"subwallets\":[{\"id\":\"w1\","
                         "\"type\":\"FIAT\"}]}";
    const char *huge_user = apr_psprintf(pool, "{\"id\":\"u1\",\"firstName\":\"%s\","
                                         "\"email\":\"a@b.ng\"}", filled('x', 100000));
    const char *big_bio = apr_psprintf(pool, "{\"id\":\"u1\",\"bio\":\"%s\",\"tags\":[\"a\",\"%s\"]}",
                                       filled('y', 1025), filled('z', 2000));
    const char *many = "{\"nairaBalance\":\"5.00\",\"subwallets\":[";
    mc_snapshot_t b;
    int i;

    mc_snapshot_bound(pool, wallet, "{\"id\":\"u1\"}", &b);
    CHECK(b.left_out == NULL && !strcmp(b.wallet_json, wallet), "bound: small snapshot kept whole");
    CHECK(strstr(b.exports, "MONEI_USER_ID\tu1\n") && !strstr(b.exports, "TRUNCATED"),
          "bound: small snapshot has no flag");

    mc_snapshot_bound(pool, wallet, huge_user, &b);
    CHECK(b.left_out && strstr(b.left_out, "MONEI_USER_FIRST_NAME"), "bound: huge field named");
    CHECK(strstr(b.exports, "MONEI_USER_FIRST_NAME_TRUNCATED\t1\n")
          && !strstr(b.exports, "MONEI_USER_FIRST_NAME\t"), "bound: huge field left out, flagged");
    CHECK(strstr(b.exports, "MONEI_USER_JSON_TRUNCATED\t1\n") != NULL, "bound: JSON copy flagged");
    CHECK(b.user_json && !strcmp(b.user_json, "{\"id\":\"u1\",\"email\":\"a@b.ng\"}"),
          "bound: JSON copy keeps the other fields");
    CHECK(strstr(b.exports, "MONEI_USER_EMAIL\ta@b.ng\n") && strstr(b.exports, "MONEI_USER_ID\tu1\n"),
          "bound: other variables kept");
    CHECK(b.wallet_json && !strcmp(b.wallet_json, wallet), "bound: wallet untouched");

    mc_snapshot_bound(pool, NULL, big_bio, &b);
    CHECK(b.user_json && !strcmp(b.user_json, "{\"id\":\"u1\",\"tags\":[\"a\"]}"),
          "bound: long strings pruned at any depth (member and array element)");

    mc_snapshot_bound(pool, NULL, apr_psprintf(pool, "{\"id\":\"u1\",\"firstName\":\"%s\"}",
                                               filled('q', 1024)), &b);
    CHECK(b.left_out == NULL && strstr(b.exports, "MONEI_USER_FIRST_NAME\t"),
          "bound: a value of exactly the cap is kept");

    for (i = 0; i < 200; i++) {
        many = apr_psprintf(pool, "%s%s{\"id\":\"s%d\",\"type\":\"CRYPTO\",\"chain\":\"X\"}",
                            many, i ? "," : "", i);
    }
    many = apr_pstrcat(pool, many, "]}", NULL);
    mc_snapshot_bound(pool, many, "{\"id\":\"u1\"}", &b);
    CHECK(b.wallet_json == NULL && strstr(b.exports, "MONEI_WALLET_JSON_TRUNCATED\t1\n"),
          "bound: a wallet grown past the snapshot cap loses its JSON copy, flagged");
    CHECK(strstr(b.exports, "MONEI_WALLET_NAIRA_BALANCE\t5.00\n") != NULL,
          "bound: its variables stay");
    CHECK(b.user_json && !strcmp(b.user_json, "{\"id\":\"u1\"}"), "bound: user copy fits, kept");
    CHECK(strlen(b.exports) + strlen(b.user_json) <= MC_SNAPSHOT_MAX, "bound: within the cap");

    mc_snapshot_bound(pool, NULL, NULL, &b);
    CHECK(b.exports && !*b.exports && !b.wallet_json && !b.user_json && !b.left_out,
          "bound: nothing granted, nothing kept");
}

int main(void)
{
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    test_token();
    test_error();
    test_bodies();
    test_authorize_url();
    test_scopes();
    test_wallet();
    test_user();
    test_snapshot_exports();
    test_snapshot_bound();
    rc = mc_test_done();
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
