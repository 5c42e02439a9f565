/* Unit tests for mc_text and mc_json. */
#include <string.h>
#include <stdlib.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "mc_test.h"
#include "mc_text.h"
#include "mc_json.h"

#define STREQ(a, b) ((a) && (b) && strcmp((a), (b)) == 0)

static void test_sanitize(apr_pool_t *p)
{
    /* "Adébáyọ̀ Ọlábísí": combining marks and dotted letters, 2- and 3-byte. */
    const char *yoruba = "Ad\xC3\xA9" "b\xC3\xA1" "y\xE1\xBB\x8D\xCC\x80 "
                         "\xE1\xBB\x8Cl\xC3\xA1" "b\xC3\xAD" "s\xC3\xAD";
    char raw[4] = { 'a', 0x7F, 'b', 0 };

    CHECK(mc_sanitize_value(p, NULL) == NULL, "sanitize NULL -> NULL");
    CHECK(STREQ(mc_sanitize_value(p, ""), ""), "sanitize empty");
    CHECK(STREQ(mc_sanitize_value(p, "1805.00"), "1805.00"), "sanitize plain ascii unchanged");
    CHECK(STREQ(mc_sanitize_value(p, yoruba), yoruba), "sanitize keeps Yoruba UTF-8 byte-exact");
    CHECK(STREQ(mc_sanitize_value(p, "\xF0\x9F\x92\xB0 ok"), "\xF0\x9F\x92\xB0 ok"), "sanitize keeps 4-byte emoji");
    CHECK(STREQ(mc_sanitize_value(p, "a\r\nSet-Cookie: x=1"), "a  Set-Cookie: x=1"), "sanitize CRLF -> spaces");
    CHECK(STREQ(mc_sanitize_value(p, "\ttab\x01\x1F"), " tab  "), "sanitize tab and C0 controls");
    CHECK(STREQ(mc_sanitize_value(p, raw), "a b"), "sanitize DEL -> space");
    CHECK(STREQ(mc_sanitize_value(p, "x\xFFy"), "x?y"), "sanitize 0xFF -> ?");
    CHECK(STREQ(mc_sanitize_value(p, "x\xC3"), "x?"), "sanitize truncated 2-byte sequence");
    CHECK(STREQ(mc_sanitize_value(p, "\xE1\xBB"), "??"), "sanitize truncated 3-byte sequence");
    CHECK(STREQ(mc_sanitize_value(p, "\xC0\xAF"), "??"), "sanitize overlong '/' rejected");
    CHECK(STREQ(mc_sanitize_value(p, "\xE0\x80\xBC"), "???"), "sanitize overlong '<' (3 bytes) rejected");
    CHECK(STREQ(mc_sanitize_value(p, "\xED\xA0\x80"), "???"), "sanitize UTF-16 surrogate rejected");
    CHECK(STREQ(mc_sanitize_value(p, "\xF4\x90\x80\x80"), "????"), "sanitize > U+10FFFF rejected");
    CHECK(STREQ(mc_sanitize_value(p, "\x80" "\xC3\xA9"), "?\xC3\xA9"), "sanitize resyncs after stray continuation");
    CHECK(STREQ(mc_sanitize_value(p, "\xC3\x28"), "?("), "sanitize bad continuation keeps next byte");
    CHECK(STREQ(mc_sanitize_value(p, "\xC2\x85"), "\xC2\x85"), "sanitize keeps valid C1 (U+0085) as UTF-8");
}

static void test_html(apr_pool_t *p)
{
    CHECK(STREQ(mc_html_escape(p, NULL), ""), "html NULL -> empty");
    CHECK(STREQ(mc_html_escape(p, "plain"), "plain"), "html plain");
    CHECK(STREQ(mc_html_escape(p, "<script>alert('x')</script>"),
                "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"), "html script tag");
    CHECK(STREQ(mc_html_escape(p, "a&b \"q\""), "a&amp;b &quot;q&quot;"), "html & and quotes");
    CHECK(STREQ(mc_html_escape(p, "&amp;"), "&amp;amp;"), "html escapes already-escaped text again");
    CHECK(STREQ(mc_html_escape(p, "\xC3\xA9<"), "\xC3\xA9&lt;"), "html keeps UTF-8");
}

static void test_json_escape(apr_pool_t *p)
{
    json_t *j;
    json_error_t err;
    char *s;

    CHECK(STREQ(mc_json_escape_string(p, NULL), "null"), "json escape NULL -> null");
    CHECK(STREQ(mc_json_escape_string(p, ""), "\"\""), "json escape empty");
    CHECK(STREQ(mc_json_escape_string(p, "a\"b\\c"), "\"a\\\"b\\\\c\""), "json escape quote and backslash");
    CHECK(STREQ(mc_json_escape_string(p, "l1\nl2\r\t\b\f"), "\"l1\\nl2\\r\\t\\b\\f\""), "json escape short forms");
    CHECK(STREQ(mc_json_escape_string(p, "\x01\x1f\x7f"), "\"\\u0001\\u001f\\u007f\""), "json escape other controls");
    CHECK(STREQ(mc_json_escape_string(p, "\xC3\xA9"), "\"\xC3\xA9\""), "json escape keeps UTF-8");
    CHECK(STREQ(mc_json_escape_string(p, "a\xFF"), "\"a\\ufffd\""), "json escape invalid UTF-8 -> \\ufffd");
    CHECK(STREQ(mc_json_escape_string(p, "</script>"), "\"</script>\""), "json escape leaves < > alone");

    /* Whatever the input, the output parses as a JSON string. */
    s = mc_json_escape_string(p, "x\x01\xFE\xC3\xA9\"\\\n\xED\xA0\x80");
    j = json_loads(s, JSON_DECODE_ANY, &err);
    CHECK(j && json_is_string(j), "json escape of hostile bytes parses back as a string");
    json_decref(j);
}

