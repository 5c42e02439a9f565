/* fuzz_token: mc_monei_parse_token on arbitrary response bodies of
 * POST /connect/token.
 *
 * Invariants:
 *  - success: *why NULL; both tokens non-empty, <= MC_TOKEN_MAX_LEN,
 *    printable ASCII without space, equal to the body's values (read back
 *    with jansson directly); token_type "Bearer"; expires_in in
 *    1..MC_EXPIRES_IN_MAX; scopes "" or a valid list of distinct words,
 *    single-space separated, at most MC_SCOPES_MAX_COUNT of them;
 *  - failure: *tok all zero, *why set and made only of letters, '_', '-' and
 *    spaces (it is a fixed description, so it can never carry a token
 *    value into a log line). */
#include <jansson.h>
#include "fuzz_common.h"
#include "mc_monei.h"

static void check_token_str(const char *t)
{
    size_t i, n;
    FZ_CHECK(t != NULL);
    n = strlen(t);
    FZ_CHECK(n >= 1 && n <= MC_TOKEN_MAX_LEN);
    for (i = 0; i < n; i++) {
        FZ_CHECK((unsigned char)t[i] >= 0x21 && (unsigned char)t[i] <= 0x7E);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_pool();
    mc_token_t tok;
    const char *why = (const char *)1;
    /* The body as the transport hands it over: a copy with a NUL after it. */
    char *body = fz_cstr(p, data, size);
    apr_status_t rv = mc_monei_parse_token(p, body, size, &tok, &why);

    if (rv == APR_SUCCESS) {
        json_t *root;
        json_error_t err;
        const char *w;
        int nwords = 0;
        char *copy, *last;

        FZ_CHECK(why == NULL);
        check_token_str(tok.access_token);
        check_token_str(tok.refresh_token);
        FZ_CHECK(tok.token_type && strcmp(tok.token_type, "Bearer") == 0);
        FZ_CHECK(tok.expires_in >= 1 && tok.expires_in <= MC_EXPIRES_IN_MAX);
        FZ_CHECK(tok.scopes != NULL);
        if (*tok.scopes) {
            FZ_CHECK(mc_scope_valid_list(tok.scopes));
            FZ_CHECK(tok.scopes[0] != ' ' && strstr(tok.scopes, "  ") == NULL);
            FZ_CHECK(tok.scopes[strlen(tok.scopes) - 1] != ' ');
            copy = apr_pstrdup(p, tok.scopes);
            for (w = apr_strtok(copy, " ", &last); w; w = apr_strtok(NULL, " ", &last)) {
                /* distinct: w appears once in the list */
                const char *first = tok.scopes, *hit;
                int count = 0;
                size_t wl = strlen(w);
                while ((hit = strstr(first, w))) {
                    if ((hit == tok.scopes || hit[-1] == ' ')
                        && (hit[wl] == '\0' || hit[wl] == ' ')) {
                        count++;
                    }
                    first = hit + 1;
                }
                FZ_CHECK(count == 1);
                FZ_CHECK(strlen(w) <= MC_SCOPE_MAX_LEN);
                nwords++;
            }
            FZ_CHECK(nwords <= MC_SCOPES_MAX_COUNT);
        }
        /* the values are the body's */
        root = json_loadb(body, size, JSON_REJECT_DUPLICATES, &err);
        FZ_CHECK(root != NULL && json_is_object(root));
        FZ_CHECK(strcmp(json_string_value(json_object_get(root, "access_token")),
                        tok.access_token) == 0);
        FZ_CHECK(strcmp(json_string_value(json_object_get(root, "refresh_token")),
                        tok.refresh_token) == 0);
        json_decref(root);
    }
    else {
        static const mc_token_t zero;
        size_t i;
        FZ_CHECK(rv == APR_EGENERAL || rv == APR_ENOSPC);
        FZ_CHECK(memcmp(&tok, &zero, sizeof(tok)) == 0);
        FZ_CHECK(why != NULL && why != (const char *)1 && *why != '\0');
        FZ_CHECK(strlen(why) < 100);
        for (i = 0; why[i]; i++) {
            char c = why[i];
            FZ_CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                     || c == '_' || c == ' ' || c == '-');
        }
    }

    apr_pool_destroy(p);
    return 0;
}
