"""The built-in store (`shm`, the default): a store sized for N sessions holds N sessions with
as many login starts going on, keeps them across graceful restarts, and a store too small
counts and logs what it evicts, which the status page shows."""
import concurrent.futures
import re

import pytest

import harness
from browser import Browser

# every test starts from a reset sandbox without rate limits or faults (t/conftest.py)
pytestmark = pytest.mark.usefixtures("fresh_sandbox")

SESSIONS = 2000
WORKERS = 16

# /p: a protected static file (a CGI per check would cost a fork and exec)
CONF = harness.ACCOUNT_LOCATION + """<Location /p>
    AuthType MoneiConnect
    Require valid-user
</Location>
Alias /p {htdocs}/static.txt
<Location /monei-status>
    SetHandler monei-connect-status
    Require ip 127.0.0.1
</Location>
"""


def site(httpd_factory, sandbox, name, store):
    h = httpd_factory(name, "")
    # WalletMaxAge long: checking a session must not rewrite it
    h.body = harness.monei_directives(
        sandbox, h.port, extra="MoneiConnectSessionStore %s\nMoneiConnectWalletMaxAge 86400\n"
        % store) + CONF.format(htdocs=harness.HTDOCS)
    return h.start()


def parallel(fn, items):
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(fn, items))


def login(h, ca):
    b = Browser(ca)
    b.login(h.url + "/account/env.cgi")
    cookie = b.cookie("monei_session")
    assert cookie
    return cookie


def served(h, cookie, path="/p"):
    """200 when the session works, 302 (to log in again) when the store lost it."""
    b = Browser()
    b.s.headers["Cookie"] = "monei_session=" + cookie
    r = b.s.get(h.url + path, timeout=30, allow_redirects=False)
    if r.status_code == 200 and path.endswith(".cgi"):
        assert r.json()["MONEI_CONNECTED"] == "1"
    return r.status_code


def login_start(h):
    """GET <redirect URI>?login and never come back (the state is sealed into the redirect:
    nothing may be stored for it)."""
    b = Browser()
    r = b.s.get(h.url + "/monei/callback?login", timeout=30, allow_redirects=False)
    assert r.status_code == 302 and "/connect/authorize" in r.headers["Location"], r.status_code
    return r.status_code


def status(h):
    return Browser().s.get(h.url + "/monei-status?json", timeout=10).json()


def prom(h):
    text = Browser().s.get(h.url + "/monei-status", timeout=10).text
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^(monei_connect_store_[a-z_]+) (\d+)$", text, re.M)}


def test_sized_store_holds_its_sessions_with_login_traffic_and_graceful(
        httpd_factory, sandbox, ca):
    h = site(httpd_factory, sandbox, "cap2000", "shm:%d" % SESSIONS)
    cookies = parallel(lambda _: login(h, ca), range(SESSIONS))
    assert len(set(cookies)) == SESSIONS
    parallel(lambda _: login_start(h), range(SESSIONS))
    st = status(h)
    # the sessions and the "used" markers of their logins' states; login starts add nothing
    assert st["store_sessions"] == SESSIONS
    assert 2 * SESSIONS <= st["store_records"] <= 2 * SESSIONS + 10, st
    assert st["store_slots"] >= st["store_records"]
    assert st["store_evictions"] == 0, st
    codes = parallel(lambda c: served(h, c), cookies)
    assert codes.count(200) == SESSIONS, {c: codes.count(c) for c in set(codes)}
    assert [served(h, c, "/account/env.cgi") for c in cookies[:5]] == [200] * 5

    # a graceful restart keeps every one of them (the new children find the same table)
    logins = sandbox.counters()["code_exchanges"]
    h.graceful()
    codes = parallel(lambda c: served(h, c), cookies)
    assert codes.count(200) == SESSIONS, {c: codes.count(c) for c in set(codes)}
    assert sandbox.counters()["code_exchanges"] == logins      # nobody logged in again
    p = prom(h)
    assert p["monei_connect_store_sessions"] == SESSIONS
    assert p["monei_connect_store_records"] >= 2 * SESSIONS
    assert p["monei_connect_store_evictions_total"] == 0
    log = h.error_log_text()
    assert "mc-slots-evict" not in log and "monei_connect:error" not in log


def test_full_store_counts_and_logs_evictions(httpd_factory, sandbox, ca):
    # shm:1 holds 1 session, 1 state marker and 1,024 short-lived records: 1,026 in all; every
    # completed login writes two (its session and its state's "used" marker)
    h = site(httpd_factory, sandbox, "cap1", "shm:1")
    st = status(h)
    assert st["store_sessions"] == 1 and st["store_slots"] == 1026 and st["store_records"] == 0
    logins = 560
    parallel(lambda _: login(h, ca), range(logins))
    st = status(h)
    assert st["store_records"] == st["store_slots"]
    assert st["store_evictions"] >= 2 * logins - 1026 - 8, st    # a lock may have gone
    # still works: a new login evicts the record that expires soonest, never fails
    assert served(h, login(h, ca), "/account/env.cgi") == 200
    assert prom(h)["monei_connect_store_evictions_total"] >= st["store_evictions"]
    lines = [l for l in h.error_log_text().splitlines() if "mc-slots-evict" in l]
    # once per burst (per process and minute), not per eviction
    assert 1 <= len(lines) <= 4, lines
    assert "monei_connect:warn" in lines[0] and "make it larger" in lines[0]


def test_login_state_with_the_longest_return_url_fits(
        httpd_factory, sandbox, ca):
    h = site(httpd_factory, sandbox, "bigstate", "shm:10")
    # the longest return URL accepted (2 KB) still makes a login state that fits a slot
    path = "/account/env.cgi?" + "q=" + "x" * (2040 - len("/account/env.cgi?q="))
    b = Browser(ca)
    b.login(h.url + path)
    assert served(h, b.cookie("monei_session"), "/account/env.cgi") == 200
    log = h.error_log_text()
    assert "monei_connect:error" not in log