static void test_var_to_header(apr_pool_t *p)
{
    CHECK(STREQ(mc_var_to_header(p, "X-Monei-", "MONEI_WALLET_NAIRA_BALANCE"),
                "X-Monei-Wallet-Naira-Balance"), "header name naira balance");
    CHECK(STREQ(mc_var_to_header(p, "X-Monei-", "MONEI_CONNECTED"), "X-Monei-Connected"), "header name connected");
    CHECK(STREQ(mc_var_to_header(p, "X-Monei-", "MONEI_USER_JSON"), "X-Monei-User-Json"), "header name user json");
    CHECK(STREQ(mc_var_to_header(p, "X-Monei-", "MONEI_SCOPE_WALLET_READ"), "X-Monei-Scope-Wallet-Read"), "header name scope var");
    CHECK(STREQ(mc_var_to_header(p, "X-Monei-", "MONEI_WALLET_EVM_ADDRESS"), "X-Monei-Wallet-Evm-Address"), "header name EVM lowered");
    CHECK(STREQ(mc_var_to_header(p, "X-Acme-", "MONEI_TOKEN_EXPIRES"), "X-Acme-Token-Expires"), "header name custom prefix");
    CHECK(STREQ(mc_var_to_header(p, "X-Monei-", "REMOTE_USER"), "X-Monei-Remote-User"), "header name non-MONEI var kept whole");
    CHECK(STREQ(mc_var_to_header(p, "X-Monei-", "MONEI_A__B_"), "X-Monei-A-B"), "header name collapses empty words");
    CHECK(STREQ(mc_var_to_header(p, "X-Monei-", "MONEI_A:B\r\nC"), "X-Monei-A-B-C"), "header name drops non-token chars");
    CHECK(STREQ(mc_var_to_header(p, NULL, "MONEI_X"), "X"), "header name NULL prefix");
    CHECK(mc_var_to_header(p, "X-", NULL) == NULL, "header name NULL var");
}

static void test_header_prefix(void)
{
    CHECK(mc_header_has_prefix("X-Monei-User-Id", "X-Monei-"), "prefix exact");
    CHECK(mc_header_has_prefix("x-monei-user-id", "X-Monei-"), "prefix lower case");
    CHECK(mc_header_has_prefix("X_Monei_User_Id", "X-Monei-"), "prefix with underscores");
    CHECK(mc_header_has_prefix("X-MONEI-SCOPE-WALLET-SEND", "X-Monei-"), "prefix upper case");
    CHECK(mc_header_has_prefix("X-Monei_Scope_Wallet_Send", "X-Monei-"), "prefix mixed separators");
    CHECK(mc_header_has_prefix("X-Monei-", "X_MONEI_"), "prefix configured with underscores");
    CHECK(!mc_header_has_prefix("X-Moneiuser", "X-Monei-"), "no separator, no match");
    CHECK(!mc_header_has_prefix("X-Mone", "X-Monei-"), "shorter name, no match");
    CHECK(!mc_header_has_prefix("Accept", "X-Monei-"), "other header");
    CHECK(!mc_header_has_prefix("X-Monei-A", ""), "empty prefix matches nothing");
    CHECK(!mc_header_has_prefix(NULL, "X-"), "NULL name");
    CHECK(!mc_header_has_prefix("X-A", NULL), "NULL prefix");
}

static void test_truncate(apr_pool_t *p)
{
    CHECK(mc_utf8_truncate(p, NULL, 5) == NULL, "truncate NULL");
    CHECK(STREQ(mc_utf8_truncate(p, "abc", 5), "abc"), "truncate short unchanged");
    CHECK(STREQ(mc_utf8_truncate(p, "abcdef", 3), "abc"), "truncate ascii");
    CHECK(STREQ(mc_utf8_truncate(p, "ab\xC3\xA9", 3), "ab"), "truncate before split 2-byte");
    CHECK(STREQ(mc_utf8_truncate(p, "a\xF0\x9F\x92\xB0z", 4), "a"), "truncate before split 4-byte");
    CHECK(STREQ(mc_utf8_truncate(p, "a\xF0\x9F\x92\xB0z", 5), "a\xF0\x9F\x92\xB0"), "truncate right after a 4-byte");
}

