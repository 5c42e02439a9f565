/* fuzz_snapshot: GET /wallet/me and GET /user/me bodies through
 * mc_monei_wallet_snapshot / mc_monei_user_snapshot, then the stored
 * snapshot through mc_export_wallet / mc_export_user / mc_monei_fiat_id /
 * mc_monei_user_id (also with the raw input as a "stored" snapshot), and
 * mc_sanitize_value on the raw input.
 *
 * Invariants:
 *  - a snapshot is compact JSON of an object and parses back as one, and
 *    compacting is stable (snapshot of {"data":<snapshot>} is identical);
 *  - every exported variable is one of the documented names and its value
 *    contains no byte < 0x20 and no 0x7F, and is valid UTF-8;
 *  - mc_sanitize_value keeps the length, leaves no control byte, yields
 *    valid UTF-8, keeps valid UTF-8 input without controls byte-exact,
 *    and is idempotent. */
#include <jansson.h>
#include "fuzz_common.h"
#include "mc_monei.h"
#include "mc_text.h"

static const char *const known[] = {
    "MONEI_WALLET_JSON", "MONEI_WALLET_NAIRA_BALANCE",
    "MONEI_WALLET_VIRTUAL_ACCOUNT_NUMBER", "MONEI_WALLET_VIRTUAL_ACCOUNT_BANK",
    "MONEI_WALLET_EVM_ADDRESS", "MONEI_WALLET_SOLANA_ADDRESS",
    "MONEI_USER_ID", "MONEI_USER_EMAIL", "MONEI_USER_FIRST_NAME",
    "MONEI_USER_LAST_NAME", "MONEI_USER_JSON", NULL
};

static void check_value(const char *v)
{
    FZ_CHECK(v != NULL);
    FZ_CHECK(fz_no_controls(v));
    FZ_CHECK(fz_utf8_valid((const unsigned char *)v, strlen(v)));
}

static void check_vars(apr_table_t *vars)
{
    const apr_array_header_t *a = apr_table_elts(vars);
    const apr_table_entry_t *e = (const apr_table_entry_t *)a->elts;
    int i, k, found;

    for (i = 0; i < a->nelts; i++) {
        found = 0;
        for (k = 0; known[k]; k++) {
            if (!strcmp(e[i].key, known[k])) found = 1;
        }
        FZ_CHECK(found);
        check_value(e[i].val);
    }
}

static void export_all(apr_pool_t *p, const char *data_json)
{
    apr_table_t *vars = apr_table_make(p, 12);
    const char *id;

    mc_export_wallet(p, data_json, vars);
    mc_export_user(p, data_json, vars);
    check_vars(vars);
    if ((id = mc_monei_fiat_id(p, data_json))) {
        FZ_CHECK(*id);
        check_value(id);
    }
    if ((id = mc_monei_user_id(p, data_json))) {
        FZ_CHECK(*id);
        check_value(id);
    }
}

static void check_snapshot(apr_pool_t *p, apr_status_t rv, const char *snap)
{
    json_t *j;
    json_error_t err;
    const char *again = NULL, *wrapped;

    if (rv != APR_SUCCESS) {
        FZ_CHECK(snap == NULL);
        return;
    }
    FZ_CHECK(snap != NULL && snap[0] == '{');
    j = json_loads(snap, JSON_REJECT_DUPLICATES, &err);
    FZ_CHECK(j != NULL && json_is_object(j));
    json_decref(j);
    /* stable: wrapping the stored snapshot again gives the same bytes */
    wrapped = apr_pstrcat(p, "{\"data\":", snap, "}", NULL);
    FZ_CHECK(mc_monei_wallet_snapshot(p, wrapped, strlen(wrapped), &again)
             == APR_SUCCESS);
    FZ_CHECK(strcmp(again, snap) == 0);
    export_all(p, snap);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_pool();
    char *body = fz_cstr(p, data, size);
    const char *snap = (const char *)1, *s1, *s2;
    apr_status_t rv;
    size_t blen = strlen(body);

    rv = mc_monei_wallet_snapshot(p, body, size, &snap);
    check_snapshot(p, rv, snap);
    snap = (const char *)1;
    rv = mc_monei_user_snapshot(p, body, size, &snap);
    check_snapshot(p, rv, snap);

    /* A damaged or hand-made stored snapshot. */
    export_all(p, body);

    /* mc_sanitize_value on its own */
    s1 = mc_sanitize_value(p, body);
    FZ_CHECK(s1 && strlen(s1) == blen);
    check_value(s1);
    s2 = mc_sanitize_value(p, s1);
    FZ_CHECK(strcmp(s1, s2) == 0);
    if (fz_utf8_valid((const unsigned char *)body, blen) && fz_no_controls(body)) {
        FZ_CHECK(strcmp(s1, body) == 0);
    }

    apr_pool_destroy(p);
    return 0;
}
