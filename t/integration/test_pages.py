"""Every page has a way out: each error and refusal page the module can show links back (to
the request's return_to when it is safe, else MoneiConnectDefaultReturn), never to another
site; every JSON error names the error and says what happened."""
import re
import urllib.parse

import pytest
import requests

import harness
from browser import Browser

pytestmark = pytest.mark.usefixtures("fresh_sandbox")

API = {"Accept": "application/json"}
DEFAULT_RETURN = "/start-here"

CONF = harness.ACCOUNT_LOCATION + """MoneiConnectHTTPTimeout 1 2
# Long enough a request line for the module's own 414 on the redirect path.
LimitRequestLine 16384
MoneiConnectDefaultReturn %s
<Location /connect-monei>
    SetHandler monei-connect-login
</Location>
<Location /bye>
    SetHandler monei-connect-disconnect
</Location>
""" % DEFAULT_RETURN + harness.STEP_UP_LOCATIONS


def site(httpd_factory, sandbox, name, extra="", modules=()):
    h = httpd_factory(name, "", modules=modules)
    h.body = harness.monei_directives(sandbox, h.port, extra=extra) + \
        CONF.format(htdocs=harness.HTDOCS)
    return h.start()


@pytest.fixture
def h(httpd_factory, sandbox):
    return site(httpd_factory, sandbox, "pages")


def links_of(resp):
    return [urllib.parse.unquote(m) for m in re.findall(r'<a\b[^>]*\bhref="([^"]+)"', resp.text)]


def way_out(resp, what, status, base, to=None):
    """The page is the module's HTML page with at least one link, every link on this site."""
    assert resp.status_code == status, (what, resp.status_code, resp.text[:300])
    assert resp.headers["Content-Type"].startswith("text/html"), (what, resp.headers)
    links = links_of(resp)
    assert links, "%s: no link on the page:\n%s" % (what, resp.text)
    for href in links:
        u = urllib.parse.urlsplit(urllib.parse.urljoin(base + "/", href.replace("&amp;", "&")))
        assert "%s://%s" % (u.scheme, u.netloc) == base, (what, href)
    if to is not None:
        assert to in [l.replace("&amp;", "&") for l in links], (what, to, links)
    return links


def api_error(resp, what, status, error=None):
    assert resp.status_code == status, (what, resp.status_code, resp.text[:300])
    assert resp.headers["Content-Type"].startswith("application/json"), (what, resp.headers)
    body = resp.json()
    assert isinstance(body.get("error"), str) and body["error"], (what, body)
    assert isinstance(body.get("message"), str) and body["message"], (what, body)
    if error:
        assert body["error"] == error, (what, body)
    return body


def test_login_and_callback_refusals_link_back(h, ca):
    br = Browser(ca)
    # A callback with a state this server never issued.
    r = br.get(h.url + "/monei/callback?state=forged&code=forged")
    way_out(r, "invalid state", 400, h.url)
    r = br.get(h.url + "/monei/callback?state=forged&code=forged", headers=API)
    api_error(r, "invalid state (API)", 400, "invalid_state")
    # A return_to naming another site: back to the default return, never to that site.
    r = br.get(h.url + "/connect-monei?return_to=https://evil.example/x")
    links = way_out(r, "invalid return_to", 400, h.url, to=DEFAULT_RETURN)
    assert not any("evil.example" in l for l in links)
    # ...and to the return_to when it is safe: a scope this site never asks for.
    r = br.get(h.url + "/monei/callback?login&scope=admin:all&return_to=/account/x")
    way_out(r, "invalid scope", 400, h.url, to="/account/x")
    r = br.get(h.url + "/monei/callback?login&scope=admin:all", headers=API)
    api_error(r, "invalid scope (API)", 400, "invalid_scope")
    # Nothing the redirect URI understands.
    r = br.get(h.url + "/monei/callback")
    way_out(r, "bare redirect path", 400, h.url)


def test_consent_outcomes_link_back(h, ca):
    # Deny on Monei's page.
    br = Browser(ca)
    r = br.login(h.url + "/account/", action="deny")
    links = way_out(r, "access denied", 403, h.url)
    assert any("login" in l for l in links), links          # Try again
    # Approve with nothing ticked.
    br = Browser(ca)
    r = br.login(h.url + "/account/", scopes=[])
    way_out(r, "nothing shared", 403, h.url)
    assert "nothing_shared" in r.text


