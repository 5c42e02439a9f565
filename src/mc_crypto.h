/* mc_crypto.h - every cryptographic primitive mod_monei_connect uses.
 *
 * This is the only file pair of the project that talks to OpenSSL, so that
 * an audit of "what crypto do we do and how" starts and ends here. It knows
 * nothing of httpd: only APR pools and plain buffers.
 *
 * Conventions:
 *  - Functions that can fail return apr_status_t and fill out-parameters only
 *    on success.
 *  - The few functions returning a pointer (encoders) return NULL on failure;
 *    callers must check.
 *  - Secret material handed back in pool memory (derived keys, decrypted
 *    records) is wiped with OPENSSL_cleanse when that pool is cleared or
 *    destroyed, so a recycled request pool never leaks tokens.
 */
#ifndef MC_CRYPTO_H
#define MC_CRYPTO_H

#include <apr_pools.h>
#include <apr_errno.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Sizes of the sealed record layout:
 *   version (1) | key id (4) | nonce (12) | ciphertext (plen) | tag (16) */
#define MC_RECORD_VERSION      0x01
#define MC_KEY_ID_LEN          4
#define MC_GCM_NONCE_LEN       12
#define MC_GCM_TAG_LEN         16
#define MC_RECORD_OVERHEAD     (1 + MC_KEY_ID_LEN + MC_GCM_NONCE_LEN + MC_GCM_TAG_LEN)

#define MC_SHA256_LEN          32

/* Fill buf with len bytes from the OpenSSL CSPRNG. */
apr_status_t mc_crypto_random(unsigned char *buf, apr_size_t len);

/* base64url (RFC 4648 section 5) without padding. NUL-terminated result in p;
 * NULL only if len is absurdly large. data may be NULL when len == 0. */
char *mc_b64url_encode(apr_pool_t *p, const unsigned char *data, apr_size_t len);

/* Strict base64url decoding of s[0..slen): only the 64 url-safe characters,
 * no padding, no whitespace, slen % 4 != 1 and unused trailing bits zero, so
 * every byte string has exactly one accepted encoding. *out is allocated in p
 * with one extra NUL byte (not counted in *outlen). APR_EINVAL on bad input. */
apr_status_t mc_b64url_decode(apr_pool_t *p, const char *s, apr_size_t slen,
                              unsigned char **out, apr_size_t *outlen);

/* b64url of nbytes fresh random bytes (32 bytes -> 43 chars). NULL if the
 * CSPRNG fails or nbytes is 0. */
char *mc_crypto_random_token(apr_pool_t *p, apr_size_t nbytes);

/* SHA-256 of data[0..len). */
void mc_sha256(const void *data, apr_size_t len, unsigned char out[MC_SHA256_LEN]);

/* RFC 7636 S256 code_challenge: b64url(SHA-256(verifier)). NULL if verifier is NULL. */
char *mc_pkce_challenge(apr_pool_t *p, const char *verifier);

/* Constant-time comparison of two equal-length buffers: 1 if equal, 0 otherwise. */
int mc_ct_equal(const void *a, const void *b, apr_size_t len);

/* Overwrite buf[0..len) so the compiler cannot optimise the wipe away. */
void mc_cleanse(void *buf, apr_size_t len);

/* Wipe buf[0..len) when p is cleared or destroyed (for secrets that live in
 * pool memory, e.g. decoded records holding tokens). */
void mc_cleanse_on_cleanup(apr_pool_t *p, void *buf, apr_size_t len);

/* Record encryption keys, one per configured passphrase. */
typedef struct mc_keyring_t mc_keyring_t;

/* Derive one AES-256-GCM key per passphrase (HKDF-SHA256) in p. The first
 * passphrase encrypts, every one decrypts, which is how keys rotate without
 * logging users out. APR_EINVAL when n <= 0 or any passphrase is NULL/empty.
 * Key material is wiped when p goes away. */
apr_status_t mc_keyring_create(apr_pool_t *p, const char *const *passphrases, int n,
                               mc_keyring_t **out);

/* Number of keys in the ring. */
int mc_keyring_size(const mc_keyring_t *kr);

/* Encrypt and authenticate plain[0..plen) with the ring's first key.
 * aad (the store key of the record's slot) is authenticated, not stored:
 * the record only opens under the same aad. *out in p, *outlen = plen +
 * MC_RECORD_OVERHEAD. APR_EINVAL on bad arguments, APR_ENOSPC if too large,
 * APR_EGENERAL on an OpenSSL failure. */
apr_status_t mc_record_seal(apr_pool_t *p, const mc_keyring_t *kr,
                            const char *aad, apr_size_t aadlen,
                            const unsigned char *plain, apr_size_t plen,
                            unsigned char **out, apr_size_t *outlen);

/* Verify and decrypt a record made by mc_record_seal. APR_EGENERAL on any
 * malformed, truncated, tampered or foreign input (wrong version, unknown key,
 * wrong aad); never reads outside in[0..inlen). *plain is in p, NUL-terminated
 * (terminator not counted in *plen) and wiped when p is cleared. */
apr_status_t mc_record_open(apr_pool_t *p, const mc_keyring_t *kr,
                            const char *aad, apr_size_t aadlen,
                            const unsigned char *in, apr_size_t inlen,
                            unsigned char **plain, apr_size_t *plen);

/* Store key for a cookie/state id: b64url(first 24 bytes of
 * SHA-256("mod_monei_connect store v1" || kind || [realm || "\n"] || id)) + ":" + kind.
 * kind is a lower-case letter ('s' session, 't' state). realm (the client id; NULL for
 * none) binds the key to one server identity: the same cookie names another key, and so
 * another record and another sealing aad, under another client id. Independent of the
 * passphrases, so rotating keys keeps sessions reachable; one-way, so a store dump does not
 * reveal cookie values. NULL if kind is not a-z, id is NULL or realm holds a newline. */
char *mc_store_key(apr_pool_t *p, char kind, const char *realm, const char *id);

#ifdef __cplusplus
}
#endif

#endif /* MC_CRYPTO_H */
