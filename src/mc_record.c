/* mc_record.c - TLV codec of session and state records. See mc_record.h. */

#include <stddef.h>
#include <string.h>

#include "mc_crypto.h"
#include "mc_record.h"

typedef enum {
    MC_FT_INT64,    /* apr_int64_t, 8 bytes big endian */
    MC_FT_BOOL,     /* int, 1 byte 0/1 */
    MC_FT_STRING    /* const char *, NULL = absent */
} mc_field_type;

typedef struct {
    unsigned char tag;
    mc_field_type type;
    size_t offset;
} mc_field_desc;

/* Tags are part of the stored format: never renumber, only add. */
static const mc_field_desc mc_session_fields[] = {
    { 0x01, MC_FT_INT64,  offsetof(mc_session_rec, created) },
    { 0x02, MC_FT_INT64,  offsetof(mc_session_rec, last_active) },
    { 0x03, MC_FT_INT64,  offsetof(mc_session_rec, expires_at) },
    { 0x04, MC_FT_INT64,  offsetof(mc_session_rec, snapshot_at) },
    { 0x05, MC_FT_INT64,  offsetof(mc_session_rec, refresh_after) },
    { 0x06, MC_FT_INT64,  offsetof(mc_session_rec, generation) },
    { 0x07, MC_FT_BOOL,   offsetof(mc_session_rec, snapshot_stale) },
    { 0x08, MC_FT_INT64,  offsetof(mc_session_rec, declined_at) },
    { 0x10, MC_FT_STRING, offsetof(mc_session_rec, access_token) },
    { 0x11, MC_FT_STRING, offsetof(mc_session_rec, refresh_token) },
    { 0x12, MC_FT_STRING, offsetof(mc_session_rec, scopes) },
    { 0x13, MC_FT_STRING, offsetof(mc_session_rec, subject) },
    { 0x14, MC_FT_STRING, offsetof(mc_session_rec, wallet_json) },
    { 0x15, MC_FT_STRING, offsetof(mc_session_rec, user_json) },
    { 0x16, MC_FT_STRING, offsetof(mc_session_rec, declined) },
    { 0x17, MC_FT_STRING, offsetof(mc_session_rec, exports) },
};

static const mc_field_desc mc_state_fields[] = {
    { 0x01, MC_FT_INT64,  offsetof(mc_state_rec, created) },
    { 0x10, MC_FT_STRING, offsetof(mc_state_rec, binding) },
    { 0x11, MC_FT_STRING, offsetof(mc_state_rec, return_to) },
    { 0x12, MC_FT_STRING, offsetof(mc_state_rec, verifier) },
    { 0x13, MC_FT_STRING, offsetof(mc_state_rec, scopes) },
    { 0x14, MC_FT_STRING, offsetof(mc_state_rec, base_session) },
    { 0x02, MC_FT_BOOL,   offsetof(mc_state_rec, fresh_binding) },
    { 0x03, MC_FT_BOOL,   offsetof(mc_state_rec, retry) },
    { 0x15, MC_FT_STRING, offsetof(mc_state_rec, id) },
};

#define MC_NFIELDS(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define MC_TLV_HDR 3
#define MC_TAG_END 0x00

static apr_int64_t *mc_f_int64(void *rec, const mc_field_desc *f)
{
    return (apr_int64_t *)((char *)rec + f->offset);
}

static int *mc_f_bool(void *rec, const mc_field_desc *f)
{
    return (int *)((char *)rec + f->offset);
}

static const char **mc_f_string(void *rec, const mc_field_desc *f)
{
    return (const char **)((char *)rec + f->offset);
}

/* Read-only views for the encoder, which must not cast away const. */
static apr_int64_t mc_get_int64(const void *rec, const mc_field_desc *f)
{
    return *(const apr_int64_t *)((const char *)rec + f->offset);
}

static int mc_get_bool(const void *rec, const mc_field_desc *f)
{
    return *(const int *)((const char *)rec + f->offset);
}

static const char *mc_get_string(const void *rec, const mc_field_desc *f)
{
    return *(const char *const *)((const char *)rec + f->offset);
}

static unsigned char *mc_put_hdr(unsigned char *o, unsigned char tag, apr_size_t len)
{
    o[0] = tag;
    o[1] = (unsigned char)(len >> 8);
    o[2] = (unsigned char)(len & 0xff);
    return o + MC_TLV_HDR;
}