static void test_json(apr_pool_t *p)
{
    json_t *j = NULL;
    const char *s;
    char *big;
    apr_status_t rv;

    CHECK(mc_json_parse("{\"a\":\"b\"}", 9, &j) == APR_SUCCESS && json_is_object(j), "json parse object");
    CHECK(STREQ(mc_json_str(p, j, "a"), "b"), "json str present");
    CHECK(mc_json_str(p, j, "x") == NULL, "json str absent");
    CHECK(mc_json_str(p, NULL, "a") == NULL, "json str NULL obj");
    json_decref(j);

    CHECK(mc_json_parse("[1,2]", 5, &j) == APR_EGENERAL && j == NULL, "json parse rejects array top level");
    CHECK(mc_json_parse("\"s\"", 3, &j) == APR_EGENERAL && j == NULL, "json parse rejects string top level");
    CHECK(mc_json_parse("{\"a\":1", 6, &j) == APR_EGENERAL, "json parse rejects truncated");
    CHECK(mc_json_parse("not json", 8, &j) == APR_EGENERAL, "json parse rejects text");
    CHECK(mc_json_parse("", 0, &j) == APR_EGENERAL, "json parse rejects empty");
    CHECK(mc_json_parse("{\"a\":1,\"a\":2}", 13, &j) == APR_EGENERAL, "json parse rejects duplicate keys");
    CHECK(mc_json_parse("{\"a\":\"x\\u0000y\"}", 16, &j) == APR_EGENERAL, "json parse rejects \\u0000 in strings");
    CHECK(mc_json_parse("{\"a\":1}garbage", 14, &j) == APR_EGENERAL, "json parse rejects trailing garbage");
    CHECK(mc_json_parse("{\"a\":1}XXXX", 7, &j) == APR_SUCCESS, "json parse honours len (no NUL needed)");
    json_decref(j);
    CHECK(mc_json_parse(NULL, 3, &j) == APR_EINVAL, "json parse NULL buf");
    CHECK(mc_json_parse("{}", 2, NULL) == APR_EINVAL, "json parse NULL out");

    big = malloc(MC_JSON_MAX_LEN + 2);
    memset(big, ' ', MC_JSON_MAX_LEN + 1);
    big[0] = '{';
    big[MC_JSON_MAX_LEN] = '}';
    big[MC_JSON_MAX_LEN + 1] = '\0';
    rv = mc_json_parse(big, MC_JSON_MAX_LEN + 1, &j);
    CHECK(rv == APR_ENOSPC && j == NULL, "json parse rejects > 1 MiB");
    rv = mc_json_parse(big, MC_JSON_MAX_LEN, &j);
    CHECK(rv == APR_EGENERAL, "json parse of exactly 1 MiB is attempted (unterminated here)");
    big[MC_JSON_MAX_LEN - 1] = '}';
    rv = mc_json_parse(big, MC_JSON_MAX_LEN, &j);
    CHECK(rv == APR_SUCCESS, "json parse accepts exactly 1 MiB");
    json_decref(j);
    /* Deep nesting must fail cleanly, not overflow the stack. */
    memset(big, '[', MC_JSON_MAX_LEN);
    big[0] = '{';
    rv = mc_json_parse(big, MC_JSON_MAX_LEN, &j);
    CHECK(rv == APR_EGENERAL, "json parse rejects 1 MiB of nesting");
    free(big);

    /* compact keeps document order and UTF-8 */
    CHECK(mc_json_parse("{ \"z\" : 1, \"a\" : \"Ad\xC3\xA9\" , \"m\":[ 1 , null ] }", 44, &j) == APR_SUCCESS,
          "json parse spaced object");
    s = mc_json_compact(p, j);
    CHECK(STREQ(s, "{\"z\":1,\"a\":\"Ad\xC3\xA9\",\"m\":[1,null]}"), "json compact: order kept, UTF-8 raw, no spaces");
    json_decref(j);

    j = json_integer(1805);
    CHECK(STREQ(mc_json_scalar_str(p, j), "1805"), "scalar integer");
    json_decref(j);
    j = json_real(1805.5);
    CHECK(STREQ(mc_json_scalar_str(p, j), "1805.5"), "scalar real shortest");
    json_decref(j);
    j = json_real(0.1);
    CHECK(STREQ(mc_json_scalar_str(p, j), "0.1"), "scalar real 0.1 not 17 digits");
    json_decref(j);
    j = json_string("1805.00");
    CHECK(STREQ(mc_json_scalar_str(p, j), "1805.00"), "scalar string verbatim");
    json_decref(j);
    CHECK(mc_json_scalar_str(p, json_null()) == NULL, "scalar null -> NULL");
    CHECK(mc_json_scalar_str(p, json_true()) == NULL, "scalar bool -> NULL");
    CHECK(mc_json_scalar_str(p, NULL) == NULL, "scalar NULL -> NULL");
}

int main(void)
{
    apr_pool_t *p;
    int rc;

    apr_initialize();
    apr_pool_create(&p, NULL);
    test_sanitize(p);
    test_html(p);
    test_json_escape(p);
    test_var_to_header(p);
    test_truncate(p);
    test_header_prefix();
    test_json(p);
    rc = mc_test_done();
    apr_pool_destroy(p);
    apr_terminate();
    return rc;
}
