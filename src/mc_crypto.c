/* mc_crypto.c - the project's only OpenSSL user. See mc_crypto.h. */

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include <apr_strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "mc_crypto.h"

#define MC_AES_KEY_LEN 32

/* Fixed HKDF parameters: changing any of them changes every derived key and
 * makes every stored record unreadable, hence the version suffix. */
static const char mc_hkdf_salt[] = "mod_monei_connect record v1";
static const char mc_hkdf_info[] = "aes-256-gcm";
/* Key ids are a hash of the derived key under its own label, so a key id in
 * a stored record tells an attacker nothing about the key itself. */
static const char mc_keyid_label[] = "mod_monei_connect key id v1";
static const char mc_store_label[] = "mod_monei_connect store v1";

#define MC_STORE_HASH_BYTES 24
/* "<32 base64url characters of the hash>:<kind>" */
#define MC_STORE_KEY_LEN (MC_STORE_HASH_BYTES / 3 * 4 + 2)

typedef struct {
    unsigned char key[MC_AES_KEY_LEN];
    unsigned char id[MC_KEY_ID_LEN];
} mc_key_t;

struct mc_keyring_t {
    int n;
    mc_key_t *keys;
};

/* ------------------------------------------------------------------ */
/* wiping                                                              */

typedef struct {
    void *buf;
    apr_size_t len;
} mc_wipe_t;

/* explicit_bzero: a memset the compiler may not drop, at memset's speed (OPENSSL_cleanse
 * wipes a byte at a time, and every request wipes a decrypted record). */
void mc_cleanse(void *buf, apr_size_t len)
{
    if (buf && len) {
        explicit_bzero(buf, len);
    }
}

static apr_status_t mc_wipe_cleanup(void *data)
{
    mc_wipe_t *w = data;
    mc_cleanse(w->buf, w->len);
    return APR_SUCCESS;
}

void mc_cleanse_on_cleanup(apr_pool_t *p, void *buf, apr_size_t len)
{
    mc_wipe_t *w;

    if (!p || !buf || !len) {
        return;
    }
    w = apr_palloc(p, sizeof(*w));
    w->buf = buf;
    w->len = len;
    /* Registered on the pool that owns buf: cleanups run before the pool's
     * memory is released or reused, so the wipe always hits live memory. */
    apr_pool_cleanup_register(p, w, mc_wipe_cleanup, apr_pool_cleanup_null);
}

/* ------------------------------------------------------------------ */
/* per-thread OpenSSL state                                            */

/* Every request hashes a cookie into a store key and opens a record. OpenSSL 3 looks an
 * algorithm up (locks, property query) whenever it is named by EVP_sha256() or
 * EVP_aes_256_gcm(), and keying AES-GCM computes its tables: so the algorithms are fetched
 * once per process, and each thread keeps its contexts, the decryption one keyed with the
 * last key it used. Freed when the thread ends. */
static EVP_MD *mc_md_sha256;
static EVP_CIPHER *mc_cipher_gcm;
static pthread_key_t mc_thread_key;
static pthread_once_t mc_thread_once = PTHREAD_ONCE_INIT;

typedef struct {
    EVP_MD_CTX *md;
    EVP_CIPHER_CTX *dec;
    int dec_keyed;
    unsigned char dec_key[MC_AES_KEY_LEN];
} mc_thread_state;

static void mc_thread_state_free(void *data)
{
    mc_thread_state *ts = data;
    EVP_MD_CTX_free(ts->md);
    EVP_CIPHER_CTX_free(ts->dec);
    mc_cleanse(ts, sizeof(*ts));
    free(ts);
}

static void mc_thread_once_init(void)
{
    mc_md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    mc_cipher_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    pthread_key_create(&mc_thread_key, mc_thread_state_free);
}

