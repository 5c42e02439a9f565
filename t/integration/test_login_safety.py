"""Login and logout that cannot be turned against the user: the login binding belongs to one
browser, anonymous login starts take no store space, disconnect needs the user, scopes come
from the configuration, the callback checks in the right order, return_to compares origins."""
import concurrent.futures
import http.client
import os
import socket
import threading
import time
import urllib.parse

import pytest

import harness
from browser import Browser

pytestmark = pytest.mark.usefixtures("fresh_sandbox")

SITE = """
MoneiConnectTrustedReturnHost trusted.example:8443
""" + harness.ACCOUNT_LOCATION + harness.DASHBOARD_LOCATION + """<Location /connect-monei>
    SetHandler monei-connect-login
    MoneiConnectDefaultReturn /dashboard
</Location>
<Location /send>
    AuthType MoneiConnect
    MoneiConnectScope "wallet:read"
    Require monei-scope wallet:send
</Location>
Alias /send {htdocs}/account
<Location /bye>
    SetHandler monei-connect-disconnect
</Location>
"""
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


@pytest.fixture(scope="module")
def site(sandbox):
    h = harness.Httpd("safety", "")
    h.body = harness.monei_directives(sandbox, h.port) + SITE.format(htdocs=harness.HTDOCS)
    h.start()
    yield h
    h.stop()


def query_of(url):
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def binding_of(b):
    vals = [c.value for c in b.s.cookies if c.name.endswith("_state")]
    assert len(vals) <= 1
    return vals[0] if vals else None


def connected(b, site):
    return b.get(site.url + "/dashboard").json().get("connected")


# ---------------------------------------------------------------- 1. the binding


def test_same_address_and_agent_never_share_a_binding(site, sandbox, ca):
    # Attacker and victim behind one address with one User-Agent, 100 ms apart, no cookies.
    attacker, victim = Browser(ca), Browser(ca)
    a = attacker.get(site.url + "/connect-monei")
    time.sleep(0.1)
    v = victim.get(site.url + "/connect-monei")
    assert a.status_code == v.status_code == 302
    assert binding_of(attacker) and binding_of(victim)
    assert binding_of(attacker) != binding_of(victim)
    # The attacker approves as himself and lures the victim to his callback URL.
    back = attacker.consent(a.headers["Location"], user="ada")
    r = victim.get(back.headers["Location"])
    assert sandbox.counters()["calls"]["token"] == 0
    assert "monei_session" not in victim.cookie_names()
    # At most a fresh login of the victim's own (bound to the victim's cookie), never a
    # connection to the attacker's wallet.
    assert r.status_code in (302, 400)
    if r.status_code == 302:
        assert r.headers["Location"].startswith(sandbox.https)
        assert query_of(r.headers["Location"])["state"] != query_of(a.headers["Location"])["state"]
    # The attacker's own browser cannot finish the fresh login either.
    if r.status_code == 302:
        back2 = attacker.consent(r.headers["Location"], user="ada")
        r2 = attacker.get(back2.headers["Location"])
        assert r2.status_code == 400
        assert sandbox.counters()["calls"]["token"] == 0
    assert not connected(victim, site)


def test_lost_race_retries_once_then_error_page(site, sandbox, ca):
    # A tab whose state was bound to a cookie the browser no longer has gets one fresh login;
    # if that fresh login's callback does not match either, an error page (no loop).
    tab1, tab2, other = Browser(ca), Browser(ca), Browser(ca)
    s1 = tab1.get(site.url + "/account/env.cgi?t=1")
    first = tab1.consent(s1.headers["Location"])
    other.get(site.url + "/connect-monei")          # a browser with a different cookie
    r = other.get(first.headers["Location"])
    assert r.status_code == 302 and r.headers["Location"].startswith(sandbox.https)
    retry_back = other.consent(r.headers["Location"])
    # the fresh login is bound to `other`'s cookie: it finishes there...
    # ...but opened with yet another cookie it is an error page, not a second retry
    tab2.get(site.url + "/connect-monei")
    r2 = tab2.get(retry_back.headers["Location"])
    assert r2.status_code == 400 and "another browser" in r2.text
    assert sandbox.counters()["calls"]["token"] == 0
    done = other.get(retry_back.headers["Location"])
    assert done.status_code == 302 and done.headers["Location"] == "/account/env.cgi?t=1"
    assert connected(other, site)


