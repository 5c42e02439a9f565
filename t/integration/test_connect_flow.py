"""The connect flow against a real httpd (event MPM, several children) and the
sandbox over HTTPS with our own CA."""
import json
import threading
import urllib.parse

import pytest

import harness
from browser import Browser

# every test starts from a reset sandbox without rate limits or faults (t/conftest.py)
pytestmark = pytest.mark.usefixtures("fresh_sandbox")

FLOW = """
MoneiConnectTrustedReturnHost trusted.example
""" + harness.ACCOUNT_LOCATION + """<Location /walletonly>
    AuthType MoneiConnect
    MoneiConnectScope "wallet:read"
    Require valid-user
</Location>
Alias /walletonly {htdocs}/account
<Location /connect-monei>
    SetHandler monei-connect-login
</Location>
<Location /preset>
    AuthType MoneiConnect
    Require valid-user
    SetEnvIf Request_URI "^/preset" MONEI_WALLET_NAIRA_BALANCE=99999999.00 MONEI_CONNECTED=0
    Header always set X-Seen-Balance "%{{MONEI_WALLET_NAIRA_BALANCE}}e"
</Location>
Alias /preset {htdocs}/account
""" + harness.DASHBOARD_LOCATION + """ProxyPass /backend/ http://127.0.0.1:{backend}/
<Location /backend/>
    AuthType MoneiConnect
    MoneiConnectExport both
    Require valid-user
</Location>
"""


@pytest.fixture(scope="module")
def site(sandbox, backend):
    h = harness.Httpd("flow", "", modules=("proxy", "proxy_http"))
    h.body = harness.monei_directives(sandbox, h.port) + FLOW.format(
        htdocs=harness.HTDOCS, backend=backend.port)
    h.start()
    yield h
    h.stop()


def env_of(resp):
    assert resp.status_code == 200, (resp.status_code, resp.text[:500])
    return resp.json()


def test_full_grant_exports_everything(site, sandbox, ca):
    b = Browser(ca)
    cb = b.login(site.url + "/account/env.cgi?x=1", user="ada")
    assert cb.status_code == 302
    assert cb.headers["Location"] == "/account/env.cgi?x=1"
    env = env_of(b.get(site.url + cb.headers["Location"]))
    assert env["AUTH_TYPE"] == "MoneiConnect"
    assert env["MONEI_CONNECTED"] == "1"
    assert env["MONEI_SCOPES"].split() == ["wallet:read", "profile:read"] or \
        set(env["MONEI_SCOPES"].split()) == {"wallet:read", "profile:read"}
    assert env["MONEI_SCOPE_WALLET_READ"] == "1" and env["MONEI_SCOPE_PROFILE_READ"] == "1"
    assert env["MONEI_WALLET_NAIRA_BALANCE"] == "1805.00"
    wallet = json.loads(env["MONEI_WALLET_JSON"])
    fiat = [w for w in wallet["subwallets"] if w["type"] == "FIAT"][0]
    evm = [w for w in wallet["subwallets"] if w.get("chain") == "EVM"][0]
    sol = [w for w in wallet["subwallets"] if w.get("chain") == "SOLANA"][0]
    assert env["MONEI_WALLET_VIRTUAL_ACCOUNT_NUMBER"] == fiat["virtualAccount"]["accountNumber"]
    assert env["MONEI_WALLET_VIRTUAL_ACCOUNT_BANK"] == fiat["virtualAccount"]["bankName"]
    assert env["MONEI_WALLET_EVM_ADDRESS"] == evm["publicAddress"]
    assert env["MONEI_WALLET_SOLANA_ADDRESS"] == sol["publicAddress"]
    user = json.loads(env["MONEI_USER_JSON"])
    assert env["REMOTE_USER"] == user["id"] == env["MONEI_USER_ID"]
    assert env["MONEI_USER_EMAIL"] == user["email"]
    assert env["MONEI_USER_FIRST_NAME"] == "Ada" and env["MONEI_USER_LAST_NAME"] == "Okafor"
    assert int(env["MONEI_TOKEN_EXPIRES"]) > 0 and int(env["MONEI_WALLET_UPDATED"]) > 0
    assert "MONEI_WALLET_STALE" not in env
    assert "MONEI_ACCESS_TOKEN" not in env
    # nothing token-like anywhere in what the application sees
    blob = json.dumps(env)
    assert "mct_" not in blob and "mcr_" not in blob and "mcs_" not in blob
    # the SSI page sees the same
    page = b.get(site.url + "/account/wallet.shtml")
    assert page.status_code == 200
    assert '<p id="balance">1805.00</p>' in page.text
    assert '<p id="user">%s</p>' % user["id"] in page.text
    assert '<p id="email">%s</p>' % user["email"] in page.text


