#include "mc_value.h"

#include <apr_strings.h>
#include <apr_file_io.h>
#include <apr_env.h>
#include <apr_uri.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *read_secret_file(apr_pool_t *p, const char *path, const char **why)
{
    apr_file_t *f;
    char buf[MC_VALUE_FILE_MAX + 1];
    apr_size_t len = sizeof(buf) - 1;
    apr_status_t rv;

    rv = apr_file_open(&f, path, APR_FOPEN_READ, APR_FPROT_OS_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        char err[128];
        *why = apr_psprintf(p, "cannot open %s: %s", path, apr_strerror(rv, err, sizeof(err)));
        return NULL;
    }
    rv = apr_file_read_full(f, buf, len, &len);
    apr_file_close(f);
    if (rv != APR_SUCCESS && rv != APR_EOF) {
        *why = apr_psprintf(p, "cannot read %s", path);
        return NULL;
    }
    if (len >= MC_VALUE_FILE_MAX) {
        *why = apr_psprintf(p, "%s is larger than %d bytes", path, MC_VALUE_FILE_MAX);
        return NULL;
    }
    /* Editors and `echo` add a newline; a secret never ends in one. */
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) {
        len--;
    }
    buf[len] = '\0';
    if (memchr(buf, '\0', len) != NULL) {
        *why = apr_psprintf(p, "%s contains a NUL byte", path);
        return NULL;
    }
    return apr_pstrmemdup(p, buf, len);
}

const char *mc_value_resolve(apr_pool_t *p, const char *raw, const char **why)
{
    const char *v;

    *why = NULL;
    if (raw == NULL) {
        *why = "no value";
        return NULL;
    }
    if (strncmp(raw, "file:", 5) == 0) {
        if (raw[5] != '/') {
            *why = "file: needs an absolute path";
            return NULL;
        }
        v = read_secret_file(p, raw + 5, why);
    }
    else if (strncmp(raw, "env:", 4) == 0) {
        char *ev = NULL;
        if (raw[4] == '\0' || apr_env_get(&ev, raw + 4, p) != APR_SUCCESS || ev == NULL) {
            *why = apr_psprintf(p, "environment variable %s is not set", raw + 4);
            return NULL;
        }
        v = ev;
    }
    else {
        v = raw;
    }
    if (v != NULL && *v == '\0') {
        *why = "the value is empty";
        return NULL;
    }
    return v;
}

const char *mc_value_seconds(const char *arg, long min, long max, long *out)
{
    char *end;
    long v;

    if (arg == NULL || *arg == '\0' || !isdigit((unsigned char)*arg)) {
        return "must be a whole number of seconds";
    }
    errno = 0;
    v = strtol(arg, &end, 10);
    if (errno != 0 || *end != '\0') {
        return "must be a whole number of seconds";
    }
    if (v < min || v > max) {
        return "is out of range";
    }
    *out = v;
    return NULL;
}

const char *mc_value_url(apr_pool_t *p, const char *arg, int http_only,
                         const char **scheme, const char **host, int *port,
                         const char **path)
{
    apr_uri_t u;
    const char *c;

    for (c = arg; *c; c++) {
        if ((unsigned char)*c <= 0x20 || *c == 0x7f) {
            return "must not contain spaces or control characters";
        }
    }
    if (apr_uri_parse(p, arg, &u) != APR_SUCCESS || u.scheme == NULL || u.hostname == NULL
        || *u.hostname == '\0') {
        return "must be an absolute URL with a scheme and a host";
    }
    if (http_only && strcasecmp(u.scheme, "https") != 0 && strcasecmp(u.scheme, "http") != 0) {
        return "must be an http:// or https:// URL";
    }
    if (u.user != NULL || u.password != NULL) {
        return "must not contain user information";
    }
    if (u.fragment != NULL) {
        return "must not contain a #fragment";
    }
    if (scheme) {
        *scheme = apr_pstrdup(p, u.scheme);
    }
    if (host) {
        *host = apr_pstrdup(p, u.hostname);
    }
    if (port) {
        *port = u.port_str ? (int)u.port : (int)apr_uri_port_of_scheme(u.scheme);
    }
    if (path) {
        *path = (u.path && *u.path) ? u.path : "/";
    }
    return NULL;
}
