"""The session core under pressure: subrequests into protected locations (mod_autoindex,
mod_include, mod_rewrite look-ahead), a refresh raced by two servers on one shared store,
the lock holder's server killed mid-refresh, a disconnect during a refresh in flight,
sessions of one virtual host offered to another, and a 429 on refresh under load.

Every httpd here is checked for children that died of a signal after it stops
(t/conftest.py); tests that provoke crashes also look right after their requests."""
import concurrent.futures
import json
import os
import re
import signal
import threading
import time

import pytest
import requests

import harness
from browser import BROWSER_HEADERS, Browser

# every test starts from a reset sandbox without rate limits or faults (t/conftest.py)
pytestmark = pytest.mark.usefixtures("fresh_sandbox")

# MoneiConnectHTTPTimeout 2 4 (harness.monei_directives): the total time of one call to Monei.
HTTP_TOTAL = 4.0
# The cross-server refresh lock outlives its holder by this long at most: the total HTTP
# timeout plus 10 s of margin.
LOCK_LIFETIME = HTTP_TOTAL + 10.0

PROTECTED = """<Location {path}>
    AuthType MoneiConnect
    Require valid-user
</Location>
"""

COMMON = harness.ACCOUNT_LOCATION + harness.DASHBOARD_LOCATION + """<Location /bye>
    SetHandler monei-connect-disconnect
</Location>
""" + PROTECTED.format(path="/list/a") + PROTECTED.format(path="/list/b")


def get(url, cookie=None, timeout=30, **headers):
    """One GET on a connection of its own (spread over httpd's children), cookie as given."""
    h = dict(BROWSER_HEADERS, Connection="close", **headers)
    if cookie is not None:
        h["Cookie"] = "monei_session=" + cookie
    return requests.get(url, headers=h, timeout=timeout, allow_redirects=False)


def parallel(fn, items, workers=40):
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


def no_child_died(h):
    """The parent notices a dead child within a second: wait for that, then read the log."""
    time.sleep(1.2)
    crashes = h.crashes()
    assert not crashes, "\n".join(crashes[:5])


def site(httpd_factory, sandbox, name, extra="", body="", modules=(), store=None):
    h = httpd_factory(name, "", modules=modules)
    if store:
        extra = "MoneiConnectSessionStore %s\n%s" % (store, extra)
    h.body = harness.monei_directives(sandbox, h.port, extra=extra) + COMMON + \
        body.format(htdocs=harness.HTDOCS)
    return h


def login(h, ca, path="/account/env.cgi"):
    b = Browser(ca)
    b.login(h.url + path)
    cookie = b.cookie("monei_session")
    assert cookie
    return b, cookie


def connected_env(h, cookie, path="/account/env.cgi"):
    r = get(h.url + path, cookie)
    assert r.status_code == 200, (r.status_code, r.text[:200])
    e = r.json()
    assert e["MONEI_CONNECTED"] == "1"
    return e


# ---------------------------------------------------------------------------------------
# Subrequests into protected locations
# ---------------------------------------------------------------------------------------

SUBREQ = """MaxMemFree 1
<Directory {htdocs}/list>
    Options +Indexes
</Directory>
Alias /p2 {htdocs}/account
Alias /p3 {htdocs}/account
Alias /rw {htdocs}/account
<Location /p2>
    AuthType MoneiConnect
    Require valid-user
</Location>
<Location /p3>
    AuthType MoneiConnect
    Require valid-user
</Location>
<Location /rw>
    AuthType MoneiConnect
    Require valid-user
</Location>
RewriteEngine On
RewriteCond %{{LA-U:REMOTE_USER}} ^(.+)$
RewriteRule ^/rw/ - [E=RW_USER:%1]
"""


@pytest.fixture
def subreq_site(httpd_factory, sandbox):
    return site(httpd_factory, sandbox, "core-subreq", body=SUBREQ,
                modules=("autoindex", "rewrite")).start()


