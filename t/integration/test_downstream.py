"""What downstream sees, and who may change it: forged headers never reach a backend, the
sensitive directives are not .htaccess directives, pages under AuthType MoneiConnect are
private to one user even behind mod_cache, Monei's data is bounded, the Bearer mode, and
ErrorDocument replacing the module's pages."""
import http.client
import json
import os
import re
import shutil
import time

import pytest

import harness
from browser import Browser

pytestmark = pytest.mark.usefixtures("fresh_sandbox")

ADA = "6f1c2a9e-3d4b-4c8a-9e1f-0a2b3c4d5e01"
ADEBAYO = "a7d2c4e1-5b6f-4a3c-8d9e-1f2a3b4c5d02"

CONF = harness.ACCOUNT_LOCATION + """Alias /short {htdocs}/account
<Location /short>
    AuthType MoneiConnect
    MoneiConnectWalletMaxAge 5
    Require valid-user
</Location>
ProxyPass /inside/ http://127.0.0.1:{backend}/
<Location /inside/>
    AuthType MoneiConnect
    MoneiConnectUnauthAction pass
    MoneiConnectExport headers
    MoneiConnectPassAccessToken Bearer
    Require valid-user
</Location>
ProxyPass /acme/ http://127.0.0.1:{backend}/
<Location /acme/>
    AuthType MoneiConnect
    MoneiConnectExport both
    MoneiConnectHeaderPrefix X-Acme-Monei-
    Require valid-user
</Location>
ProxyPass /outside/ http://127.0.0.1:{backend}/
<Directory {htdocs}/hta>
    AllowOverride AuthConfig
</Directory>
CacheRoot {cache}
CacheQuickHandler On
CacheEnable disk /cached/
Alias /cached {htdocs}/cached
<Location /cached>
    AuthType MoneiConnect
    Require valid-user
</Location>
ErrorDocument 403 /err.shtml
Alias /send {htdocs}/account
<Location /send>
    AuthType MoneiConnect
    MoneiConnectStepUp Off
    Require monei-scope wallet:send
</Location>
<Location /monei-status>
    SetHandler monei-connect-status
    Require ip 127.0.0.1
</Location>
"""


@pytest.fixture(scope="module")
def site(sandbox, backend):
    cache = os.path.join(harness.RUN, "cache-downstream")
    os.makedirs(cache, exist_ok=True)
    os.chmod(cache, 0o777)
    h = harness.Httpd("downstream", "", modules=("proxy", "proxy_http", "cache", "cache_disk"))
    h.body = harness.monei_directives(sandbox, h.port) + CONF.format(
        htdocs=harness.HTDOCS, backend=backend.port, cache=cache)
    h.start()
    os.makedirs(os.path.join(harness.HTDOCS, "hta"), exist_ok=True)
    os.chmod(os.path.join(harness.HTDOCS, "hta"), 0o755)
    yield h
    h.stop()


def login(site, ca, user="ada", url="/account/env.cgi"):
    b = Browser(ca)
    cb = b.login(site.url + url, user=user)
    assert cb.status_code == 302, (cb.status_code, cb.text[:300])
    return b


def cookie_header(b):
    return "; ".join("%s=%s" % (c.name, c.value) for c in b.s.cookies)


def raw_get(site, path, headers):
    """GET with header lines exactly as given: any case, underscores, duplicates."""
    conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=30)
    conn.putrequest("GET", path, skip_accept_encoding=True)
    for name, value in headers:
        conn.putheader(name, value)
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body


FORGED = [
    ("X_Monei_User_Id", "victim"),
    ("x-monei-user-id", "victim"),
    ("X-MONEI-SCOPE-WALLET-SEND", "1"),
    ("X-Monei_Scope_Wallet_Send", "1"),
    ("X_Acme_Monei_User_Id", "victim"),
    ("x-acme-monei-scope-wallet-send", "1"),
]


