"""The real-browser end-to-end test.

Debian's headless Chromium (/usr/bin/chromium), driven by playwright-core from npm
(t/e2e/node_modules, installed by `npm ci` in t/e2e; never a downloaded browser), goes through
the demo's configuration against a private httpd with the built module and the Monei sandbox:
protected page -> consent -> untick profile:read -> Approve -> dashboard with exactly the
granted data -> step-up -> Disconnect -> protected again. Once over plain HTTP, once over HTTPS
(mod_ssl with the throwaway CA's certificate, so the module's cookies are
__Host-monei_session…; Secure). The flow itself and its checks are in browser_flow.js.

The app is http(s)://127.0.0.1:PORT and the browser reaches Monei (the sandbox) as
http(s)://localhost:PORT: another site, so the redirect back from Monei to the callback is a
cross-site navigation, as with the real monei.cc, and SameSite is really exercised.

A third variant runs the HTTPS flow with MoneiConnectCookieSameSite Strict: the callback then
ends with a same-site page redirect, since browsers withhold Strict cookies on every redirect
of a chain that started on Monei's site.

Screenshots: $MC_RUN_DIR/e2e-screenshots/<variant>/NN-step.png (kept after the run); the plain
HTTP variant also writes the README's pictures, docs/screenshots/*.png (800x600 viewport), so
they always show what the current code shows.
Skipped only when /usr/bin/chromium or node is missing, and never under CI=true: there a skip
fails the run (t/conftest.py). ./bootstrap installs both from Debian when missing.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
NODE = shutil.which("node")
SCRIPT = os.path.join(HERE, "browser_flow.js")
SCREENSHOTS = os.path.join(harness.RUN, "e2e-screenshots")
DOC_SHOTS = os.path.join(harness.ROOT, "docs", "screenshots")
# The pictures the http variant writes for the README and docs (docs/screenshots/NAME.png).
DOC_SHOT_NAMES = ("home-connected", "consent", "dashboard-partial", "dashboard-full",
                  "dashboard-stale", "dashboard-null-fields", "disconnected",
                  "error-invalid-return-to", "error-invalid-state", "error-access-denied",
                  "error-monei-unavailable")

pytestmark = [
    pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                       reason="%s is missing: install Debian's chromium package" % CHROMIUM),
    pytest.mark.skipif(NODE is None, reason="node is missing: install Node.js (>= 20) and npm"),
]

# The demo's configuration (conf/demo/run-demo): the quickstart's routes, the CGI dashboard,
# the SSI home page that knows whether you are connected.
SITE = """
MoneiConnectScope "wallet:read profile:read"
# Every page view reads the wallet again: the browser sees a stale or null-field wallet at once.
MoneiConnectWalletMaxAge 0
DocumentRoot {docroot}
DirectoryIndex index.shtml
<Directory {docroot}>
    Options +Includes +ExecCGI
    AddOutputFilter INCLUDES .shtml
    AddType text/html .shtml
    AddHandler cgi-script .cgi
    Require all granted
</Directory>
MoneiConnectLogoutRedirect /?disconnected
<LocationMatch "^/(index\\.shtml)?$">
    AuthType MoneiConnect
    MoneiConnectUnauthAction pass
    Require all granted
</LocationMatch>
<Location /connect-monei>
    SetHandler monei-connect-login
    MoneiConnectDefaultReturn /dashboard
</Location>
<Location /dashboard.json>
    AuthType MoneiConnect
    MoneiConnectUnauthAction pass
    Require all granted
    SetHandler monei-connect-info
</Location>
<Location /dashboard>
    AuthType MoneiConnect
    Require valid-user
</Location>
Alias /dashboard {docroot}/dashboard.cgi
<Location /disconnect>
    SetHandler monei-connect-disconnect