/* NULL only when OpenSSL cannot give us the algorithms or memory. */
static mc_thread_state *mc_thread(void)
{
    mc_thread_state *ts;
    pthread_once(&mc_thread_once, mc_thread_once_init);
    if (!mc_md_sha256 || !mc_cipher_gcm) {
        return NULL;
    }
    ts = pthread_getspecific(mc_thread_key);
    if (ts) {
        return ts;
    }
    if (!(ts = calloc(1, sizeof(*ts)))) {
        return NULL;
    }
    ts->md = EVP_MD_CTX_new();
    ts->dec = EVP_CIPHER_CTX_new();
    if (!ts->md || !ts->dec
        || EVP_DecryptInit_ex(ts->dec, mc_cipher_gcm, NULL, NULL, NULL) != 1
        || EVP_CIPHER_CTX_ctrl(ts->dec, EVP_CTRL_GCM_SET_IVLEN, MC_GCM_NONCE_LEN, NULL) != 1
        || pthread_setspecific(mc_thread_key, ts) != 0) {
        mc_thread_state_free(ts);
        return NULL;
    }
    return ts;
}

/* ------------------------------------------------------------------ */
/* random, hashes, comparison                                          */

apr_status_t mc_crypto_random(unsigned char *buf, apr_size_t len)
{
    /* RAND_bytes takes an int; chunk so huge requests cannot truncate. */
    while (len > 0) {
        int chunk = len > (apr_size_t)INT_MAX ? INT_MAX : (int)len;
        if (!buf || RAND_bytes(buf, chunk) != 1) {
            return APR_EGENERAL;
        }
        buf += chunk;
        len -= (apr_size_t)chunk;
    }
    return APR_SUCCESS;
}

void mc_sha256(const void *data, apr_size_t len, unsigned char out[MC_SHA256_LEN])
{
    static const unsigned char empty = 0;

    /* The one-shot SHA256() has no failure path in practice; if it ever
     * reported one, continuing with an unset digest would silently collide
     * store keys, which is worse than stopping. */
    if (!SHA256(data ? data : &empty, data ? len : 0, out)) {
        abort();
    }
}

typedef struct {
    const void *data;
    apr_size_t len;
} mc_part_t;

/* SHA-256 over the concatenation of parts without copying them together
 * (the parts may be secret key material). */
