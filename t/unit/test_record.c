/* test_record.c - unit tests of src/mc_record.c (and its use with sealing). */

#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "mc_crypto.h"
#include "mc_record.h"
#include "mc_test.h"

static apr_pool_t *pool;

static int str_eq(const char *a, const char *b)
{
    if (!a || !b) {
        return a == b;
    }
    return strcmp(a, b) == 0;
}

static int session_eq(const mc_session_rec *a, const mc_session_rec *b)
{
    return a->created == b->created && a->last_active == b->last_active
        && a->expires_at == b->expires_at && a->snapshot_at == b->snapshot_at
        && a->refresh_after == b->refresh_after && a->generation == b->generation
        && a->snapshot_stale == b->snapshot_stale
        && str_eq(a->access_token, b->access_token) && str_eq(a->refresh_token, b->refresh_token)
        && str_eq(a->scopes, b->scopes) && str_eq(a->subject, b->subject)
        && str_eq(a->wallet_json, b->wallet_json) && str_eq(a->user_json, b->user_json);
}

static int state_eq(const mc_state_rec *a, const mc_state_rec *b)
{
    return a->created == b->created && str_eq(a->binding, b->binding)
        && str_eq(a->return_to, b->return_to) && str_eq(a->verifier, b->verifier)
        && str_eq(a->scopes, b->scopes) && str_eq(a->base_session, b->base_session);
}

static int is_zero(const void *p, apr_size_t n)
{
    const unsigned char *c = p;
    apr_size_t i;
    for (i = 0; i < n; i++) {
        if (c[i]) {
            return 0;
        }
    }
    return 1;
}

/* Decode from a heap copy of exactly n bytes so ASan sees any over-read. */
static apr_status_t session_decode_exact(const unsigned char *in, apr_size_t n, mc_session_rec *s)
{
    unsigned char *t = malloc(n ? n : 1);
    apr_status_t rv;
    if (n) {
        memcpy(t, in, n);
    }
    rv = mc_session_decode(pool, t, n, s);
    free(t);
    return rv;
}

static apr_status_t state_decode_exact(const unsigned char *in, apr_size_t n, mc_state_rec *s)
{
    unsigned char *t = malloc(n ? n : 1);
    apr_status_t rv;
    if (n) {
        memcpy(t, in, n);
    }
    rv = mc_state_decode(pool, t, n, s);
    free(t);
    return rv;
}

static const char wallet_json[] =
    "{\"nairaBalance\":\"125430.50\",\"subwallets\":[{\"id\":\"sw_fiat_7c1e9a52b3d04f6e\","
    "\"type\":\"FIAT\",\"currency\":\"NGN\",\"balance\":\"125430.50\",\"virtualAccount\":"
    "{\"accountNumber\":\"9012345678\",\"bankName\":\"Wema Bank\",\"accountName\":"
    "\"MONEI/ADAEZE OKONKWO\"}},{\"id\":\"sw_evm_1f2e3d4c5b6a7980\",\"type\":\"CRYPTO\","
    "\"chain\":\"EVM\",\"publicAddress\":\"0x7a3b9c1d2e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b\","
    "\"balances\":[{\"symbol\":\"USDT\",\"balance\":\"42.000000\"}]},"
    "{\"id\":\"sw_sol_0a9b8c7d6e5f4a3b\",\"type\":\"CRYPTO\","
    "\"chain\":\"SOLANA\",\"publicAddress\":\"7Xq2mR9vK3pL8nB4cT6yW1zH5jF0dG2sA9eU3iO7kMqP\","
    "\"balances\":[{\"symbol\":\"SOL\",\"balance\":\"0.250000000\"}]}]}";

static const char user_json[] =
    "{\"id\":\"usr_5f8a2c9e1b7d4036a8e2\",\"email\":\"adaeze.okonkwo@example.com\","
    "\"firstName\":\"Adaeze\",\"lastName\":\"Okonkwo\",\"phone\":\"+2348012345678\","
    "\"verified\":true,\"kycLevel\":2,\"country\":\"NG\",\"createdAt\":"
    "\"2024-03-14T08:22:10.000Z\",\"deviceToken\":null}";