def test_partial_grant_wallet_only(site, sandbox, ca):
    b = Browser(ca)
    b.login(site.url + "/account/env.cgi", scopes=["wallet:read"])
    env = env_of(b.get(site.url + "/account/env.cgi"))
    assert env["MONEI_SCOPES"] == "wallet:read"
    assert env["MONEI_WALLET_NAIRA_BALANCE"] == "1805.00"
    assert not [k for k in env if k.startswith("MONEI_USER_")]
    assert "MONEI_SCOPE_PROFILE_READ" not in env
    wallet = json.loads(env["MONEI_WALLET_JSON"])
    fiat = [w for w in wallet["subwallets"] if w["type"] == "FIAT"][0]
    assert env["REMOTE_USER"] == fiat["id"]
    c = sandbox.counters()
    assert c["calls"]["user"] == 0
    assert c["calls"]["wallet"] >= 1


def test_empty_grant_is_no_connection(site, sandbox, ca):
    # Approving with nothing ticked shares nothing: a page says so, no session is made.
    b = Browser(ca)
    cb = b.login(site.url + "/account/env.cgi", scopes=[])
    assert cb.status_code == 403, (cb.status_code, cb.text[:300])
    assert "nothing was" in cb.text and "shared" in cb.text
    assert "Try again" in cb.text and "?login&amp;scope=" in cb.text
    assert "monei_session" not in b.cookie_names()
    assert "monei_session=" not in cb.headers.get("Set-Cookie", "")
    c = sandbox.counters()
    assert c["calls"]["user"] == 0 and c["calls"]["wallet"] == 0
    assert c["calls"]["revoke"] >= 1       # the token for nothing does not linger at Monei
    assert b.get(site.url + "/account/env.cgi").status_code == 302


def test_nulls_user_missing_fields_not_set(site, sandbox, ca):
    b = Browser(ca)
    b.login(site.url + "/account/env.cgi", user="nulls")
    env = env_of(b.get(site.url + "/account/env.cgi"))
    assert env["MONEI_WALLET_NAIRA_BALANCE"] == "0.00"
    for k in ("MONEI_WALLET_VIRTUAL_ACCOUNT_NUMBER", "MONEI_WALLET_EVM_ADDRESS",
              "MONEI_WALLET_SOLANA_ADDRESS", "MONEI_USER_LAST_NAME"):
        assert k not in env
    assert env["MONEI_USER_FIRST_NAME"]


def test_deny_shows_friendly_page_and_no_session(site, sandbox, ca):
    b = Browser(ca)
    cb = b.login(site.url + "/account/env.cgi", action="deny")
    assert cb.status_code == 403
    assert "text/html" in cb.headers["Content-Type"]
    assert "chose not to connect" in cb.text
    assert "monei_session" not in b.cookie_names()
    again = b.get(site.url + "/account/env.cgi")
    assert again.status_code == 302
    assert sandbox.counters()["calls"]["token"] == 0


def start_and_consent(b, site):
    first = b.get(site.url + "/account/env.cgi")
    assert first.status_code == 302
    back = b.consent(first.headers["Location"])
    return back.headers["Location"]


def test_callback_without_state_400(site, sandbox, ca):
    b = Browser(ca)
    cb_url = start_and_consent(b, site)
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(cb_url).query)
    r = b.get(site.url + "/monei/callback?code=" + q["code"][0])
    assert r.status_code == 400
    assert sandbox.counters()["calls"]["token"] == 0


def test_callback_unknown_state_400(site, sandbox, ca):
    b = Browser(ca)
    cb_url = start_and_consent(b, site)
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(cb_url).query)
    r = b.get(site.url + "/monei/callback?code=%s&state=%s" % (q["code"][0], "A" * 43))
    assert r.status_code == 400
    assert sandbox.counters()["calls"]["token"] == 0


