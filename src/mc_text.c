/* mc_text: escaping and sanitizing of strings that leave the module. */
#include <string.h>

#include <apr_strings.h>
#include <apr_lib.h>

#include "mc_text.h"

/* Length of the well-formed UTF-8 sequence starting at s (at most avail
 * bytes), or 0 when the bytes there are not well-formed.  Follows RFC 3629
 * table 3-7 exactly: overlongs, surrogates and code points above U+10FFFF
 * are rejected, because a lenient decoder downstream could read them as
 * something else ('/' or '<' hidden in an overlong form). */
static apr_size_t utf8_seq_len(const unsigned char *s, apr_size_t avail)
{
    unsigned char c = s[0];
    apr_size_t n, i;
    unsigned char lo = 0x80, hi = 0xBF;

    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;                         /* continuation or overlong */
    if (c < 0xE0) n = 2;
    else if (c < 0xF0) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;                   /* overlong */
        else if (c == 0xED) hi = 0x9F;              /* surrogates */
    }
    else if (c < 0xF5) {
        n = 4;
        if (c == 0xF0) lo = 0x90;                   /* overlong */
        else if (c == 0xF4) hi = 0x8F;              /* > U+10FFFF */
    }
    else return 0;

    if (avail < n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (i = 2; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    }
    return n;
}

char *mc_sanitize_value(apr_pool_t *p, const char *v)
{
    apr_size_t len, i = 0, o = 0, n;
    const unsigned char *s = (const unsigned char *)v;
    char *out;

    if (!v) return NULL;
    len = strlen(v);
    /* Never longer than the input: every byte maps to one byte. */
    out = apr_palloc(p, len + 1);
    while (i < len) {
        if (s[i] < 0x20 || s[i] == 0x7F) {
            out[o++] = ' ';
            i++;
        }
        else if (s[i] < 0x80) {
            out[o++] = (char)s[i++];
        }
        else if ((n = utf8_seq_len(s + i, len - i)) > 0) {
            memcpy(out + o, s + i, n);
            o += n;
            i += n;
        }
        else {
            /* Replace one byte and resync: the next byte may start a
             * valid sequence of its own. */
            out[o++] = '?';
            i++;
        }
    }
    out[o] = '\0';
    return out;
}

char *mc_html_escape(apr_pool_t *p, const char *s)
{
    apr_size_t len = 0, i;
    const char *c;
    char *out, *o;

    if (!s) return apr_pstrdup(p, "");
    for (c = s; *c; c++) {
        switch (*c) {
        case '&': len += 5; break;      /* &amp; */
        case '<': case '>': len += 4; break;
        case '"': len += 6; break;      /* &quot; */
        case '\'': len += 5; break;     /* &#39; */
        default: len += 1;
        }
    }
    out = o = apr_palloc(p, len + 1);
    for (i = 0; s[i]; i++) {
        switch (s[i]) {
        case '&': memcpy(o, "&amp;", 5); o += 5; break;
        case '<': memcpy(o, "&lt;", 4); o += 4; break;
        case '>': memcpy(o, "&gt;", 4); o += 4; break;
        case '"': memcpy(o, "&quot;", 6); o += 6; break;
        case '\'': memcpy(o, "&#39;", 5); o += 5; break;
        default: *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

char *mc_json_escape_string(apr_pool_t *p, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    apr_size_t len, i = 0, n;
    char *out, *o;

    if (!s) return apr_pstrdup(p, "null");
    len = strlen(s);
    /* Worst case: every byte becomes a 6-byte escape (\u00XX or \ufffd). */
    out = o = apr_palloc(p, len * 6 + 3);
    *o++ = '"';
    while (i < len) {
        unsigned char c = u[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
            i++;
        }
        else if (c < 0x20 || c == 0x7F) {
            *o++ = '\\';
            switch (c) {
            case '\b': *o++ = 'b'; break;
            case '\f': *o++ = 'f'; break;
            case '\n': *o++ = 'n'; break;
            case '\r': *o++ = 'r'; break;
            case '\t': *o++ = 't'; break;
            default:
                *o++ = 'u'; *o++ = '0'; *o++ = '0';
                *o++ = hex[c >> 4]; *o++ = hex[c & 0xF];
            }
            i++;
        }
        else if (c < 0x80) {
            *o++ = (char)c;
            i++;
        }
        else if ((n = utf8_seq_len(u + i, len - i)) > 0) {
            memcpy(o, u + i, n);
            o += n;
            i += n;
        }
        else {
            memcpy(o, "\\ufffd", 6);
            o += 6;
            i++;
        }
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

char *mc_var_to_header(apr_pool_t *p, const char *prefix, const char *var)
{
    const char *v;
    char *out, *o;
    int word_start = 1, any = 0;

    if (!var) return NULL;
    if (!prefix) prefix = "";
    v = var;
    if (strncmp(v, "MONEI_", 6) == 0) v += 6;

    /* Output is at most prefix + one char per var byte. */
    out = apr_palloc(p, strlen(prefix) + strlen(v) + 1);
    o = out + strlen(prefix);
    memcpy(out, prefix, (apr_size_t)(o - out));
    for (; *v; v++) {
        unsigned char c = (unsigned char)*v;
        if (!(c < 0x80 && apr_isalnum(c))) {
            word_start = 1;
            continue;
        }
        if (word_start) {
            if (any) *o++ = '-';
            *o++ = (char)apr_toupper(c);
            word_start = 0;
            any = 1;
        }
        else {
            *o++ = (char)apr_tolower(c);
        }
    }
    *o = '\0';
    return out;
}

char *mc_utf8_truncate(apr_pool_t *p, const char *s, apr_size_t max)
{
    apr_size_t len;

    if (!s) return NULL;
    len = strlen(s);
    if (len <= max) return apr_pstrmemdup(p, s, len);
    len = max;
    /* Back up over continuation bytes so the cut lands before the lead
     * byte of the sequence that would be split. */
    while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80) len--;
    return apr_pstrmemdup(p, s, len);
}

/* The folding CGI applies to header names: case ignored, '_' and '-' one character. */
static int fold_header_char(unsigned char c)
{
    if (c == '_') {
        return '-';
    }
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

int mc_header_has_prefix(const char *name, const char *prefix)
{
    if (!name || !prefix || !*prefix) {
        return 0;
    }
    for (; *prefix; prefix++, name++) {
        if (!*name || fold_header_char((unsigned char)*name)
                      != fold_header_char((unsigned char)*prefix)) {
            return 0;
        }
    }
    return 1;
}