static apr_status_t mc_encode(apr_pool_t *p, unsigned char fmt,
                              const mc_field_desc *fields, int nfields, const void *rec,
                              unsigned char **out, apr_size_t *outlen)
{
    apr_size_t total = 1 + MC_TLV_HDR, i;   /* format byte + end field */
    unsigned char *buf, *o;
    int f;

    if (!p || !rec || !out || !outlen) {
        return APR_EINVAL;
    }
    /* First pass: validate and size, so the buffer is allocated once. */
    for (f = 0; f < nfields; f++) {
        const mc_field_desc *d = &fields[f];
        switch (d->type) {
        case MC_FT_INT64:
            if (mc_get_int64(rec, d) != 0) {
                total += MC_TLV_HDR + 8;
            }
            break;
        case MC_FT_BOOL:
            if (mc_get_bool(rec, d) != 0) {
                total += MC_TLV_HDR + 1;
            }
            break;
        case MC_FT_STRING: {
            const char *s = mc_get_string(rec, d);
            if (s) {
                apr_size_t sl = strlen(s);
                if (sl > MC_RECORD_MAX_STRING) {
                    return APR_ENOSPC;
                }
                total += MC_TLV_HDR + sl;
            }
            break;
        }
        }
    }

    buf = o = apr_palloc(p, total);
    /* The plaintext carries tokens until it is sealed. */
    mc_cleanse_on_cleanup(p, buf, total);
    *o++ = fmt;
    /* Zero integers and false flags are omitted: absent decodes as 0, and
     * records stay small. */
    for (f = 0; f < nfields; f++) {
        const mc_field_desc *d = &fields[f];
        switch (d->type) {
        case MC_FT_INT64: {
            apr_uint64_t v = (apr_uint64_t)mc_get_int64(rec, d);
            if (v != 0) {
                o = mc_put_hdr(o, d->tag, 8);
                for (i = 0; i < 8; i++) {
                    o[i] = (unsigned char)(v >> (56 - 8 * i));
                }
                o += 8;
            }
            break;
        }
        case MC_FT_BOOL:
            if (mc_get_bool(rec, d) != 0) {
                o = mc_put_hdr(o, d->tag, 1);
                *o++ = 1;
            }
            break;
        case MC_FT_STRING: {
            const char *s = mc_get_string(rec, d);
            if (s) {
                apr_size_t sl = strlen(s);
                o = mc_put_hdr(o, d->tag, sl);
                memcpy(o, s, sl);
                o += sl;
            }
            break;
        }
        }
    }
    o = mc_put_hdr(o, MC_TAG_END, 0);
    *out = buf;
    *outlen = total;
    return APR_SUCCESS;
}

static apr_status_t mc_decode(apr_pool_t *p, unsigned char fmt,
                              const mc_field_desc *fields, int nfields,
                              const unsigned char *in, apr_size_t len,
                              void *rec, size_t recsize)
{
    unsigned char seen[256];
    char *arena, *a;
    apr_size_t pos = 1;
    int f;

    if (!rec) {
        return APR_EINVAL;
    }
    memset(rec, 0, recsize);
    if (!p || !in || len < 1 || in[0] != fmt) {
        return APR_EGENERAL;
    }
    memset(seen, 0, sizeof(seen));
    /* Every string field costs 3 header bytes in the input and needs only
     * one extra byte (its NUL) in the copy, so len bytes always suffice for
     * all copies: one allocation, one wipe registration. */
    arena = a = apr_palloc(p, len);
    mc_cleanse_on_cleanup(p, arena, len);

    for (;;) {
        const mc_field_desc *d = NULL;
        const unsigned char *v;
        apr_size_t vlen;
        unsigned char tag;

        if (len - pos < MC_TLV_HDR) {
            goto bad;
        }
        tag = in[pos];
        vlen = ((apr_size_t)in[pos + 1] << 8) | in[pos + 2];
        pos += MC_TLV_HDR;
        if (vlen > len - pos) {
            goto bad;
        }
        v = in + pos;
        pos += vlen;

        if (tag == MC_TAG_END) {
            /* Must be empty and last: anything else means the record was
             * built by something that does not speak this format. */
            if (vlen != 0 || pos != len) {
                goto bad;
            }
            return APR_SUCCESS;
        }

        for (f = 0; f < nfields; f++) {
            if (fields[f].tag == tag) {
                d = &fields[f];
                break;
            }
        }
        if (!d) {
            continue;   /* a field from a newer format: skip it */
        }
        if (seen[tag]) {
            goto bad;
        }
        seen[tag] = 1;

        switch (d->type) {
        case MC_FT_INT64: {
            apr_uint64_t u = 0;
            apr_size_t i;
            if (vlen != 8) {
                goto bad;
            }
            for (i = 0; i < 8; i++) {
                u = (u << 8) | v[i];
            }
            /* Two's complement back to signed without relying on the
             * implementation-defined unsigned->signed conversion. */
            *mc_f_int64(rec, d) = (u <= (apr_uint64_t)APR_INT64_MAX)
                ? (apr_int64_t)u
                : -(apr_int64_t)(~u) - 1;
            break;
        }
        case MC_FT_BOOL:
            if (vlen != 1 || v[0] > 1) {
                goto bad;
            }
            *mc_f_bool(rec, d) = v[0];
            break;
        case MC_FT_STRING:
            if (vlen && memchr(v, '\0', vlen)) {
                goto bad;
            }
            memcpy(a, v, vlen);
            a[vlen] = '\0';
            *mc_f_string(rec, d) = a;
            a += vlen + 1;
            break;
        }
    }

bad:
    mc_cleanse(arena, len);
    memset(rec, 0, recsize);
    return APR_EGENERAL;
}

apr_status_t mc_session_encode(apr_pool_t *p, const mc_session_rec *s,
                               unsigned char **out, apr_size_t *len)
{
    return mc_encode(p, MC_RECORD_FMT_SESSION, mc_session_fields,
                     MC_NFIELDS(mc_session_fields), s, out, len);
}

apr_status_t mc_session_decode(apr_pool_t *p, const unsigned char *in, apr_size_t len,
                               mc_session_rec *s)
{
    return mc_decode(p, MC_RECORD_FMT_SESSION, mc_session_fields,
                     MC_NFIELDS(mc_session_fields), in, len, s, sizeof(*s));
}

apr_status_t mc_state_encode(apr_pool_t *p, const mc_state_rec *s,
                             unsigned char **out, apr_size_t *len)
{
    return mc_encode(p, MC_RECORD_FMT_STATE, mc_state_fields,
                     MC_NFIELDS(mc_state_fields), s, out, len);
}

apr_status_t mc_state_decode(apr_pool_t *p, const unsigned char *in, apr_size_t len,
                             mc_state_rec *s)
{
    return mc_decode(p, MC_RECORD_FMT_STATE, mc_state_fields,
                     MC_NFIELDS(mc_state_fields), in, len, s, sizeof(*s));
}
