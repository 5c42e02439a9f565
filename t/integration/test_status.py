"""The status handler's counters move as a scripted flow predicts."""
import os
import re

import harness
from browser import Browser

CONF = harness.ACCOUNT_LOCATION + """<Location /live>
    AuthType MoneiConnect
    MoneiConnectWalletMaxAge 0
    Require valid-user
</Location>
Alias /live {htdocs}/account
<Location /send>
    AuthType MoneiConnect
    Require monei-scope wallet:send
</Location>
Alias /send {htdocs}/account
<Location /bye>
    SetHandler monei-connect-disconnect
</Location>
<Location /monei-status>
    SetHandler monei-connect-status
    Require ip 127.0.0.1
</Location>
"""


def configure_version():
    with open(os.path.join(harness.ROOT, "configure.ac")) as f:
        return re.search(r"^AC_INIT\(\[mod_monei_connect\], \[([^]]+)\]", f.read(), re.M).group(1)


def counters(b, h):
    return b.get(h.url + "/monei-status?json").json()


def prom(b, h):
    text = b.get(h.url + "/monei-status").text
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^(monei_connect_[a-z_]+(?:\{[^}]*\})?) (\d+)$", text, re.M)}


def test_counters_follow_the_flow(sandbox, ca, httpd_factory):
    sandbox.reset()
    sandbox.control("config", {"authorize_rate_limit": 0, "token_rate_limit": 0})
    h = httpd_factory("status", "")
    h.body = harness.monei_directives(sandbox, h.port) + CONF.format(htdocs=harness.HTDOCS)
    h.start()
    b = Browser(ca)
    assert counters(b, h)["logins_started"] == 0
    b.login(h.url + "/account/env.cgi", scopes=["wallet:read"])     # 1 started, 1 completed
    denied = Browser(ca)
    denied.login(h.url + "/account/env.cgi", action="deny")         # 1 started, 1 denied
    Browser(ca).get(h.url + "/monei/callback?code=x&state=" + "A" * 43)   # bad state
    r = b.get(h.url + "/send/env.cgi")                                # step-up: started
    assert r.status_code == 302
    other = Browser(ca)
    other.login(h.url + "/live/env.cgi")
    sandbox.control("revoke_user", {"user": "ada"})
    assert other.get(h.url + "/live/env.cgi").status_code == 302      # revoked
    b2 = Browser(ca)
    sandbox.reset()
    sandbox.control("config", {"authorize_rate_limit": 0, "token_rate_limit": 0})
    b2.login(h.url + "/account/env.cgi")
    # disconnect, from a page of the site
    assert b2.get(h.url + "/bye", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 302
    c = counters(b, h)
    assert c["logins_started"] == 6   # b, denied, step-up, other, its reconnect, b2
    assert c["step_ups"] == 1
    assert c["logins_completed"] == 3        # b, other, b2
    assert c["logins_failed_denied"] == 1
    assert c["logins_failed_state"] == 1
    assert c["revocations"] == 1
    assert c["disconnects"] == 1
    assert c["refreshes_ok"] == 0 and c["store_errors"] == 0
    assert c["started_at"] > 0
    p = prom(b, h)
    assert p["monei_connect_logins_started_total"] == 6
    assert p['monei_connect_logins_failed_total{reason="denied"}'] == 1
    assert p['monei_connect_refreshes_total{result="ok"}'] == 0
    text = b.get(h.url + "/monei-status").text
    assert "# TYPE monei_connect_logins_started_total counter" in text
    # one version number, configure.ac's, on the status page and in the startup log line
    version = configure_version()
    assert c["version"] == version
    assert p['monei_connect_build_info{version="%s"}' % version] == 1
    assert re.search(r"\[monei_connect:notice\] .*mod_monei_connect/%s \(libcurl/[0-9.]+\) loaded"
                     % re.escape(version), h.error_log_text()), h.tail_error_log()
    # the counters are shared by all children and survive a graceful restart
    h.graceful()
    assert counters(b, h)["logins_completed"] == 3
