/* mc_http implemented with libcurl. One easy handle per thread, reused so connections to
 * Monei stay alive between requests; created lazily in the worker thread, so none is ever
 * inherited across fork. The threads of a process share TLS sessions and DNS answers (a
 * share object), so a thread's first call to Monei resumes a TLS session instead of a full
 * handshake, which costs Monei (and the sandbox) a signature every time. Connections
 * themselves are not shared: libcurl does not support sharing them between threads. */
#include "mc_http.h"

#include <apr_strings.h>
#include <apr_time.h>
#include <apr_date.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <pthread.h>

/* One handle per thread, freed when the thread ends (a thread-specific key with a
 * destructor, so nothing is lost when httpd retires a worker thread). */
static pthread_key_t handle_key;
static pthread_once_t handle_once = PTHREAD_ONCE_INIT;

static void handle_free(void *h)
{
    curl_easy_cleanup(h);
}

static CURLSH *share;
static pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *u)
{
    (void)h, (void)access, (void)u;
    pthread_mutex_lock(&share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *u)
{
    (void)h, (void)u;
    pthread_mutex_unlock(&share_locks[data]);
}

static int handle_key_ready;

static void handle_key_init(void)
{
    int i;
    handle_key_ready = pthread_key_create(&handle_key, handle_free) == 0;
    for (i = 0; i < CURL_LOCK_DATA_LAST; i++) {
        pthread_mutex_init(&share_locks[i], NULL);
    }
    /* Without it every thread still works on its own, as before. */
    if ((share = curl_share_init()) != NULL
        && (curl_share_setopt(share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK
            || curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK
            || curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION)
               != CURLSHE_OK
            || curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK)) {
        curl_share_cleanup(share);
        share = NULL;
    }
}

typedef struct {
    apr_pool_t *p;
    char *buf;
    apr_size_t len, cap;
    int too_big;
    long retry_after;
} sink_t;

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    sink_t *s = ud;
    apr_size_t n = size * nmemb;

    if (s->len + n > MC_HTTP_MAX_RESPONSE) {
        s->too_big = 1;
        return 0; /* makes curl abort the transfer */
    }
    if (s->len + n + 1 > s->cap) {
        apr_size_t cap = s->cap ? s->cap : 4096;
        char *nb;
        while (cap < s->len + n + 1) {
            cap *= 2;
        }
        nb = apr_palloc(s->p, cap);
        if (s->len) {
            memcpy(nb, s->buf, s->len);
        }
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    s->buf[s->len] = '\0';
    return n;
}

/* Retry-After (RFC 9110 10.2.3) in seconds from now: delta-seconds or an HTTP-date; -1 when
 * absent or unreadable. A date already past means "now" (0). */
long mc_http_retry_after(const char *v, apr_size_t n, apr_time_t now)
{
    const char *end = v + n;
    long secs = 0;
    int digits = 0;
    char date[64];
    apr_time_t when;

    while (v < end && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '
                       || end[-1] == '\t')) {
        end--;
    }
    if (v == end) {
        return -1;
    }
    while (v + digits < end && isdigit((unsigned char)v[digits])) {
        if (secs < MC_HTTP_RETRY_AFTER_MAX) {
            secs = secs * 10 + (v[digits] - '0');
        }
        digits++;
    }
    if (digits && v + digits == end) {
        return secs < MC_HTTP_RETRY_AFTER_MAX ? secs : MC_HTTP_RETRY_AFTER_MAX;
    }
    if (digits || (apr_size_t)(end - v) >= sizeof(date)) {
        return -1;
    }
    memcpy(date, v, end - v);
    date[end - v] = '\0';
    when = apr_date_parse_http(date);
    if (when == APR_DATE_BAD) {
        return -1;
    }
    if (when <= now) {
        return 0;
    }
    /* Rounded up: a client that comes back at the announced second is not early. */
    secs = (long)((when - now + APR_USEC_PER_SEC - 1) / APR_USEC_PER_SEC);
    return secs < MC_HTTP_RETRY_AFTER_MAX ? secs : MC_HTTP_RETRY_AFTER_MAX;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    sink_t *s = ud;
    apr_size_t n = size * nmemb;
    static const char name[] = "retry-after:";

    if (n > sizeof(name) - 1 && strncasecmp(data, name, sizeof(name) - 1) == 0) {
        s->retry_after = mc_http_retry_after(data + sizeof(name) - 1, n - (sizeof(name) - 1),
                                             apr_time_now());
    }
    return n;
}

