"""The module loads, every directive is parsed and validated, and a server that uses
the module without what it needs refuses to start, naming the directive and where."""
import re
import subprocess
import urllib.request

import pytest

import harness

PROTECTED = """
<Location /account>
    AuthType MoneiConnect
    Require valid-user
</Location>
"""


def full_conf(sandbox, port, extra=""):
    return harness.monei_directives(sandbox, port, extra=extra) + PROTECTED


def test_module_loads_and_serves(sandbox, httpd_factory):
    h = httpd_factory("loads", "")
    h.body = full_conf(sandbox, h.port)
    rc, out = h.configtest()
    assert rc == 0, out
    assert "Syntax OK" in out
    h.start()
    with urllib.request.urlopen(h.url + "/static.txt", timeout=5) as r:
        assert r.status == 200
    log = h.error_log_text()
    assert "monei_connect:error" not in log and "monei_connect:emerg" not in log, log


def test_directive_help_is_listed(sandbox, httpd_factory):
    h = httpd_factory("help", "")
    h.write_conf()
    r = subprocess.run([harness.HTTPD, "-f", h.conf, "-L"], capture_output=True, text=True,
                       env=harness.sanitizer_env())
    assert r.returncode == 0, r.stderr
    for name in ("MoneiConnectClientID", "MoneiConnectCryptoPassphrase",
                 "MoneiConnectSessionStore", "MoneiConnectUnauthAction"):
        assert name in r.stdout
    assert "never logged" in r.stdout  # the help strings are there, not just names


@pytest.mark.parametrize("missing", ["MoneiConnectClientID", "MoneiConnectClientSecret",
                                     "MoneiConnectRedirectURI", "MoneiConnectCryptoPassphrase"])
@pytest.mark.parametrize("usage", ["authtype", "handler"])
def test_required_directive_missing_fails_configtest(sandbox, httpd_factory, missing, usage):
    h = httpd_factory("missing", "")
    lines = [l for l in harness.monei_directives(sandbox, h.port).splitlines()
             if not l.startswith(missing + " ")]
    use = PROTECTED if usage == "authtype" else \
        "<Location /dashboard>\n    SetHandler monei-connect-info\n</Location>\n"
    h.body = "\n".join(lines) + use
    rc, out = h.configtest()
    assert rc != 0
    assert missing + " is required" in out
    # names where the module is used: this config file and a line number
    assert re.search(re.escape(h.conf) + r":\d+", out), out
    assert "Syntax OK" not in out


def test_unused_module_needs_nothing(httpd_factory):
    h = httpd_factory("unused", "")
    rc, out = h.configtest()
    assert rc == 0, out


BAD_VALUES = [
    ("MoneiConnectSessionInactivityTimeout abc", "must be a whole number of seconds"),
    ("MoneiConnectSessionInactivityTimeout 0", "out of range"),
    ("MoneiConnectSessionMaxDuration -5", "whole number"),
    ("MoneiConnectRefreshBeforeExpiry 999999", "out of range"),
    ("MoneiConnectWalletMaxAge 1.5", "whole number"),
    ("MoneiConnectCookieSameSite Sometimes", "must be Lax, Strict or None"),
    ("MoneiConnectCookieSecure maybe", "must be On, Off or Auto"),
    ("MoneiConnectExport cookies", "must be env, headers, both or none"),
    ("MoneiConnectUnauthAction redirect", "must be auth, 401 or pass"),
    ("MoneiConnectPKCE perhaps", "must be On or Off"),
    ("MoneiConnectScope \"wallet:read wallet:fly\"", "unknown scope 'wallet:fly'"),
    ("MoneiConnectAuthorizeURL monei.cc/connect", "absolute URL"),
    ("MoneiConnectAPIBase ftp://api.monei.cc/api/v1", "http:// or https://"),
    ("MoneiConnectRedirectURI https://app.example/", "needs a path of its own"),
    ("MoneiConnectRedirectURI https://user:pw@app.example/cb", "user information"),
    ("MoneiConnectHTTPTimeout 10 5", "total timeout must not be shorter"),
    ("MoneiConnectHTTPTimeout 0 5", "out of range"),
    ("MoneiConnectCAFile /nonexistent/ca.pem", "is not a readable file"),
    ("MoneiConnectClientSecret file:/nonexistent/secret", "cannot open /nonexistent/secret"),
    ("MoneiConnectClientSecret env:MC_SURELY_UNSET_VARIABLE", "MC_SURELY_UNSET_VARIABLE is not set"),
    ("MoneiConnectCryptoPassphrase file:relative/path", "absolute path"),
    ("MoneiConnectSessionCookie \"bad;name\"", "must be a cookie name"),
    ("MoneiConnectHeaderPrefix \"X Monei\"", "header-name prefix"),
    ("MoneiConnectTrustedReturnHost evil/path", "host name"),
    ("MoneiConnectLogoutRedirect //evil.example", "local path"),
    ("MoneiConnectOutboundProxy ftp://proxy:21", "http, https, socks4"),
    ("MoneiConnectSessionStore \"\"", "ap_socache provider"),
]


@pytest.mark.parametrize("line,why", BAD_VALUES, ids=[b[0].split()[0] + "-" + str(i)
                                                      for i, b in enumerate(BAD_VALUES)])
