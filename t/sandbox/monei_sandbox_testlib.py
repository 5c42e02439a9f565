"""Helpers for the Monei sandbox tests: the sandbox subprocess and a small client.

A module of its own (not conftest.py) because t/ has a conftest.py too, and
`from conftest import ...` would pick whichever was imported first.
"""

import base64
import hashlib
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
from urllib.parse import parse_qs, urlsplit

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
SANDBOX = os.path.join(HERE, "..", "..", "sandbox", "monei_sandbox.py")
# Debian's python, not whatever is first on PATH (the sandbox must run on it).
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

CLIENT_ID = "mc_a3f9b2c1d4e5"
CLIENT_SECRET = "mcs_" + "s3cr3t-for-tests-only-0123456789"
REDIRECT = "https://app.example.com/monei/callback"
REDIRECT_Q = "https://app.example.com/cb?x=1"
CLIENT2_ID = "mc_other"
CLIENT2_SECRET = "mcs_other-secret-abcdefghijklmnop"


def client_file(directory, *lines):
    """A mode-600 client file for --client-file: the secret never goes on a command line."""
    path = os.path.join(str(directory), "clients.txt")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("".join(line + "\n" for line in lines))
    return path


class SandboxProcess:
    """A running sandbox subprocess with its URLs."""

    def __init__(self, args, quiet=True):
        cmd = [PYTHON, SANDBOX, "--port", "0"] + args + (["--quiet"] if quiet else [])
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, encoding="utf-8")
        self.stderr_lines = []
        line = self._readline_with_timeout(10)
        m = re.match(r"monei-sandbox listening on (http://\S+)(?: (https://\S+))?$", line.strip())
        if not m:
            self.stop()
            raise RuntimeError(f"sandbox did not start: {line!r} {''.join(self.stderr_lines)}")
        self.http, self.https = m.group(1), m.group(2)
        # Drain stderr in the background so a chatty sandbox never blocks on a full pipe.
        self._err_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self._err_thread.start()

    def _readline_with_timeout(self, timeout):
        out = []
        t = threading.Thread(target=lambda: out.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        return out[0] if out else ""

    def _drain_stderr(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


class Api:
    """Small client for the sandbox: the authorize form, token calls, control calls."""

    def __init__(self, base, verify=True):
        self.base = base
        # Passed per request: requests lets REQUESTS_CA_BUNDLE override Session.verify.
        self.verify = verify
        self.s = requests.Session()

    def get(self, path, **kw):
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", 10)
        kw.setdefault("verify", self.verify)
        return self.s.get(self.base + path, **kw)

    def post(self, path, **kw):
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", 10)
        kw.setdefault("verify", self.verify)
        return self.s.post(self.base + path, **kw)

    def ctl(self, what, body=None, method="POST"):
        r = self.s.request(method, self.base + "/_sandbox/" + what, json=body, timeout=10,
                           verify=self.verify)
        assert r.status_code == 200, r.text
        return r.json()

    def consent(self, scopes, action="approve", user="ada", client_id=CLIENT_ID,
                redirect_uri=REDIRECT, state="st-123", requested=None, challenge=None,
                method="S256", extra=None):
        """POST the consent form as a browser would; returns the raw response."""
        form = [("client_id", client_id), ("redirect_uri", redirect_uri), ("user", user),
                ("action", action)]
        if state is not None:
            form.append(("state", state))
        if requested is not None:
            form.append(("requested_scope", requested))
        form += [("scope", s) for s in scopes]
        if challenge:
            form += [("code_challenge", challenge), ("code_challenge_method", method)]
        form += list((extra or {}).items())
        return self.post("/connect/authorize", data=form)

    def code_for(self, scopes, **kw):
        r = self.consent(scopes, **kw)
        assert r.status_code == 302, r.text
        q = callback_params(r.headers["Location"])
        assert "code" in q, r.headers["Location"]
        return q["code"]

    def exchange(self, code, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                 redirect_uri=REDIRECT, verifier=None):
        body = {"grant_type": "authorization_code", "code": code, "client_id": client_id,
                "client_secret": client_secret, "redirect_uri": redirect_uri}
        if verifier is not None:
            body["code_verifier"] = verifier
        return self.post("/api/v1/connect/token", json=body)

    def tokens_for(self, scopes, user="ada"):
        r = self.exchange(self.code_for(scopes, user=user))
        assert r.status_code == 200, r.text
        return r.json()

    def refresh(self, refresh_token, **extra):
        return self.post("/api/v1/connect/token",
                         json=dict({"grant_type": "refresh_token",
                                    "refresh_token": refresh_token}, **extra))

    def call(self, endpoint, token):
        return self.get("/api/v1/" + endpoint, headers={"Authorization": f"Bearer {token}"})


def callback_params(location):
    q = parse_qs(urlsplit(location).query, keep_blank_values=True)
    return {k: v[0] for k, v in q.items()}


def pkce_pair():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


