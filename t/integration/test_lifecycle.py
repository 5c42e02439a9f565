"""Issue 4: token lifecycle against a real httpd with several children and the sandbox:
race-free refresh, 429, revocation, disconnect, timeouts, stale snapshots."""
import concurrent.futures
import time
import urllib.parse

import pytest

import harness
from browser import Browser

# every test starts from a reset sandbox without rate limits or faults (t/conftest.py)
pytestmark = pytest.mark.usefixtures("fresh_sandbox")

PROTECT = harness.ACCOUNT_LOCATION + """<Location /live>
    AuthType MoneiConnect
    MoneiConnectWalletMaxAge 0
    Require valid-user
</Location>
Alias /live {htdocs}/account
<Location /quick>
    AuthType MoneiConnect
    MoneiConnectWalletMaxAge 1
    Require valid-user
</Location>
Alias /quick {htdocs}/account
<Location /bye>
    SetHandler monei-connect-disconnect
</Location>
""" + harness.DASHBOARD_LOCATION + """MoneiConnectTrustedReturnHost trusted.example
"""


def make_site(sandbox, name, extra="", modules=()):
    h = harness.Httpd(name, "", modules=modules)
    h.body = harness.monei_directives(sandbox, h.port, extra=extra) + \
        PROTECT.format(htdocs=harness.HTDOCS)
    return h.start()


@pytest.fixture(scope="module")
def race_site(sandbox):
    h = make_site(sandbox, "race", "MoneiConnectRefreshBeforeExpiry 1")
    yield h
    h.stop()


def env(b, url, **kw):
    r = b.get(url, **kw)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    return r.json()


def test_concurrent_requests_refresh_once(race_site, sandbox, ca):
    # 6-second tokens refreshed 1 s before expiry: the 40 requests of a round must finish
    # within 5 s, or the next token becomes due and a second, legitimate refresh happens.
    sandbox.control("config", {"token_lifetime": 6})
    b = Browser(ca)
    b.login(race_site.url + "/account/env.cgi")
    first = env(b, race_site.url + "/account/env.cgi")["MONEI_TOKEN_EXPIRES"]
    for round_no in range(5):
        time.sleep(6.3)     # the access token has expired now
        before = sandbox.counters()
        with concurrent.futures.ThreadPoolExecutor(40) as pool:
            url = race_site.url + "/account/env.cgi"
            codes = list(pool.map(lambda i: b.status_of(url), range(40)))
        after = sandbox.counters()
        assert codes == [200] * 40, (round_no, codes)
        assert after["refreshes"] - before["refreshes"] == 1, (round_no, before, after)
        assert after["refresh_reuse"] == 0
    last = env(b, race_site.url + "/account/env.cgi")["MONEI_TOKEN_EXPIRES"]
    assert int(last) > int(first)


@pytest.fixture(scope="module")
def early_site(sandbox):
    # Refresh 25 s before expiry: with 30-second tokens a refresh is due after 5 s while the
    # token still works for another 25.
    h = make_site(sandbox, "early", "MoneiConnectRefreshBeforeExpiry 25")
    yield h
    h.stop()


def test_refresh_429_keeps_working_without_storm(early_site, sandbox, ca):
    sandbox.control("config", {"token_lifetime": 30})
    b = Browser(ca)
    b.login(early_site.url + "/account/env.cgi")
    time.sleep(5.5)
    sandbox.control("faults", {"endpoint": "token", "count": 1000, "status": 429,
                               "headers": {"Retry-After": "60"}})
    before = sandbox.counters()["calls"]["token"]
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        url = early_site.url + "/account/env.cgi"
        codes = list(pool.map(lambda i: b.status_of(url), range(30)))
    assert codes == [200] * 30
    assert sandbox.counters()["calls"]["token"] - before <= 1


def test_refresh_failure_keeps_valid_session(early_site, sandbox, ca):
    sandbox.control("config", {"token_lifetime": 30})
    b = Browser(ca)
    b.login(early_site.url + "/account/env.cgi")
    time.sleep(5.5)
    sandbox.control("faults", {"endpoint": "token", "count": 3, "status": 503})
    assert b.get(early_site.url + "/account/env.cgi").status_code == 200
    sandbox.control("faults", method="DELETE")
    e = env(b, early_site.url + "/account/env.cgi")
    assert e["MONEI_CONNECTED"] == "1"