def test_callback_from_another_browser_400(site, sandbox, ca):
    victim, attacker = Browser(ca), Browser(ca)
    cb_url = start_and_consent(attacker, site)
    r = victim.get(cb_url)     # login CSRF: the attacker's code in the victim's browser
    assert r.status_code == 400
    assert "another browser" in r.text
    assert sandbox.counters()["calls"]["token"] == 0
    assert "monei_session" not in victim.cookie_names()


def test_replayed_callback_never_exchanges_twice(site, sandbox, ca):
    b = Browser(ca)
    cb_url = start_and_consent(b, site)
    ok = b.get(cb_url)
    assert ok.status_code == 302
    assert sandbox.counters()["code_exchanges"] == 1
    again = b.get(cb_url)
    assert again.status_code == 400
    c = sandbox.counters()
    assert c["calls"]["token"] == 1 and c["code_reuse"] == 0


def test_seed_routes_like_the_quickstart(site, sandbox, ca):
    b = Browser(ca)
    dash = b.get(site.url + "/dashboard")
    assert dash.status_code == 200 and dash.json() == {"connected": False}
    start = b.get(site.url + "/connect-monei")
    assert start.status_code == 302
    loc = start.headers["Location"]
    assert loc.startswith(sandbox.https + "/connect/authorize?")
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query)
    assert q["client_id"] == [harness.CLIENT_ID]
    assert q["redirect_uri"] == [site.url + "/monei/callback"]
    assert q["response_type"] == ["code"]
    assert q["code_challenge_method"] == ["S256"] and len(q["code_challenge"][0]) == 43
    assert len(q["state"][0]) >= 22     # >= 128 bits
    assert q["scope"] == ["wallet:read profile:read"]
    back = b.consent(loc)
    cb = b.get(back.headers["Location"])
    assert cb.status_code == 302 and cb.headers["Location"] == "/"
    info = b.get(site.url + "/dashboard").json()
    assert info["connected"] is True
    assert set(info["scopes"]) == {"wallet:read", "profile:read"}
    assert info["wallet"]["nairaBalance"] == "1805.00"
    assert info["user"]["firstName"] == "Ada"
    assert isinstance(info["expires_at"], int)
    assert "mct_" not in json.dumps(info) and "mcr_" not in json.dumps(info)
    # the redirect URI path's own ?info answers the same
    assert b.get(site.url + "/monei/callback?info").json()["connected"] is True


def test_login_with_return_to_and_scope(site, sandbox, ca):
    b = Browser(ca)
    r = b.get(site.url + "/monei/callback?login&return_to=/account/env.cgi&scope=wallet:read")
    assert r.status_code == 302
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(r.headers["Location"]).query)
    assert q["scope"] == ["wallet:read"]
    back = b.consent(r.headers["Location"])
    cb = b.get(back.headers["Location"])
    assert cb.headers["Location"] == "/account/env.cgi"


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/",
                                    "/\\evil.example", "/%2F%2Fevil.example",
                                    "https://trusted.example@evil.example/"])
def test_login_return_to_open_redirect_refused(site, ca, target):
    b = Browser(ca)
    r = b.get(site.url + "/connect-monei?return_to=" + urllib.parse.quote(target, safe=""))
    assert r.status_code == 400


def test_login_return_to_trusted_host_allowed(site, ca):
    b = Browser(ca)
    r = b.get(site.url + "/connect-monei?return_to=" +
              urllib.parse.quote("https://trusted.example/after", safe=""))
    assert r.status_code == 302


def test_hot_path_no_calls_no_rewrite(site, sandbox, ca):
    b = Browser(ca)
    b.login(site.url + "/account/env.cgi")
    env_of(b.get(site.url + "/account/env.cgi"))
    before = sandbox.counters()
    for _ in range(100):
        r = b.get(site.url + "/account/wallet.shtml")
        assert r.status_code == 200
    after = sandbox.counters()
    assert after["calls"] == before["calls"], (before, after)