static mc_session_rec full_session(void)
{
    mc_session_rec s;
    memset(&s, 0, sizeof(s));
    s.created = 1732700000;
    s.last_active = 1732701234;
    s.expires_at = 1732703600;
    s.snapshot_at = 1732701200;
    s.refresh_after = -1;                 /* negative values must survive too */
    s.generation = APR_INT64_MAX;
    s.access_token = "mat_3Jk9Qw2Lx7Vb5Np1Rt8Yz4Hc6Md0Fg2Sa9Ue3Io7Kq5";   /* 47 chars */
    s.refresh_token = "mrt_8Hn2Bv6Cx1Zl5Kj9Gf3Ds7Ap0Qw4Er8Ty2Ui6Op1Lk3";  /* 47 chars */
    s.scopes = "wallet:read profile:read";
    s.subject = "usr_5f8a2c9e1b7d4036a8e2";
    s.wallet_json = wallet_json;
    s.user_json = user_json;
    s.snapshot_stale = 1;
    return s;
}

static void test_session_roundtrip(void)
{
    mc_session_rec s = full_session(), d, e;
    unsigned char *enc;
    apr_size_t len;

    if (!CHECK(mc_session_encode(pool, &s, &enc, &len) == APR_SUCCESS,
               "session: encode all fields")) {
        return;
    }
    CHECK(enc[0] == MC_RECORD_FMT_SESSION, "session: leading format byte");
    CHECK(mc_session_decode(pool, enc, len, &d) == APR_SUCCESS && session_eq(&s, &d),
          "session: round trip with all fields");
    CHECK(d.access_token != s.access_token && d.wallet_json != s.wallet_json,
          "session: decoded strings are copies");

    s.created = APR_INT64_MIN;
    s.last_active = -1732700000;
    s.snapshot_stale = 0;
    CHECK(mc_session_encode(pool, &s, &enc, &len) == APR_SUCCESS
          && mc_session_decode(pool, enc, len, &d) == APR_SUCCESS && session_eq(&s, &d),
          "session: INT64_MIN, negative values and stale=0 round trip");

    memset(&e, 0, sizeof(e));
    CHECK(mc_session_encode(pool, &e, &enc, &len) == APR_SUCCESS && len == 4,
          "session: empty record is format byte + end field");
    d = full_session();
    CHECK(mc_session_decode(pool, enc, len, &d) == APR_SUCCESS && is_zero(&d, sizeof(d)),
          "session: empty record decodes to all zero / NULL");

    e.created = 5;
    e.access_token = "";
    e.subject = "\xc3\x89milie \xe6\x9d\x8e \xf0\x9f\x92\xb0";   /* UTF-8: É, 李, 💰 */
    CHECK(mc_session_encode(pool, &e, &enc, &len) == APR_SUCCESS
          && mc_session_decode(pool, enc, len, &d) == APR_SUCCESS && session_eq(&e, &d)
          && d.access_token && d.access_token[0] == '\0' && d.refresh_token == NULL,
          "session: \"\" stays \"\", NULL stays NULL, UTF-8 bytes preserved");
}

