/* fuzz_error: mc_monei_parse_error on arbitrary Monei error bodies
 * (NestJS {"statusCode","message","error"} or OAuth {"error",
 * "error_description"}).
 *
 * Invariants: APR_SUCCESS or APR_EGENERAL (outputs NULL then); every
 * non-NULL output is at most MC_ERROR_TEXT_MAX bytes, has no control
 * character (< 0x20, 0x7F), is valid UTF-8, and is unchanged by
 * mc_sanitize_value (already clean); html/json escaping of it is sound. */
#include <jansson.h>
#include "fuzz_common.h"
#include "mc_monei.h"
#include "mc_text.h"

static void check_text(apr_pool_t *p, const char *s)
{
    const char *h;
    json_t *j;
    json_error_t err;
    char *q;

    if (!s) return;
    FZ_CHECK(strlen(s) <= MC_ERROR_TEXT_MAX);
    FZ_CHECK(fz_no_controls(s));
    FZ_CHECK(fz_utf8_valid((const unsigned char *)s, strlen(s)));
    FZ_CHECK(strcmp(mc_sanitize_value(p, s), s) == 0);
    /* It ends up in HTML and JSON error pages. */
    h = mc_html_escape(p, s);
    FZ_CHECK(strpbrk(h, "<>\"'") == NULL);
    q = mc_json_escape_string(p, s);
    j = json_loads(q, JSON_DECODE_ANY, &err);
    FZ_CHECK(j != NULL && json_is_string(j));
    FZ_CHECK(strcmp(json_string_value(j), s) == 0);
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_pool();
    const char *error = (const char *)1, *message = (const char *)1;
    char *body = fz_cstr(p, data, size);
    apr_status_t rv = mc_monei_parse_error(p, body, size, &error, &message);

    if (rv == APR_SUCCESS) {
        check_text(p, error);
        check_text(p, message);
    }
    else {
        FZ_CHECK(rv == APR_EGENERAL);
        FZ_CHECK(error == NULL && message == NULL);
    }
    apr_pool_destroy(p);
    return 0;
}
