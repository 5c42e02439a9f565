/* Unit tests of mc_value.c: file:/env: values, seconds, URLs. */
#include "mc_test.h"
#include "mc_value.h"

#include <apr_general.h>
#include <apr_strings.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_resolve(apr_pool_t *p)
{
    const char *why, *v;
    char path[] = "/tmp/mc_value_testXXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");

    fputs("mcs_from_file_123\r\n\n", f);
    fclose(f);
    v = mc_value_resolve(p, apr_pstrcat(p, "file:", path, NULL), &why);
    CHECK(v && !strcmp(v, "mcs_from_file_123"), "file: value read, trailing CR/LF stripped");

    f = fopen(path, "w");
    fclose(f);
    v = mc_value_resolve(p, apr_pstrcat(p, "file:", path, NULL), &why);
    CHECK(v == NULL && why && strstr(why, "empty"), "empty file refused");
    unlink(path);

    v = mc_value_resolve(p, apr_pstrcat(p, "file:", path, NULL), &why);
    CHECK(v == NULL && why && strstr(why, "cannot open"), "missing file refused with reason");
    v = mc_value_resolve(p, "file:relative", &why);
    CHECK(v == NULL && why && strstr(why, "absolute"), "relative file: path refused");

    setenv("MC_VALUE_TEST_VAR", "from-env", 1);
    v = mc_value_resolve(p, "env:MC_VALUE_TEST_VAR", &why);
    CHECK(v && !strcmp(v, "from-env"), "env: value read");
    v = mc_value_resolve(p, "env:MC_VALUE_TEST_UNSET_VAR", &why);
    CHECK(v == NULL && why && strstr(why, "MC_VALUE_TEST_UNSET_VAR"), "unset env: named");
    v = mc_value_resolve(p, "plain-value", &why);
    CHECK(v && !strcmp(v, "plain-value"), "plain value kept");
    v = mc_value_resolve(p, "", &why);
    CHECK(v == NULL, "empty value refused");
}

static void test_seconds(void)
{
    long out = -1;
    CHECK(mc_value_seconds("60", 0, 100, &out) == NULL && out == 60, "60 parsed");
    CHECK(mc_value_seconds("0", 0, 100, &out) == NULL && out == 0, "0 allowed at min 0");
    CHECK(mc_value_seconds("0", 1, 100, &out) != NULL, "0 refused at min 1");
    CHECK(mc_value_seconds("101", 0, 100, &out) != NULL, "above max refused");
    CHECK(mc_value_seconds("-1", 0, 100, &out) != NULL, "negative refused");
    CHECK(mc_value_seconds("1.5", 0, 100, &out) != NULL, "fraction refused");
    CHECK(mc_value_seconds("12abc", 0, 100, &out) != NULL, "trailing garbage refused");
    CHECK(mc_value_seconds("99999999999999999999", 0, 100, &out) != NULL, "overflow refused");
    CHECK(mc_value_seconds("", 0, 100, &out) != NULL, "empty refused");
}

static void test_url(apr_pool_t *p)
{
    const char *scheme, *host, *path;
    int port;
    CHECK(mc_value_url(p, "https://app.example.com/monei/callback", 1, &scheme, &host, &port,
                       &path) == NULL, "https URL accepted");
    CHECK(!strcmp(scheme, "https") && !strcmp(host, "app.example.com") && port == 443
          && !strcmp(path, "/monei/callback"), "parts of an https URL");
    CHECK(mc_value_url(p, "http://127.0.0.1:3000/cb", 1, &scheme, &host, &port, &path) == NULL
          && port == 3000 && !strcmp(path, "/cb"), "explicit port");
    CHECK(mc_value_url(p, "https://h.example", 1, NULL, NULL, NULL, &path) == NULL
          && !strcmp(path, "/"), "empty path is /");
    CHECK(mc_value_url(p, "ftp://h.example/x", 1, NULL, NULL, NULL, NULL) != NULL, "ftp refused");
    CHECK(mc_value_url(p, "/relative", 1, NULL, NULL, NULL, NULL) != NULL, "relative refused");
    CHECK(mc_value_url(p, "https://u:p@h.example/", 1, NULL, NULL, NULL, NULL) != NULL,
          "userinfo refused");
    CHECK(mc_value_url(p, "https://h.example/#frag", 1, NULL, NULL, NULL, NULL) != NULL,
          "fragment refused");
    CHECK(mc_value_url(p, "https://h.example/a b", 1, NULL, NULL, NULL, NULL) != NULL,
          "space refused");
    CHECK(mc_value_url(p, "socks5://127.0.0.1:1080", 0, &scheme, NULL, NULL, NULL) == NULL
          && !strcmp(scheme, "socks5"), "any scheme when not restricted");
}

int main(void)
{
    apr_pool_t *p;
    apr_initialize();
    apr_pool_create(&p, NULL);
    test_resolve(p);
    test_seconds();
    test_url(p);
    apr_pool_destroy(p);
    apr_terminate();
    return MC_TEST_DONE();
}
