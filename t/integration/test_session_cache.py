"""Each httpd process keeps the sessions it served in a cache of opened records
(src/mc_reccache.h), so that a request with a valid session takes no store mutex and does
no decryption. It must never serve a session another process changed: a disconnect, a
refresh or a restart is seen by every process's next request, not when the cache entry ages
out (5 s). These tests warm the caches of every child, change the session through one
request, and check many requests on fresh connections (spread over the children) at once."""
import concurrent.futures
import time

import pytest

import harness
from browser import Browser

# every test starts from a reset sandbox without rate limits or faults (t/conftest.py)
pytestmark = pytest.mark.usefixtures("fresh_sandbox")

CACHE_MAX_AGE = 5.0     # MC_CACHE_MAX_AGE in src/mod_mc_store.c
SPREAD = 48             # concurrent requests, each on its own connection

PROTECT = harness.ACCOUNT_LOCATION + """<Location /bye>
    SetHandler monei-connect-disconnect
</Location>
<Location /live>
    AuthType MoneiConnect
    MoneiConnectWalletMaxAge 0
    Require valid-user
</Location>
Alias /live {htdocs}/account
LogFormat "%P %U %>s" served_by
CustomLog {dir}/logs/served_by served_by
"""


@pytest.fixture(scope="module")
def site(sandbox):
    # a snapshot that stays fresh: the hot path, no call to Monei per request
    h = harness.Httpd("cache", "")
    h.body = harness.monei_directives(sandbox, h.port,
                                      extra="MoneiConnectWalletMaxAge 86400\n"
                                            "MoneiConnectRefreshBeforeExpiry 1\n") + \
        PROTECT.format(dir=h.dir, htdocs=harness.HTDOCS)
    h.start()
    yield h
    h.stop()


def spread(url, cookie, n=SPREAD, var="MONEI_TOKEN_EXPIRES"):
    """n GETs at once, each on a new connection (the event MPM hands them to every child):
    [(status, the variable var the CGI saw), ...]."""
    def one(_):
        b = Browser()
        b.s.headers["Cookie"] = "monei_session=" + cookie
        r = b.s.get(url, timeout=30, allow_redirects=False, headers={"Connection": "close"})
        return r.status_code, (r.json().get(var) if r.status_code == 200 else None)
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        return list(pool.map(one, range(n)))


def served_by(site):
    """The pids of the children that answered a protected request with 200 so far."""
    with open(site.dir + "/logs/served_by") as f:
        return {line.split()[0] for line in f if line.split()[1:] == ["/account/env.cgi", "200"]}


def warm(site, cookie):
    """Every child serves (and so caches) the session; returns when that was done."""
    for _ in range(3):
        assert {c for c, _ in spread(site.url + "/account/env.cgi", cookie)} == {200}
    assert len(served_by(site)) >= 2, "the requests did not reach several children"
    return time.monotonic()


