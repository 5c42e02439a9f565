/* fuzz_cookie: mc_cookie_get / mc_cookie_remove / mc_cookie_set_header on
 * arbitrary Cookie headers.
 *
 * Input: "<cookie name>\n<Cookie header>"; without a newline the whole
 * input is the header and the name is the default "monei_session".  The
 * state cookie name "monei_state" is always the second name, as in
 * mod_mc_session.c (get both, then remove both).
 *
 * Invariants:
 *  - get returns NULL or a non-empty value without ';' no longer than the
 *    header, and NULL whenever the header exceeds MC_COOKIE_MAX_HEADER;
 *  - after remove(names), no pair of the result is named like one of the
 *    names (checked with an independent splitter and with mc_cookie_get):
 *    the module's cookies can never be smuggled to the backend;
 *  - removing a name that is absent leaves get(name) unchanged (when the
 *    result is still within the header bound);
 *  - remove is idempotent: remove(remove(h)) == remove(h);
 *  - set_header round-trips: a non-NULL "name=value; ..." read back as a
 *    Cookie header gives value for name. */
#include "fuzz_common.h"
#include "mc_cookie.h"

static int is_ows(char c) { return c == ' ' || c == '\t'; }

/* Independent check: does any ';'-separated pair of h have name `name`
 * (name = text before the first '=', OWS-trimmed)? */
static int has_pair_named(const char *h, const char *name)
{
    size_t nl = strlen(name);
    const char *s = h;
    for (;;) {
        const char *e = strchr(s, ';'), *eq, *a, *b;
        if (!e) e = s + strlen(s);
        eq = memchr(s, '=', (size_t)(e - s));
        if (eq) {
            a = s; b = eq;
            while (a < b && is_ows(*a)) a++;
            while (b > a && is_ows(b[-1])) b--;
            if ((size_t)(b - a) == nl && memcmp(a, name, nl) == 0) return 1;
        }
        if (!*e) return 0;
        s = e + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_pool();
    char *f[2];
    const char *name, *hdr, *v, *v2;
    const char *names[2];
    char *rest, *rest2, *other_rest;
    const char *other[1] = { "zz_other" };

    if (fz_split(p, data, size, f, 2) == 2 && strlen(f[0]) <= 64) {
        name = f[0];
        hdr = f[1];
    }
    else {
        name = "monei_session";
        hdr = fz_cstr(p, data, size);
    }
    names[0] = name;
    names[1] = "monei_state";

    /* get */
    v = mc_cookie_get(p, hdr, name);
    if (v) {
        FZ_CHECK(*v != '\0');
        FZ_CHECK(strchr(v, ';') == NULL);
        FZ_CHECK(strlen(v) <= strlen(hdr));
        FZ_CHECK(strlen(hdr) <= MC_COOKIE_MAX_HEADER);
        FZ_CHECK(*name != '\0');
        FZ_CHECK(has_pair_named(hdr, name));
    }
    (void)mc_cookie_get(p, hdr, names[1]);

    /* remove: our cookies never survive */
    rest = mc_cookie_remove(p, hdr, names, 2);
    if (rest) {
        FZ_CHECK(*rest != '\0');
        FZ_CHECK(strlen(rest) <= 2 * strlen(hdr));
        if (*name) {
            FZ_CHECK(!has_pair_named(rest, name));
            FZ_CHECK(mc_cookie_get(p, rest, name) == NULL);
        }
        FZ_CHECK(!has_pair_named(rest, names[1]));
        FZ_CHECK(mc_cookie_get(p, rest, names[1]) == NULL);
        /* idempotent */
        rest2 = mc_cookie_remove(p, rest, names, 2);
        FZ_CHECK(rest2 != NULL && strcmp(rest, rest2) == 0);
    }

    /* removing another name keeps what get sees */
    other_rest = mc_cookie_remove(p, hdr, other, 1);
    /* (only when hdr holds no "zz_other" pair: removing one lowers the
     * pair count, which can bring a header back under MC_COOKIE_MAX_COUNT) */
    if (*name && strcmp(name, other[0]) != 0 && other_rest
        && !has_pair_named(hdr, other[0])
        && strlen(other_rest) <= MC_COOKIE_MAX_HEADER
        && strlen(hdr) <= MC_COOKIE_MAX_HEADER) {
        v2 = mc_cookie_get(p, other_rest, name);
        FZ_CHECK((v == NULL) == (v2 == NULL));
        FZ_CHECK(v == NULL || strcmp(v, v2) == 0);
    }

    /* set_header round trip: name from the first field, value = header */
    {
        const char *sc = mc_cookie_set_header(p, name, hdr, (long)(size % 3) - 1,
                                              (int)(size & 1), "Lax");
        if (sc) {
            const char *back = mc_cookie_get(p, sc, name);
            FZ_CHECK(strchr(sc, '\r') == NULL && strchr(sc, '\n') == NULL);
            if (*hdr && strlen(sc) <= MC_COOKIE_MAX_HEADER) {
                FZ_CHECK(back != NULL && strcmp(back, hdr) == 0);
            }
        }
    }

    apr_pool_destroy(p);
    return 0;
}