def test_revoked_user_is_sent_to_reconnect(sandbox, ca, httpd_factory):
    redis = harness.Redis("redis-revoke").start()
    try:
        h = httpd_factory("revoke", "", modules=("socache_redis",))
        h.body = harness.monei_directives(
            sandbox, h.port, extra="MoneiConnectSessionStore redis:127.0.0.1:%d" % redis.port
        ) + PROTECT.format(htdocs=harness.HTDOCS)
        h.start()
        b = Browser(ca)
        b.login(h.url + "/live/env.cgi")
        env(b, h.url + "/live/env.cgi")
        sessions = [k for k in redis.keys() if k.endswith(b":s")]
        assert len(sessions) == 1
        sandbox.control("revoke_user", {"user": "ada"})
        api = b.get(h.url + "/live/env.cgi", headers={"Accept": "application/json"})
        assert api.status_code == 401
        assert api.json()["error"]
        assert not [k for k in redis.keys() if k.endswith(b":s")], "record still stored"
        # the browser is sent to Monei to reconnect, not shown an error
        again = b.get(h.url + "/live/env.cgi")
        assert again.status_code == 302 and "/connect/authorize" in again.headers["Location"]
    finally:
        redis.stop()


def test_revoked_user_browser_redirect(race_site, sandbox, ca):
    b = Browser(ca)
    b.login(race_site.url + "/live/env.cgi")
    env(b, race_site.url + "/live/env.cgi")
    sandbox.control("revoke_user", {"user": "ada"})
    r = b.get(race_site.url + "/live/env.cgi")
    assert r.status_code == 302 and "/connect/authorize" in r.headers["Location"]


def test_disconnect_revokes_and_clears(race_site, sandbox, ca):
    b = Browser(ca)
    b.login(race_site.url + "/account/env.cgi")
    sid = b.cookie("monei_session")
    before = sandbox.counters()["revocations"]
    r = b.get(race_site.url + "/bye?return_to=/after")
    assert r.status_code == 302 and r.headers["Location"] == "/after"
    assert "monei_session=;" in r.headers["Set-Cookie"] and "Max-Age=0" in r.headers["Set-Cookie"]
    # both tokens: the access token and the refresh token, each revoked by name
    assert sandbox.counters()["revocations"] == before + 2
    old = Browser(ca)
    old.s.cookies.set("monei_session", sid, domain="127.0.0.1", path="/")
    assert old.get(race_site.url + "/account/env.cgi").status_code == 302


def test_disconnect_on_redirect_uri_path_default_target(race_site, sandbox, ca):
    b = Browser(ca)
    b.login(race_site.url + "/account/env.cgi")
    r = b.get(race_site.url + "/monei/callback?disconnect")
    assert r.status_code == 302 and r.headers["Location"] == "/"
    assert b.get(race_site.url + "/dashboard").json() == {"connected": False}


def test_disconnect_with_monei_down_still_local(race_site, sandbox, ca):
    b = Browser(ca)
    b.login(race_site.url + "/account/env.cgi")
    sid = b.cookie("monei_session")
    sandbox.control("faults", {"endpoint": "revoke", "count": 5, "close": True})
    r = b.get(race_site.url + "/bye")
    assert r.status_code == 302
    old = Browser(ca)
    old.s.cookies.set("monei_session", sid, domain="127.0.0.1", path="/")
    assert old.get(race_site.url + "/dashboard").json() == {"connected": False}


@pytest.mark.parametrize("target", ["//evil.example", "https://evil.example", "/\\evil.example",
                                    "/%2F%2Fevil.example", "%2F%2Fevil.example",
                                    "https:evil.example", "https://trusted.example@evil.example",
                                    "/ok\r\nSet-Cookie: x=1"])
def test_disconnect_open_redirect_refused(race_site, ca, target):
    b = Browser(ca)
    r = b.get(race_site.url + "/bye?return_to=" + urllib.parse.quote(target, safe=""))
    assert r.status_code == 400
    assert "evil.example" not in r.headers.get("Location", "")


def test_disconnect_trusted_host_allowed(race_site, ca):
    b = Browser(ca)
    r = b.get(race_site.url + "/bye?return_to=" +
              urllib.parse.quote("https://trusted.example/bye", safe=""))
    assert r.status_code == 302 and r.headers["Location"] == "https://trusted.example/bye"


