"""Require monei-scope with step-up, API clients, reverse proxies."""
import urllib.parse

import pytest

import harness
from browser import Browser

# every test starts from a reset sandbox without rate limits or faults (t/conftest.py)
pytestmark = pytest.mark.usefixtures("fresh_sandbox")

CONF = harness.STEP_UP_LOCATIONS + """
<Location /read>
    AuthType MoneiConnect
    Require monei-scope wallet:read
</Location>
Alias /read {htdocs}/account
<Location /anyip>
    AuthType MoneiConnect
    <RequireAny>
        Require ip 127.0.0.1
        Require monei-scope wallet:send
    </RequireAny>
</Location>
Alias /anyip {htdocs}/account
<Location /anyotherip>
    AuthType MoneiConnect
    MoneiConnectStepUp Off
    <RequireAny>
        Require ip 10.255.255.1
        Require monei-scope wallet:send
    </RequireAny>
</Location>
Alias /anyotherip {htdocs}/account
<Location /allip>
    AuthType MoneiConnect
    <RequireAll>
        Require ip 10.255.255.1
        Require monei-scope wallet:read
    </RequireAll>
</Location>
Alias /allip {htdocs}/account
<Location /allok>
    AuthType MoneiConnect
    <RequireAll>
        Require ip 127.0.0.1
        Require monei-scope wallet:read
    </RequireAll>
</Location>
Alias /allok {htdocs}/account
""" + harness.ACCOUNT_LOCATION + """<Location /always401>
    AuthType MoneiConnect
    MoneiConnectUnauthAction 401
    Require valid-user
</Location>
Alias /always401 {htdocs}/account
<Location /pass>
    AuthType MoneiConnect
    MoneiConnectUnauthAction pass
    Require valid-user
</Location>
Alias /pass {htdocs}/account
ProxyPass /backend/ http://127.0.0.1:{backend}/
ProxyPass /backend-token/ http://127.0.0.1:{backend}/
<Location /backend/>
    AuthType MoneiConnect
    MoneiConnectExport headers
    Require valid-user
</Location>
<Location /backend-token/>
    AuthType MoneiConnect
    MoneiConnectExport headers
    MoneiConnectPassAccessToken On
    Require valid-user
</Location>
"""


@pytest.fixture(scope="module")
def site(sandbox, backend):
    h = harness.Httpd("authz", "", modules=("proxy", "proxy_http"))
    h.body = harness.monei_directives(sandbox, h.port) + CONF.format(
        htdocs=harness.HTDOCS, backend=backend.port)
    h.start()
    yield h
    h.stop()


def env(resp):
    assert resp.status_code == 200, (resp.status_code, resp.text[:300])
    return resp.json()


def test_granted_scope_200(site, sandbox, ca):
    b = Browser(ca)
    b.login(site.url + "/read/env.cgi")
    assert env(b.get(site.url + "/read/env.cgi"))["MONEI_SCOPE_WALLET_READ"] == "1"


def test_step_up_asks_only_missing_scopes_and_unions(site, sandbox, ca):
    b = Browser(ca)
    b.login(site.url + "/account/env.cgi", scopes=["wallet:read", "profile:read"])
    first_sid = b.cookie("monei_session")
    r = b.get(site.url + "/send/env.cgi?amount=5")
    assert r.status_code == 302
    loc = r.headers["Location"]
    assert loc.startswith(sandbox.https + "/connect/authorize?")
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query)
    assert q["scope"] == ["wallet:send"]
    page = b.get(loc)
    assert 'value="wallet:send"' in page.text and 'value="wallet:read"' not in page.text
    back = b.consent(loc)
    cb = b.get(back.headers["Location"])
    assert cb.status_code == 302 and cb.headers["Location"] == "/send/env.cgi?amount=5"
    e = env(b.get(site.url + cb.headers["Location"]))
    assert set(e["MONEI_SCOPES"].split()) == {"wallet:read", "profile:read", "wallet:send"}
    assert e["MONEI_SCOPE_WALLET_SEND"] == "1"
    assert b.cookie("monei_session") != first_sid       # a new id at every login


def test_step_up_declined_shows_403_naming_scope(site, sandbox, ca):
    b = Browser(ca)
    b.login(site.url + "/read/env.cgi", scopes=["wallet:read"])
    r = b.get(site.url + "/send/env.cgi")
    assert r.status_code == 302
    back = b.consent(r.headers["Location"], action="deny")
    cb = b.get(back.headers["Location"])
    assert cb.status_code == 403
    assert "wallet:send" in cb.text and "Grant permission" in cb.text
    # the session is still there and the page explains instead of looping to Monei
    assert env(b.get(site.url + "/read/env.cgi"))["MONEI_CONNECTED"] == "1"
    again = b.get(site.url + "/send/env.cgi")
    assert again.status_code == 403 and "wallet:send" in again.text
    assert again.headers["Content-Type"].startswith("text/html")


def test_step_up_partially_approved_no_loop(site, sandbox, ca):
    b = Browser(ca)
    b.login(site.url + "/read/env.cgi", scopes=["wallet:read"])
    r = b.get(site.url + "/send/env.cgi")
    back = b.consent(r.headers["Location"], scopes=[])     # approve, but untick wallet:send
    cb = b.get(back.headers["Location"])
    assert cb.status_code == 302
    page = b.get(site.url + cb.headers["Location"])
    assert page.status_code == 403 and "wallet:send" in page.text