def test_autoindex_of_protected_subfolders(subreq_site, sandbox, ca):
    # mod_autoindex looks up every entry (ap_sub_req_lookup_dirent), so the two protected
    # folders are authenticated in subrequests it destroys again; MaxMemFree 1 hands their
    # memory back at once.
    h = subreq_site
    _, cookie = login(h, ca)
    codes, listed = [], 0
    for i in range(50):
        try:
            r = get(h.url + "/list/", cookie)
        except requests.ConnectionError:
            codes.append("connection lost")      # the child serving it died
            break
        codes.append(r.status_code)
        listed += 'href="a/"' in r.text and 'href="b/"' in r.text
    assert codes == [200] * 50, "request %d: %s" % (len(codes), codes[-1])
    assert listed == 50
    no_child_died(h)
    # the listing did not cost the session anything
    assert get(h.url + "/list/a/note.txt", cookie).text == "protected a\n"


def split_includes(text):
    """The three env.cgi outputs of ssi/three.shtml, in order."""
    out = []
    for n in (1, 2, 3):
        m = re.search(r'<pre id="inc%d">(.*?)</pre>' % n, text, re.S)
        assert m, text[:500]
        out.append(json.loads(m.group(1)) if m.group(1).strip().startswith("{") else {})
    return out


def test_ssi_includes_of_protected_cgis_each_see_the_session(subreq_site, sandbox, ca):
    h = subreq_site
    _, cookie = login(h, ca)
    for _ in range(10):
        r = get(h.url + "/ssi/three.shtml", cookie)
        assert r.status_code == 200, r.status_code
        incs = split_includes(r.text)
        assert [i.get("MONEI_CONNECTED") for i in incs] == ["1", "1", "1"], \
            [sorted(k for k in i if k.startswith("MONEI_")) for i in incs]
        users = {i.get("REMOTE_USER") for i in incs}
        assert len(users) == 1 and None not in users
    # an anonymous visitor gets the page, but none of the includes is authenticated
    r = get(h.url + "/ssi/three.shtml")
    assert r.status_code == 200
    assert all(i.get("MONEI_CONNECTED") != "1" for i in split_includes(r.text))
    no_child_died(h)


def test_rewrite_lookahead_in_front_of_protected_location(subreq_site, sandbox, ca):
    # %{LA-U:REMOTE_USER} runs the whole request as a subrequest at translate time and
    # destroys it before the main request authenticates.
    h = subreq_site
    _, cookie = login(h, ca)

    def one(_):
        r = get(h.url + "/rw/env.cgi", cookie)
        assert r.status_code == 200, r.status_code
        return r.json()

    for e in parallel(one, range(30), workers=10):
        assert e["MONEI_CONNECTED"] == "1"
        assert e["REMOTE_USER"] and e.get("RW_USER") == e["REMOTE_USER"]
    # not connected: the look-ahead finds no user, the request is sent to Monei
    r = get(h.url + "/rw/env.cgi")
    assert r.status_code == 302 and "/connect/authorize" in r.headers["Location"]
    no_child_died(h)


# ---------------------------------------------------------------------------------------
# Two servers, one shared store: a concurrent refresh
# ---------------------------------------------------------------------------------------

def two_servers(httpd_factory, sandbox, store, module, extra=""):
    return [site(httpd_factory, sandbox, "core-" + n, extra=extra, modules=(module,),
                 store=store).start() for n in ("a", "b")]


RUNS = 20
TOKEN_LIFETIME = 2      # seconds, refreshed only once expired (MoneiConnectRefreshBeforeExpiry 0)


def expires_at(h, cookie):
    """The module's expiry of the session's access token: whole seconds."""
    return int(connected_env(h, cookie)["MONEI_TOKEN_EXPIRES"])