def test_other_browsers_binding_is_400_and_the_owner_still_finishes(site, sandbox, ca):
    owner, thief = Browser(ca), Browser(ca)
    start = owner.get(site.url + "/account/env.cgi?x=owner")
    cb = owner.consent(start.headers["Location"]).headers["Location"]
    # a browser with no binding cookie at all
    r = thief.get(cb)
    assert r.status_code == 400 and "another browser" in r.text
    # a browser with a cookie of its own, for a state made with an existing cookie: it may be a
    # tab whose cookie another tab replaced, so it gets one login of its own (bound to its own
    # cookie, at Monei), never the owner's code exchanged
    owner2, thief2 = Browser(ca), Browser(ca)
    owner2.get(site.url + "/connect-monei")
    start2 = owner2.get(site.url + "/account/env.cgi?x=owner2")
    cb2 = owner2.consent(start2.headers["Location"]).headers["Location"]
    thief2.get(site.url + "/connect-monei")
    r2 = thief2.get(cb2)
    assert r2.status_code == 302 and r2.headers["Location"].startswith(sandbox.https)
    assert "/connect/authorize" in r2.headers["Location"]
    assert not thief2.cookie("monei_session")
    assert sandbox.counters()["calls"]["token"] == 0
    # the state was not used up by those attempts: both owners finish
    done = owner.get(cb)
    assert done.status_code == 302 and done.headers["Location"] == "/account/env.cgi?x=owner"
    done2 = owner2.get(cb2)
    assert done2.status_code == 302 and done2.headers["Location"] == "/account/env.cgi?x=owner2"
    # and a state is still used once
    assert owner.get(cb).status_code == 400
    assert sandbox.counters()["calls"]["token"] == 2


# ---------------------------------------------------------------- 2. floods


def flood(port, n, threads=8):
    """n login starts on keep-alive connections, as fast as they go; returns the statuses."""
    per = n // threads
    counts = {}
    lock = threading.Lock()

    def run(_):
        mine = {}
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _i in range(per):
            try:
                c.request("GET", "/monei/callback?login")
                resp = c.getresponse()
                resp.read()
                st = resp.status
                if resp.getheader("Connection", "").lower() == "close":
                    c.close()
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            except (http.client.HTTPException, OSError):
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                st = "error"
            mine[st] = mine.get(st, 0) + 1
        c.close()
        with lock:
            for k, v in mine.items():
                counts[k] = counts.get(k, 0) + v

    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        list(ex.map(run, range(threads)))
    return counts


@pytest.mark.parametrize("store", ["", "MoneiConnectSessionStore shmcb"])
def test_login_flood_does_not_evict_sessions(sandbox, ca, httpd_factory, store):
    # The default store, and shmcb at its default size (512 KB: about 210 sessions): 50 live
    # sessions, 20,000 login starts.
    h = httpd_factory("flood" + ("-shmcb" if store else ""), "")
    h.body = harness.monei_directives(sandbox, h.port, extra=store) + \
        SITE.format(htdocs=harness.HTDOCS)
    h.start()
    users = []
    for i in range(50):
        b = Browser(ca)
        cb = b.login(h.url + "/account/env.cgi?u=%d" % i)
        assert cb.status_code == 302
        users.append(b)
    newcomer = {}

    def new_user_logs_in():
        time.sleep(2)
        b = Browser(ca)
        cb = b.login(h.url + "/account/env.cgi?new=1")
        newcomer["status"] = cb.status_code
        newcomer["location"] = cb.headers.get("Location")
        newcomer["browser"] = b

    t = threading.Thread(target=new_user_logs_in)
    began = time.time()
    t.start()
    counts = flood(h.port, 20000)
    took = time.time() - began
    t.join()
    print("\n20,000 login starts in %.1f s: %s" % (took, counts))
    assert counts.get(302) == 20000, counts
    assert took < 60
    assert newcomer["status"] == 302 and newcomer["location"] == "/account/env.cgi?new=1"
    for i, b in enumerate(users):
        r = b.get(h.url + "/account/env.cgi?u=%d" % i)
        assert r.status_code == 200, (i, r.status_code)
        assert r.json()["MONEI_CONNECTED"] == "1"
    assert newcomer["browser"].get(h.url + "/account/env.cgi").status_code == 200


def test_login_starts_write_nothing_to_the_store(sandbox, ca, httpd_factory):
    redis = harness.Redis("redis-safety").start()
    try:
        h = httpd_factory("safetyredis", "", modules=("socache_redis",))
        h.body = harness.monei_directives(
            sandbox, h.port, extra="MoneiConnectSessionStore redis:127.0.0.1:%d" % redis.port
        ) + SITE.format(htdocs=harness.HTDOCS)
        h.start()
        snap = redis.snapshot()
        for _ in range(50):
            assert Browser(ca).get(h.url + "/monei/callback?login").status_code == 302
        redis.assert_unchanged_since(snap)
        # a forged or foreign state writes nothing either
        Browser(ca).get(h.url + "/monei/callback?code=x&state=" + "A" * 200)
        redis.assert_unchanged_since(snap)
        # a completed login writes its session and one small used-state marker
        b = Browser(ca)
        b.login(h.url + "/account/env.cgi")
        kinds = sorted(k[-1:] for k in redis.keys())
        assert kinds == [b"s", b"u"], kinds
    finally:
        redis.stop()