def test_variables_set_before_authentication_are_replaced(site, sandbox, ca):
    # SetEnvIf runs before authentication: the module's values must win, each name once
    b = Browser(ca)
    b.login(site.url + "/preset/env.cgi")
    env = env_of(b.get(site.url + "/preset/env.cgi"))
    assert env["MONEI_WALLET_NAIRA_BALANCE"] == "1805.00"
    assert env["MONEI_CONNECTED"] == "1"
    # CGI and SSI get a merged copy of the environment; mod_headers reads the table itself
    # (its first entry of a name): a forged entry left in place would show here
    r = b.get(site.url + "/preset/no-such-file")
    assert r.status_code == 404 and r.headers["X-Seen-Balance"] == "1805.00", r.headers


def test_forged_headers_never_reach_cgi_or_backend(site, sandbox, ca):
    b = Browser(ca)
    b.login(site.url + "/account/env.cgi")
    forged = {"X-Monei-Wallet-Naira-Balance": "99999999.00", "X-Monei-Connected": "1",
              "x-monei-user-id": "attacker", "X-Monei-Access-Token": "mct_forged"}
    env = env_of(b.get(site.url + "/account/env.cgi", headers=forged))
    assert env["MONEI_WALLET_NAIRA_BALANCE"] == "1805.00"
    assert not [k for k in env if k.startswith("HTTP_X_MONEI_")]
    seen = env_of(b.get(site.url + "/backend/echo", headers=forged))["headers"]
    lower = {k.lower(): v for k, v in seen.items()}
    assert lower["x-monei-wallet-naira-balance"] == "1805.00"
    assert lower["x-monei-connected"] == "1"
    assert lower["x-monei-user-id"] != "attacker"
    assert "x-monei-access-token" not in lower


def test_module_cookies_hidden_from_cgi_and_backend(site, sandbox, ca):
    b = Browser(ca)
    b.login(site.url + "/account/env.cgi")
    b.s.cookies.set("theme", "dark", domain="127.0.0.1", path="/")
    env = env_of(b.get(site.url + "/account/env.cgi"))
    assert "monei_session" not in env.get("HTTP_COOKIE", "")
    assert "theme=dark" in env.get("HTTP_COOKIE", "")
    env = env_of(b.get(site.url + "/env.cgi"))        # unprotected pages too
    assert "monei_session" not in env.get("HTTP_COOKIE", "")
    seen = env_of(b.get(site.url + "/backend/x"))["headers"]
    assert "monei_session" not in seen.get("Cookie", "")


def test_login_and_callback_headers(site, sandbox, ca):
    b = Browser(ca)
    first = b.get(site.url + "/account/env.cgi")
    for resp in (first,):
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        assert "no-store" in resp.headers["Cache-Control"]
    set_cookie = first.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "Path=/" in set_cookie and "SameSite=Lax" in set_cookie
    back = b.consent(first.headers["Location"])
    cb = b.get(back.headers["Location"])
    assert cb.status_code == 302
    assert cb.headers["Referrer-Policy"] == "no-referrer"
    assert "no-store" in cb.headers["Cache-Control"]
    sess = [c for c in cb.raw.headers.getlist("Set-Cookie") if c.startswith("monei_session=")]
    assert sess and "HttpOnly" in sess[0] and "SameSite=Lax" in sess[0]
    sid = b.cookie("monei_session")
    assert sid and len(sid) >= 22


def test_new_session_id_at_login(site, sandbox, ca):
    b = Browser(ca)
    b.login(site.url + "/account/env.cgi")
    first = b.cookie("monei_session")
    b.get(site.url + "/monei/callback?login")
    b.login(site.url + "/monei/callback?login")
    second = b.cookie("monei_session")
    assert first and second and first != second
    # the old id no longer works
    other = Browser(ca)
    other.s.cookies.set("monei_session", first, domain="127.0.0.1", path="/")
    assert other.get(site.url + "/account/env.cgi").status_code == 302


def test_api_client_gets_401_json(site, ca):
    b = Browser(ca)
    r = b.get(site.url + "/account/env.cgi", headers={"X-Requested-With": "XMLHttpRequest"})
    assert r.status_code == 401
    assert r.json()["error"] and r.json()["message"]
    assert "MoneiConnect" in r.headers["WWW-Authenticate"]