static apr_status_t mc_sha256_parts(const mc_part_t *parts, int nparts,
                                    unsigned char out[MC_SHA256_LEN])
{
    mc_thread_state *ts = mc_thread();
    unsigned int olen = 0;
    int i;

    if (!ts) {
        return APR_ENOMEM;
    }
    if (EVP_DigestInit_ex2(ts->md, mc_md_sha256, NULL) != 1) {
        return APR_EGENERAL;
    }
    for (i = 0; i < nparts; i++) {
        if (parts[i].len && EVP_DigestUpdate(ts->md, parts[i].data, parts[i].len) != 1) {
            return APR_EGENERAL;
        }
    }
    if (EVP_DigestFinal_ex(ts->md, out, &olen) != 1 || olen != MC_SHA256_LEN) {
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

int mc_ct_equal(const void *a, const void *b, apr_size_t len)
{
    if (len == 0) {
        return 1;
    }
    if (!a || !b) {
        return 0;
    }
    return CRYPTO_memcmp(a, b, len) == 0;
}

/* ------------------------------------------------------------------ */
/* base64url                                                           */

static const char mc_b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Encodes len bytes into out (room for the encoding; no NUL written); returns its length. */
static apr_size_t mc_b64url_encode_to(const unsigned char *data, apr_size_t len, char *out)
{
    apr_size_t full = len / 3, rest = len % 3, i;
    char *o = out;

    for (i = 0; i < full * 3; i += 3) {
        unsigned long v = ((unsigned long)data[i] << 16)
                        | ((unsigned long)data[i + 1] << 8) | data[i + 2];
        *o++ = mc_b64url_alphabet[(v >> 18) & 0x3f];
        *o++ = mc_b64url_alphabet[(v >> 12) & 0x3f];
        *o++ = mc_b64url_alphabet[(v >> 6) & 0x3f];
        *o++ = mc_b64url_alphabet[v & 0x3f];
    }
    if (rest == 1) {
        unsigned long v = (unsigned long)data[i] << 16;
        *o++ = mc_b64url_alphabet[(v >> 18) & 0x3f];
        *o++ = mc_b64url_alphabet[(v >> 12) & 0x3f];
    }
    else if (rest == 2) {
        unsigned long v = ((unsigned long)data[i] << 16) | ((unsigned long)data[i + 1] << 8);
        *o++ = mc_b64url_alphabet[(v >> 18) & 0x3f];
        *o++ = mc_b64url_alphabet[(v >> 12) & 0x3f];
        *o++ = mc_b64url_alphabet[(v >> 6) & 0x3f];
    }
    return (apr_size_t)(o - out);
}

char *mc_b64url_encode(apr_pool_t *p, const unsigned char *data, apr_size_t len)
{
    apr_size_t full = len / 3, rest = len % 3;
    char *out;

    if (!data && len) {
        return NULL;
    }
    if (full > (((apr_size_t)-1) - 4) / 4 - 1) {
        return NULL;
    }
    out = apr_palloc(p, full * 4 + (rest ? rest + 1 : 0) + 1);
    out[mc_b64url_encode_to(data, len, out)] = '\0';
    return out;
}

/* Value of a base64url character, -1 for anything else (including '+', '/',
 * '=' and whitespace, which the strict decoder must refuse). */
static int mc_b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

apr_status_t mc_b64url_decode(apr_pool_t *p, const char *s, apr_size_t slen,
                              unsigned char **out, apr_size_t *outlen)
{
    apr_size_t full = slen / 4, rest = slen % 4, olen, i, j = 0;
    unsigned char *buf;
    int v[4];

    if (!out || !outlen || (!s && slen)) {
        return APR_EINVAL;
    }
    if (rest == 1) {
        /* 6 bits cannot make a byte: no encoder produces this. */
        return APR_EINVAL;
    }
    olen = full * 3 + (rest ? rest - 1 : 0);
    buf = apr_palloc(p, olen + 1);

    for (i = 0; i < full * 4; i += 4) {
        v[0] = mc_b64url_value((unsigned char)s[i]);
        v[1] = mc_b64url_value((unsigned char)s[i + 1]);
        v[2] = mc_b64url_value((unsigned char)s[i + 2]);
        v[3] = mc_b64url_value((unsigned char)s[i + 3]);
        if ((v[0] | v[1] | v[2] | v[3]) < 0) {
            return APR_EINVAL;
        }
        buf[j++] = (unsigned char)((v[0] << 2) | (v[1] >> 4));
        buf[j++] = (unsigned char)(((v[1] & 0x0f) << 4) | (v[2] >> 2));
        buf[j++] = (unsigned char)(((v[2] & 0x03) << 6) | v[3]);
    }
    if (rest >= 2) {
        v[0] = mc_b64url_value((unsigned char)s[i]);
        v[1] = mc_b64url_value((unsigned char)s[i + 1]);
        v[2] = rest == 3 ? mc_b64url_value((unsigned char)s[i + 2]) : 0;
        if ((v[0] | v[1] | v[2]) < 0) {
            return APR_EINVAL;
        }
        /* Unused low bits must be zero; otherwise several strings would
         * decode to the same bytes, which breaks "compare the encoding". */
        if (rest == 2 && (v[1] & 0x0f)) {
            return APR_EINVAL;
        }
        if (rest == 3 && (v[2] & 0x03)) {
            return APR_EINVAL;
        }
        buf[j++] = (unsigned char)((v[0] << 2) | (v[1] >> 4));
        if (rest == 3) {
            buf[j++] = (unsigned char)(((v[1] & 0x0f) << 4) | (v[2] >> 2));
        }
    }
    buf[j] = '\0';
    *out = buf;
    *outlen = olen;
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* tokens, PKCE, store keys                                            */

char *mc_crypto_random_token(apr_pool_t *p, apr_size_t nbytes)
{
    unsigned char stackbuf[64];
    unsigned char *buf = stackbuf;
    char *tok = NULL;

    if (nbytes == 0) {
        return NULL;
    }
    if (nbytes > sizeof(stackbuf)) {
        buf = apr_palloc(p, nbytes);
    }
    if (mc_crypto_random(buf, nbytes) == APR_SUCCESS) {
        tok = mc_b64url_encode(p, buf, nbytes);
    }
    /* The raw bytes are the token: don't leave them behind. */
    mc_cleanse(buf, nbytes);
    return tok;
}

char *mc_pkce_challenge(apr_pool_t *p, const char *verifier)
{
    unsigned char md[MC_SHA256_LEN];

    if (!verifier) {
        return NULL;
    }
    mc_sha256(verifier, strlen(verifier), md);
    return mc_b64url_encode(p, md, sizeof(md));
}

char *mc_store_key(apr_pool_t *p, char kind, const char *realm, const char *id)
{
    unsigned char md[MC_SHA256_LEN];
    mc_part_t parts[5];
    int n = 0;
    char *enc;

    if (!id || kind < 'a' || kind > 'z' || (realm && strchr(realm, '\n'))) {
        return NULL;
    }
    /* The label and the one-byte kind are fixed-length prefixes and the realm ends at its
     * newline, so the concatenation is unambiguous. */
    parts[n].data = mc_store_label;
    parts[n++].len = sizeof(mc_store_label) - 1;
    parts[n].data = &kind;
    parts[n++].len = 1;
    if (realm) {
        parts[n].data = realm;
        parts[n++].len = strlen(realm);
        parts[n].data = "\n";
        parts[n++].len = 1;
    }
    parts[n].data = id;
    parts[n++].len = strlen(id);
    if (mc_sha256_parts(parts, n, md) != APR_SUCCESS) {
        return NULL;
    }
    /* The hash comes first: shmcb picks the sub-cache from the key's first byte, and a
     * constant prefix would put every session into one sub-cache (1/8 of the default
     * segment or less). Built by hand: this runs on every request. */
    enc = apr_palloc(p, MC_STORE_KEY_LEN + 1);
    if (mc_b64url_encode_to(md, MC_STORE_HASH_BYTES, enc) != MC_STORE_KEY_LEN - 2) {
        return NULL;
    }
    enc[MC_STORE_KEY_LEN - 2] = ':';
    enc[MC_STORE_KEY_LEN - 1] = kind;
    enc[MC_STORE_KEY_LEN] = '\0';
    return enc;
}

/* ------------------------------------------------------------------ */
/* key ring                                                            */

static apr_status_t mc_hkdf_derive(const char *pass, apr_size_t passlen,
                                   unsigned char key[MC_AES_KEY_LEN])
{
    EVP_PKEY_CTX *pctx;
    size_t klen = MC_AES_KEY_LEN;
    apr_status_t rv = APR_EGENERAL;

    if (passlen > (apr_size_t)INT_MAX) {
        return APR_EINVAL;
    }
    pctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    if (!pctx) {
        return APR_ENOMEM;
    }
    if (EVP_PKEY_derive_init(pctx) <= 0
        || EVP_PKEY_CTX_set_hkdf_md(pctx, EVP_sha256()) <= 0
        || EVP_PKEY_CTX_set1_hkdf_salt(pctx, (const unsigned char *)mc_hkdf_salt,
                                       (int)(sizeof(mc_hkdf_salt) - 1)) <= 0
        || EVP_PKEY_CTX_set1_hkdf_key(pctx, (const unsigned char *)pass, (int)passlen) <= 0
        || EVP_PKEY_CTX_add1_hkdf_info(pctx, (const unsigned char *)mc_hkdf_info,
                                       (int)(sizeof(mc_hkdf_info) - 1)) <= 0
        || EVP_PKEY_derive(pctx, key, &klen) <= 0
        || klen != MC_AES_KEY_LEN) {
        mc_cleanse(key, MC_AES_KEY_LEN);
        goto out;
    }
    rv = APR_SUCCESS;
out:
    EVP_PKEY_CTX_free(pctx);
    return rv;
}

apr_status_t mc_keyring_create(apr_pool_t *p, const char *const *passphrases, int n,
                               mc_keyring_t **out)
{
    mc_keyring_t *kr;
    int i;

    if (!p || !out || !passphrases || n <= 0) {
        return APR_EINVAL;
    }
    for (i = 0; i < n; i++) {
        if (!passphrases[i] || !passphrases[i][0]) {
            return APR_EINVAL;
        }
    }
    kr = apr_pcalloc(p, sizeof(*kr));
    kr->keys = apr_pcalloc(p, sizeof(mc_key_t) * (apr_size_t)n);
    kr->n = n;
    mc_cleanse_on_cleanup(p, kr->keys, sizeof(mc_key_t) * (apr_size_t)n);

    for (i = 0; i < n; i++) {
        unsigned char md[MC_SHA256_LEN];
        mc_part_t parts[2];
        apr_status_t rv;

        rv = mc_hkdf_derive(passphrases[i], strlen(passphrases[i]), kr->keys[i].key);
        if (rv != APR_SUCCESS) {
            mc_cleanse(kr->keys, sizeof(mc_key_t) * (apr_size_t)n);
            return rv;
        }
        parts[0].data = mc_keyid_label;
        parts[0].len = sizeof(mc_keyid_label) - 1;
        parts[1].data = kr->keys[i].key;
        parts[1].len = MC_AES_KEY_LEN;
        rv = mc_sha256_parts(parts, 2, md);
        if (rv != APR_SUCCESS) {
            mc_cleanse(kr->keys, sizeof(mc_key_t) * (apr_size_t)n);
            return rv;
        }
        memcpy(kr->keys[i].id, md, MC_KEY_ID_LEN);
    }
    *out = kr;
    return APR_SUCCESS;
}

int mc_keyring_size(const mc_keyring_t *kr)
{
    return kr ? kr->n : 0;
}

/* ------------------------------------------------------------------ */
/* sealed records                                                      */

apr_status_t mc_record_seal(apr_pool_t *p, const mc_keyring_t *kr,
                            const char *aad, apr_size_t aadlen,
                            const unsigned char *plain, apr_size_t plen,
                            unsigned char **out, apr_size_t *outlen)
{
    const mc_key_t *k;
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *buf, *ct;
    apr_size_t total;
    apr_status_t rv = APR_EGENERAL;
    int len;

    if (!p || !kr || kr->n <= 0 || !out || !outlen
        || (!aad && aadlen) || (!plain && plen)) {
        return APR_EINVAL;
    }
    /* EVP lengths are ints. */
    if (plen > (apr_size_t)INT_MAX - MC_RECORD_OVERHEAD || aadlen > (apr_size_t)INT_MAX) {
        return APR_ENOSPC;
    }
    k = &kr->keys[0];
    total = plen + MC_RECORD_OVERHEAD;
    buf = apr_palloc(p, total);
    buf[0] = MC_RECORD_VERSION;
    memcpy(buf + 1, k->id, MC_KEY_ID_LEN);
    /* Random 96-bit nonces: safe for far more records than one key will
     * ever seal (the birthday bound is ~2^32 messages). */
    if (mc_crypto_random(buf + 1 + MC_KEY_ID_LEN, MC_GCM_NONCE_LEN) != APR_SUCCESS) {
        return APR_EGENERAL;
    }
    ct = buf + 1 + MC_KEY_ID_LEN + MC_GCM_NONCE_LEN;

    if (!mc_thread() || !(ctx = EVP_CIPHER_CTX_new())) {
        return APR_ENOMEM;
    }
    if (EVP_EncryptInit_ex(ctx, mc_cipher_gcm, NULL, NULL, NULL) != 1
        || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, MC_GCM_NONCE_LEN, NULL) != 1
        || EVP_EncryptInit_ex(ctx, NULL, NULL, k->key, buf + 1 + MC_KEY_ID_LEN) != 1) {
        goto out;
    }
    /* Version and key id are authenticated so they cannot be swapped; the
     * caller's aad (the store key) binds the record to its slot. The header
     * is fixed-length, so header||aad is unambiguous. */
    if (EVP_EncryptUpdate(ctx, NULL, &len, buf, 1 + MC_KEY_ID_LEN) != 1) {
        goto out;
    }
    if (aadlen && EVP_EncryptUpdate(ctx, NULL, &len, (const unsigned char *)aad,
                                    (int)aadlen) != 1) {
        goto out;
    }
    if (plen) {
        if (EVP_EncryptUpdate(ctx, ct, &len, plain, (int)plen) != 1 || (apr_size_t)len != plen) {
            goto out;
        }
    }
    if (EVP_EncryptFinal_ex(ctx, ct + plen, &len) != 1 || len != 0) {
        goto out;
    }
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, MC_GCM_TAG_LEN, ct + plen) != 1) {
        goto out;
    }
    *out = buf;
    *outlen = total;
    rv = APR_SUCCESS;
out:
    EVP_CIPHER_CTX_free(ctx);
    return rv;
}