def test_disconnect_is_seen_by_every_process_at_once(site, sandbox, ca):
    b = Browser(ca)
    b.login(site.url + "/account/env.cgi")
    sid = b.cookie("monei_session")
    warmed = warm(site, sid)
    r = b.get(site.url + "/bye", headers={"Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 302
    after = spread(site.url + "/account/env.cgi", sid, 2 * SPREAD)
    assert time.monotonic() - warmed < CACHE_MAX_AGE - 1, "too slow to tell the cache apart"
    assert [c for c, _ in after] == [302] * (2 * SPREAD), after


def test_new_snapshot_is_seen_by_every_process_at_once(site, sandbox, ca):
    # /account keeps a snapshot for a day, /live fetches one on every request and writes it
    # back: every child's next /account request must serve what /live wrote.
    b = Browser(ca)
    b.login(site.url + "/account/env.cgi")
    sid = b.cookie("monei_session")
    warm(site, sid)
    old = {v for _, v in spread(site.url + "/account/env.cgi", sid, var="MONEI_WALLET_UPDATED")}
    assert len(old) == 1
    time.sleep(1.1)     # snapshot times are whole seconds
    r = b.get(site.url + "/live/env.cgi")
    assert r.status_code == 200
    new = r.json()["MONEI_WALLET_UPDATED"]
    assert int(new) > int(old.pop())
    after = spread(site.url + "/account/env.cgi", sid, 2 * SPREAD, var="MONEI_WALLET_UPDATED")
    assert {v for _, v in after} == {new}, "a process served the snapshot it had cached"


def test_refresh_is_seen_by_every_process_at_once(site, sandbox, ca):
    # 10-second tokens refreshed 1 s before expiry: after the wait every cached copy holds a
    # token that is due; one request refreshes, and no process may use the spent refresh
    # token or serve the old access token afterwards. (The warming spread must end before the
    # token is due: 9 s leaves room for a loaded machine, where 3 s did not.)
    sandbox.control("config", {"token_lifetime": 10})
    b = Browser(ca)
    b.login(site.url + "/account/env.cgi")
    sid = b.cookie("monei_session")
    old = {e for _, e in spread(site.url + "/account/env.cgi", sid)}
    assert len(old) == 1
    time.sleep(max(0.0, int(next(iter(old))) - 1 - time.time()) + 0.2)
    before = sandbox.counters()
    r = b.get(site.url + "/account/env.cgi")
    assert r.status_code == 200
    new = r.json()["MONEI_TOKEN_EXPIRES"]
    assert new not in old
    assert sandbox.counters()["refreshes"] == before["refreshes"] + 1
    after = spread(site.url + "/account/env.cgi", sid)
    assert [c for c, _ in after] == [200] * SPREAD
    assert {e for _, e in after} == {new}, "a process served the token from before the refresh"
    counters = sandbox.counters()
    assert counters["refreshes"] == before["refreshes"] + 1
    assert counters["refresh_reuse"] == 0


def test_graceful_restart_then_disconnect(site, sandbox, ca):
    b = Browser(ca)
    b.login(site.url + "/account/env.cgi")
    sid = b.cookie("monei_session")
    warm(site, sid)
    site.graceful()
    warm(site, sid)         # the new children cache it again (the store kept the session)
    assert b.get(site.url + "/bye", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 302
    assert {c for c, _ in spread(site.url + "/account/env.cgi", sid)} == {302}


@pytest.mark.parametrize("store", ["", "MoneiConnectSessionStore shmcb"],
                         ids=["built-in", "shmcb"])
def test_activity_is_seen_by_every_process(sandbox, ca, httpd_factory, store):
    # The inactivity clock moves once a second here (a quarter of the 4-second timeout),
    # noted in the store by whichever process served the request: on the built-in store
    # without rewriting the record, on the others by a rewrite. A process that kept its
    # cached copy after another noted activity would see the session idle for longer than
    # the timeout (the cache keeps entries 5 s) and end it; one that missed the stamp in the
    # store would too.
    h = httpd_factory("activity", "")
    h.body = harness.monei_directives(sandbox, h.port,
                                      extra="MoneiConnectWalletMaxAge 86400\n"
                                            "MoneiConnectSessionInactivityTimeout 4\n" + store) + \
        PROTECT.format(dir=h.dir, htdocs=harness.HTDOCS)
    h.start()
    b = Browser(ca)
    b.login(h.url + "/account/env.cgi")
    sid = b.cookie("monei_session")
    warm(h, sid)
    end = time.monotonic() + 10
    while time.monotonic() < end:   # active for 2.5 timeouts, on every process in turn
        assert {c for c, _ in spread(h.url + "/account/env.cgi", sid, 16)} == {200}
        time.sleep(0.8)
    time.sleep(5.5)                 # idle for longer than the timeout: out, everywhere
    assert {c for c, _ in spread(h.url + "/account/env.cgi", sid)} == {302}
