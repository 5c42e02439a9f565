"""Sessions shared through redis and memcached by two servers, graceful restarts
with the default shmcb store, store outages, a full shmcb."""
import concurrent.futures
import time

import pytest

import harness
from browser import Browser

# every test starts from a reset sandbox without rate limits or faults (t/conftest.py)
pytestmark = pytest.mark.usefixtures("fresh_sandbox")

PROTECT = harness.ACCOUNT_LOCATION + """<Location /bye>
    SetHandler monei-connect-disconnect
</Location>
""" + harness.DASHBOARD_LOCATION


def site(httpd_factory, sandbox, name, store, modules=(), extra=""):
    h = httpd_factory(name, "", modules=modules)
    h.body = harness.monei_directives(
        sandbox, h.port, extra="MoneiConnectSessionStore %s\n%s" % (store, extra)) + PROTECT
    return h


def two_servers(httpd_factory, sandbox, store, module, extra=""):
    a = site(httpd_factory, sandbox, "shared-a", store, (module,), extra).start()
    b = site(httpd_factory, sandbox, "shared-b", store, (module,), extra).start()
    return a, b


def connected(b, h):
    r = b.get(h.url + "/dashboard")
    assert r.status_code == 200, r.text[:200]
    return r.json()["connected"]


def shared_login_then_disconnect(a, b_site, ca):
    br = Browser(ca)
    br.login(a.url + "/account/env.cgi")
    assert br.get(a.url + "/account/env.cgi").status_code == 200
    # cookies are per host, not per port: the same browser cookie reaches server B
    e = br.get(b_site.url + "/account/env.cgi")
    assert e.status_code == 200 and e.json()["MONEI_CONNECTED"] == "1"
    assert br.get(b_site.url + "/bye", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 302
    old = br.history[-2].request.headers.get("Cookie")
    again = Browser(ca)
    again.s.headers["Cookie"] = old
    assert not connected(again, a)


def test_redis_shared_between_two_servers(httpd_factory, sandbox, ca, redis):
    a, b = two_servers(httpd_factory, sandbox, "redis:127.0.0.1:%d" % redis.port,
                       "socache_redis")
    shared_login_then_disconnect(a, b, ca)


def test_memcache_shared_between_two_servers(httpd_factory, sandbox, ca, memcached):
    a, b = two_servers(httpd_factory, sandbox, "memcache:127.0.0.1:%d" % memcached.port,
                       "socache_memcache")
    shared_login_then_disconnect(a, b, ca)


def test_concurrent_refresh_on_two_servers(httpd_factory, sandbox, ca, redis):
    a, b = two_servers(httpd_factory, sandbox, "redis:127.0.0.1:%d" % redis.port,
                       "socache_redis", extra="MoneiConnectRefreshBeforeExpiry 1")
    sandbox.control("config", {"token_lifetime": 3})
    br = Browser(ca)
    br.login(a.url + "/account/env.cgi")
    time.sleep(3.3)
    before = sandbox.counters()
    urls = [a.url + "/account/env.cgi"] * 20 + [b.url + "/account/env.cgi"] * 20
    with concurrent.futures.ThreadPoolExecutor(40) as pool:
        codes = list(pool.map(br.status_of, urls))
    after = sandbox.counters()
    assert codes == [200] * 40, codes
    print("\nrefreshes Monei saw across two servers: %d (reuses of a rotated token: %d)"
          % (after["refreshes"] - before["refreshes"],
             after["refresh_reuse"] - before["refresh_reuse"]))
    assert 1 <= after["refreshes"] - before["refreshes"] <= 2
    for h in (a, b):
        assert br.get(h.url + "/account/env.cgi").status_code == 200


def test_shmcb_survives_graceful_and_restart(httpd_factory, sandbox, ca):
    h = site(httpd_factory, sandbox, "graceful", "shmcb").start()
    br = Browser(ca)
    br.login(h.url + "/account/env.cgi")
    assert br.get(h.url + "/account/env.cgi").status_code == 200
    exchanges = sandbox.counters()["code_exchanges"]
    h.graceful()
    assert br.get(h.url + "/account/env.cgi").status_code == 200
    r = harness.subprocess.run([harness.HTTPD, "-f", h.conf, "-k", "restart"],
                               capture_output=True, text=True, env=harness.sanitizer_env())
    assert r.returncode == 0, r.stderr
    time.sleep(1.0)
    harness.wait_port(h.port)
    assert br.get(h.url + "/account/env.cgi").status_code == 200
    assert sandbox.counters()["code_exchanges"] == exchanges      # no new login


def test_redis_outage_gives_503_then_recovers(httpd_factory, sandbox, ca):
    redis = harness.Redis("redis-outage").start()
    port = redis.port
    try:
        h = site(httpd_factory, sandbox, "outage", "redis:127.0.0.1:%d" % port,
                 ("socache_redis",)).start()
        br = Browser(ca)
        br.login(h.url + "/account/env.cgi")
        redis.stop()
        for _ in range(10):
            start = time.time()
            r = br.get(h.url + "/account/env.cgi")
            assert r.status_code == 503, r.status_code
            assert time.time() - start < 5
        assert "try again" in r.text.lower()
        api = br.get(h.url + "/account/env.cgi", headers={"Accept": "application/json"})
        assert api.status_code == 503 and api.json()["error"] == "store_unavailable"
        log = h.error_log_text().splitlines()
        errors = [l for l in log if "monei_connect:error" in l and "mc-store" in l]
        assert 1 <= len(errors) <= 4, errors       # once per burst (per child), not per request
        provider = [l for l in log if "socache_redis" in l]
        assert len(provider) <= 8, len(provider)    # the provider is not asked every request
        redis2 = harness.Redis("redis-outage")
        redis2.port = port
        redis2.start()
        try:
            time.sleep(0.5)
            br2 = Browser(ca)
            ok = False
            # each child pauses a failing store for 10 s, then tries it again by itself
            deadline = time.time() + 25
            while not ok and time.time() < deadline:
                try:
                    br2.login(h.url + "/account/env.cgi")
                    ok = br2.get(h.url + "/account/env.cgi").status_code == 200
                except AssertionError:
                    time.sleep(1)
            assert ok
        finally:
            redis2.stop()
    finally:
        redis.stop()


def test_tiny_shmcb_evicts_old_sessions(httpd_factory, sandbox, ca):
    # WalletMaxAge long: the check below must not rewrite (and so evict) anything itself
    h = site(httpd_factory, sandbox, "tiny",
             "shmcb:%s/tiny-shmcb(102400)" % harness.RUN,
             extra="MoneiConnectWalletMaxAge 86400").start()
    browsers = []
    for i in range(200):
        br = Browser(ca)
        br.login(h.url + "/account/env.cgi", scopes=["wallet:read"])
        browsers.append(br)
    # the newest sessions work
    for br in browsers[-10:]:
        assert br.get(h.url + "/account/env.cgi").status_code == 200
    alive = sum(1 for br in browsers if br.get(h.url + "/dashboard").json()["connected"])
    print("\nshmcb of 100 KB holds %d wallet sessions (of 200 logins)" % alive)
    # the oldest were evicted: sent to log in again, not an error
    evicted = sum(1 for br in browsers[:20]
                  if br.get(h.url + "/account/env.cgi").status_code == 302)
    assert evicted >= 10
    log = h.error_log_text()
    assert "monei_connect:error" not in log and "AH00844" not in log
    assert "Segmentation fault" not in log and "exit signal" not in log


@pytest.mark.parametrize("store", ["shmcb", "shm:100"])
def test_parent_exits_cleanly_with_the_retained_store(httpd_factory, sandbox, ca, store):
    """A shared-memory store outlives restarts under the process pool; at the final stop it
    must go before httpd unloads the modules, or the parent dies of SIGSEGV as it exits (with
    shmcb it ran mod_socache_shmcb's cleanup after its code was unmapped). Run in the
    foreground to see the parent's own exit status."""
    import signal
    import subprocess
    h = site(httpd_factory, sandbox, "exit-" + store.split(":")[0], store)
    h.write_conf()
    proc = subprocess.Popen([harness.HTTPD, "-f", h.conf, "-DFOREGROUND"],
                            env=harness.sanitizer_env())
    try:
        harness.wait_port(h.port)
        br = Browser(ca)
        br.login(h.url + "/account/env.cgi")
        proc.send_signal(signal.SIGUSR1)            # graceful restart: the segment is kept
        time.sleep(1.5)
        harness.wait_port(h.port)
        assert br.get(h.url + "/account/env.cgi").status_code == 200
        proc.send_signal(signal.SIGWINCH)           # graceful-stop
        rc = proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 0, "httpd's parent exited with %r" % rc