/* Try one key; on success plain[0..plen) holds the authenticated plaintext. */
static apr_status_t mc_record_try_key(const mc_key_t *k,
                                      const char *aad, apr_size_t aadlen,
                                      const unsigned char *in, apr_size_t plen,
                                      unsigned char *plain)
{
    const unsigned char *nonce = in + 1 + MC_KEY_ID_LEN;
    const unsigned char *ct = nonce + MC_GCM_NONCE_LEN;
    unsigned char tag[MC_GCM_TAG_LEN];
    mc_thread_state *ts = mc_thread();
    EVP_CIPHER_CTX *ctx;
    apr_status_t rv = APR_EGENERAL;
    int len, same_key;

    /* The tag ctrl takes a non-const pointer; never hand it the input. */
    memcpy(tag, ct + plen, MC_GCM_TAG_LEN);
    if (!ts) {
        return APR_ENOMEM;
    }
    ctx = ts->dec;
    /* Keying is the costly part: with the thread's last key only the nonce changes. */
    same_key = ts->dec_keyed && CRYPTO_memcmp(ts->dec_key, k->key, MC_AES_KEY_LEN) == 0;
    if (EVP_DecryptInit_ex(ctx, NULL, NULL, same_key ? NULL : k->key, nonce) != 1) {
        ts->dec_keyed = 0;
        goto out;
    }
    if (!same_key) {
        memcpy(ts->dec_key, k->key, MC_AES_KEY_LEN);
        ts->dec_keyed = 1;
    }
    if (EVP_DecryptUpdate(ctx, NULL, &len, in, 1 + MC_KEY_ID_LEN) != 1) {
        goto out;
    }
    if (aadlen && EVP_DecryptUpdate(ctx, NULL, &len, (const unsigned char *)aad,
                                    (int)aadlen) != 1) {
        goto out;
    }
    if (plen) {
        if (EVP_DecryptUpdate(ctx, plain, &len, ct, (int)plen) != 1 || (apr_size_t)len != plen) {
            goto out;
        }
    }
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, MC_GCM_TAG_LEN, tag) != 1) {
        goto out;
    }
    if (EVP_DecryptFinal_ex(ctx, plain + plen, &len) != 1) {
        goto out;
    }
    rv = APR_SUCCESS;
