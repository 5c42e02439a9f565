"""Packaging: `make install` honours DESTDIR, and the Debian package built by `make deb` installs
on this machine, serves a login through the system's own Apache, and removes cleanly."""
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

import harness
from browser import Browser

# The build tree (`make check` passes it; an in-tree build otherwise).
BUILDDIR = os.environ.get("MC_BUILDDIR", harness.ROOT)
PKG = "libapache2-mod-monei-connect"
SITE = "mc-package-test"
SITE_FILE = "/etc/apache2/sites-available/%s.conf" % SITE
MODS = "/etc/apache2/mods-available"
ENABLED = "/etc/apache2/mods-enabled"


def run(cmd, timeout=120, check=True, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check:
        assert p.returncode == 0, "%s failed (%d):\n%s\n%s" % (cmd, p.returncode,
                                                              p.stdout[-3000:], p.stderr[-3000:])
    return p


def configure_version():
    with open(os.path.join(harness.ROOT, "configure.ac")) as f:
        return re.search(r"^AC_INIT\(\[mod_monei_connect\], \[([^]]+)\]", f.read(), re.M).group(1)


def apxs(var):
    return run(["apxs", "-q", var]).stdout.strip()


def test_one_version_everywhere():
    version = configure_version()
    with open(os.path.join(harness.ROOT, "debian", "changelog")) as f:
        assert f.readline().startswith("%s (%s)" % (PKG, version))
    with open(os.path.join(harness.ROOT, "CHANGELOG.md")) as f:
        assert re.search(r"^## %s\b" % re.escape(version), f.read(), re.M)
    with open(os.path.join(harness.ROOT, "t", "e2e", "package.json")) as f:
        assert json.load(f)["license"] == "Apache-2.0"
    with open(os.path.join(harness.ROOT, "LICENSE")) as f:
        assert "Apache License" in f.read(300)


def test_make_install_honours_destdir():
    root = tempfile.mkdtemp(prefix="mc-destdir-")
    try:
        out = run(["make", "-C", BUILDDIR, "install", "DESTDIR=" + root], timeout=600)
        files = sorted(os.path.relpath(os.path.join(d, f), root)
                       for d, _, fs in os.walk(root) for f in fs)
        moddir = apxs("LIBEXECDIR").lstrip("/")
        confdir = (apxs("SYSCONFDIR") + "/mods-available").lstrip("/")
        assert moddir + "/mod_monei_connect.so" in files, (files, out.stdout[-2000:])
        assert confdir + "/monei_connect.load" in files, files
        assert confdir + "/monei_connect.conf" in files, files
        assert len(files) == 3, files     # nothing else, nothing outside DESTDIR
        with open(os.path.join(root, confdir, "monei_connect.load")) as f:
            load = f.read()
        # LoadModule names where the module really is; no dependency: the store is built in
        assert "LoadModule monei_connect_module /%s/mod_monei_connect.so" % moddir in load
        assert "Depends:" not in load
        for f in files:
            assert os.stat(os.path.join(root, f)).st_mode & 0o777 == 0o644, f
        run(["make", "-C", BUILDDIR, "uninstall", "DESTDIR=" + root], timeout=120)
        assert not [f for _, _, fs in os.walk(root) for f in fs]
    finally:
        shutil.rmtree(root)


def system_apache_running():
    return run(["pgrep", "-x", "apache2"], check=False).returncode == 0 and \
        os.path.exists("/var/run/apache2/apache2.pid")


SITE_CONF = """# Written by t/integration/test_package.py; removed at its end.
Listen 127.0.0.1:{port}
<VirtualHost 127.0.0.1:{port}>
    ServerName 127.0.0.1
    DocumentRoot {htdocs}
    ErrorLog {logs}/error_log
    CustomLog {logs}/access_log combined
    LogLevel warn monei_connect:debug
{directives}
    <Directory {htdocs}>
        Require all granted
    </Directory>
    <Location /dashboard>
        AuthType MoneiConnect
        Require valid-user
        SetHandler monei-connect-info
    </Location>
</VirtualHost>
"""


def test_debian_package_installs_serves_a_login_and_removes(sandbox, ca):
    """make deb -> dpkg -i -> a2enmod -> a site -> configtest -> a login through the system's
    Apache -> dpkg -r. Changes the machine (package, module, site), so it restores it."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the package test needs root (dpkg -i, a2enmod) and CI must run it")
        pytest.skip("needs root: it installs the package with dpkg -i and enables it")
    version = configure_version()
    deb_dir = os.path.join(BUILDDIR, "deb")
    build = run(["make", "-C", BUILDDIR, "deb"], timeout=1800)
    debs = glob.glob(os.path.join(deb_dir, "%s_%s_*.deb" % (PKG, version)))
    assert len(debs) == 1, (os.listdir(deb_dir), build.stdout[-2000:])
    # make deb ran lintian --fail-on error; say so here too
    assert not re.search(r"^E: ", build.stdout + build.stderr, re.M)
    assert "/usr/lib/apache2/modules/mod_monei_connect.so" in run(["dpkg-deb", "-c", debs[0]]).stdout

    shmcb_was_enabled = os.path.exists(ENABLED + "/socache_shmcb.load")
    apache_was_running = system_apache_running()
    port = harness.free_port()
    logs = os.path.join(harness.RUN, "httpd-system", "logs")
    os.makedirs(logs, exist_ok=True)
    harness.prepare_htdocs()
    started = False
    try:
        run(["dpkg", "-i", debs[0]])
        assert os.path.isfile("/usr/lib/apache2/modules/mod_monei_connect.so")
        assert os.path.isfile(MODS + "/monei_connect.load")
        assert os.path.isfile(MODS + "/monei_connect.conf")
        # not enabled by the package: it needs its client and secrets first
        assert not os.path.exists(ENABLED + "/monei_connect.load")
        run(["a2enmod", "-q", "monei_connect"])
        assert os.path.islink(ENABLED + "/monei_connect.load")

        directives = harness.monei_directives(sandbox, port)
        with open(SITE_FILE, "w") as f:
            f.write(SITE_CONF.format(port=port, htdocs=harness.HTDOCS, logs=logs,
                                     directives="    " + directives.replace("\n", "\n    ")))
        run(["a2ensite", "-q", SITE])
        check = run(["apache2ctl", "configtest"], check=False)
        assert check.returncode == 0 and "Syntax OK" in check.stderr, check.stderr

        if apache_was_running:
            run(["apache2ctl", "graceful"])
        else:
            run(["apache2ctl", "start"])
            started = True
        harness.wait_port(port, timeout=20)
        url = "http://127.0.0.1:%d" % port
        b = Browser(ca)
        back = b.login(url + "/dashboard", scopes=["wallet:read", "profile:read"])
        assert back.status_code == 302, (back.status_code, back.text[:300])
        assert back.headers["Location"].endswith("/dashboard")
        dash = b.follow(back, url)
        assert dash.status_code == 200, dash.text[:300]
        info = dash.json()
        assert info["connected"] is True and info["wallet"], info
    finally:
        if os.path.exists(SITE_FILE):
            run(["a2dissite", "-q", SITE], check=False)
            os.unlink(SITE_FILE)
        if started:
            run(["apache2ctl", "stop"], check=False)
        elif apache_was_running:
            run(["apache2ctl", "graceful"], check=False)
        removed = run(["dpkg", "-r", PKG], check=False)
        gone = not os.path.exists("/usr/lib/apache2/modules/mod_monei_connect.so")
        disabled = not os.path.lexists(ENABLED + "/monei_connect.load")
        run(["dpkg", "-P", PKG], check=False)
        if not shmcb_was_enabled:
            run(["a2dismod", "-q", "-f", "socache_shmcb"], check=False)

    assert removed.returncode == 0, removed.stderr
    assert gone and disabled
    assert not os.path.exists(MODS + "/monei_connect.load")      # purged
    check = run(["apache2ctl", "configtest"], check=False)
    assert check.returncode == 0 and "Syntax OK" in check.stderr, check.stderr
    if started:
        for _ in range(100):
            if not system_apache_running():
                break
            time.sleep(0.1)
        assert not system_apache_running()
