"""When Monei is slow, busy or far away: the breaker and bulkhead in front of its API,
Retry-After in both forms, pages that say what happened at Monei, and the outbound path
(a real HTTP proxy, TLS without verification, the logout redirect, the dbm store)."""
import concurrent.futures
import email.utils
import os
import re
import time

import pytest
import requests

import harness
from browser import Browser

pytestmark = pytest.mark.usefixtures("fresh_sandbox")

API = {"Accept": "application/json"}

# /fast: a static file behind the module; mod_headers shows what the module exported, so the
# time measured is the module's, not a CGI's start-up.
CONF = harness.ACCOUNT_LOCATION + """Alias /fast {htdocs}/static.txt
<Location /fast>
    AuthType MoneiConnect
    MoneiConnectWalletMaxAge 1
    Require valid-user
    Header always set X-Stale "%{{MONEI_WALLET_STALE}}e"
    Header always set X-Updated "%{{MONEI_WALLET_UPDATED}}e"
    Header always set X-Balance "%{{MONEI_WALLET_NAIRA_BALANCE}}e"
</Location>
<Location /monei-status>
    SetHandler monei-connect-status
    Require ip 127.0.0.1
</Location>
<Location /bye>
    SetHandler monei-connect-disconnect
</Location>
"""


def site_conf(sandbox, h, extra="", api="https"):
    return harness.monei_directives(sandbox, h.port, api=api, extra=extra) + \
        CONF.format(htdocs=harness.HTDOCS)


def status(h):
    return requests.get(h.url + "/monei-status?json", timeout=10).json()


def calls(sandbox, endpoint):
    return sandbox.counters()["calls"][endpoint]


def http_date(seconds_ahead):
    return email.utils.formatdate(time.time() + seconds_ahead, usegmt=True)


def login_many(h, ca, n):
    def one(i):
        b = Browser(ca)
        r = b.login(h.url + "/fast")
        assert r.status_code == 302, (r.status_code, r.text[:200])
        return b
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(n)))


# ------------------------------------------------------------------ breaker and bulkhead

# Requests that may wait for Monei while it hangs: two in flight at the start (the bulkhead),
# each held for the 4 s total timeout, then one probe at a time after each back-off (1 s, then
# 2 s, 4 s ...): in 10 s at most 2 + 2 probes. Everything else is answered at once.
MAX_WAITERS = 4


def test_slow_wallet_holds_at_most_two_workers(sandbox, ca, httpd_factory):
    h = httpd_factory("trouble-slow", "")
    h.body = site_conf(sandbox, h)
    h.start()
    users = login_many(h, ca, 50)
    time.sleep(1.2)                     # every snapshot is older than WalletMaxAge 1
    before = calls(sandbox, "wallet")
    sandbox.control("faults", {"endpoint": "wallet", "delay": 8, "count": 100000})

    def one(i):
        b = users[i % len(users)]
        start = time.monotonic()
        r = b.s.get(h.url + "/fast", verify=b.verify, timeout=30, allow_redirects=False,
                    headers={"Connection": "close"})
        return time.monotonic() - start, r.status_code, r.headers.get("X-Stale")

    results, in_flight = [], []
    with concurrent.futures.ThreadPoolExecutor(64) as pool:
        futures = []
        t0 = time.monotonic()
        for i in range(200):            # 200 requests over 10 s
            while time.monotonic() < t0 + i * 0.05:
                time.sleep(0.005)
            futures.append(pool.submit(one, i))
            if i % 20 == 0:
                in_flight.append(status(h)["breaker"]["in_flight"])
        results = [f.result() for f in futures]
    waited = [r for r in results if r[0] >= 0.1]
    assert all(code == 200 for _, code, _ in results), [c for _, c, _ in results]
    assert len(waited) <= MAX_WAITERS, sorted(round(t, 2) for t, _, _ in results)[-10:]
    fast = [r for r in results if r[0] < 0.1]
    assert len(fast) >= 200 - MAX_WAITERS
    assert all(stale == "1" for _, _, stale in fast), "answered at once, marked stale"
    assert max(in_flight) <= 2, in_flight
    assert calls(sandbox, "wallet") - before <= MAX_WAITERS
    st = status(h)["breaker"]
    assert st["state"] in ("open", "half-open") and st["opened"] == 1, st
    assert st["served_busy"] + st["served_backing_off"] >= 190, st

    # Monei recovers: the next probe succeeds and fresh values return, without a restart.
    sandbox.control("faults", method="DELETE")
    b = users[0]
    deadline = time.time() + 75          # at most one back-off (<= 60 s) plus a call
    fresh = None
    while time.time() < deadline:
        r = b.get(h.url + "/fast")
        if r.headers.get("X-Stale") == "(null)":
            fresh = r
            break
        time.sleep(0.5)
    assert fresh is not None, "the breaker never closed"
    assert int(fresh.headers["X-Updated"]) >= time.time() - 5
    assert fresh.headers["X-Balance"] not in ("", "(null)")
    assert status(h)["breaker"]["state"] == "closed"
    # others get fresh values too (one call each again, two at a time at most)
    time.sleep(1.1)
    assert all(u.get(h.url + "/fast").headers["X-Stale"] == "(null)" for u in users[1:4])
    log = h.error_log_text()
    assert log.count("mc-breaker: Monei's API is failing") == 1, "opening logged once"
    assert log.count("breaker closed") == 1, "closing logged once"
    prom = requests.get(h.url + "/monei-status", timeout=10).text
    assert re.search(r'^monei_connect_breaker_state\{api="[^"]+"\} 0$', prom, re.M), prom
    assert re.search(r'^monei_connect_breaker_opened_total\{api="[^"]+"\} 1$', prom, re.M)


