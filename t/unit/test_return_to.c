/* Unit tests for mc_return_to: every open-redirect trick we know of must be
 * refused, ordinary local paths and same-host URLs accepted unchanged. */
#include <string.h>
#include <stdlib.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "mc_test.h"
#include "mc_return_to.h"

static apr_pool_t *pool;
static apr_array_header_t *trusted;

static const mc_origin_t app = { "https", "app.example.com", 443 };

static int ok_at(const char *v, const mc_origin_t *here, const apr_array_header_t *t)
{
    const char *safe = "unset";
    apr_status_t rv = mc_return_to_check(pool, v, here, t, &safe);
    if (rv == APR_SUCCESS) return safe == v;        /* unchanged, same pointer */
    return safe == NULL ? 0 : -1;                   /* -1: bad out-param */
}

static int ok_with(const char *v, const char *host, const apr_array_header_t *t)
{
    mc_origin_t here = { "https", host, 443 };
    return ok_at(v, &here, t);
}

static void expect_ok(const char *v, const char *msg)
{
    CHECK(ok_with(v, "app.example.com", trusted) == 1,
          apr_psprintf(pool, "accept %s (%s)", msg, v));
}

static void expect_refused(const char *v, const char *msg)
{
    CHECK(ok_with(v, "app.example.com", trusted) == 0,
          apr_psprintf(pool, "reject %s", msg));
}

static void test_accept(void)
{
    expect_ok("/", "root");
    expect_ok("/account", "simple path");
    expect_ok("/account/settings?tab=wallet&x=1#top", "path with query and fragment");
    expect_ok("/search?q=hello%20world", "encoded space in query");
    expect_ok("/caf%C3%A9", "percent-encoded UTF-8");
    expect_ok("/a/b/../c", "dot segments");
    expect_ok("/path//double/inside", "'//' not at the start");
    expect_ok("/discount%2525", "double-encoded percent sign");
    expect_ok("https://app.example.com/account", "same host https");
    expect_ok("HTTPS://APP.EXAMPLE.COM/x", "scheme and host case-insensitive");
    expect_ok("https://app.example.com:443/x", "same host, default port written");
    expect_ok("https://app.example.com", "same host no path");
    expect_ok("https://app.example.com?x=1", "same host query right after authority");
    expect_ok("https://shop.example.net/cart", "trusted host");
    expect_ok("https://SHOP.example.NET/cart", "trusted host, case");
    expect_ok("http://shop.example.net/cart", "trusted host without port: either scheme");
    expect_ok("https://pay.example.org:8443/x", "trusted host:port on that port");
    expect_ok("https://app.example.com/p?email=a@b.example", "'@' in the query is not userinfo");
    expect_ok("https://app.example.com/%2F%2Fevil", "encoded slashes in a same-host path");
}

static void test_reject(void)
{
    char *longv;

    expect_refused("//evil.example", "protocol-relative");
    expect_refused("//evil.example/path", "protocol-relative with path");
    expect_refused("///evil.example", "triple slash");
    expect_refused("/\\evil.example", "slash-backslash");
    expect_refused("\\\\evil.example", "double backslash");
    expect_refused("\\/evil.example", "backslash-slash");
    expect_refused("/path\\x", "backslash anywhere");
    expect_refused("/%2F%2Fevil.example", "encoded //");
    expect_refused("/%2f%2fevil.example", "encoded // lowercase");
    expect_refused("/%2Fevil.example", "encoded second slash");
    expect_refused("/%5Cevil.example", "encoded backslash at start");
    expect_refused("/a%5cb", "encoded backslash anywhere");
    expect_refused("/%252F%252Fevil.example", "double-encoded //");
    expect_refused("/%25252F%25252Fevil.example", "triple-encoded //");
    expect_refused("/%255Cevil", "double-encoded backslash");
    expect_refused("/%0d%0aSet-Cookie:x=1", "encoded CRLF");
    expect_refused("/%09/evil.example", "encoded tab");
    expect_refused("/%00", "encoded NUL");
    expect_refused("/\t/evil.example", "raw tab (browsers drop it -> //evil)");
    expect_refused("/\r\nLocation: https://evil.example", "raw CRLF");
    expect_refused("/\n/evil.example", "raw LF");
    expect_refused("/ /x", "raw space");
    expect_refused("/caf\xC3\xA9", "raw non-ASCII");
    expect_refused("/%zz", "malformed percent escape");
    expect_refused("/100%", "trailing percent");
    expect_refused("javascript:alert(1)", "javascript:");
    expect_refused("JaVaScRiPt:alert(1)", "javascript: mixed case");
    expect_refused("data:text/html,<script>", "data:");
    expect_refused("https:x", "https: without //");
    expect_refused("https:/evil.example", "https:/ single slash");
    expect_refused("https:\\\\evil.example", "https:\\\\");
    expect_refused("ftp://app.example.com/", "ftp scheme");
    expect_refused("http://app.example.com/", "same host, other scheme");
    expect_refused("https://app.example.com:8443/x", "same host, other port");
    expect_refused("http://app.example.com:443/x", "same host and port, other scheme");
    expect_refused("https://shop.example.net:444/cart", "trusted host (no port), other port");
    expect_refused("https://pay.example.org/x", "trusted host:port, default port");
    expect_refused("https://pay.example.org:9999/x", "trusted host:port, other port");
    expect_refused("https://evil.example/", "foreign host");
    expect_refused("https://evil.example/app.example.com", "this host only in path");
    expect_refused("https://app.example.com.evil.example/", "this host as a prefix");
    expect_refused("https://evilapp.example.com/", "suffix look-alike");
    expect_refused("https://app.example.com@evil.example/", "userinfo: good@evil");
    expect_refused("https://good.example@app.example.com/", "userinfo even when host matches");
    expect_refused("https://user:pw@app.example.com/", "user:password userinfo");
    expect_refused("https://evil.example\\@app.example.com", "backslash-at trick");
    expect_refused("https://evil.example%40app.example.com/", "encoded '@' in authority");
    expect_refused("https://app.example.com%2Eevil.example/", "percent in host");
    expect_refused("https://app.example.com:99999/", "port out of range");
    expect_refused("https://app.example.com:0/", "port zero");
    expect_refused("https://app.example.com:80x/", "port not numeric");
    expect_refused("https://app.example.com:/", "empty port");
    expect_refused("https:///evil.example", "empty authority");
    expect_refused("https://", "scheme only");
    expect_refused("https://app.example.com\t.evil/", "tab inside host");
    expect_refused("https://[::1]/", "IPv6 literal not this host");
    expect_refused("evil.example", "bare host");
    expect_refused("account", "relative path");
    expect_refused("?x=1", "query only");
    expect_refused("#frag", "fragment only");
    expect_refused("", "empty");
    expect_refused(NULL, "NULL");

    longv = malloc(MC_RETURN_TO_MAX_LEN + 2);
    memset(longv, 'a', MC_RETURN_TO_MAX_LEN + 1);
    longv[0] = '/';
    longv[MC_RETURN_TO_MAX_LEN + 1] = '\0';
    expect_refused(longv, "2049 bytes");
    longv[MC_RETURN_TO_MAX_LEN] = '\0';
    expect_ok(longv, "exactly 2048 bytes");
    free(longv);
}