</Location>
"""


def demo_htdocs():
    """The demo's pages (index.shtml, dashboard.cgi), where httpd's children can read them."""
    docroot = os.path.join(harness.RUN, "e2e-htdocs")
    if os.path.isdir(docroot):
        shutil.rmtree(docroot)
    shutil.copytree(os.path.join(harness.ROOT, "conf", "demo", "htdocs"), docroot)
    os.chmod(harness.RUN, 0o755)
    for dirpath, _, files in os.walk(docroot):
        os.chmod(dirpath, 0o755)
        for fn in files:
            os.chmod(os.path.join(dirpath, fn), 0o755 if fn.endswith(".cgi") else 0o644)
    return docroot


def check_node_modules():
    if not os.path.isdir(os.path.join(HERE, "node_modules", "playwright-core")):
        pytest.fail("playwright-core is not installed: run `npm ci` in t/e2e (see t/e2e/package.json)")


@pytest.fixture(scope="module")
def ca():
    return harness.CA(os.path.join(harness.RUN, "ca"))


VARIANTS = [
    pytest.param(("http", "Lax"), id="http"),
    pytest.param(("https", "Lax"), id="https"),
    pytest.param(("https", "Strict"), id="https-samesite-strict"),
]


@pytest.fixture(params=VARIANTS)
def site(request, ca):
    """A sandbox and an httpd of their own, over plain HTTP or over HTTPS, with the default
    SameSite=Lax or with MoneiConnectCookieSameSite Strict."""
    mode, samesite = request.param
    name = mode if samesite == "Lax" else mode + "-" + samesite.lower()
    os.makedirs(harness.RUN, exist_ok=True)
    sandbox = harness.Sandbox("e2e-sandbox-" + name, ca=ca).start()
    httpd = None
    try:
        sandbox.control("config", {"token_rate_limit": 0, "authorize_rate_limit": 0})
        tls = ca if mode == "https" else None
        httpd = harness.Httpd("e2e-" + name, "", modules=("ssl",) if tls else (), tls=tls)
        # Monei as the browser sees it: localhost, another site than the app's 127.0.0.1.
        monei = ("https://localhost:%d" % sandbox.tls_port if tls
                 else "http://localhost:%d" % sandbox.port)
        directives = harness.monei_directives(sandbox, httpd.port, scheme=mode,
                                              api="https" if tls else "http")
        directives = directives.replace(
            "MoneiConnectAuthorizeURL %s/connect/authorize" % (sandbox.https if tls else sandbox.http),
            "MoneiConnectAuthorizeURL %s/connect/authorize" % monei)
        assert monei in directives
        if samesite != "Lax":
            directives += "MoneiConnectCookieSameSite %s\n" % samesite
        httpd.body = directives + SITE.format(docroot=demo_htdocs())
        httpd.start()
        yield {"name": name, "mode": mode, "samesite": samesite, "httpd": httpd,
               "sandbox": sandbox, "monei": monei, "ca": ca}
    finally:
        try:
            if httpd:
                httpd.stop()        # fails the test if a child died of a signal
        finally:
            sandbox.stop()


def test_browser_flow(site):
    check_node_modules()
    mode, httpd, sandbox = site["mode"], site["httpd"], site["sandbox"]
    assert httpd.url.startswith(mode + "://")
    name = site["name"]
    work = os.path.join(harness.RUN, "e2e-" + name)
    os.makedirs(work, exist_ok=True)
    shots = os.path.join(SCREENSHOTS, name)
    if os.path.isdir(shots):
        shutil.rmtree(shots)
    user_data_dir = tempfile.mkdtemp(prefix="mc-e2e-chromium-")  # outside the run dir
    result_file = os.path.join(work, "result.json")
    cfg = {
        "mode": mode,
        "app": httpd.url,
        "monei": site["monei"],
        "sandbox_control": sandbox.http,
        "screenshots": shots,
        "result": result_file,
        "user_data_dir": user_data_dir,
        "trust_certs": [site["ca"].cert, site["ca"].ca_cert],
        "samesite": site["samesite"],
        "app_name": harness.APP_NAME,
        # One variant keeps the pictures the README shows current.
        "docs_screenshots": DOC_SHOTS if name == "http" else None,
    }
    cfg_file = os.path.join(work, "config.json")
    with open(cfg_file, "w") as f:
        json.dump(cfg, f, indent=2)
    env = dict(os.environ, CHROMIUM=CHROMIUM)
    try:
        r = subprocess.run([NODE, SCRIPT, cfg_file], cwd=HERE, env=env, capture_output=True,
                           text=True, timeout=240)
    finally:
        shutil.rmtree(user_data_dir, ignore_errors=True)
    out = r.stdout + r.stderr
    # The browser's output is a log of this run: the log guard scans it too.
    with open(os.path.join(work, "browser.log"), "w") as f:
        f.write(out)
    result = {}
    if os.path.exists(result_file):
        with open(result_file) as f:
            result = json.load(f)
    for v in result.get("cookie_values", []):
        harness.record_secret(v)
    print(out)
    assert r.returncode == 0, "browser flow (%s) failed:\n%s\nscreenshots: %s\n%s" % (
        name, out, shots, httpd.tail_error_log())
    assert len(result.get("screenshots", [])) >= 8, result.get("screenshots")
    for png in result["screenshots"]:
        with open(png, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", png
    if cfg["docs_screenshots"]:
        for shot in DOC_SHOT_NAMES:
            png = os.path.join(DOC_SHOTS, shot + ".png")
            assert png in result["doc_screenshots"], (shot, result["doc_screenshots"])
            with open(png, "rb") as f:
                head = f.read(24)
            assert head[:8] == b"\x89PNG\r\n\x1a\n", png
            assert int.from_bytes(head[16:20], "big") == 800, png       # the 800 px viewport
    # What the browser did, as the sandbox saw it: two logins (the second one the step-up),
    # two code exchanges that connected and one Monei failed, and the Disconnect revoked
    # the tokens at Monei.
    c = sandbox.counters()
    assert c["code_exchanges"] == 2, c
    assert c["code_reuse"] == 0, c
    assert c["revocations"] >= 1, c
    # The module's cookies never reached a log (the log guard checks every log of the run).
    for log in ("access_log", "error_log"):
        with open(os.path.join(httpd.dir, "logs", log), errors="replace") as f:
            text = f.read()
        for v in result.get("cookie_values", []):
            assert v not in text, "a cookie value appears in %s" % log