def test_fresh_snapshot_never_touches_the_breaker(sandbox, ca, httpd_factory):
    # With the breaker open, any request that asked it would be served stale; one whose
    # snapshot is fresh is served as it is, and the breaker's counters do not move.
    h = httpd_factory("trouble-hot", "")
    h.body = site_conf(sandbox, h) + """Alias /hot {htdocs}/static.txt
<Location /hot>
    AuthType MoneiConnect
    MoneiConnectWalletMaxAge 600
    Require valid-user
    Header always set X-Stale "%{{MONEI_WALLET_STALE}}e"
</Location>
""".format(htdocs=harness.HTDOCS)
    h.start()
    hot, cold = Browser(ca), Browser(ca)
    hot.login(h.url + "/hot")
    cold.login(h.url + "/fast")
    time.sleep(1.2)
    sandbox.control("faults", {"endpoint": "wallet", "status": 429, "count": 1,
                               "headers": {"Retry-After": "60"}})
    assert cold.get(h.url + "/fast").headers["X-Stale"] == "1"
    before = status(h)["breaker"]
    assert before["state"] == "open"
    assert cold.get(h.url + "/fast").headers["X-Stale"] == "1"
    assert status(h)["breaker"]["served_backing_off"] == before["served_backing_off"] + 1
    before = status(h)["breaker"]
    for _ in range(20):
        assert hot.get(h.url + "/hot").headers["X-Stale"] == "(null)"
    after = status(h)["breaker"]
    for k in ("served_busy", "served_backing_off", "in_flight", "failures", "opened"):
        assert after[k] == before[k], (k, before, after)


def test_wallet_429_with_http_date_is_honoured(sandbox, ca, httpd_factory):
    h = httpd_factory("trouble-429", "")
    h.body = site_conf(sandbox, h)
    h.start()
    b, other = Browser(ca), Browser(ca)
    b.login(h.url + "/fast")
    other.login(h.url + "/fast")
    time.sleep(1.2)
    until = time.time() + 20
    sandbox.control("faults", {"endpoint": "wallet", "status": 429, "count": 1,
                               "headers": {"Retry-After": http_date(20)}})
    r = b.get(h.url + "/fast")
    assert r.status_code == 200 and r.headers["X-Stale"] == "1"
    after_429 = calls(sandbox, "wallet")
    st = status(h)["breaker"]
    assert st["state"] == "open" and 17 <= st["retry_in"] <= 21, st
    while time.time() < until - 1.5:
        for u in (b, other):
            r = u.get(h.url + "/fast")
            assert r.status_code == 200 and r.headers["X-Stale"] == "1"
        assert calls(sandbox, "wallet") == after_429, "no call before the date"
        time.sleep(0.5)
    time.sleep(max(0, until - time.time()) + 1.2)
    r = b.get(h.url + "/fast")
    assert r.headers["X-Stale"] == "(null)", "the date passed: the probe fetched fresh values"
    assert calls(sandbox, "wallet") == after_429 + 1


def test_token_429_with_http_date_holds_every_refresh(sandbox, ca, httpd_factory):
    sandbox.control("config", {"token_lifetime": 40})
    h = httpd_factory("trouble-token429", "")
    # due for refresh 2 s after login, expired only after 40 s
    h.body = site_conf(sandbox, h, extra="MoneiConnectRefreshBeforeExpiry 38").replace(
        "MoneiConnectWalletMaxAge 1", "MoneiConnectWalletMaxAge 3600")
    h.start()
    a, b = Browser(ca), Browser(ca)
    a.login(h.url + "/fast")
    b.login(h.url + "/fast")
    time.sleep(2.2)
    until = time.time() + 20
    sandbox.control("faults", {"endpoint": "token", "status": 429, "count": 1,
                               "headers": {"Retry-After": http_date(20)}})
    tokens = calls(sandbox, "token")
    assert a.get(h.url + "/fast").status_code == 200   # the refresh gets the 429
    assert calls(sandbox, "token") == tokens + 1
    assert status(h)["refreshes_rate_limited"] == 1
    while time.time() < until - 1.5:
        for u in (a, b):                  # b's session was never told: the server was
            assert u.get(h.url + "/fast").status_code == 200
        assert calls(sandbox, "token") == tokens + 1, "no token call before the date"
        time.sleep(0.5)
    time.sleep(max(0, until - time.time()) + 1.2)
    assert a.get(h.url + "/fast").status_code == 200
    assert b.get(h.url + "/fast").status_code == 200
    assert sandbox.counters()["refreshes"] == 2, "both sessions refresh once the date passed"


