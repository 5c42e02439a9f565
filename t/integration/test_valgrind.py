"""Logins, refreshes and hot-path requests with httpd under valgrind memcheck:
nothing definitely or indirectly lost (per-thread curl handles and cipher contexts are freed
when their threads end), no invalid reads or writes."""
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

import harness
from browser import Browser

pytestmark = pytest.mark.skipif(not shutil.which("valgrind"), reason="valgrind is not installed")


def test_no_leaks_under_valgrind(sandbox, ca):
    if os.environ.get("MC_SANITIZE") == "1":
        pytest.skip("the ASan build runs without valgrind")
    sandbox.reset()
    sandbox.control("config", {"authorize_rate_limit": 0, "token_rate_limit": 0,
                               "token_lifetime": 3})
    h = harness.Httpd("valgrind", "")
    h.body = harness.monei_directives(
        sandbox, h.port, extra="MoneiConnectRefreshBeforeExpiry 1\nMoneiConnectWalletMaxAge 1"
    ) + harness.ACCOUNT_LOCATION
    h.write_conf()
    log = os.path.join(h.dir, "logs", "valgrind.log")
    # -X: one process, so every request of the test runs under valgrind.
    p = subprocess.Popen(["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect",
                          "--keep-debuginfo=yes", "--num-callers=30", "--log-file=" + log,
                          harness.HTTPD, "-f", h.conf, "-X"])
    try:
        harness.wait_port(h.port, 90)
        browsers = []
        for _ in range(4):
            b = Browser(ca)
            b.login(h.url + "/account/env.cgi")
            browsers.append(b)
        for _ in range(2):
            time.sleep(3.2)                       # tokens expire: every session refreshes
            for b in browsers:
                for _ in range(5):
                    assert b.get(h.url + "/account/env.cgi").status_code == 200
        assert sandbox.counters()["refreshes"] >= 8
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(180)
    text = open(log).read()
    assert "LEAK SUMMARY" in text, text[-2000:]
    lost = re.findall(r"(definitely|indirectly) lost: ([\d,]+) bytes", text)
    assert lost and all(n == "0" for _, n in lost), \
        "\n".join(l for l in text.splitlines() if "lost" in l or " by 0x" in l)[:6000]
    assert "Invalid read" not in text and "Invalid write" not in text
    assert "uninitialised" not in text
