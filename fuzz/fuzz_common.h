/* fuzz_common.h - shared scaffolding of the libFuzzer harnesses.
 *
 * One APR root pool per process (apr_initialize once, in
 * LLVMFuzzerInitialize), one subpool per input, destroyed at the end of the
 * input.  Invariants are checked with FZ_CHECK, which prints the failed
 * condition and abort()s so libFuzzer reports the input as a crash. */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>

static apr_pool_t *fz_root;

#define FZ_CHECK(cond) do {                                                \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: invariant failed: %s\n",               \
                    __FILE__, __LINE__, #cond);                            \
            abort();                                                       \
        }                                                                  \
    } while (0)

static void fz_terminate(void)
{
    if (fz_root) {
        apr_pool_destroy(fz_root);
        fz_root = NULL;
    }
    apr_terminate();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    if (apr_initialize() != APR_SUCCESS) abort();
    atexit(fz_terminate);
    if (apr_pool_create(&fz_root, NULL) != APR_SUCCESS) abort();
    return 0;
}

/* The per-input pool; the harness destroys it before returning. */
static __attribute__((unused)) apr_pool_t *fz_pool(void)
{
    apr_pool_t *p = NULL;
    if (apr_pool_create(&p, fz_root) != APR_SUCCESS) abort();
    return p;
}

/* NUL-terminated pool copy of data[0..size) (an embedded NUL simply ends
 * the C string, as it would in any header or query value). */
static __attribute__((unused)) char *fz_cstr(apr_pool_t *p, const uint8_t *data, size_t size)
{
    return apr_pstrmemdup(p, (const char *)data, size);
}

/* Split data at the first n-1 newlines into n NUL-terminated fields (the
 * last one takes the rest, newlines included).  Missing fields are NULL.
 * Returns the number of fields present. */
static __attribute__((unused)) int fz_split(apr_pool_t *p, const uint8_t *data, size_t size,
                    char **fields, int n)
{
    const char *s = (const char *)data, *end = s + size;
    int i;

    for (i = 0; i < n; i++) fields[i] = NULL;
    for (i = 0; i < n; i++) {
        const char *nl = (i < n - 1) ? memchr(s, '\n', (size_t)(end - s)) : NULL;
        if (!nl) {
            fields[i] = apr_pstrmemdup(p, s, (size_t)(end - s));
            return i + 1;
        }
        fields[i] = apr_pstrmemdup(p, s, (size_t)(nl - s));
        s = nl + 1;
    }
    return n;
}

/* Strict RFC 3629 UTF-8 (no overlongs, surrogates, > U+10FFFF), written
 * independently of mc_text.c so the two can check each other. */
static __attribute__((unused)) int fz_utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        unsigned cp;
        size_t n, k;
        if (c < 0x80) { i++; continue; }
        if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; }
        else return 0;
        if (len - i < n) return 0;
        for (k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800)
            || (n == 4 && cp < 0x10000) || cp > 0x10FFFF
            || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return 0;
        }
        i += n;
    }
    return 1;
}

/* No byte < 0x20 and no 0x7F. */
static __attribute__((unused)) int fz_no_controls(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7F) return 0;
    }
    return 1;
}

#endif /* FUZZ_COMMON_H */