def forged_lines():
    # every forged header twice, so duplicates are covered too
    return FORGED + FORGED


def ours(name):
    folded = name.lower().replace("_", "-")
    return folded.startswith("x-monei-") or folded.startswith("x-acme-monei-")


@pytest.mark.parametrize("path", ["/inside/", "/outside/", "/acme/"])
@pytest.mark.parametrize("who", ["anonymous", "connected"])
def test_forged_headers_never_reach_the_backend(site, ca, path, who):
    headers = [("Accept", "application/json")] + forged_lines()
    if who == "connected":
        b = login(site, ca)
        headers.append(("Cookie", cookie_header(b)))
    status, body = raw_get(site, path + "echo", headers)
    if path == "/acme/" and who == "anonymous":
        assert status == 401          # protected, an API client: nothing reaches the backend
        return
    assert status == 200, body[:300]
    seen = json.loads(body)
    assert b"victim" not in body
    received = [(n, v) for n, v in seen["raw"] if ours(n)]
    if who == "anonymous" or path == "/outside/":
        # only the module's own MONEI_CONNECTED=0 where it exports (UnauthAction pass)
        expected = [("X-Monei-Connected", "0")] if path == "/inside/" else []
        assert received == expected
        assert [k for k in seen["cgi"] if k.startswith("HTTP_X_MONEI_")
                or k.startswith("HTTP_X_ACME_MONEI_")] == \
            (["HTTP_X_MONEI_CONNECTED"] if expected else [])
        return
    # connected, inside a location exporting headers: only what the module set, once each
    prefix = "x-monei-" if path == "/inside/" else "x-acme-monei-"
    assert all(n.lower().startswith(prefix) for n, _ in received), received
    key = "HTTP_" + prefix.upper().replace("-", "_") + "USER_ID"
    assert seen["cgi"][key] == [ADA]
    assert not [k for k in seen["cgi"] if k.endswith("SCOPE_WALLET_SEND")]
    names = [n.lower() for n, _ in received]
    assert len(names) == len(set(names)), "a header exported twice"


def test_bearer_replaces_a_forged_authorization(site, ca):
    b = login(site, ca)
    status, body = raw_get(site, "/inside/echo", [
        ("Accept", "application/json"), ("Cookie", cookie_header(b)),
        ("Authorization", "Basic dmljdGltOnB3"), ("authorization", "Bearer mct_forged")])
    assert status == 200, body[:300]
    seen = json.loads(body)
    auth = [v for n, v in seen["raw"] if n.lower() == "authorization"]
    assert len(auth) == 1 and re.fullmatch(r"Bearer mct_\S+", auth[0]), auth
    assert auth[0] != "Bearer mct_forged"
    harness.record_secret(auth[0].split()[1])
    # the same token the application would get with PassAccessToken On
    token = [v for n, v in seen["raw"] if n.lower() == "x-monei-access-token"]
    assert token == [auth[0].split()[1]]
    # without a session (UnauthAction pass) the forged Authorization is dropped, not passed
    status, body = raw_get(site, "/inside/echo", [("Accept", "application/json"),
                                                  ("Authorization", "Bearer mct_forged")])
    assert status == 200
    assert not [n for n, _ in json.loads(body)["raw"] if n.lower() == "authorization"]


SENSITIVE = [
    ("MoneiConnectPassAccessToken", "On"),
    ("MoneiConnectScope", '"wallet:read wallet:send"'),
    ("MoneiConnectExport", "both"),
    ("MoneiConnectHeaderPrefix", "X-Evil-"),
    ("MoneiConnectLogoutRedirect", "https://evil.example/"),
]


def htaccess_dir(name, lines):
    d = os.path.join(harness.HTDOCS, "hta", name)
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    shutil.copy(os.path.join(harness.HTDOCS, "env.cgi"), os.path.join(d, "env.cgi"))
    os.chmod(os.path.join(d, "env.cgi"), 0o755)
    with open(os.path.join(d, ".htaccess"), "w") as f:
        f.write("AuthType MoneiConnect\nRequire valid-user\n" + "\n".join(lines) + "\n")
    os.chmod(os.path.join(d, ".htaccess"), 0o644)
    return "/hta/%s/env.cgi" % name