# ------------------------------------------------------------------ login pages

def callback(h, sandbox, ca, fault, api=False):
    b = Browser(ca)
    first = b.get(h.url + "/account/env.cgi")
    back = b.consent(first.headers["Location"])
    if fault is not None:
        sandbox.control("faults", dict(fault, endpoint="token"))
    start = time.time()
    r = b.get(back.headers["Location"], headers=API if api else {})
    return r, time.time() - start


@pytest.fixture
def login_site(sandbox, httpd_factory):
    h = httpd_factory("trouble-login", "")
    h.body = site_conf(sandbox, h)
    return h.start()


@pytest.mark.parametrize("fault,code,error,words", [
    ({"status": 500}, 502, "monei_unavailable", "Monei is having trouble right now"),
    ({"status": 429, "headers": {"Retry-After": "17"}}, 503, "monei_busy",
     "Monei is busy; try again in 17 seconds"),
    ({"delay": 6}, 504, "monei_timeout", "Monei did not answer in time"),
], ids=["500", "429", "hang"])
@pytest.mark.parametrize("api", [False, True], ids=["browser", "api"])
def test_login_pages_say_what_happened(login_site, sandbox, ca, fault, code, error, words, api):
    r, took = callback(login_site, sandbox, ca, fault, api=api)
    assert r.status_code == code, (r.status_code, r.text[:300])
    assert took < 5.5                   # MoneiConnectHTTPTimeout 2 4
    if api:
        assert r.json() == {"error": error, "message": r.json()["message"]}
        assert words in r.json()["message"]
    else:
        assert words in r.text and "Try again" in r.text
    if code == 503:
        assert r.headers["Retry-After"] == "17"
    else:
        assert "Retry-After" not in r.headers


def test_login_429_with_http_date(login_site, sandbox, ca):
    r, _ = callback(login_site, sandbox, ca,
                    {"status": 429, "headers": {"Retry-After": http_date(20)}})
    assert r.status_code == 503
    assert 19 <= int(r.headers["Retry-After"]) <= 21
    assert "try again in %s seconds" % r.headers["Retry-After"] in r.text


# ------------------------------------------------------------------ the outbound path

@pytest.fixture
def proxy():
    p = harness.Tinyproxy("tinyproxy-%d" % harness.free_port()).start()
    yield p
    p.stop()