static void test_state_roundtrip(void)
{
    mc_state_rec s, d;
    unsigned char *enc;
    apr_size_t len;
    mc_session_rec sess;

    memset(&s, 0, sizeof(s));
    s.created = 1732700000;
    s.binding = "Kp3m9Qx2Lw7Vb5Np1Rt8Yz4Hc6Md0Fg2Sa9Ue3Io7K";
    s.return_to = "/account/wallet?tab=crypto&lang=fr-FR&q=%C3%A9t%C3%A9";
    s.verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    s.scopes = "wallet:read wallet:send";
    s.base_session = "s:6mSk0xJje5cWm9vWGK7g3zXGs1Nytu2t";

    if (!CHECK(mc_state_encode(pool, &s, &enc, &len) == APR_SUCCESS
               && enc[0] == MC_RECORD_FMT_STATE, "state: encode all fields")) {
        return;
    }
    CHECK(mc_state_decode(pool, enc, len, &d) == APR_SUCCESS && state_eq(&s, &d),
          "state: round trip with all fields");
    CHECK(mc_session_decode(pool, enc, len, &sess) == APR_EGENERAL && is_zero(&sess, sizeof(sess)),
          "state record is not accepted as a session record");
    NOTE("typical state record: %lu bytes encoded, %lu sealed",
         (unsigned long)len, (unsigned long)(len + MC_RECORD_OVERHEAD));

    s.verifier = NULL;
    s.base_session = NULL;
    CHECK(mc_state_encode(pool, &s, &enc, &len) == APR_SUCCESS
          && mc_state_decode(pool, enc, len, &d) == APR_SUCCESS && state_eq(&s, &d)
          && d.verifier == NULL && d.base_session == NULL,
          "state: NULL verifier/base_session round trip");

    {
        mc_session_rec full = full_session();
        CHECK(mc_session_encode(pool, &full, &enc, &len) == APR_SUCCESS
              && mc_state_decode(pool, enc, len, &d) == APR_EGENERAL,
              "session record is not accepted as a state record");
    }
}