@pytest.mark.parametrize("directive,value", SENSITIVE)
def test_sensitive_directive_in_htaccess_is_refused(site, ca, directive, value):
    url = htaccess_dir(directive.lower(), ["%s %s" % (directive, value)])
    b = login(site, ca)                       # a user logged in elsewhere on the host
    r = b.get(site.url + url)
    assert r.status_code == 500
    assert "mct_" not in r.text and "MONEI_" not in r.text
    log = site.error_log_text()
    assert re.search(r"\.htaccess: %s not allowed here" % directive, log), log[-2000:]


def test_htaccess_may_still_set_the_rest(site, ca):
    url = htaccess_dir("allowed", ["MoneiConnectUnauthAction 401", "MoneiConnectStepUp Off",
                                   "MoneiConnectWalletMaxAge 30",
                                   "Require monei-scope wallet:read"])
    b = login(site, ca)
    r = b.get(site.url + url)
    assert r.status_code == 200, r.text[:300]
    env = r.json()
    assert env["REMOTE_USER"] == ADA
    assert "MONEI_ACCESS_TOKEN" not in env and "mct_" not in r.text


def test_pages_are_private_to_one_user_behind_mod_cache(site, ca):
    # adebayo first: the sandbox's consent page leaves out scopes ada already granted
    users = [(login(site, ca, "adebayo", "/cached/whoami.cgi"), ADEBAYO),
             (login(site, ca, "ada", "/cached/whoami.cgi"), ADA)]
    for i in range(100):
        b, who = users[i % 2]
        r = b.get(site.url + "/cached/whoami.cgi")
        assert r.status_code == 200
        assert r.json()["user"] == who, "request %d served another user's page" % i
        cc = [d.strip() for d in r.headers["Cache-Control"].split(",")]
        assert "private" in cc and "max-age=60" in cc and "public" not in cc
        assert "Cookie" in [v.strip() for v in r.headers["Vary"].split(",")]
    # and a request without a session never gets a cached page either
    r = Browser(ca).get(site.url + "/cached/whoami.cgi")
    assert r.status_code == 302


def test_login_and_error_pages_keep_no_store(site, ca):
    b = Browser(ca)
    first = b.get(site.url + "/account/env.cgi")
    assert first.status_code == 302 and first.headers["Cache-Control"] == "no-store"
    cb = b.get(site.url + "/monei/callback?state=nope&code=x")
    assert cb.status_code == 400 and cb.headers["Cache-Control"] == "no-store"


def status_json(site, ca):
    return Browser(ca).get(site.url + "/monei-status?json").json()


def test_huge_profile_field_is_left_out_not_a_failed_login(site, ca, sandbox):
    before = status_json(site, ca)
    sandbox.control("user_data", {"user": "ada", "profile": {"firstName": "x" * 100000}})
    b = login(site, ca)
    r = b.get(site.url + "/account/env.cgi")
    assert r.status_code == 200
    env = r.json()
    assert env["REMOTE_USER"] == ADA == env["MONEI_USER_ID"]
    assert "MONEI_USER_FIRST_NAME" not in env
    assert env["MONEI_USER_FIRST_NAME_TRUNCATED"] == "1"
    assert env["MONEI_USER_JSON_TRUNCATED"] == "1"
    user = json.loads(env["MONEI_USER_JSON"])
    assert "firstName" not in user and user["lastName"] == "Okafor"
    assert env["MONEI_USER_LAST_NAME"] == "Okafor"
    assert env["MONEI_WALLET_NAIRA_BALANCE"] == "1805.00"
    after = status_json(site, ca)
    assert after["store_errors"] == before["store_errors"]
    assert after["records_too_large"] > before["records_too_large"]
    assert after["logins_failed_store"] == before["logins_failed_store"]
    assert "mc-record-cap:" in site.error_log_text()


