/* fuzz_record: the stored-record path on arbitrary bytes.
 *
 *  1. mc_record_open with a fixed keyring (two public fuzz passphrases,
 *     the second one as an "old" rotation key) and the store key of a
 *     fixed session id as aad, on the raw input; a record that opens is
 *     decoded as a session and as a state record, as the module does.
 *     Random bytes never open; the sealed seeds in corpus/record do, so
 *     mutations of them exercise tag/nonce/key-id/version checks.
 *  2. mc_session_decode / mc_state_decode on the raw input (the
 *     plaintext seeds are well-formed records).
 *  3. Round trips: decode -> encode -> decode gives an equal record (ints,
 *     flags, strings, NULL vs ""), and encoding that again gives the same
 *     bytes; seal -> open gives the same bytes, and does not open under
 *     another aad.
 * Session and state formats never cross-decode (different format byte).
 */
#include "fuzz_common.h"
#include "mc_crypto.h"
#include "mc_record.h"

static mc_keyring_t *kr;
static const char *aad_s, *aad_t;

static int str_eq(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

static void session_eq(const mc_session_rec *a, const mc_session_rec *b)
{
    FZ_CHECK(a->created == b->created);
    FZ_CHECK(a->last_active == b->last_active);
    FZ_CHECK(a->expires_at == b->expires_at);
    FZ_CHECK(a->snapshot_at == b->snapshot_at);
    FZ_CHECK(a->refresh_after == b->refresh_after);
    FZ_CHECK(a->generation == b->generation);
    FZ_CHECK(a->snapshot_stale == b->snapshot_stale);
    FZ_CHECK(a->declined_at == b->declined_at);
    FZ_CHECK(str_eq(a->access_token, b->access_token));
    FZ_CHECK(str_eq(a->refresh_token, b->refresh_token));
    FZ_CHECK(str_eq(a->scopes, b->scopes));
    FZ_CHECK(str_eq(a->subject, b->subject));
    FZ_CHECK(str_eq(a->wallet_json, b->wallet_json));
    FZ_CHECK(str_eq(a->user_json, b->user_json));
    FZ_CHECK(str_eq(a->declined, b->declined));
}

static void state_eq(const mc_state_rec *a, const mc_state_rec *b)
{
    FZ_CHECK(a->created == b->created);
    FZ_CHECK(str_eq(a->binding, b->binding));
    FZ_CHECK(str_eq(a->return_to, b->return_to));
    FZ_CHECK(str_eq(a->verifier, b->verifier));
    FZ_CHECK(str_eq(a->scopes, b->scopes));
    FZ_CHECK(str_eq(a->base_session, b->base_session));
}

static void decode_all(apr_pool_t *p, const unsigned char *in, size_t len)
{
    mc_session_rec s, s2;
    mc_state_rec t, t2;
    static const mc_session_rec zs;
    static const mc_state_rec zt;
    unsigned char *enc, *enc2;
    apr_size_t elen, elen2;
    int s_ok, t_ok;

    s_ok = mc_session_decode(p, in, len, &s) == APR_SUCCESS;
    t_ok = mc_state_decode(p, in, len, &t) == APR_SUCCESS;
    FZ_CHECK(!(s_ok && t_ok));

    if (s_ok) {
        FZ_CHECK(len >= 4 && in[0] == MC_RECORD_FMT_SESSION);
        FZ_CHECK(mc_session_encode(p, &s, &enc, &elen) == APR_SUCCESS);
        FZ_CHECK(elen <= len);  /* unknown fields dropped, nothing added */
        FZ_CHECK(mc_session_decode(p, enc, elen, &s2) == APR_SUCCESS);
        session_eq(&s, &s2);
        FZ_CHECK(mc_session_encode(p, &s2, &enc2, &elen2) == APR_SUCCESS);
        FZ_CHECK(elen2 == elen && memcmp(enc, enc2, elen) == 0);
        FZ_CHECK(mc_state_decode(p, enc, elen, &t2) != APR_SUCCESS);
    }
    else {
        FZ_CHECK(memcmp(&s, &zs, sizeof(s)) == 0);
    }
    if (t_ok) {
        FZ_CHECK(len >= 4 && in[0] == MC_RECORD_FMT_STATE);
        FZ_CHECK(mc_state_encode(p, &t, &enc, &elen) == APR_SUCCESS);
        FZ_CHECK(elen <= len);
        FZ_CHECK(mc_state_decode(p, enc, elen, &t2) == APR_SUCCESS);
        state_eq(&t, &t2);
        FZ_CHECK(mc_state_encode(p, &t2, &enc2, &elen2) == APR_SUCCESS);
        FZ_CHECK(elen2 == elen && memcmp(enc, enc2, elen) == 0);
        FZ_CHECK(mc_session_decode(p, enc, elen, &s2) != APR_SUCCESS);
    }
    else {
        FZ_CHECK(memcmp(&t, &zt, sizeof(t)) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    unsigned char *plain = NULL, *sealed, *back;
    apr_size_t plen = 0, slen, blen;
    apr_status_t rv;

    if (!kr) {
        static const char *const pass[2] = {
            "fuzz passphrase, public, for the seed corpus only",
            "fuzz old passphrase, public, rotation key",
        };
        if (mc_keyring_create(fz_root, pass, 2, &kr) != APR_SUCCESS) abort();
        aad_s = mc_store_key(fz_root, 's', NULL, "fuzz-session-id");
        aad_t = mc_store_key(fz_root, 't', NULL, "fuzz-state-id");
        if (!aad_s || !aad_t) abort();
    }
    p = fz_pool();

    /* 1. open */
    rv = mc_record_open(p, kr, aad_s, strlen(aad_s), data, size, &plain, &plen);
    if (rv != APR_SUCCESS) {
        rv = mc_record_open(p, kr, aad_t, strlen(aad_t), data, size, &plain, &plen);
    }
    if (rv == APR_SUCCESS) {
        FZ_CHECK(size >= MC_RECORD_OVERHEAD && plen == size - MC_RECORD_OVERHEAD);
        FZ_CHECK(data[0] == MC_RECORD_VERSION);
        FZ_CHECK(plain != NULL && plain[plen] == '\0');
        decode_all(p, plain, plen);
    }
    else {
        FZ_CHECK(rv == APR_EGENERAL);
    }

    /* 2. + 3. decode the raw bytes */
    decode_all(p, data, size);

    /* seal / open round trip of the raw bytes (plaintext of any content) */
    if (size > 0 && size <= 4096) {
        FZ_CHECK(mc_record_seal(p, kr, aad_s, strlen(aad_s), data, size,
                                &sealed, &slen) == APR_SUCCESS);
        FZ_CHECK(slen == size + MC_RECORD_OVERHEAD);
        FZ_CHECK(mc_record_open(p, kr, aad_s, strlen(aad_s), sealed, slen,
                                &back, &blen) == APR_SUCCESS);
        FZ_CHECK(blen == size && memcmp(back, data, size) == 0);
        FZ_CHECK(mc_record_open(p, kr, aad_t, strlen(aad_t), sealed, slen,
                                &back, &blen) != APR_SUCCESS);
        /* one flipped bit anywhere is refused */
        sealed[data[0] % slen] ^= (unsigned char)(1u << (data[size - 1] & 7));
        FZ_CHECK(mc_record_open(p, kr, aad_s, strlen(aad_s), sealed, slen,
                                &back, &blen) != APR_SUCCESS);
    }

    apr_pool_destroy(p);
    return 0;
}