def test_cross_site_disconnect_refused(race_site, sandbox, ca):
    b = Browser(ca)
    b.login(race_site.url + "/account/env.cgi")
    r = b.get(race_site.url + "/bye", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    assert env(b, race_site.url + "/account/env.cgi")["MONEI_CONNECTED"] == "1"


def test_inactivity_timeout(sandbox, ca, httpd_factory):
    h = httpd_factory("idle", "")
    h.body = harness.monei_directives(sandbox, h.port,
                                      extra="MoneiConnectSessionInactivityTimeout 3") + \
        PROTECT.format(htdocs=harness.HTDOCS)
    h.start()
    b = Browser(ca)
    b.login(h.url + "/account/env.cgi")
    for _ in range(4):      # active for longer than the timeout: still in
        time.sleep(1)
        assert b.get(h.url + "/account/env.cgi").status_code == 200
    time.sleep(3.5)         # idle for longer than the timeout: out
    assert b.get(h.url + "/account/env.cgi").status_code == 302


def test_max_duration(sandbox, ca, httpd_factory):
    h = httpd_factory("maxdur", "")
    h.body = harness.monei_directives(sandbox, h.port,
                                      extra="MoneiConnectSessionMaxDuration 4") + \
        PROTECT.format(htdocs=harness.HTDOCS)
    h.start()
    b = Browser(ca)
    b.login(h.url + "/account/env.cgi")
    deadline = time.time() + 3
    while time.time() < deadline:
        assert b.get(h.url + "/account/env.cgi").status_code == 200
        time.sleep(0.5)
    time.sleep(1.5)
    assert b.get(h.url + "/account/env.cgi").status_code == 302


@pytest.mark.parametrize("fault", [{"status": 503}, {"close": True}, {"delay": 6},
                                   {"body": "garbage"}])
def test_stale_snapshot_when_monei_fails(race_site, sandbox, ca, fault):
    b = Browser(ca)
    b.login(race_site.url + "/quick/env.cgi")
    fresh = env(b, race_site.url + "/quick/env.cgi")
    assert "MONEI_WALLET_STALE" not in fresh
    time.sleep(1.2)
    # libcurl retries once on a fresh connection when a reused one dies without an answer:
    # queue enough faults for that retry too, and clear the rest afterwards.
    sandbox.control("faults", dict(fault, endpoint="wallet", count=3))
    start = time.time()
    stale = env(b, race_site.url + "/quick/env.cgi")
    sandbox.control("faults", method="DELETE")
    assert time.time() - start < 5.5        # MoneiConnectHTTPTimeout 2 4 in the test config
    assert stale["MONEI_WALLET_STALE"] == "1"
    assert stale["MONEI_WALLET_NAIRA_BALANCE"] == "1805.00"
    assert stale["MONEI_WALLET_UPDATED"] == fresh["MONEI_WALLET_UPDATED"]
    back = env(b, race_site.url + "/quick/env.cgi")
    assert "MONEI_WALLET_STALE" not in back
    assert int(back["MONEI_WALLET_UPDATED"]) >= int(fresh["MONEI_WALLET_UPDATED"])


def test_expired_token_and_monei_down_serves_stale(race_site, sandbox, ca):
    sandbox.control("config", {"token_lifetime": 3})
    b = Browser(ca)
    b.login(race_site.url + "/quick/env.cgi")
    fresh = env(b, race_site.url + "/quick/env.cgi")
    time.sleep(3.3)
    sandbox.control("faults", {"endpoint": "token", "count": 50, "close": True})
    sandbox.control("faults", {"endpoint": "wallet", "count": 50, "close": True})
    stale = env(b, race_site.url + "/quick/env.cgi")
    assert stale["MONEI_WALLET_STALE"] == "1"
    assert stale["MONEI_WALLET_NAIRA_BALANCE"] == fresh["MONEI_WALLET_NAIRA_BALANCE"]
    sandbox.control("faults", method="DELETE")
    back = env(b, race_site.url + "/quick/env.cgi")
    assert "MONEI_WALLET_STALE" not in back
    assert int(back["MONEI_TOKEN_EXPIRES"]) > int(fresh["MONEI_TOKEN_EXPIRES"])