static void test_forward_compat_and_limits(void)
{
    mc_session_rec s = full_session(), d;
    unsigned char *enc, *ext;
    apr_size_t len, elen;
    char *big;

    if (!CHECK(mc_session_encode(pool, &s, &enc, &len) == APR_SUCCESS, "limits: base record")) {
        return;
    }

    /* Insert unknown fields (tags 0x7f, 0xee empty) right after the format
     * byte, and one just before the end field. */
    elen = len + 6 + 3 + 4;
    ext = apr_palloc(pool, elen);
    ext[0] = enc[0];
    memcpy(ext + 1, "\x7f\x00\x03" "abc", 6);
    memcpy(ext + 7, "\xee\x00\x00", 3);
    memcpy(ext + 10, enc + 1, len - 4);
    memcpy(ext + 10 + len - 4, "\x30\x00\x01" "z", 4);
    memcpy(ext + elen - 3, "\x00\x00\x00", 3);
    CHECK(mc_session_decode(pool, ext, elen, &d) == APR_SUCCESS && session_eq(&s, &d),
          "forward compat: unknown tags are skipped");

    {
        /* created (tag 1) twice */
        static const unsigned char dup[] = "\x53"
            "\x01\x00\x08\x00\x00\x00\x00\x00\x00\x00\x01"
            "\x01\x00\x08\x00\x00\x00\x00\x00\x00\x00\x02" "\x00\x00\x00";
        static const unsigned char unk_dup[] = "\x53"
            "\x7f\x00\x01" "a" "\x7f\x00\x01" "b" "\x00\x00\x00";
        static const unsigned char nul[] = "\x53" "\x10\x00\x03" "a\0b" "\x00\x00\x00";
        static const unsigned char overflow[] = "\x53" "\x10\xff\xff" "abc" "\x00\x00\x00";
        static const unsigned char short_int[] = "\x53"
            "\x01\x00\x07\x00\x00\x00\x00\x00\x00\x01" "\x00\x00\x00";
        static const unsigned char long_int[] = "\x53"
            "\x01\x00\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01" "\x00\x00\x00";
        static const unsigned char bad_bool[] = "\x53" "\x07\x00\x01\x02" "\x00\x00\x00";
        static const unsigned char no_end[] = "\x53" "\x13\x00\x01" "u";
        static const unsigned char after_end[] = "\x53" "\x00\x00\x00" "\x13\x00\x01" "u";
        static const unsigned char end_len[] = "\x53" "\x00\x00\x01" "x";
        static const unsigned char bad_fmt[] = "\x52" "\x00\x00\x00";

        CHECK(session_decode_exact(dup, sizeof(dup) - 1, &d) == APR_EGENERAL,
              "malformed: duplicate known tag rejected");
        CHECK(session_decode_exact(unk_dup, sizeof(unk_dup) - 1, &d) == APR_SUCCESS,
              "forward compat: repeated unknown tag is skipped");
        CHECK(session_decode_exact(nul, sizeof(nul) - 1, &d) == APR_EGENERAL && is_zero(&d, sizeof(d)),
              "malformed: NUL inside a string rejected, record zeroed");
        CHECK(session_decode_exact(overflow, sizeof(overflow) - 1, &d) == APR_EGENERAL,
              "malformed: length beyond the input rejected");
        CHECK(session_decode_exact(short_int, sizeof(short_int) - 1, &d) == APR_EGENERAL,
              "malformed: 7-byte integer rejected");
        CHECK(session_decode_exact(long_int, sizeof(long_int) - 1, &d) == APR_EGENERAL,
              "malformed: 9-byte integer rejected");
        CHECK(session_decode_exact(bad_bool, sizeof(bad_bool) - 1, &d) == APR_EGENERAL,
              "malformed: flag value 2 rejected");
        CHECK(session_decode_exact(no_end, sizeof(no_end) - 1, &d) == APR_EGENERAL,
              "malformed: missing end field rejected");
        CHECK(session_decode_exact(after_end, sizeof(after_end) - 1, &d) == APR_EGENERAL,
              "malformed: bytes after the end field rejected");
        CHECK(session_decode_exact(end_len, sizeof(end_len) - 1, &d) == APR_EGENERAL,
              "malformed: end field with a value rejected");
        CHECK(session_decode_exact(bad_fmt, sizeof(bad_fmt) - 1, &d) == APR_EGENERAL,
              "malformed: unknown format byte rejected");
        CHECK(session_decode_exact(NULL, 0, &d) == APR_EGENERAL
              && mc_session_decode(pool, NULL, 5, &d) == APR_EGENERAL,
              "malformed: empty and NULL input rejected");
    }

    {
        apr_size_t i;
        int all_s = 1, all_t = 1;
        mc_state_rec st, dt;
        unsigned char *senc;
        apr_size_t slen;

        for (i = 0; i < len; i++) {
            all_s &= session_decode_exact(enc, i, &d) == APR_EGENERAL;
        }
        CHECK(all_s, "malformed: session truncated at every length rejected");

        memset(&st, 0, sizeof(st));
        st.created = 7;
        st.binding = "b";
        st.return_to = "/";
        st.scopes = "";
        if (!CHECK(mc_state_encode(pool, &st, &senc, &slen) == APR_SUCCESS,
                   "state: small record")) {
            return;
        }
        for (i = 0; i < slen; i++) {
            all_t &= state_decode_exact(senc, i, &dt) == APR_EGENERAL;
        }
        CHECK(all_t, "malformed: state truncated at every length rejected");
    }

    big = apr_palloc(pool, 65537);
    memset(big, 'j', 65536);
    big[65535] = '\0';
    s.wallet_json = big;
    CHECK(mc_session_encode(pool, &s, &enc, &len) == APR_SUCCESS
          && mc_session_decode(pool, enc, len, &d) == APR_SUCCESS && strlen(d.wallet_json) == 65535,
          "limits: a 65535-byte string fits");
    big[65535] = 'j';
    big[65536] = '\0';
    CHECK(mc_session_encode(pool, &s, &enc, &len) == APR_ENOSPC,
          "limits: a 65536-byte string is APR_ENOSPC");
    CHECK(mc_session_encode(pool, NULL, &enc, &len) == APR_EINVAL,
          "limits: NULL record is APR_EINVAL");
}