@pytest.mark.parametrize("fault,status", [
    ({"status": 429, "headers": {"Retry-After": "30"}}, 503),
    ({"status": 500}, 502),
    ({"status": 503}, 502),
    ({"delay": 4}, 504),
], ids=["429", "500", "503", "timeout"])
def test_monei_trouble_at_the_exchange_links_back(h, ca, sandbox, fault, status):
    br = Browser(ca)
    first = br.get(h.url + "/account/")
    back = br.consent(first.headers["Location"])
    sandbox.control("faults", dict(fault, endpoint="token", count=3))
    r = br.get(back.headers["Location"])
    sandbox.control("faults", method="DELETE")
    assert r.status_code in (status, 502, 503, 504), (r.status_code, r.text[:300])
    way_out(r, "Monei trouble %s" % fault, r.status_code, h.url)


def test_scope_refusals_link_back(h, ca):
    br = Browser(ca)
    assert br.login(h.url + "/account/", scopes=["wallet:read"]).status_code == 302
    # StepUp Off: a 403 that offers the permission and a way back.
    r = br.get(h.url + "/nostep/")
    links = way_out(r, "insufficient scope, StepUp Off", 403, h.url, to=DEFAULT_RETURN)
    assert len(links) >= 2, links
    api_error(br.get(h.url + "/nostep/", headers=API), "insufficient scope (API)", 403,
              "insufficient_scope")
    # Step-up declined on Monei's page, then the page asked for again.
    first = br.get(h.url + "/send/")
    assert first.status_code == 302, first.status_code
    back = br.consent(first.headers["Location"], action="deny")
    r = br.get(back.headers["Location"])
    way_out(r, "step-up declined", 403, h.url)
    r = br.get(h.url + "/send/")
    way_out(r, "step-up declined, asked again", 403, h.url, to=DEFAULT_RETURN)


def test_disconnect_pages_link_back(h, ca):
    br = Browser(ca)
    assert br.login(h.url + "/account/").status_code == 302
    # A disconnect this site did not ask for: the confirmation has a way to stay.
    r = br.get(h.url + "/bye", headers={"Sec-Fetch-Site": "cross-site"})
    way_out(r, "disconnect confirmation", 200, h.url)
    assert "<form" in r.text
    r = br.post(h.url + "/bye", data={"token": "forged"})
    way_out(r, "disconnect with a forged token", 403, h.url)
    r = br.post(h.url + "/bye", data={"token": "forged"}, headers=API)
    api_error(r, "disconnect with a forged token (API)", 403, "invalid_token")
    r = br.get(h.url + "/bye?return_to=https://evil.example/")
    way_out(r, "disconnect to another site", 400, h.url, to=DEFAULT_RETURN)


def test_redirect_path_405_414_and_api_clients(h, ca):
    r = requests.put(h.url + "/monei/callback?code=abc&state=def", timeout=10)
    way_out(r, "405", 405, h.url)
    assert set(r.headers["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    r = requests.get(h.url + "/monei/callback?state=" + "x" * 9000, timeout=10)
    way_out(r, "414", 414, h.url)
    r = requests.put(h.url + "/monei/callback", headers=API, timeout=10)
    api_error(r, "405 (API)", 405)
    # A script without a session: JSON, never a redirect to Monei.
    r = requests.get(h.url + "/account/", headers=API, timeout=10)
    api_error(r, "unauthenticated API client", 401, "unauthorized")
    r = requests.get(h.url + "/account/", headers={"X-Requested-With": "XMLHttpRequest"},
                     timeout=10)
    api_error(r, "unauthenticated XHR", 401, "unauthorized")


def test_store_unavailable_links_back(httpd_factory, sandbox, ca):
    redis = harness.Redis("redis-pages").start()
    try:
        h = site(httpd_factory, sandbox, "pages-store",
                 extra="MoneiConnectSessionStore redis:127.0.0.1:%d" % redis.port,
                 modules=("socache_redis",))
        br = Browser(ca)
        assert br.login(h.url + "/account/").status_code == 302
        redis.stop()
        r = br.get(h.url + "/account/x")
        way_out(r, "store unavailable", 503, h.url, to="/account/x")
        api_error(br.get(h.url + "/account/x", headers=API), "store unavailable (API)", 503,
                  "store_unavailable")
    finally:
        redis.stop()
