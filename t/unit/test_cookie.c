/* Unit tests for mc_cookie. */
#include <string.h>
#include <stdlib.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "mc_test.h"
#include "mc_cookie.h"

#define STREQ(a, b) ((a) && (b) && strcmp((a), (b)) == 0)

static void test_get(apr_pool_t *p)
{
    const char *h = "a=1; monei_session=abc123; b=2";
    char *big;
    int i;

    CHECK(STREQ(mc_cookie_get(p, h, "monei_session"), "abc123"), "get middle cookie");
    CHECK(STREQ(mc_cookie_get(p, h, "a"), "1"), "get first cookie");
    CHECK(STREQ(mc_cookie_get(p, h, "b"), "2"), "get last cookie");
    CHECK(mc_cookie_get(p, h, "c") == NULL, "get absent cookie");
    CHECK(mc_cookie_get(p, h, "monei") == NULL, "get prefix of a name does not match");
    CHECK(mc_cookie_get(p, "xmonei_session=1", "monei_session") == NULL, "get suffix of a name does not match");
    CHECK(mc_cookie_get(p, h, "MONEI_SESSION") == NULL, "get is case-sensitive");
    CHECK(mc_cookie_get(p, NULL, "a") == NULL, "get NULL header");
    CHECK(mc_cookie_get(p, h, NULL) == NULL, "get NULL name");
    CHECK(mc_cookie_get(p, h, "") == NULL, "get empty name");
    CHECK(mc_cookie_get(p, "", "a") == NULL, "get empty header");

    CHECK(STREQ(mc_cookie_get(p, "  a = 1 ;   b=2  ", "a"), "1"), "get tolerates spaces around = and ;");
    CHECK(STREQ(mc_cookie_get(p, "\ta=1\t;\tb=2", "b"), "2"), "get tolerates tabs");
    CHECK(STREQ(mc_cookie_get(p, "a=\"quoted\"", "a"), "quoted"), "get strips quotes");
    CHECK(STREQ(mc_cookie_get(p, "a=\"", "a"), "\""), "get lone quote kept");
    CHECK(mc_cookie_get(p, "a=\"\"", "a") == NULL, "get empty quoted value -> NULL");
    CHECK(mc_cookie_get(p, "a=; b=2", "a") == NULL, "get empty value -> NULL");
    CHECK(STREQ(mc_cookie_get(p, "a=1;;; ;b=2", "b"), "2"), "get skips empty pairs");
    CHECK(STREQ(mc_cookie_get(p, "a=1; a=2", "a"), "1"), "get first match wins");
    CHECK(mc_cookie_get(p, "a=; a=2", "a") == NULL, "get first match wins even if empty");
    CHECK(STREQ(mc_cookie_get(p, "a=x=y=z", "a"), "x=y=z"), "get value with '='");
    CHECK(STREQ(mc_cookie_get(p, "flag; a=1", "a"), "1"), "get ignores pair without '='");
    CHECK(mc_cookie_get(p, "a", "a") == NULL, "get bare word is not a cookie named a");
    CHECK(STREQ(mc_cookie_get(p, "__Host-monei_session=Zm9v-_", "__Host-monei_session"), "Zm9v-_"),
          "get __Host- prefixed name");
    CHECK(STREQ(mc_cookie_get(p, "a=1, b=2", "a"), "1, b=2"), "get does not split on ',' (RFC 6265)");

    /* Bounds */
    big = malloc(MC_COOKIE_MAX_HEADER + 64);
    memset(big, 'x', MC_COOKIE_MAX_HEADER + 63);
    memcpy(big, "s=ok; p=", 8);
    big[MC_COOKIE_MAX_HEADER + 63] = '\0';
    CHECK(mc_cookie_get(p, big, "s") == NULL, "get header > 16 KiB -> not found");
    big[MC_COOKIE_MAX_HEADER] = '\0';
    CHECK(STREQ(mc_cookie_get(p, big, "s"), "ok"), "get header of exactly 16 KiB works");
    free(big);

    big = apr_pstrdup(p, "s=ok");
    for (i = 1; i < MC_COOKIE_MAX_COUNT; i++) big = apr_psprintf(p, "%s; c%d=v", big, i);
    CHECK(STREQ(mc_cookie_get(p, big, "s"), "ok"), "get with exactly 200 cookies");
    big = apr_pstrcat(p, big, "; one=more", NULL);
    CHECK(mc_cookie_get(p, big, "s") == NULL, "get with 201 cookies -> not found even if first");
}