static CURL *handle(void)
{
    CURL *h;
    pthread_once(&handle_once, handle_key_init);
    h = pthread_getspecific(handle_key);
    if (!h) {
        h = curl_easy_init();
        if (h) {
            pthread_setspecific(handle_key, h);
        }
    }
    else {
        /* Keeps the connection cache; forgets the previous request's options. */
        curl_easy_reset(h);
    }
    return h;
}

apr_status_t mc_http_process_end(void *unused)
{
    CURL *h;
    (void)unused;
    if (handle_key_ready && (h = pthread_getspecific(handle_key)) != NULL) {
        pthread_setspecific(handle_key, NULL);
        curl_easy_cleanup(h);
    }
    if (share && curl_share_cleanup(share) == CURLSHE_OK) {
        share = NULL;
    }
    return APR_SUCCESS;
}

static mc_http_err classify(CURLcode rc)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return MC_HTTP_ETIMEOUT;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return MC_HTTP_ECONNECT;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CACERT_BADFILE:
#if LIBCURL_VERSION_NUM < 0x073e00
    case CURLE_SSL_CACERT:
#endif
        return MC_HTTP_ETLS;
    default:
        return MC_HTTP_EOTHER;
    }
}

const char *mc_http_err_str(mc_http_err e)
{
    switch (e) {
    case MC_HTTP_OK: return "ok";
    case MC_HTTP_ETIMEOUT: return "timeout";
    case MC_HTTP_ECONNECT: return "connection failed";
    case MC_HTTP_ETLS: return "TLS verification failed";
    case MC_HTTP_ETOOBIG: return "response too large";
    default: return "transport error";
    }
}

apr_status_t mc_http_call(apr_pool_t *p, const mc_http_opts *o, const char *url,
                          const char *bearer, const char *json_body, mc_http_response *resp)
{
    CURL *c = handle();
    struct curl_slist *hdrs = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    sink_t sink = { p, NULL, 0, 0, 0, -1 };
    apr_time_t start = apr_time_now();
    CURLcode rc;
    long status = 0;

    memset(resp, 0, sizeof(*resp));
    resp->retry_after = -1;
    if (!c) {
        resp->err = MC_HTTP_EOTHER;
        resp->detail = "curl_easy_init failed";
        return APR_ENOMEM;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (share) {
        curl_easy_setopt(c, CURLOPT_SHARE, share);
    }
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTPS | CURLPROTO_HTTP));
#endif
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, o->connect_timeout);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, o->total_timeout);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE, (long)MC_HTTP_MAX_RESPONSE);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, o->verify ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, o->verify ? 2L : 0L);
    if (o->ca_file) {
        curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
    }
    if (o->proxy) {
        curl_easy_setopt(c, CURLOPT_PROXY, o->proxy);
    }
    else {
        /* Ignore http_proxy from httpd's environment: only the directive chooses a proxy. */
        curl_easy_setopt(c, CURLOPT_PROXY, "");
    }
    curl_easy_setopt(c, CURLOPT_USERAGENT, "mod_monei_connect/0.1");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &sink);

    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    if (bearer) {
        hdrs = curl_slist_append(hdrs, apr_pstrcat(p, "Authorization: Bearer ", bearer, NULL));
    }
    if (json_body) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        hdrs = curl_slist_append(hdrs, "Expect:");
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json_body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(json_body));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);

    rc = curl_easy_perform(c);
    /* Header list, body and buffers live on this stack or in p: the reused handle must not
     * keep pointers to them. */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, NULL);
    curl_slist_free_all(hdrs);
    resp->elapsed = apr_time_now() - start;

    if (sink.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        resp->err = MC_HTTP_ETOOBIG;
        resp->detail = "response larger than the limit";
        return APR_ENOSPC;
    }
    if (rc != CURLE_OK) {
        resp->err = classify(rc);
        resp->detail = apr_pstrdup(p, errbuf[0] ? errbuf : curl_easy_strerror(rc));
        return APR_EGENERAL;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    resp->err = MC_HTTP_OK;
    resp->status = (int)status;
    resp->body = sink.buf ? sink.buf : "";
    resp->len = sink.len;
    resp->retry_after = sink.retry_after;
    return APR_SUCCESS;
}