static void test_fuzz(void)
{
    mc_session_rec s = full_session(), d;
    mc_state_rec t;
    unsigned char *enc, *m;
    apr_size_t len, i, k;
    int ok_count = 0;

    apr_pool_t *main_pool = pool, *scratch;

    if (!CHECK(mc_session_encode(pool, &s, &enc, &len) == APR_SUCCESS, "fuzz: base record")) {
        return;
    }
    /* Decode into a scratch pool cleared each round, which also runs the
     * wipe-on-cleanup registrations the decoder makes. */
    apr_pool_create(&scratch, main_pool);
    pool = scratch;
    srand(4242);
    /* Mutations of a valid record: decoding may succeed or fail, but must
     * never crash or read outside the buffer (ASan/valgrind). */
    m = malloc(len);
    for (i = 0; i < 20000; i++) {
        int nmut = 1 + rand() % 4, j;
        memcpy(m, enc, len);
        for (j = 0; j < nmut; j++) {
            m[(apr_size_t)rand() % len] = (unsigned char)rand();
        }
        if (session_decode_exact(m, (apr_size_t)rand() % (len + 1), &d) == APR_SUCCESS) {
            ok_count++;
        }
        apr_pool_clear(scratch);
    }
    free(m);
    CHECK(1, "fuzz: 20000 mutated session records decoded without crash");
    NOTE("fuzz: %d of 20000 mutations still decoded", ok_count);

    for (i = 0; i < 20000; i++) {
        apr_size_t n = (apr_size_t)(rand() % 64);
        unsigned char buf[64];
        for (k = 0; k < n; k++) {
            buf[k] = (unsigned char)(rand() % 8 == 0 ? 0 : rand());
        }
        if (n) {
            buf[0] = (i & 1) ? MC_RECORD_FMT_SESSION : MC_RECORD_FMT_STATE;
        }
        session_decode_exact(buf, n, &d);
        state_decode_exact(buf, n, &t);
        apr_pool_clear(scratch);
    }
    pool = main_pool;
    apr_pool_destroy(scratch);
    CHECK(1, "fuzz: 20000 random byte strings decoded without crash");
}

static void test_sealed_size(void)
{
    const char *pp[2] = { "a long and random session passphrase", "the previous one" };
    mc_keyring_t *kr;
    mc_session_rec s = full_session(), d;
    unsigned char *enc = NULL, *sealed = NULL, *plain = NULL;
    apr_size_t len = 0, slen = 0, plen = 0;
    char *skey = mc_store_key(pool, 's', NULL, mc_crypto_random_token(pool, 32));

    CHECK(strlen(s.access_token) == 47 && strlen(s.refresh_token) == 47, "size: tokens are 47 chars");
    CHECK(sizeof(wallet_json) - 1 >= 550 && sizeof(wallet_json) - 1 <= 650
          && sizeof(user_json) - 1 >= 200 && sizeof(user_json) - 1 <= 300,
          "size: realistic wallet (~600) and user (~250) JSON");
    CHECK(mc_keyring_create(pool, pp, 2, &kr) == APR_SUCCESS, "size: keyring");
    if (!CHECK(mc_session_encode(pool, &s, &enc, &len) == APR_SUCCESS
               && mc_record_seal(pool, kr, skey, strlen(skey), enc, len,
                                 &sealed, &slen) == APR_SUCCESS,
               "size: encode + seal")) {
        return;
    }
    CHECK(mc_record_open(pool, kr, skey, strlen(skey), sealed, slen, &plain, &plen) == APR_SUCCESS
          && mc_session_decode(pool, plain, plen, &d) == APR_SUCCESS && session_eq(&s, &d),
          "size: open + decode gives the record back");
    NOTE("typical session record: wallet_json %lu B, user_json %lu B, 2 tokens of 47 chars",
         (unsigned long)(sizeof(wallet_json) - 1), (unsigned long)(sizeof(user_json) - 1));
    NOTE("typical session record: %lu bytes encoded, %lu bytes sealed (store key %lu bytes)",
         (unsigned long)len, (unsigned long)slen, (unsigned long)strlen(skey));
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);

    test_session_roundtrip();
    test_state_roundtrip();
    test_forward_compat_and_limits();
    test_fuzz();
    test_sealed_size();

    apr_pool_destroy(pool);
    apr_terminate();
    return MC_TEST_DONE();
}
