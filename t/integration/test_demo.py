"""The demo (conf/demo/run-demo) fails loudly: a port it cannot bind or a process that dies
ends it within seconds, non-zero, with a message naming the port; its secrets are files of
mode 600 and never on a command line."""
import os
import signal
import socket
import subprocess
import time
import urllib.request

import harness

DEMO = os.path.join(harness.ROOT, "conf", "demo", "run-demo")


def demo_env(port, sbport, name):
    # harness.sanitizer_env: in the sanitizer run the module needs the ASan runtime first
    env = dict(harness.sanitizer_env(), DEMO_PORT=str(port), SANDBOX_PORT=str(sbport),
               MC_DEMO_DIR=os.path.join(harness.RUN, name), MC_DEMO_MODULE=harness.MODULE)
    for k in ("MONEI_CLIENT_ID", "MONEI_CLIENT_SECRET", "MONEI_REDIRECT_URI", "SESSION_SECRET"):
        env.pop(k, None)
    return env


def occupied():
    """A port some other program listens on (127.0.0.1 only, as a dev server would)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


def nothing_listens(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError:
        return True


def run_demo(env):
    t0 = time.time()
    p = subprocess.run([DEMO], env=env, capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    return p, time.time() - t0


def test_demo_port_taken_fails_at_once_naming_it():
    busy = occupied()
    port = busy.getsockname()[1]
    sbport = harness.free_port()
    try:
        p, took = run_demo(demo_env(port, sbport, "demo-busy"))
    finally:
        busy.close()
    assert p.returncode != 0 and took < 10, (p.returncode, took, p.stdout, p.stderr)
    assert "port %d (DEMO_PORT) cannot be bound" % port in p.stderr, p.stderr
    assert "is up" not in p.stdout
    assert nothing_listens(sbport)          # the sandbox was not left behind


def test_sandbox_port_taken_fails_at_once_naming_it():
    busy = occupied()
    sbport = busy.getsockname()[1]
    port = harness.free_port()
    try:
        p, took = run_demo(demo_env(port, sbport, "demo-sbbusy"))
    finally:
        busy.close()
    assert p.returncode != 0 and took < 10, (p.returncode, took, p.stdout, p.stderr)
    assert "port %d (SANDBOX_PORT) cannot be bound" % sbport in p.stderr, p.stderr
    assert nothing_listens(port)


def test_a_dying_sandbox_ends_the_demo_loudly():
    port, sbport = harness.free_port(), harness.free_port()
    env = demo_env(port, sbport, "demo-dies")
    run = env["MC_DEMO_DIR"]
    p = subprocess.Popen([DEMO], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, text=True)
    try:
        out, deadline = "", time.time() + 20
        while "demo is up" not in out and time.time() < deadline and p.poll() is None:
            out += p.stdout.readline()
        assert "demo is up" in out, (out, p.poll())
        with open(os.path.join(run, "client-secret")) as f:
            secret = f.read().strip()
        harness.record_secret(secret)
        for name in ("client-secret", "session-key", "sandbox-clients"):
            assert os.stat(os.path.join(run, name)).st_mode & 0o777 == 0o600, name
        with open(os.path.join(run, "sandbox.pid")) as f:
            sandbox_pid = int(f.read())
        with open("/proc/%d/cmdline" % sandbox_pid, "rb") as f:
            assert secret.encode() not in f.read()           # not visible in ps
        page = urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=10)
        assert page.status == 200

        os.kill(sandbox_pid, signal.SIGKILL)
        t0 = time.time()
        _, err = p.communicate(timeout=15)
        assert p.returncode != 0 and time.time() - t0 < 10, (p.returncode, err)
        assert "the Monei sandbox (SANDBOX_PORT %d) stopped unexpectedly" % sbport in err, err
        assert nothing_listens(port)                         # httpd stopped with it
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
            p.wait(15)