def full_flow(h, sandbox, ca):
    """exchange, wallet, user at login; a refresh (RefreshBeforeExpiry makes it due at once);
    revoke at disconnect."""
    b = Browser(ca)
    assert b.login(h.url + "/fast").status_code == 302
    time.sleep(1.2)
    r = b.get(h.url + "/fast")
    assert r.status_code == 200 and r.headers["X-Stale"] == "(null)"
    assert b.get(h.url + "/bye", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 302
    c = sandbox.counters()
    assert c["code_exchanges"] == 1 and c["refreshes"] >= 1 and c["revocations"] >= 1
    assert c["calls"]["wallet"] >= 2 and c["calls"]["user"] >= 2
    return b


def test_every_call_through_an_http_proxy(sandbox, ca, httpd_factory, proxy):
    sandbox.control("config", {"token_lifetime": 120})
    h = httpd_factory("trouble-proxy", "")
    h.body = site_conf(sandbox, h, api="http", extra="MoneiConnectOutboundProxy %s\n"
                       "MoneiConnectRefreshBeforeExpiry 119" % proxy.url)
    h.start()
    full_flow(h, sandbox, ca)
    seen = proxy.requests()
    base = sandbox.http + "/api/v1"
    for line in ("POST %s/connect/token " % base, "GET %s/wallet/me " % base,
                 "GET %s/user/me " % base, "POST %s/connect/token/revoke " % base):
        assert any(s.startswith(line) for s in seen), (line, seen)
    # every API call the sandbox answered came through the proxy
    c = sandbox.counters()["calls"]
    api_calls = c["token"] + c["wallet"] + c["user"] + c["revoke"]
    assert len([s for s in seen if s.split()[1].startswith(base)]) == api_calls, seen


def test_https_through_the_proxy_and_proxy_down(sandbox, ca, httpd_factory, proxy):
    sandbox.control("config", {"token_lifetime": 120})
    h = httpd_factory("trouble-connect", "")
    h.body = site_conf(sandbox, h, extra="MoneiConnectOutboundProxy %s\n"
                       "MoneiConnectRefreshBeforeExpiry 119" % proxy.url)
    h.start()
    full_flow(h, sandbox, ca)
    tunnels = [s for s in proxy.requests() if s.startswith("CONNECT ")]
    assert tunnels and all(s.startswith("CONNECT 127.0.0.1:%d " % sandbox.tls_port)
                           for s in tunnels), proxy.requests()
    # the proxy is gone: the login ends in a clear page, well within the connect timeout
    proxy.stop()
    b = Browser(ca)
    first = b.get(h.url + "/account/env.cgi")
    back = b.consent(first.headers["Location"])
    start = time.time()
    r = b.get(back.headers["Location"])
    assert time.time() - start < 2.0    # MoneiConnectHTTPTimeout 2 4
    assert r.status_code == 503 and "cannot reach Monei" in r.text and "Try again" in r.text
    requests.get(h.url + "/static.txt", timeout=5).raise_for_status()


def test_sslverify_off_with_an_unknown_ca(sandbox, ca, httpd_factory):
    h = httpd_factory("trouble-noverify", "")
    conf = site_conf(sandbox, h, extra="MoneiConnectSSLVerify Off")
    # without MoneiConnectCAFile the harness CA is unknown: only SSLVerify Off lets it through
    h.body = "\n".join(l for l in conf.splitlines() if not l.startswith("MoneiConnectCAFile"))
    rc, out = h.configtest()
    assert rc == 0 and "mc-cfg-noverify" in out and "NOT verified" in out, out
    h.start()
    b = Browser(ca)
    assert b.login(h.url + "/fast").status_code == 302
    assert b.get(h.url + "/fast").headers["X-Stale"] == "(null)"
    # and with verification on, the same certificate is refused
    h2 = httpd_factory("trouble-verify", "")
    h2.body = "\n".join(l for l in site_conf(sandbox, h2).splitlines()
                        if not l.startswith("MoneiConnectCAFile"))
    h2.start()
    r, _ = callback(h2, sandbox, ca, None)
    assert r.status_code == 502 and "securely" in r.text


def test_logout_redirect_lands_where_it_says(sandbox, ca, httpd_factory):
    h = httpd_factory("trouble-logout", "")
    h.body = site_conf(sandbox, h, extra="MoneiConnectTrustedReturnHost shop.example") + """
<Location /bye-local>
    SetHandler monei-connect-disconnect
    MoneiConnectLogoutRedirect /static.txt
</Location>
<Location /bye-shop>
    SetHandler monei-connect-disconnect
    MoneiConnectLogoutRedirect https://shop.example/thanks
</Location>
"""
    h.start()
    same = {"Sec-Fetch-Site": "same-origin"}
    b = Browser(ca)
    b.login(h.url + "/fast")
    r = b.get(h.url + "/bye-local", headers=same)
    assert r.status_code == 302 and r.headers["Location"] == "/static.txt"
    assert b.get(h.url + "/fast", headers=API).status_code == 401
    b.login(h.url + "/fast")
    r = b.get(h.url + "/bye-shop", headers=same)
    assert r.status_code == 302 and r.headers["Location"] == "https://shop.example/thanks"
    assert b.get(h.url + "/fast", headers=API).status_code == 401
    # the default: /
    b.login(h.url + "/fast")
    assert b.get(h.url + "/bye", headers=same).headers["Location"] == "/"


@pytest.mark.parametrize("target", ["https://evil.example/bye", "//evil.example/",
                                    "https://shop.example@evil.example/"])
def test_logout_redirect_refused_like_return_to(sandbox, httpd_factory, target):
    h = httpd_factory("trouble-logout-bad", "")
    h.body = site_conf(sandbox, h, extra="MoneiConnectTrustedReturnHost shop.example") + """
<Location /bye-x>
    SetHandler monei-connect-disconnect
    MoneiConnectLogoutRedirect %s
</Location>
""" % target
    rc, out = h.configtest()
    assert rc != 0, out
    assert "MoneiConnectLogoutRedirect" in out and h.conf in out, out


def test_dbm_store_refused_with_the_reason(sandbox, httpd_factory):
    h = httpd_factory("trouble-dbm", "", modules=("socache_dbm",))
    h.body = site_conf(sandbox, h, extra="MoneiConnectSessionStore dbm:%s/sessions" % h.dir)
    rc, out = h.configtest()
    assert rc != 0, out
    assert "MoneiConnectSessionStore dbm" in out and "1008 bytes" in out and \
        "SDBM" in out, out
    with pytest.raises(RuntimeError):
        h.start()
