/* mc_json: the few jansson operations the module needs, behind one small
 * API with APR pools.  Every JSON document the module reads from Monei or
 * from its own store goes through mc_json_parse, so size and shape limits
 * are enforced in one place.  No httpd headers. */
#ifndef MC_JSON_H
#define MC_JSON_H

#include <apr_pools.h>
#include <apr_errno.h>
#include <jansson.h>

/* Largest document we agree to parse: Monei's bodies are a few KiB. */
#define MC_JSON_MAX_LEN (1024 * 1024)

/* Parse len bytes of buf (need not be NUL-terminated) into a JSON object.
 * Duplicate keys are rejected (two "access_token" keys are an attack, not
 * data); NUL characters inside strings are rejected.
 * Returns APR_SUCCESS and *out (caller must json_decref), APR_EINVAL on
 * NULL arguments, APR_ENOSPC when len > MC_JSON_MAX_LEN, APR_EGENERAL when
 * the text is not JSON or its top level is not an object.  *out is NULL on
 * any error. */
apr_status_t mc_json_parse(const char *buf, apr_size_t len, json_t **out);

/* Pool copy of obj[key] when it is a JSON string; NULL otherwise (absent,
 * null, number, obj not an object...). */
const char *mc_json_str(apr_pool_t *p, json_t *obj, const char *key);

/* Scalar as text: a string verbatim; an integer in decimal; a real in the
 * shortest form that reads back to the same double (what JavaScript's
 * JSON.stringify prints, so "1805.5" stays "1805.5", not 17 digits).
 * NULL for null, booleans, objects, arrays and NULL. */
const char *mc_json_scalar_str(apr_pool_t *p, const json_t *j);

/* Compact serialization (no whitespace, keys in document order, UTF-8 kept
 * unescaped) of any JSON value, copied into p.  NULL on failure. */
char *mc_json_compact(apr_pool_t *p, const json_t *j);

#endif /* MC_JSON_H */