def test_ten_tabs_log_in_at_once(site, sandbox, ca):
    # A browser that never had the state cookie opens ten tabs at the same moment. Each start
    # mints its own binding and the browser keeps one: a tab that lost that race is sent once
    # through a fresh login for its page (never an error page), which then finishes.
    b = Browser(ca)
    starts = [None] * 10

    def start(i):
        starts[i] = b.get(site.url + "/account/env.cgi?tab=%d" % i)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(10)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert all(s.status_code == 302 for s in starts)
    state_cookies = [n for n in b.cookie_names() if n.endswith("_state")]
    assert len(state_cookies) <= 1
    finished = retried = 0
    for i, s in enumerate(starts):
        back = b.consent(s.headers["Location"])
        cb = b.get(back.headers["Location"])
        assert cb.status_code == 302, (i, cb.status_code, cb.text[:300])
        if cb.headers["Location"].startswith(sandbox.https):
            retried += 1
            back = b.consent(cb.headers["Location"])
            cb = b.get(back.headers["Location"])
            assert cb.status_code == 302, (i, cb.status_code, cb.text[:300])
        if cb.headers["Location"] == "/account/env.cgi?tab=%d" % i:
            finished += 1
    assert len([n for n in b.cookie_names() if n.endswith("_state")]) <= 1
    assert finished == 10
    print("\nten cookie-less tabs: %d finished at once, %d after one fresh login"
          % (10 - retried, retried))
    assert env_of(b.get(site.url + "/account/env.cgi"))["MONEI_CONNECTED"] == "1"


def test_ten_tabs_with_the_cookie_share_it(site, sandbox, ca):
    # A browser that has the binding cookie already: ten logins in ten tabs all finish, with
    # one state cookie and no retry.
    b = Browser(ca)
    b.get(site.url + "/connect-monei")
    binding = [c.value for c in b.s.cookies if c.name.endswith("_state")]
    starts = [None] * 10

    def start(i):
        starts[i] = b.get(site.url + "/account/env.cgi?tab=%d" % i)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(10)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    for i, s in enumerate(starts):
        back = b.consent(s.headers["Location"])
        cb = b.get(back.headers["Location"])
        assert cb.status_code == 302 and cb.headers["Location"] == "/account/env.cgi?tab=%d" % i
    assert [c.value for c in b.s.cookies if c.name.endswith("_state")] == binding


def test_other_browsers_do_not_share_the_binding(site, ca):
    a, b = Browser(ca), Browser(ca)
    b.s.headers["User-Agent"] = "another-browser/2.0"
    a.get(site.url + "/connect-monei")
    b.get(site.url + "/connect-monei")
    ca_ = [c.value for c in a.s.cookies if c.name.endswith("_state")]
    cb_ = [c.value for c in b.s.cookies if c.name.endswith("_state")]
    assert ca_ and cb_ and ca_ != cb_


def test_record_in_store_has_no_clear_token(sandbox, ca, httpd_factory):
    redis = harness.Redis("redis-flow").start()
    try:
        h = httpd_factory("redisflow", "", modules=("socache_redis", "proxy", "proxy_http"))
        h.body = harness.monei_directives(
            sandbox, h.port, extra="MoneiConnectSessionStore redis:127.0.0.1:%d" % redis.port
        ) + FLOW.format(htdocs=harness.HTDOCS, backend=1)
        h.start()
        b = Browser(ca)
        b.login(h.url + "/account/env.cgi")
        env_of(b.get(h.url + "/account/env.cgi"))
        secrets = sandbox.control("secrets")["secrets"]
        sid = b.cookie("monei_session")
        keys = redis.keys()
        assert keys, "no record in the store"
        for k in keys:
            assert sid.encode() not in k, "store key equals the cookie value"
            v = redis.get(k)
            for s in secrets:
                assert s.encode() not in v
            assert b"wallet" not in v and b"nairaBalance" not in v
        sizes = [len(redis.get(k)) - 1 for k in keys if k.endswith(b":s")]   # minus newline
        print("\nstored session record (wallet + profile): %d bytes" % max(sizes))
        assert sizes and max(sizes) <= 2048
        # hot path does not rewrite the record
        snap = redis.snapshot()
        for _ in range(20):
            assert b.get(h.url + "/account/wallet.shtml").status_code == 200
        redis.assert_unchanged_since(snap)
    finally:
        redis.stop()