# ---------------------------------------------------------------- 3. disconnect


def logged_in(site, ca):
    b = Browser(ca)
    assert b.login(site.url + "/account/env.cgi").status_code == 302
    assert connected(b, site)
    return b


@pytest.mark.parametrize("path", ["/bye", "/monei/callback?disconnect"])
@pytest.mark.parametrize("site_hdr", ["same-origin", "none"])
def test_same_origin_get_disconnects(site, ca, path, site_hdr):
    b = logged_in(site, ca)
    r = b.get(site.url + path, headers={"Sec-Fetch-Site": site_hdr})
    assert r.status_code == 302 and r.headers["Location"] == "/"
    assert not connected(b, site)


@pytest.mark.parametrize("path", ["/bye", "/monei/callback?disconnect"])
@pytest.mark.parametrize("headers", [{}, {"Sec-Fetch-Site": "same-site"},
                                     {"Sec-Fetch-Site": "cross-site"}])
def test_other_get_asks_and_its_post_disconnects(site, sandbox, ca, path, headers):
    b = logged_in(site, ca)
    before = sandbox.counters()["revocations"]
    page = b.get(site.url + path + ("&" if "?" in path else "?") + "return_to=/after",
                 headers=headers)
    assert page.status_code == 200
    assert 'method="post"' in page.text
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert connected(b, site)
    action = page.text.split('action="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    token = page.text.split('name="token" value="', 1)[1].split('"', 1)[0]
    assert action == path
    # without the token, with another session's token, with a wrong one: 403, still connected
    other = logged_in(site, ca)
    other_token = other.get(site.url + "/bye").text.split('name="token" value="', 1)[1] \
        .split('"', 1)[0]
    for data in ({}, {"token": "x" * 43}, {"token": other_token}, {"token": ""}):
        r = b.post(site.url + action, data=data)
        assert r.status_code == 403, (data, r.status_code)
        assert connected(b, site)
    assert sandbox.counters()["revocations"] == before
    r = b.post(site.url + action, data={"token": token, "return_to": "/after"})
    assert r.status_code == 302 and r.headers["Location"] == "/after"
    assert not connected(b, site)
    assert sandbox.counters()["revocations"] == before + 2
    assert connected(other, site)


def test_api_client_disconnect(site, ca):
    b = logged_in(site, ca)
    api = {"X-Requested-With": "XMLHttpRequest", "Accept": "application/json"}
    r = b.get(site.url + "/bye", headers=api)
    assert r.status_code == 403 and r.json()["error"] == "confirmation_required"
    r = b.post(site.url + "/bye", headers=api, data={"token": "nope"})
    assert r.status_code == 403 and r.json()["error"] == "invalid_token"
    assert connected(b, site)
    token = b.get(site.url + "/bye").text.split('name="token" value="', 1)[1].split('"', 1)[0]
    r = b.post(site.url + "/bye", headers=api, data={"token": token})
    assert r.status_code == 302
    assert not connected(b, site)


def test_post_only_for_disconnect_on_the_redirect_path(site, ca):
    b = Browser(ca)
    for q in ("login", "info", "disconnect&login", "code=abc&state=def"):
        r = b.post(site.url + "/monei/callback?" + q, data={"x": "1"})
        assert r.status_code == 405, q


# ---------------------------------------------------------------- 4. scopes


@pytest.mark.parametrize("scope", ["admin:all", "wallet:withdraw", "offramp:execute",
                                   "wallet:read wallet:withdraw"])
def test_scope_outside_the_configuration_is_400(site, sandbox, ca, scope):
    b = Browser(ca)
    for path in ("/monei/callback?login&scope=", "/connect-monei?scope="):
        r = b.get(site.url + path + urllib.parse.quote(scope))
        assert r.status_code == 400, (path, r.status_code)
        assert "Location" not in r.headers
    assert sandbox.counters()["calls"]["authorize"] == 0


def test_scope_from_the_configuration_is_allowed(site, ca):
    # wallet:send is named by a Require monei-scope, profile:read by the default scope
    r = Browser(ca).get(site.url + "/monei/callback?login&scope=wallet%3Asend%20profile%3Aread")
    assert r.status_code == 302
    assert query_of(r.headers["Location"])["scope"] == "wallet:send profile:read"


def test_required_scopes_are_asked_in_the_first_consent(site, sandbox, ca):
    b = Browser(ca)
    r = b.get(site.url + "/send/env.cgi")
    assert r.status_code == 302
    assert query_of(r.headers["Location"])["scope"].split() == ["wallet:read", "wallet:send"]
    back = b.consent(r.headers["Location"])
    done = b.get(back.headers["Location"])
    assert done.status_code == 302 and done.headers["Location"] == "/send/env.cgi"
    env = b.get(site.url + "/send/env.cgi")
    assert env.status_code == 200, env.status_code      # no second consent
    assert sandbox.counters()["calls"]["authorize"] == 2    # one page, one form post


@pytest.mark.parametrize("line,word", [("Require monei-scope wallet:sned", "wallet:sned"),
                                       ("Require monei-scope wallet:read admin:all",
                                        "admin:all")])
def test_unknown_require_scope_fails_configtest(sandbox, httpd_factory, line, word):
    h = httpd_factory("badscope", "")
    h.body = harness.monei_directives(sandbox, h.port) + \
        "<Location /x>\n    AuthType MoneiConnect\n    %s\n</Location>\n" % line
    rc, out = h.configtest()
    assert rc != 0
    assert word in out and "monei-scope" in out
    assert "line" in out and "httpd.conf" in out


# ---------------------------------------------------------------- 5. return_to, logs


def test_return_to_compares_scheme_host_and_port(sandbox, ca, httpd_factory):
    h = httpd_factory("safetytls", "", modules=("ssl",), tls=ca)
    h.body = harness.monei_directives(sandbox, h.port, scheme="https") + \
        SITE.format(htdocs=harness.HTDOCS)
    h.start()
    b = Browser(ca)

    def ret(target, **kw):
        return b.get(h.url + "/connect-monei?return_to=" + urllib.parse.quote(target, safe=""),
                     **kw).status_code

    assert ret("http://127.0.0.1:9999/") == 400
    assert ret("https://127.0.0.1:9999/") == 400
    assert ret("http://127.0.0.1:%d/" % h.port) == 400          # same port, other scheme
    assert ret("https://127.0.0.1/") == 400                     # default port: other origin
    assert ret("https://127.0.0.1:%d/account" % h.port) == 302
    assert ret("https://localhost:%d/" % h.port, headers={"Host": "localhost:%d" % h.port}) \
        == 302
    assert ret("https://trusted.example:8443/x") == 302
    assert ret("https://trusted.example/x") == 400
    assert ret("https://trusted.example:9443/x") == 400


def real_code(b, site):
    """A code the sandbox issued (so the log guard knows it as a secret)."""
    start = b.get(site.url + "/account/env.cgi")
    return query_of(b.consent(start.headers["Location"]).headers["Location"])["code"]


def test_405_and_414_keep_the_code_out_of_every_log(site, ca):
    b = Browser(ca)
    codes = []
    code = real_code(b, site)
    codes.append(code)
    r = b.post(site.url + "/monei/callback?code=%s&state=abc" % code, data={"a": "b"})
    assert r.status_code == 405
    for method in ("PUT", "DELETE"):
        code = real_code(b, site)
        codes.append(code)
        r = b.s.request(method, site.url + "/monei/callback?code=%s&state=abc" % code,
                        verify=b.verify, allow_redirects=False)
        assert r.status_code == 405
    # httpd's own 414: a request line longer than LimitRequestLine
    code = real_code(b, site)
    codes.append(code)
    with socket.create_connection(("127.0.0.1", site.port)) as s:
        s.sendall(("GET /monei/callback?code=%s&state=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "Connection: close\r\n\r\n" % (code, "z" * 9000)).encode())
        resp = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            resp += chunk
    assert resp.startswith(b"HTTP/1.1 414"), resp[:100]
    time.sleep(0.5)        # the access log is written after the answer
    logs = ""
    for fn in os.listdir(os.path.join(site.dir, "logs")):
        with open(os.path.join(site.dir, "logs", fn), errors="replace") as f:
            logs += f.read()
    for c in codes:
        assert c not in logs
    assert "/monei/callback?[redacted]" in logs


# ---------------------------------------------------------------- 7. default return


def test_default_return(site, ca):
    b = Browser(ca)
    r = b.get(site.url + "/connect-monei")
    back = b.consent(r.headers["Location"])
    done = b.get(back.headers["Location"])
    assert done.status_code == 302 and done.headers["Location"] == "/dashboard"
    assert b.get(site.url + "/dashboard").json()["connected"] is True
    # the redirect URI path's ?login uses the server's default, /
    b2 = Browser(ca)
    assert b2.login(site.url + "/monei/callback?login").headers["Location"] == "/"


def test_default_return_is_not_for_htaccess(sandbox, httpd_factory):
    h = httpd_factory("badreturn", "")
    h.body = harness.monei_directives(sandbox, h.port) + "MoneiConnectDefaultReturn //evil\n"
    rc, out = h.configtest()
    assert rc != 0 and "MoneiConnectDefaultReturn" in out