static void test_remove(apr_pool_t *p)
{
    const char *ours[] = { "monei_session", "monei_state" };

    CHECK(STREQ(mc_cookie_remove(p, "a=1; monei_session=s; b=2", ours, 2), "a=1; b=2"),
          "remove middle");
    CHECK(STREQ(mc_cookie_remove(p, "monei_session=s; b=2", ours, 2), "b=2"), "remove first");
    CHECK(STREQ(mc_cookie_remove(p, "a=1; monei_state=x", ours, 2), "a=1"), "remove last");
    CHECK(mc_cookie_remove(p, "monei_session=s; monei_state=x", ours, 2) == NULL,
          "remove everything -> NULL");
    CHECK(STREQ(mc_cookie_remove(p, "monei_session=1; a=1; monei_session=2", ours, 2), "a=1"),
          "remove every occurrence, not only the first");
    CHECK(STREQ(mc_cookie_remove(p, "  a=1 ;; monei_session = s ;b=2  ", ours, 2), "a=1; b=2"),
          "remove tolerates spaces and empty pairs");
    CHECK(STREQ(mc_cookie_remove(p, "xmonei_session=1; monei_session_x=2", ours, 2),
                "xmonei_session=1; monei_session_x=2"), "remove keeps look-alike names");
    CHECK(STREQ(mc_cookie_remove(p, "a=1; b=2", NULL, 0), "a=1; b=2"), "remove with no names normalizes");
    CHECK(STREQ(mc_cookie_remove(p, "flag; monei_session=s", ours, 2), "flag"), "remove keeps bare word");
    CHECK(STREQ(mc_cookie_remove(p, "a;b;c;d;monei_state=1;e", ours, 2), "a; b; c; d; e"),
          "remove: output longer than input (';' -> '; ')");
    CHECK(mc_cookie_remove(p, NULL, ours, 2) == NULL, "remove NULL header");
    CHECK(mc_cookie_remove(p, "", ours, 2) == NULL, "remove empty header -> NULL");
    CHECK(mc_cookie_remove(p, " ; ; ", ours, 2) == NULL, "remove only separators -> NULL");
}

static void test_set(apr_pool_t *p)
{
    CHECK(STREQ(mc_cookie_set_header(p, "monei_session", "abc", -1, 1, "Lax"),
                "monei_session=abc; Path=/; Secure; HttpOnly; SameSite=Lax"), "set session cookie");
    CHECK(STREQ(mc_cookie_set_header(p, "s", "abc", 600, 0, "Strict"),
                "s=abc; Path=/; Max-Age=600; HttpOnly; SameSite=Strict"), "set max-age, not secure");
    CHECK(STREQ(mc_cookie_set_header(p, "s", "", 0, 1, "None"),
                "s=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure; HttpOnly; SameSite=None"),
          "set delete");
    CHECK(STREQ(mc_cookie_set_header(p, "s", NULL, 0, 0, NULL),
                "s=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly"),
          "set delete with NULL value, no samesite");
    CHECK(STREQ(mc_cookie_set_header(p, "s", "v", -1, 0, "lax"),
                "s=v; Path=/; HttpOnly; SameSite=Lax"), "set samesite normalized");
    CHECK(STREQ(mc_cookie_set_header(p, "s", "v", -1, 0, "Bogus"),
                "s=v; Path=/; HttpOnly"), "set unknown samesite omitted");
    CHECK(STREQ(mc_cookie_set_header(p, "__Host-monei_session", "v", -1, 1, "Lax"),
                "__Host-monei_session=v; Path=/; Secure; HttpOnly; SameSite=Lax"), "set __Host- cookie");
    CHECK(mc_cookie_set_header(p, "s", "a;b", -1, 1, "Lax") == NULL, "set refuses ';' in value");
    CHECK(mc_cookie_set_header(p, "s", "a\r\nSet-Cookie: x=y", -1, 1, "Lax") == NULL, "set refuses CRLF in value");
    CHECK(mc_cookie_set_header(p, "s", "a b", -1, 1, "Lax") == NULL, "set refuses space in value");
    CHECK(mc_cookie_set_header(p, "s", "\"q\"", -1, 1, "Lax") == NULL, "set refuses quotes in value");
    CHECK(mc_cookie_set_header(p, "s", "\xC3\xA9", -1, 1, "Lax") == NULL, "set refuses non-ASCII value");
    CHECK(mc_cookie_set_header(p, "a=b", "v", -1, 1, "Lax") == NULL, "set refuses '=' in name");
    CHECK(mc_cookie_set_header(p, "a b", "v", -1, 1, "Lax") == NULL, "set refuses space in name");
    CHECK(mc_cookie_set_header(p, "", "v", -1, 1, "Lax") == NULL, "set refuses empty name");
    CHECK(mc_cookie_set_header(p, NULL, "v", -1, 1, "Lax") == NULL, "set refuses NULL name");
    CHECK(STREQ(mc_cookie_get(p, mc_cookie_set_header(p, "s", "Zm9v_-.~", -1, 1, "Lax"), "s"), "Zm9v_-.~"),
          "set then get round trip");
}

int main(void)
{
    apr_pool_t *p;
    int rc;

    apr_initialize();
    apr_pool_create(&p, NULL);
    test_get(p);
    test_remove(p);
    test_set(p);
    rc = mc_test_done();
    apr_pool_destroy(p);
    apr_terminate();
    return rc;
}
