"""Shared fixtures: the run directory, a throwaway CA, the Monei sandbox, private httpds."""
import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))

import harness  # noqa: E402


def pytest_sessionstart(session):
    # xdist-free suite: one run directory per session, wiped at the start so the log guard
    # only sees this run's logs.
    if os.environ.get("MC_KEEP_RUN") != "1" and os.path.isdir(harness.RUN):
        shutil.rmtree(harness.RUN)
    os.makedirs(harness.RUN, exist_ok=True)
    for v in (harness.CLIENT_SECRET, harness.PASSPHRASE):
        harness.record_secret(v)


@pytest.fixture(scope="session")
def ca():
    return harness.CA(os.path.join(harness.RUN, "ca"))


@pytest.fixture(scope="session")
def sandbox(ca):
    sb = harness.Sandbox("sandbox", ca=ca).start()
    yield sb
    sb.stop()


@pytest.fixture
def httpd_factory():
    started = []

    def make(name, body, **kw):
        h = harness.Httpd(name, body, **kw)
        started.append(h)
        return h

    yield make
    # Every httpd is stopped, then the test fails if a child of any died of a signal: the
    # log is read after the stop, so a crash while children exit is the test's too.
    crashed = []
    for h in started:
        try:
            h.stop()
        except harness.HttpdCrashed as e:
            crashed.append(str(e))
    if crashed:
        pytest.fail("\n".join(crashed), pytrace=False)


@pytest.fixture
def fresh_sandbox(sandbox):
    """A sandbox as new: no codes, tokens, grants or faults, rate limits off (tests that want
    them set them)."""
    sandbox.reset()
    sandbox.control("config", {"authorize_rate_limit": 0, "token_rate_limit": 0})
    sandbox.control("faults", method="DELETE")
    yield sandbox
    sandbox.control("faults", method="DELETE")


@pytest.fixture(scope="module")
def backend():
    """An application behind mod_proxy that echoes the headers it receives."""
    b = harness.EchoBackend().start()
    yield b
    b.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true the real-browser test never skips silently: a skip there (no node, no
    chromium) is turned into a failure with the skip's reason."""
    outcome = yield
    report = outcome.get_result()
    if (report.skipped and os.environ.get("CI") == "true"
            and os.sep + "e2e" + os.sep in str(item.fspath)):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = "CI=true must run the browser test, but it was skipped: %s" % reason


@pytest.fixture
def redis(request):
    """A private redis-server for one test (its files under the run dir, named by module)."""
    r = harness.Redis("redis-" + request.module.__name__.rsplit(".", 1)[-1]).start()
    yield r
    r.stop()


@pytest.fixture
def memcached():
    """A private memcached for one test."""
    m = harness.Memcached().start()
    yield m
    m.stop()