def test_bad_value_rejected_with_reason(sandbox, httpd_factory, line, why):
    h = httpd_factory("bad", "")
    h.body = full_conf(sandbox, h.port, extra=line)
    rc, out = h.configtest()
    assert rc != 0, out
    name = line.split()[0]
    assert name in out and why in out, out
    assert re.search(r"line \d+ of " + re.escape(h.conf), out), out


def test_good_values_accepted(sandbox, httpd_factory):
    h = httpd_factory("good", "")
    extra = """MoneiConnectSessionInactivityTimeout 600
MoneiConnectSessionMaxDuration 3600
MoneiConnectRefreshBeforeExpiry 30
MoneiConnectCookieSameSite Strict
MoneiConnectCookieSecure Off
MoneiConnectPKCE Off
MoneiConnectSSLVerify On
MoneiConnectTrustedReturnHost shop.example.com other.example:8443 app.example
MoneiConnectOutboundProxy http://127.0.0.1:3128
MoneiConnectSessionCookie mysess
MoneiConnectSessionStore shmcb
<Location /x>
    MoneiConnectScope "wallet:read wallet:send"
    MoneiConnectWalletMaxAge 0
    MoneiConnectExport both
    MoneiConnectHeaderPrefix X-Wallet-
    MoneiConnectPassAccessToken On
    MoneiConnectUnauthAction pass
    MoneiConnectStepUp Off
    MoneiConnectLogoutRedirect https://app.example/bye
</Location>
"""
    h.body = full_conf(sandbox, h.port, extra=extra)
    rc, out = h.configtest()
    assert rc == 0, out


def test_samesite_none_needs_secure(sandbox, httpd_factory):
    h = httpd_factory("samesite", "")
    h.body = full_conf(sandbox, h.port, extra="MoneiConnectCookieSameSite None\n"
                                               "MoneiConnectCookieSecure Off")
    rc, out = h.configtest()
    assert rc != 0 and "SameSite None needs Secure" in out, out


def test_sslverify_off_warns(sandbox, httpd_factory):
    h = httpd_factory("noverify", "")
    h.body = full_conf(sandbox, h.port, extra="MoneiConnectSSLVerify Off")
    rc, out = h.configtest()
    assert rc == 0, out
    assert "NOT verified" in out


def test_session_store_global_only(sandbox, httpd_factory):
    h = httpd_factory("storectx", "")
    h.body = full_conf(sandbox, h.port) + """
<VirtualHost 127.0.0.1:%d>
    MoneiConnectSessionStore shmcb
</VirtualHost>
""" % h.port
    rc, out = h.configtest()
    assert rc != 0 and "MoneiConnectSessionStore" in out and "VirtualHost" in out, out


def test_missing_socache_provider_is_named(sandbox, httpd_factory):
    h = httpd_factory("noshmcb", "", exclude=("socache_shmcb",))
    h.body = full_conf(sandbox, h.port, extra="MoneiConnectSessionStore shmcb")
    rc, out = h.configtest()
    assert rc != 0
    assert "LoadModule socache_shmcb_module" in out and "mod_socache_shmcb.so" in out, out


def test_default_store_needs_no_socache_module(sandbox, httpd_factory):
    # the built-in store (shm) is the default: no mod_socache_* module needed
    h = httpd_factory("builtin", "", exclude=("socache_shmcb",))
    h.body = full_conf(sandbox, h.port)
    rc, out = h.configtest()
    assert rc == 0, out
    h.body = full_conf(sandbox, h.port, extra="MoneiConnectSessionStore shm:2000")
    rc, out = h.configtest()
    assert rc == 0, out


@pytest.mark.parametrize("arg", ["shm:", "shm:0", "shm:-5", "shm:12x", "shm:1e6",
                                 "shm:10000001", "shm:99999999999999999999", "shm:/tmp/x(1024)"])
def test_bad_builtin_store_size_rejected(sandbox, httpd_factory, arg):
    h = httpd_factory("badshm", "")
    h.body = full_conf(sandbox, h.port, extra="MoneiConnectSessionStore %s" % arg)
    rc, out = h.configtest()
    assert rc != 0 and "MoneiConnectSessionStore shm:" in out, out
    assert "number of sessions" in out, out


def test_missing_redis_provider_is_named(sandbox, httpd_factory):
    h = httpd_factory("noredis", "")
    h.body = full_conf(sandbox, h.port, extra="MoneiConnectSessionStore redis:127.0.0.1:6379")
    rc, out = h.configtest()
    assert rc != 0
    assert "socache_redis_module" in out and "mod_socache_redis.so" in out, out


def test_bad_store_arguments_rejected(sandbox, httpd_factory):
    h = httpd_factory("badshmcb", "")
    h.body = full_conf(sandbox, h.port, extra="MoneiConnectSessionStore shmcb:/tmp/x(notanumber)")
    rc, out = h.configtest()
    assert rc != 0 and "MoneiConnectSessionStore shmcb" in out, out


def test_vhost_inherits_required_from_main(sandbox, httpd_factory):
    h = httpd_factory("vhost", "")
    h.body = harness.monei_directives(sandbox, h.port) + """
<VirtualHost 127.0.0.1:%d>
    ServerName vhost.example
    <Location /account>
        AuthType MoneiConnect
        Require valid-user
    </Location>
</VirtualHost>
""" % h.port
    rc, out = h.configtest()
    assert rc == 0, out
