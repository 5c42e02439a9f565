/* mc_json: jansson behind APR pools. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>

#include "mc_json.h"

apr_status_t mc_json_parse(const char *buf, apr_size_t len, json_t **out)
{
    json_t *j;
    json_error_t err;

    if (!out) return APR_EINVAL;
    *out = NULL;
    if (!buf) return APR_EINVAL;
    if (len > MC_JSON_MAX_LEN) return APR_ENOSPC;

    /* json_loadb takes a length, so bodies with embedded NULs or without a
     * terminator are handled; jansson itself caps nesting depth (2048). */
    j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
    if (!j) return APR_EGENERAL;
    if (!json_is_object(j)) {
        json_decref(j);
        return APR_EGENERAL;
    }
    *out = j;
    return APR_SUCCESS;
}

const char *mc_json_str(apr_pool_t *p, json_t *obj, const char *key)
{
    json_t *v;

    if (!obj || !key || !json_is_object(obj)) return NULL;
    v = json_object_get(obj, key);
    if (!json_is_string(v)) return NULL;
    return apr_pstrmemdup(p, json_string_value(v), json_string_length(v));
}

/* Shortest %.*g form of d that parses back to exactly d. */
static const char *real_str(apr_pool_t *p, double d)
{
    char buf[64];
    int prec;

    for (prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, d);
        if (strtod(buf, NULL) == d) break;
    }
    return apr_pstrdup(p, buf);
}

const char *mc_json_scalar_str(apr_pool_t *p, const json_t *j)
{
    if (!j) return NULL;
    if (json_is_string(j)) {
        return apr_pstrmemdup(p, json_string_value(j), json_string_length(j));
    }
    if (json_is_integer(j)) {
        /* APR_INT64_T_FMT: apr_psprintf does not know JSON_INTEGER_FORMAT. */
        return apr_psprintf(p, "%" APR_INT64_T_FMT,
                            (apr_int64_t)json_integer_value(j));
    }
    if (json_is_real(j)) {
        return real_str(p, json_real_value(j));
    }
    return NULL;
}

char *mc_json_compact(apr_pool_t *p, const json_t *j)
{
    /* JSON_ENCODE_ANY so a bare value works too; no JSON_ENSURE_ASCII so
     * names like "Adébáyọ̀" stay byte-exact; no JSON_SORT_KEYS so the order
     * is Monei's (jansson preserves insertion order). */
    const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
    size_t need, got;
    char *buf;

    if (!j) return NULL;
    /* json_dumpb into pool memory, sized by a first pass, rather than
     * json_dumps + free(): we never depend on which allocator jansson was
     * given by some other module in the same process. */
    need = json_dumpb(j, NULL, 0, flags);
    if (need == 0) return NULL;
    buf = apr_palloc(p, need + 1);
    got = json_dumpb(j, buf, need, flags);
    if (got != need) return NULL;
    buf[need] = '\0';
    return buf;
}