@pytest.mark.parametrize("kind", ["memcache", "redis"])
def test_concurrent_refresh_two_servers_one_store(kind, httpd_factory, sandbox, ca, request):
    store = request.getfixturevalue("memcached" if kind == "memcache" else "redis")
    sandbox.control("config", {"token_lifetime": TOKEN_LIFETIME})
    a, b = two_servers(httpd_factory, sandbox, "%s:127.0.0.1:%d" % (kind, store.port),
                       "socache_" + kind, extra="MoneiConnectRefreshBeforeExpiry 0")
    _, cookie = login(a, ca)
    expiry = expires_at(a, cookie)
    # a protected static file: 40 answers long before the new token expires in its turn
    urls = [a.url + "/list/a/note.txt", b.url + "/list/a/note.txt"] * 20
    for run in range(RUNS):
        # just past the (whole) second the token expires in: expired for the module, and
        # the new token has almost TOKEN_LIFETIME seconds before it is due again
        time.sleep(max(0.0, expiry + 0.05 - time.time()))
        before = sandbox.counters()
        codes = parallel(lambda u: get(u, cookie).status_code, urls)
        after = sandbox.counters()
        refreshes = after["refreshes"] - before["refreshes"]
        reuses = after["refresh_reuse"] - before["refresh_reuse"]
        assert (codes, refreshes, reuses) == ([200] * 40, 1, 0), \
            "run %d: codes %s, %d refreshes, %d reuses of a rotated token" % (
                run, {c: codes.count(c) for c in set(codes)}, refreshes, reuses)
        expiry = expires_at((a, b)[run % 2], cookie)
    for h in (a, b):
        connected_env(h, cookie)


# ---------------------------------------------------------------------------------------
# The lock holder's server dies while Monei holds its refresh
# ---------------------------------------------------------------------------------------

def kill_httpd(h):
    """SIGKILL the parent and every child of h: a machine that lost power, nothing cleaned."""
    with open(h.pidfile) as f:
        parent = int(f.read().strip())
    victims = {parent}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == parent:
                victims.add(int(d))
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.time() + 5
    while time.time() < deadline and any(os.path.exists("/proc/%d" % p) and
                                         not zombie(p) for p in victims):
        time.sleep(0.05)
    # nothing will remove it now; the fixture's stop must not wait for a dead parent
    os.unlink(h.pidfile)


def zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def wait_for_token_calls(sandbox, n, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if sandbox.counters()["calls"]["token"] >= n:
            return True
        time.sleep(0.02)
    return False


def test_lock_holder_killed_mid_refresh(httpd_factory, sandbox, ca, redis):
    a, b = two_servers(httpd_factory, sandbox, "redis:127.0.0.1:%d" % redis.port,
                       "socache_redis", extra="MoneiConnectRefreshBeforeExpiry 1")
    sandbox.control("config", {"token_lifetime": 3})
    _, cookie = login(a, ca)
    connected_env(b, cookie)
    time.sleep(3.2)                                # expired: the next request must refresh
    # Monei holds the refresh far longer than the test: it never answers A
    sandbox.control("faults", {"endpoint": "token", "delay": 60})
    calls = sandbox.counters()["calls"]["token"]
    holder = threading.Thread(target=lambda: swallow(get, a.url + "/list/a/note.txt", cookie,
                                                     timeout=10), daemon=True)
    holder.start()
    assert wait_for_token_calls(sandbox, calls + 1), "server A never called Monei"
    took_lock = time.time()
    kill_httpd(a)
    bound = LOCK_LIFETIME + HTTP_TOTAL + 2.0       # 2 s for scheduling on a busy machine
    seen, first_ok = [], None

    def ask(_):
        start = time.time()
        try:
            r = get(b.url + "/list/a/note.txt", cookie, timeout=bound + 15)
            return start, time.time(), r.status_code
        except requests.RequestException as e:
            return start, time.time(), type(e).__name__

    # two clients keep asking B until it serves the session again
    while first_ok is None and time.time() - took_lock < bound + 5:
        for start, end, status in parallel(ask, range(2), workers=2):
            seen.append((round(start - took_lock, 1), round(end - start, 1), status))
            if status == 200 and first_ok is None:
                first_ok = end - took_lock
        time.sleep(0.3)
    summary = "(since A took the lock, took, status): %s" % seen
    print("\nB after A died %s" % summary)
    assert all(isinstance(s, int) for _, _, s in seen), "a request hung or failed: " + summary
    assert all(took <= bound for _, took, _ in seen), "B kept a request too long: " + summary
    assert first_ok is not None and first_ok <= bound, \
        "B did not serve the session within %.0f s: %s" % (bound, summary)
    connected_env(b, cookie)
    holder.join(15)


def swallow(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except requests.RequestException:
        return None


# ---------------------------------------------------------------------------------------
# A disconnect while a refresh is in flight
# ---------------------------------------------------------------------------------------

# 30-second tokens refreshed 29 s before expiry: due 1 s after each login, still valid.
DUE_SOON = "MoneiConnectRefreshBeforeExpiry 29"


def tokens(sandbox):
    return sandbox.control("tokens?user=ada&client_id=" + harness.CLIENT_ID)


def test_disconnect_during_refresh_stays_disconnected(httpd_factory, sandbox, ca):
    h = site(httpd_factory, sandbox, "core-disconnect", extra=DUE_SOON).start()
    sandbox.control("config", {"token_lifetime": 30})
    for run in range(10):
        # even runs: Monei has rotated the tokens but its answer is still on the way;
        # odd runs: Monei is slow to even start
        after = run % 2 == 0
        _, cookie = login(h, ca)
        time.sleep(1.1)                                          # a refresh is due
        named = tokens(sandbox)["refresh"]["named_in_revoke"]
        fault = {"endpoint": "token", "delay": 1.5}
        if after:
            fault["after"] = True
        sandbox.control("faults", fault)
        calls = sandbox.counters()["calls"]["token"]
        pool = concurrent.futures.ThreadPoolExecutor(1)
        inflight = pool.submit(get, h.url + "/list/a/note.txt", cookie)
        assert wait_for_token_calls(sandbox, calls + 1), "run %d: no refresh started" % run
        bye = (h.url + "/bye") if run % 4 < 2 else (h.url + "/monei/callback?disconnect")
        r = get(bye, cookie, **{"Sec-Fetch-Site": "same-origin"})
        assert r.status_code == 302, (run, r.status_code)
        inflight.result(timeout=HTTP_TOTAL + 5)
        pool.shutdown()
        for check in range(2):
            codes = parallel(lambda _: get(h.url + "/list/a/note.txt", cookie).status_code,
                             range(8), workers=8)
            assert 200 not in codes, "run %d (%s): the old cookie works again: %s" % (
                run, "answer held" if after else "slow start", codes)
            assert get(h.url + "/dashboard", cookie).json() == {"connected": False}
            time.sleep(0.5)
        t = tokens(sandbox)
        assert t["access"]["active"] == 0 and t["refresh"]["active"] == 0, \
            "run %d (%s): tokens left alive at Monei: %s" % (
                run, "answer held" if after else "slow start", t)
        assert t["refresh"]["named_in_revoke"] > named, \
            "run %d: the disconnect did not revoke a refresh token: %s" % (run, t)
    assert sandbox.counters()["refresh_reuse"] == 0


# ---------------------------------------------------------------------------------------
# Two virtual hosts in one httpd
# ---------------------------------------------------------------------------------------

CLIENT2_ID = "mc_testclient02"
CLIENT2_SECRET = "mcs_" + "OtherVhostSecret" + "p4l8"
PASSPHRASE2 = "second-passphrase-" + "z8x6c4v2b0n9m7"


def vhost_directives(sandbox, port, client_id, secret, passphrase, tag):
    redirect = "http://127.0.0.1:%d/monei/callback" % port
    sandbox.register(client_id, secret, [redirect])
    files = []
    for what, value in (("secret", secret), ("key", passphrase)):
        path = os.path.join(harness.RUN, "vhost-%s-%s" % (tag, what))
        with open(path, "w") as f:
            f.write(value + "\n")
        os.chmod(path, 0o600)
        files.append(path)
    return f"""MoneiConnectClientID {client_id}
MoneiConnectClientSecret file:{files[0]}
MoneiConnectRedirectURI {redirect}
MoneiConnectCryptoPassphrase file:{files[1]}
MoneiConnectAuthorizeURL {sandbox.https}/connect/authorize
MoneiConnectAPIBase {sandbox.https}/api/v1
MoneiConnectCAFile {sandbox.ca.ca_cert}
MoneiConnectHTTPTimeout 2 4
"""


@pytest.mark.parametrize("passphrase", ["other", "same"])
def test_cookie_of_one_vhost_never_opens_another(passphrase, httpd_factory, sandbox, ca):
    for v in (CLIENT2_SECRET, PASSPHRASE2):
        harness.record_secret(v)
    h = httpd_factory("core-vhosts-" + passphrase, "")
    port2 = harness.free_port()
    one = vhost_directives(sandbox, h.port, harness.CLIENT_ID, harness.CLIENT_SECRET,
                           harness.PASSPHRASE, "one")
    two = vhost_directives(sandbox, port2, CLIENT2_ID, CLIENT2_SECRET,
                           PASSPHRASE2 if passphrase == "other" else harness.PASSPHRASE, "two")
    h.body = f"""Listen 127.0.0.1:{port2}
<VirtualHost 127.0.0.1:{h.port}>
ServerName 127.0.0.1:{h.port}
{one}{COMMON}</VirtualHost>
<VirtualHost 127.0.0.1:{port2}>
ServerName 127.0.0.1:{port2}
{two}{COMMON}</VirtualHost>
"""
    # Two ports rather than two names: the browser logs in without DNS, and sends the
    # cookie of 127.0.0.1 to both, as a browser sends one host's cookies to every port.
    h.start()
    harness.wait_port(port2)
    urls = {"one": h.url, "two": "http://127.0.0.1:%d" % port2}
    for home, other in (("one", "two"), ("two", "one")):
        _, cookie = login_at(urls[home], ca)
        # every child of the httpd opens the session for its own host first
        warm = parallel(lambda _: get(urls[home] + "/list/a/note.txt", cookie).status_code,
                        range(48))
        assert warm == [200] * 48
        mixed = [urls[other] + "/list/a/note.txt"] * 50 + [urls[home] + "/list/a/note.txt"] * 24
        results = parallel(lambda u: (u, get(u, cookie).status_code), mixed)
        foreign = [s for u, s in results if u.startswith(urls[other])]
        assert 200 not in foreign, "%s's cookie opened a session on %s %d times of 50" % (
            home, other, foreign.count(200))
        assert all(s == 302 for s in foreign), foreign
        assert all(s == 200 for u, s in results if u.startswith(urls[home]))
        assert get(urls[other] + "/dashboard", cookie).json() == {"connected": False}
        # sent to log in with the other host's own client
        r = get(urls[other] + "/account/env.cgi", cookie)
        want = CLIENT2_ID if other == "two" else harness.CLIENT_ID
        assert "client_id=%s&" % want in r.headers["Location"] + "&"
        assert get(urls[home] + "/dashboard", cookie).json()["connected"] is True


def login_at(base, ca):
    b = Browser(ca)
    b.login(base + "/account/env.cgi")
    cookie = b.cookie("monei_session")
    assert cookie
    return b, cookie


# ---------------------------------------------------------------------------------------
# 429 on refresh
# ---------------------------------------------------------------------------------------

def test_refresh_429_at_most_one_token_call(httpd_factory, sandbox, ca):
    h = site(httpd_factory, sandbox, "core-429", extra=DUE_SOON).start()
    sandbox.control("config", {"token_lifetime": 30})
    for run in range(20):
        _, cookie = login(h, ca)
        time.sleep(1.1)                                          # a refresh is due
        sandbox.control("faults", {"endpoint": "token", "count": 1000, "status": 429,
                                   "headers": {"Retry-After": "60"}})
        before = sandbox.counters()["calls"]["token"]
        codes = parallel(lambda _: get(h.url + "/list/a/note.txt", cookie).status_code,
                         range(30), workers=30)
        calls = sandbox.counters()["calls"]["token"] - before
        sandbox.control("faults", method="DELETE")
        assert codes == [200] * 30, (run, codes)
        assert calls <= 1, "run %d: %d token calls within Retry-After: 60" % (run, calls)