def test_step_up_off_gives_403(site, sandbox, ca):
    b = Browser(ca)
    b.login(site.url + "/read/env.cgi", scopes=["wallet:read"])
    r = b.get(site.url + "/nostep/env.cgi")
    assert r.status_code == 403
    assert "wallet:send" in r.text
    assert "charset=utf-8" in r.headers["Content-Type"]


def test_missing_scope_api_client_json_403(site, sandbox, ca):
    b = Browser(ca)
    b.login(site.url + "/read/env.cgi", scopes=["wallet:read"])
    r = b.get(site.url + "/send/env.cgi", headers={"Accept": "application/json"})
    assert r.status_code == 403
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json()["error"] == "insufficient_scope" and "wallet:send" in r.json()["message"]


def test_require_any_with_ip(site, sandbox, ca):
    b = Browser(ca)
    b.login(site.url + "/read/env.cgi", scopes=["wallet:read"])
    assert b.get(site.url + "/anyip/env.cgi").status_code == 200      # ip grants
    assert b.get(site.url + "/anyotherip/env.cgi").status_code == 403  # neither grants


def test_require_all_with_ip(site, sandbox, ca):
    b = Browser(ca)
    b.login(site.url + "/read/env.cgi", scopes=["wallet:read"])
    assert b.get(site.url + "/allok/env.cgi").status_code == 200
    assert b.get(site.url + "/allip/env.cgi").status_code == 403


@pytest.mark.parametrize("headers", [
    {"X-Requested-With": "XMLHttpRequest"},
    {"Sec-Fetch-Mode": "cors"},
    {"Sec-Fetch-Dest": "empty", "Sec-Fetch-Mode": "navigate"},
    {"Accept": "application/json"},
], ids=["x-requested-with", "sec-fetch-mode", "sec-fetch-dest", "accept"])
def test_api_clients_get_401_json(site, ca, headers):
    b = Browser(ca)
    r = b.get(site.url + "/account/env.cgi", headers=headers)
    assert r.status_code == 401
    assert "Location" not in r.headers
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error", "message"}
    assert r.headers["WWW-Authenticate"].startswith("MoneiConnect")


def test_browser_navigation_is_redirected(site, ca):
    r = Browser(ca).get(site.url + "/account/env.cgi")
    assert r.status_code == 302 and "/connect/authorize" in r.headers["Location"]


def test_plain_client_with_star_accept_is_redirected(site, ca):
    b = Browser(ca)
    b.s.headers.pop("Sec-Fetch-Mode")
    b.s.headers.pop("Sec-Fetch-Dest")
    r = b.get(site.url + "/account/env.cgi", headers={"Accept": "*/*"})
    assert r.status_code == 302


def test_unauth_401_always(site, ca):
    r = Browser(ca).get(site.url + "/always401/env.cgi")
    assert r.status_code == 401 and "Location" not in r.headers


def test_unauth_pass(site, ca):
    e = env(Browser(ca).get(site.url + "/pass/env.cgi"))
    assert e["MONEI_CONNECTED"] == "0"
    assert not [k for k in e if k.startswith("MONEI_") and k != "MONEI_CONNECTED"]
    assert not e.get("REMOTE_USER")


def test_backend_sees_headers_not_token_by_default(site, sandbox, ca):
    b = Browser(ca)
    b.login(site.url + "/account/env.cgi", user="adebayo")
    seen = env(b.get(site.url + "/backend/x", headers={"X-Monei-User-Id": "forged",
                                                        "X-Monei-Access-Token": "mct_x"}))
    h = {k.lower(): v for k, v in seen["headers"].items()}
    assert h["x-monei-connected"] == "1"
    assert h["x-monei-user-id"] != "forged"
    assert "x-monei-access-token" not in h
    assert h["x-monei-wallet-naira-balance"]
    # non-ASCII UTF-8 survives intact in header values (the echo backend decodes latin-1)
    first = h["x-monei-user-first-name"].encode("latin-1").decode("utf-8")
    last = h["x-monei-user-last-name"].encode("latin-1").decode("utf-8")
    assert first == "Adébáyọ̀" and last == "Ọlábísí"
    for v in h.values():
        assert not any(ord(ch) < 32 or ord(ch) == 127 for ch in v)
    assert "monei_session" not in h.get("cookie", "")


def test_backend_sees_token_with_pass_access_token(site, sandbox, ca):
    b = Browser(ca)
    b.login(site.url + "/account/env.cgi")
    seen = env(b.get(site.url + "/backend-token/x"))
    h = {k.lower(): v for k, v in seen["headers"].items()}
    assert h["x-monei-access-token"].startswith("mct_")
    harness.record_secret(h["x-monei-access-token"])
    # the backend can call Monei with it
    import requests
    r = requests.get(sandbox.https + "/api/v1/wallet/me", verify=sandbox.ca.ca_cert,
                     headers={"Authorization": "Bearer " + h["x-monei-access-token"]})
    assert r.status_code == 200
    assert "x-monei-refresh-token" not in h