static void test_hosts(void)
{
    apr_array_header_t *v6 = apr_array_make(pool, 1, sizeof(const char *));
    const char *safe = "unset";

    {
        mc_origin_t h8443 = { "https", "app.example.com", 8443 };
        mc_origin_t plain = { "http", "127.0.0.1", 8080 };
        CHECK(ok_at("https://app.example.com:8443/", &h8443, NULL) == 1,
              "this server on a non-default port, port written");
        CHECK(ok_at("https://app.example.com/", &h8443, NULL) == 0,
              "this server on 8443: the default port is another origin");
        CHECK(ok_at("http://127.0.0.1:8080/x", &plain, NULL) == 1, "http site, same port");
        CHECK(ok_at("https://127.0.0.1:8080/x", &plain, NULL) == 0, "http site, https URL");
        CHECK(ok_at("http://127.0.0.1:9999/x", &plain, NULL) == 0, "http site, other port");
        CHECK(ok_at("https://app.example.com/", NULL, NULL) == 0, "no origin: URLs refused");
    }
    CHECK(ok_with("https://APP.example.com/", "app.EXAMPLE.com", NULL) == 1,
          "this_host compared case-insensitively");
    CHECK(ok_with("https://shop.example.net/", "app.example.com", NULL) == 0,
          "trusted NULL: other hosts refused");
    CHECK(ok_with("https://app.example.com/", NULL, NULL) == 0,
          "this_host NULL, no trusted: every URL refused");
    CHECK(ok_with("/ok", NULL, NULL) == 1, "this_host NULL: local path still fine");
    CHECK(ok_with("https://app.example.com/", "bad host!", NULL) == 0,
          "unparsable this_host matches nothing");
    {
        mc_origin_t v6h = { "http", "[::1]", 8080 };
        CHECK(ok_at("http://[::1]:8080/x", &v6h, NULL) == 1, "IPv6 literal this host");
        CHECK(ok_at("http://[::1/x", &v6h, NULL) == 0, "unterminated IPv6 literal");
    }
    APR_ARRAY_PUSH(v6, const char *) = "[2001:db8::1]";
    CHECK(ok_with("https://[2001:DB8::1]/", "app.example.com", v6) == 1, "IPv6 trusted host");
    CHECK(mc_return_to_check(pool, "/x", &app, NULL, NULL) == APR_EINVAL, "NULL safe out-param");
    CHECK(mc_return_to_check(pool, "//evil", &app, NULL, &safe) == APR_EINVAL && safe == NULL,
          "refusal returns APR_EINVAL and NULL safe");
}

int main(void)
{
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    trusted = apr_array_make(pool, 2, sizeof(const char *));
    APR_ARRAY_PUSH(trusted, const char *) = "shop.example.net";
    APR_ARRAY_PUSH(trusted, const char *) = "pay.example.org:8443";
    test_accept();
    test_reject();
    test_hosts();
    rc = mc_test_done();
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