out:
    return rv;
}

apr_status_t mc_record_open(apr_pool_t *p, const mc_keyring_t *kr,
                            const char *aad, apr_size_t aadlen,
                            const unsigned char *in, apr_size_t inlen,
                            unsigned char **plain, apr_size_t *plen)
{
    unsigned char *buf;
    apr_size_t clen;
    int i;

    if (!p || !kr || !plain || !plen || (!aad && aadlen)) {
        return APR_EINVAL;
    }
    if (!in || inlen < MC_RECORD_OVERHEAD || in[0] != MC_RECORD_VERSION) {
        return APR_EGENERAL;
    }
    if (inlen - MC_RECORD_OVERHEAD > (apr_size_t)INT_MAX || aadlen > (apr_size_t)INT_MAX) {
        return APR_EGENERAL;
    }
    clen = inlen - MC_RECORD_OVERHEAD;
    /* + 1: room for the trailing NUL, and GCM's Final may write nothing
     * but still wants a valid pointer past the data. */
    buf = apr_palloc(p, clen + 1);
    mc_cleanse_on_cleanup(p, buf, clen + 1);

    /* Key ids are 32 bits, so two ring keys may share one: try every key
     * with a matching id rather than only the first. A record whose id
     * matches no key is from a retired passphrase: refuse it. */
    for (i = 0; i < kr->n; i++) {
        const mc_key_t *k = &kr->keys[i];
        if (memcmp(k->id, in + 1, MC_KEY_ID_LEN) != 0) {
            continue;
        }
        if (mc_record_try_key(k, aad, aadlen, in, clen, buf) == APR_SUCCESS) {
            buf[clen] = '\0';
            *plain = buf;
            *plen = clen;
            return APR_SUCCESS;
        }
        /* Unauthenticated plaintext must not survive a failed attempt. */
        mc_cleanse(buf, clen + 1);
    }
    return APR_EGENERAL;
}