def test_wallet_grown_past_the_cap_is_not_fetched_again(site, ca, sandbox):
    before = status_json(site, ca)
    b = login(site, ca, url="/short/env.cgi")
    grown = [{"id": "grow-%04d" % i, "type": "CRYPTO", "currency": "X", "chain": "OTHER",
              "publicAddress": "0x%040d" % i} for i in range(100)]
    fiat = {"id": "0b6f3a52-1c2d-4e8f-9a01-ada000000001", "type": "FIAT", "currency": "NGN",
            "virtualAccount": {"accountNumber": "9012345678", "bankName": "Wema Bank"}}
    sandbox.control("user_data", {"user": "ada", "wallet": {"subwallets": [fiat] + grown}})
    time.sleep(5.2)                           # MoneiConnectWalletMaxAge 5 passes: a new snapshot
    t0 = time.time()
    env = b.get(site.url + "/short/env.cgi").json()
    assert "MONEI_WALLET_JSON" not in env and env["MONEI_WALLET_JSON_TRUNCATED"] == "1"
    assert env["MONEI_WALLET_NAIRA_BALANCE"] == "1805.00"
    assert env["MONEI_WALLET_VIRTUAL_ACCOUNT_NUMBER"] == "9012345678"
    assert env["REMOTE_USER"] == ADA
    calls = sandbox.counters()["calls"]["wallet"]
    # the snapshot is stamped in whole seconds: requests within max age - 1 s of t0 (a margin
    # for a slow machine) are certainly inside it
    n = 0
    while time.time() - t0 < 3.0:
        env = b.get(site.url + "/short/env.cgi").json()
        assert env["MONEI_WALLET_JSON_TRUNCATED"] == "1"
        n += 1
    assert n >= 2, "the machine is too slow for this test"
    assert sandbox.counters()["calls"]["wallet"] == calls, "Monei asked again within max age"
    time.sleep(max(0.0, t0 + 6.2 - time.time()))
    b.get(site.url + "/short/env.cgi")
    assert sandbox.counters()["calls"]["wallet"] == calls + 1
    after = status_json(site, ca)
    assert after["store_errors"] == before["store_errors"]


def test_error_document_replaces_the_denied_consent_page(site, ca):
    b = Browser(ca)
    cb = b.login(site.url + "/account/env.cgi", action="deny")
    assert cb.status_code == 403
    assert "Our own error page" in cb.text
    assert "MONEI_ERROR=access_denied" in cb.text
    assert "REDIRECT_MONEI_ERROR=access_denied" in cb.text
    assert "chose not to connect" in cb.text
    assert cb.headers["Cache-Control"] == "no-store"


def test_error_document_replaces_an_authorization_denial(site, ca):
    b = login(site, ca)
    r = b.get(site.url + "/send/env.cgi")
    assert r.status_code == 403, (r.status_code, r.text[:300])
    assert "Our own error page" in r.text
    assert "REDIRECT_MONEI_ERROR=insufficient_scope" in r.text
    assert "wallet:send" in r.text
    assert "WWW-Authenticate" not in r.headers


def test_pass_access_token_values(httpd_factory, sandbox):
    for value, ok in (("Bearer", True), ("bearer", True), ("On", True), ("Off", True),
                      ("Maybe", False)):
        h = httpd_factory("pat-%s" % value.lower(), "")
        h.body = harness.monei_directives(sandbox, h.port) + """<Location /x>
    AuthType MoneiConnect
    MoneiConnectPassAccessToken %s
    Require valid-user
</Location>
""" % value
        rc, out = h.configtest()
        assert (rc == 0) == ok, out
        if not ok:
            assert "MoneiConnectPassAccessToken: must be On, Off or Bearer" in out
