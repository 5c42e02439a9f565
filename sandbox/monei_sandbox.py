#!/usr/bin/python3
"""monei_sandbox.py: a local stand-in for Monei Connect (the OAuth 2.0 provider).

Why it exists: no machine of this project can reach monei.cc / api.monei.cc, yet the
module's tests must drive the whole protocol (authorize, consent, callback, code exchange,
refresh with rotation, revoke, user revocation, partial and incremental grants, rate limits,
slow or broken answers).  This file is the provider side, written to behave the way
docs/protocol.md describes Monei, plus a control API under /_sandbox/ that lets
tests set up and inspect situations that a real provider only produces by chance.

Python 3 standard library only, one file, so that CI and developers can run it anywhere
`python3` exists without installing anything.

    monei_sandbox.py --port 8600 [--host 127.0.0.1]
                     [--tls-port 8643 --cert server.pem --key server.key]
                     [--client-file clients.txt]...
                     [--secrets-file PATH] [--pid-file PATH] [--quiet]

Port 0 picks a free port; the ready line printed on stdout names the real one(s):
    monei-sandbox listening on http://127.0.0.1:8600 https://127.0.0.1:8643
A client file (mode 600) holds one `mc_id:mcs_secret:https://cb1[,https://cb2][ App name]` per
line; the app name is what the consent page shows (the client id when there is none).
"""

import argparse
import base64
import collections
import hashlib
import hmac
import html
import json
import math
import os
import re
import secrets
import signal
import socket
import socketserver
import ssl
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

# --------------------------------------------------------------------------------------
# Protocol constants (docs/protocol.md, "Rate limits")
# --------------------------------------------------------------------------------------

# Order matters: token responses list scopes in this canonical order so that tests and
# the module see a stable value whatever order the user ticked them in.
SCOPES = [
    "profile:read", "kyc:read", "wallet:read", "wallet:deposit", "wallet:send",
    "wallet:withdraw", "swap:execute", "bills:pay", "offramp:execute",
]
SENSITIVE_SCOPES = {"wallet:send", "wallet:withdraw", "swap:execute", "offramp:execute"}
SCOPE_DESCRIPTIONS = {
    "profile:read": "See your name and account details",
    "kyc:read": "See your KYC tier and limits",
    "wallet:read": "See your balances, portfolios and transaction history",
    "wallet:deposit": "Start deposits into your wallet",
    "wallet:send": "Send money to other Monei users",
    "wallet:withdraw": "Withdraw naira to a bank account",
    "swap:execute": "Swap crypto and send crypto",
    "bills:pay": "Pay airtime, data, power and TV bills",
    "offramp:execute": "Convert crypto to naira",
}

# Defaults documented by Monei (code 10 min, access token 1 h, token endpoint 10/min,
# authorize 20/min).  /_sandbox/config changes them; /_sandbox/reset restores these.
DEFAULT_CONFIG = {
    "token_lifetime": 3600,
    "code_lifetime": 600,
    "token_rate_limit": 10,
    "authorize_rate_limit": 20,
}
RATE_WINDOW = 60.0            # sliding window of the rate limits, seconds
MAX_BODY = 1 << 20            # no legitimate request to this server is anywhere near 1 MiB
HANDSHAKE_TIMEOUT = 10.0      # a stalled TLS client must not pin a worker thread forever
IDLE_TIMEOUT = 30.0           # keep-alive connections idle longer than this are dropped
OVERSIZED_BYTES = 5 * 1024 * 1024
FAULT_ENDPOINTS = ("token", "revoke", "wallet", "user", "kyc", "authorize")
FAULT_BODIES = ("garbage", "truncated", "oversized", "empty", "json")

# PKCE code_challenge per RFC 7636 §4.2: 43..128 unreserved characters.
CODE_CHALLENGE_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")

# --------------------------------------------------------------------------------------
# Test users.  Ids are fixed so tests (and REMOTE_USER assertions in the module's tests)
# can name them; each user has distinct data so a mix-up between sessions is visible.
# --------------------------------------------------------------------------------------

USERS = collections.OrderedDict()

USERS["ada"] = {
    "profile": {
        "id": "6f1c2a9e-3d4b-4c8a-9e1f-0a2b3c4d5e01",
        "email": "ada.okafor@example.ng",
        "firstName": "Ada",
        "lastName": "Okafor",
        "phoneNumber": "+2348031234567",
        "status": "active",
        "createdAt": "2024-03-14T09:26:53.589Z",
    },
    "wallet": {
        "nairaBalance": "1805.00",
        "subwallets": [
            {"id": "0b6f3a52-1c2d-4e8f-9a01-ada000000001", "type": "FIAT", "currency": "NGN",
             "balance": 1805, "chain": None, "publicAddress": None,
             "virtualAccount": {"accountNumber": "9012345678", "bankName": "Wema Bank"}},
            {"id": "0b6f3a52-1c2d-4e8f-9a01-ada000000002", "type": "CRYPTO", "currency": "ETH",
             "balance": 0, "chain": "EVM",
             "publicAddress": "0x8ba1f109551bD432803012645Ac136ddd64DBA72",
             "virtualAccount": None},
            {"id": "0b6f3a52-1c2d-4e8f-9a01-ada000000003", "type": "CRYPTO", "currency": "SOL",
             "balance": 0, "chain": "SOLANA",
             "publicAddress": "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU",
             "virtualAccount": None},
        ],
    },
    "kyc": {"tier": 2, "status": "verified",
            "limits": {"dailyTransactionLimit": 5000000, "singleTransactionLimit": 1000000}},
}

USERS["adebayo"] = {
    "profile": {
        "id": "a7d2c4e1-5b6f-4a3c-8d9e-1f2a3b4c5d02",
        # Yoruba tone marks (combining characters included) must survive UTF-8 end to end.
        "firstName": "Adébáyọ̀",
        "lastName": "Ọlábísí",
        "email": "adebayo.olabisi@example.ng",
        "phoneNumber": "+2348059876543",
        "status": "active",
        "createdAt": "2023-11-02T16:04:11.204Z",
    },
    "wallet": {
        "nairaBalance": "250000.50",
        "subwallets": [
            {"id": "5c9e7b13-8a4d-4f2e-b6c1-ade000000001", "type": "FIAT", "currency": "NGN",
             "balance": 250000.5, "chain": None, "publicAddress": None,
             "virtualAccount": {"accountNumber": "8123456709", "bankName": "Providus Bank"}},
            {"id": "5c9e7b13-8a4d-4f2e-b6c1-ade000000002", "type": "CRYPTO", "currency": "ETH",
             "balance": 0.0425, "chain": "EVM",
             "publicAddress": "0x2f5A8c0e4b7D9a1C3e6F8b0d2A4c6E8f0B1d3F5a",
             "virtualAccount": None},
            {"id": "5c9e7b13-8a4d-4f2e-b6c1-ade000000003", "type": "CRYPTO", "currency": "SOL",
             "balance": 1.5, "chain": "SOLANA",
             "publicAddress": "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM",
             "virtualAccount": None},
        ],
    },
    "kyc": {"tier": 3, "status": "verified",
            "limits": {"dailyTransactionLimit": 25000000, "singleTransactionLimit": 5000000}},
}

# A user whose data exercises every "field may be null / absent" path of the module.
USERS["nulls"] = {
    "profile": {
        "id": "c3e5f7a9-0b1d-4c2e-9f3a-5b7d9e0f1a03",
        "email": "nulls@example.ng",
        "firstName": "Null",
        "lastName": None,
        "phoneNumber": "+2348000000000",
        "status": "active",
        "createdAt": "2025-01-01T00:00:00.000Z",
    },
    "wallet": {
        "nairaBalance": "0.00",
        "subwallets": [
            {"id": "e1f2a3b4-c5d6-4e7f-8a9b-0c0000000001", "type": "FIAT", "currency": "NGN",
             "balance": 0, "chain": None, "publicAddress": None, "virtualAccount": None},
        ],
    },
    "kyc": {"tier": 0, "status": "unverified",
            "limits": {"dailyTransactionLimit": 0, "singleTransactionLimit": 0}},
}

# name -> (path, scope, success message, key in USERS[...])
API_ENDPOINTS = {
    "/api/v1/wallet/me": ("wallet", "wallet:read", "User wallet retrieved successfully", "wallet"),
    "/api/v1/user/me": ("user", "profile:read", "User retrieved successfully", "profile"),
    "/api/v1/kyc/status": ("kyc", "kyc:read", "KYC status retrieved successfully", "kyc"),
}


def ordered_scopes(scopes):
    """Scopes in canonical order, duplicates removed."""
    s = set(scopes)
    return [x for x in SCOPES if x in s]


def split_scopes(values):
    """Scope values from a query/form: each value may itself be space separated."""
    out = []
    for v in values:
        for s in v.split():
            if s not in out:
                out.append(s)
    return out


def monei_error(status, message):
    """Monei's (NestJS-style) error body: error is the HTTP reason phrase."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return {"statusCode": status, "message": message, "error": phrase}


def json_bytes(obj):
    # ensure_ascii=False: Monei sends raw UTF-8, and the module must cope with it.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --------------------------------------------------------------------------------------
# State: everything mutable lives in one object behind one lock.  Requests are short, so a
# single lock is simpler than fine-grained locking and makes races (two refreshes of the
# same token at once) resolve exactly one way: the first wins, the second sees a rotated
# token.
# --------------------------------------------------------------------------------------

class Sandbox:
    def __init__(self, secrets_path=None):
        self.lock = threading.Lock()
        self.clients = {}              # client_id -> {"secret", "redirect_uris", "name"}
        self.secrets = []              # every secret ever issued/known, in issue order
        self._secret_set = set()
        self._secrets_fh = open(secrets_path, "a", encoding="utf-8") if secrets_path else None
        with self.lock:
            self._reset_locked()

    # -- lifecycle -----------------------------------------------------------------

    def _reset_locked(self):
        self.config = dict(DEFAULT_CONFIG)
        self.codes = {}                # code -> record
        self.access = {}               # access token -> record
        self.refresh = {}              # refresh token -> record
        self.grants = {}               # (user, client_id) -> set(scopes)
        self.faults = []               # queued fault dicts (with "remaining")
        self.rate = {}                 # (kind, key) -> deque of monotonic timestamps
        self.user_data = {}            # (user, "profile"|"wallet"|"kyc") -> fields laid over
        self.counters = {
            "calls": {e: 0 for e in ("authorize", "token", "revoke", "wallet", "user", "kyc")},
            "code_exchanges": 0, "code_reuse": 0, "refreshes": 0, "refresh_reuse": 0,
            "revocations": 0, "rate_limited": 0,
        }

    def reset(self):
        # Clients and the secrets list survive: clients because CLI registration cannot be
        # repeated by tests, secrets because the log guard must know everything ever issued.
        with self.lock:
            self._reset_locked()

    # -- secrets -------------------------------------------------------------------

    def remember_secret_locked(self, value):
        if not value or value in self._secret_set:
            return
        self._secret_set.add(value)
        self.secrets.append(value)
        if self._secrets_fh:
            # Flushed at once: the log guard may grep while we are still running.
            self._secrets_fh.write(value + "\n")
            self._secrets_fh.flush()

    def new_secret_locked(self, prefix=""):
        value = prefix + secrets.token_urlsafe(32)   # 256 bits of randomness
        self.remember_secret_locked(value)
        return value

    # -- clients -------------------------------------------------------------------

    def register_client(self, client_id, client_secret, redirect_uris, name=None):
        with self.lock:
            self.clients[client_id] = {
                "secret": client_secret,
                "redirect_uris": list(redirect_uris),
                "name": name or client_id,
            }
            self.remember_secret_locked(client_secret)

    def client_auth_ok_locked(self, client_id, client_secret):
        client = self.clients.get(client_id)
        if client is None or not isinstance(client_secret, str):
            return False
        # Constant-time compare: a sandbox, but the habit is what the module copies.
        return hmac.compare_digest(client["secret"].encode(), client_secret.encode())

    # -- rate limiting ---------------------------------------------------------------

    def rate_check_locked(self, kind, key, limit):
        """Sliding-window limiter.  Returns 0 if admitted, else seconds to wait (>= 1).

        Only admitted requests enter the window, so Retry-After is exactly when a slot
        frees and a client that honours it succeeds on its next try."""
        if limit <= 0:       # 0 disables the limit (handy for load tests)
            return 0
        now = time.monotonic()
        window = self.rate.setdefault((kind, key), collections.deque())
        while window and window[0] <= now - RATE_WINDOW:
            window.popleft()
        if len(window) >= limit:
            # With a lowered limit several entries must age out before a slot frees.
            oldest_blocking = window[len(window) - limit]
            self.counters["rate_limited"] += 1
            return max(1, math.ceil(oldest_blocking + RATE_WINDOW - now))
        window.append(now)
        return 0

    # -- faults ----------------------------------------------------------------------

    def take_fault(self, endpoint):
        with self.lock:
            for i, fault in enumerate(self.faults):
                if fault["endpoint"] == endpoint:
                    fault["remaining"] -= 1
                    if fault["remaining"] <= 0:
                        del self.faults[i]
                    return dict(fault)
        return None

    # -- tokens ----------------------------------------------------------------------

    def issue_pair_locked(self, client_id, user, scopes):
        access = self.new_secret_locked("mct_")
        refresh = self.new_secret_locked("mcr_")
        lifetime = int(self.config["token_lifetime"])
        self.access[access] = {
            "client_id": client_id, "user": user, "scopes": list(scopes),
            "expires": time.monotonic() + lifetime, "refresh": refresh, "revoked": False,
        }
        self.refresh[refresh] = {
            "client_id": client_id, "user": user, "scopes": list(scopes),
            "access": access, "state": "active",     # active | rotated | revoked
        }
        return {"access_token": access, "refresh_token": refresh, "token_type": "Bearer",
                "expires_in": lifetime, "scopes": list(scopes)}

    def valid_access_locked(self, token):
        rec = self.access.get(token)
        if rec is None or rec["revoked"] or time.monotonic() >= rec["expires"]:
            return None
        return rec

    def revoke_pair_locked(self, access=None, refresh=None):
        if access is None and refresh is not None:
            access = self.refresh[refresh]["access"]
        if refresh is None and access is not None:
            refresh = self.access[access]["refresh"]
        if access in self.access:
            self.access[access]["revoked"] = True
        if refresh in self.refresh and self.refresh[refresh]["state"] == "active":
            self.refresh[refresh]["state"] = "revoked"


# --------------------------------------------------------------------------------------
# HTML (the consent page and error pages)
# --------------------------------------------------------------------------------------

PAGE_STYLE = """
body{font-family:system-ui,sans-serif;max-width:36em;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.3em} .scope{margin:.5em 0} .desc{color:#555;font-size:.9em}
.warn{color:#a40000;font-weight:bold;font-size:.9em} .granted{color:#555}
button{font-size:1em;padding:.4em 1.2em;margin-right:.6em}
"""


def html_page(title, body_html):
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{PAGE_STYLE}</style></head>"
            f"<body>{body_html}</body></html>\n").encode("utf-8")


def error_page(title, sentence):
    return html_page(title, f"<h1>{html.escape(title)}</h1><p>{html.escape(sentence)}</p>")


def consent_page(client_id, client, redirect_uri, state, challenge, method, requested,
                 user, already):
    e = html.escape
    app = client["name"]
    to_ask = [s for s in requested if s not in already]
    parts = [f"<h1>{e(app)} wants to access your Monei account</h1>",
             f"<p class=\"desc\">App: <strong>{e(app)}</strong> (client id <code>{e(client_id)}</code>)"
             f"<br>After you decide you will be sent back to <code>{e(redirect_uri)}</code></p>",
             "<form method=\"post\" action=\"/connect/authorize\">"]
    # The user picker stands in for Monei's login.  Grants are per user, so the scope list
    # below is computed for the selected user; links re-render the page for another one.
    opts = "".join(
        f"<option value=\"{e(u)}\"{' selected' if u == user else ''}>"
        f"{e(USERS[u]['profile']['firstName'])} {e(USERS[u]['profile']['lastName'] or '')} ({e(u)})"
        f"</option>" for u in USERS)
    parts.append(f"<p><label>Signed in as <select name=\"user\">{opts}</select></label></p>")
    if to_ask:
        parts.append("<fieldset><legend>Allow this app to:</legend>")
        for s in to_ask:
            warn = ""
            if s in SENSITIVE_SCOPES:
                warn = (" <span class=\"warn\">&#9888; Sensitive: this lets the app move "
                        "money out of your wallet.</span>")
            parts.append(
                f"<div class=\"scope\"><label><input type=\"checkbox\" name=\"scope\" "
                f"value=\"{e(s)}\" checked> <strong>{e(s)}</strong> "
                f"<span class=\"desc\">{e(SCOPE_DESCRIPTIONS[s])}</span></label>{warn}</div>")
        parts.append("</fieldset>")
    else:
        parts.append("<p>This app asks for nothing new.</p>")
    if already:
        parts.append("<p class=\"granted\">Already granted: " +
                     ", ".join(f"<code>{e(s)}</code>" for s in ordered_scopes(already)) + "</p>")
    hidden = [("client_id", client_id), ("redirect_uri", redirect_uri),
              ("requested_scope", " ".join(requested))]
    if state is not None:
        hidden.append(("state", state))
    if challenge:
        hidden.append(("code_challenge", challenge))
        hidden.append(("code_challenge_method", method or ""))
    for name, value in hidden:
        parts.append(f"<input type=\"hidden\" name=\"{e(name)}\" value=\"{e(value)}\">")
    parts.append("<p><button type=\"submit\" name=\"action\" value=\"approve\">Approve</button>"
                 "<button type=\"submit\" name=\"action\" value=\"deny\">Deny</button></p></form>")
    others = [u for u in USERS if u != user]
    if others:
        links = []
        for u in others:
            # Re-render for another user: same request, plus user=.
            q = [("client_id", client_id), ("redirect_uri", redirect_uri),
                 ("scope", " ".join(requested)), ("user", u)]
            if state is not None:
                q.append(("state", state))
            if challenge:
                q += [("code_challenge", challenge), ("code_challenge_method", method or "")]
            href = "/connect/authorize?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in q)
            links.append(f"<a href=\"{e(href)}\">{e(u)}</a>")
        parts.append("<p class=\"desc\">Not you? Sign in as " + ", ".join(links) + ".</p>")
    return html_page(f"Connect {app} to Monei", "".join(parts))


# --------------------------------------------------------------------------------------
# HTTP handler
# --------------------------------------------------------------------------------------

class BodyError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 with keep-alive: libcurl reuses connections and the module's tests should
    # see the same connection behaviour as against a real API.  Every answer therefore
    # carries Content-Length.
    protocol_version = "HTTP/1.1"
    server_version = "monei-sandbox/1.0"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle plus delayed ACKs
    # add ~40 ms to every answer on a kept-alive connection.
    disable_nagle_algorithm = True
    sandbox = None     # set on a per-server subclass
    quiet = True

    # -- logging: never the query string (it may carry codes), never bodies or headers --

    def log_request(self, code="-", size="-"):
        if self.quiet:
            return
        if not getattr(self, "command", None):
            # Unparseable request line: nothing about it is safe to print.
            sys.stderr.write(f"monei-sandbox: - - {code}\n")
            return
        path = urlsplit(self.path or "").path
        sys.stderr.write(f"monei-sandbox: {self.command} {path} {code}\n")

    def log_error(self, format, *args):
        # The default prints the raw request line for malformed requests; that line may
        # hold a secret, so only the fact is logged.
        if not self.quiet:
            sys.stderr.write("monei-sandbox: malformed or aborted request\n")

    def log_message(self, format, *args):
        pass

    # -- plumbing ----------------------------------------------------------------------

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def do_PATCH(self):
        self._dispatch()

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise BodyError(400, "Malformed chunked body")
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    raise BodyError(413, "Request body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
            return b"".join(chunks)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            n = int(length)
        except ValueError:
            raise BodyError(400, "Invalid Content-Length")
        if n < 0:
            raise BodyError(400, "Invalid Content-Length")
        if n > MAX_BODY:
            raise BodyError(413, "Request body too large")
        return self.rfile.read(n)

    def _send(self, status, body, content_type="application/json; charset=utf-8",
              headers=None, length=None):
        hold = getattr(self, "hold", 0)
        if hold:
            self.hold = 0
            time.sleep(hold)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status, obj, headers=None):
        h = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        h.update(headers or {})
        self._send(status, json_bytes(obj), headers=h)

    def send_error_json(self, status, message, headers=None):
        self.send_json(status, monei_error(status, message), headers)

    def send_html(self, status, body, headers=None):
        h = {"Cache-Control": "no-store", "X-Frame-Options": "DENY",
             "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
             "Referrer-Policy": "no-referrer"}
        h.update(headers or {})
        self._send(status, body, "text/html; charset=utf-8", h)

    def send_redirect(self, location):
        self._send(302, b"", "text/plain; charset=utf-8",
                   {"Location": location, "Cache-Control": "no-store",
                    "Referrer-Policy": "no-referrer"})

    def drop_connection(self):
        """Hang up without an answer (or mid-answer): what a crashed upstream looks like."""
        self.close_connection = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _dispatch(self):
        split = urlsplit(self.path)
        path = split.path
        self.query = parse_qs(split.query, keep_blank_values=True)
        try:
            self.body = self._read_body()
        except BodyError as exc:
            self.close_connection = True     # the rest of the stream is unreadable
            self.send_error_json(exc.status, exc.message)
            return
        m = self.command
        if path == "/connect/authorize" and m in ("GET", "POST"):
            self.handle_authorize()
        elif path == "/api/v1/connect/token" and m == "POST":
            self.handle_token()
        elif path == "/api/v1/connect/token/revoke" and m == "POST":
            self.handle_revoke()
        elif path in API_ENDPOINTS and m == "GET":
            self.handle_api(path)
        elif path.startswith("/_sandbox/"):
            self.handle_control(path[len("/_sandbox/"):])
        else:
            # NestJS's own wording for an unrouted request.
            self.send_error_json(404, f"Cannot {m} {path}")

    def count_call(self, endpoint):
        with self.sandbox.lock:
            self.sandbox.counters["calls"][endpoint] += 1

    def json_body(self):
        """(dict or None, content_type_ok)."""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        try:
            data = json.loads(self.body.decode("utf-8")) if self.body else None
        except (UnicodeDecodeError, ValueError):
            data = None
        if not isinstance(data, dict):
            data = None
        return data, ctype == "application/json"

    # -- faults ------------------------------------------------------------------------

    def sample_success(self, endpoint):
        """What a normal success body of this endpoint looks like (for truncated/oversized)."""
        sb = self.sandbox
        if endpoint == "token":
            with sb.lock:
                # Fresh random values, recorded as secrets so the log guard also looks for
                # them, but never valid: a broken answer must not hand out a usable token.
                return {"access_token": sb.new_secret_locked("mct_"),
                        "refresh_token": sb.new_secret_locked("mcr_"),
                        "token_type": "Bearer", "expires_in": sb.config["token_lifetime"],
                        "scopes": ["wallet:read", "profile:read"]}
        if endpoint == "revoke":
            return {"statusCode": 200, "message": "Token revoked"}
        if endpoint == "authorize":
            return None
        user = next(iter(USERS))
        token = self.bearer_token()
        with sb.lock:
            rec = sb.valid_access_locked(token) if token else None
            if rec:
                user = rec["user"]
        for _path, (name, _scope, message, key) in API_ENDPOINTS.items():
            if name == endpoint:
                return {"statusCode": 200, "message": message, "data": USERS[user][key]}
        return {"statusCode": 200, "message": "OK"}

    def apply_fault(self, endpoint):
        """Returns True when the fault produced the whole answer."""
        fault = self.sandbox.take_fault(endpoint)
        if fault is None:
            return False
        if fault.get("after"):
            # Monei did the work (a refresh has rotated) but its answer is late: processed
            # now, held in _send.
            self.hold = fault["delay"]
            return False
        if fault.get("delay"):
            time.sleep(fault["delay"])
        kind = fault.get("body")
        status = fault.get("status")
        if fault.get("close") and kind != "truncated":
            self.drop_connection()
            return True
        if status is None and kind is None:
            return False            # a pure delay: slow, then normal processing
        status = status or 200
        ctype = "application/json; charset=utf-8"
        sample, full = None, b""
        if kind in ("truncated", "oversized") or (kind is None and status < 400):
            # Only built when needed: for the token endpoint it mints (useless) tokens.
            sample = self.sample_success(endpoint)
            if sample is None:   # authorize: its success is an HTML page
                full = html_page("Connect to Monei",
                                 "<h1>Connect to Monei</h1>" + "<p>Choose what to share.</p>" * 20)
                ctype = "text/html; charset=utf-8"
            else:
                full = json_bytes(sample)
        if kind == "garbage":
            body = b"<html><body>502 Bad Gateway</body></html>\x00\xff\xfe{{not json"
        elif kind == "truncated":
            body = full[: len(full) // 2]
        elif kind == "oversized":
            pad = "x" * OVERSIZED_BYTES
            body = json_bytes(dict(sample or {}, padding=pad))
            ctype = "application/json; charset=utf-8"
        elif kind == "empty":
            body = b""
        elif kind == "json":
            body = json_bytes(fault.get("json"))
            ctype = "application/json; charset=utf-8"
        elif status >= 400:
            body = json_bytes(monei_error(status, "Sandbox fault"))
            ctype = "application/json; charset=utf-8"
        else:
            body = full
        headers = dict(fault.get("headers") or {})
        if "Content-Type" in headers:
            ctype = headers.pop("Content-Type")
        if fault.get("close"):
            # truncated + close: announce the full length, send half, hang up mid-body.
            self._send(status, body, ctype, headers, length=len(full))
            self.drop_connection()
        else:
            self._send(status, body, ctype, headers)
        return True

    # -- /connect/authorize ------------------------------------------------------------

    def handle_authorize(self):
        sb = self.sandbox
        self.count_call("authorize")
        if self.apply_fault("authorize"):
            return
        if self.command == "POST":
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype != "application/x-www-form-urlencoded":
                self.send_html(400, error_page("Bad request",
                                               "The consent form was not submitted as a form."))
                return
            try:
                params = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
            except UnicodeDecodeError:
                params = {}
        else:
            params = self.query

        def first(k):
            v = params.get(k)
            return v[0] if v else None

        client_id = first("client_id")
        with sb.lock:
            wait = sb.rate_check_locked("authorize", client_id or "-",
                                        int(sb.config["authorize_rate_limit"]))
            client = sb.clients.get(client_id) if client_id else None
            client = dict(client) if client else None
        if wait:
            self.send_html(429, error_page("Too many requests",
                                           f"Please wait {wait} seconds and try again."),
                           {"Retry-After": str(wait)})
            return
        # Errors about the client or the redirect URI are shown here, never redirected:
        # redirecting to an unverified URI would make us an open redirector (RFC 6749 §4.1.2.1).
        if client is None:
            self.send_html(400, error_page("Unknown application",
                                           "This app is not registered with Monei Connect."))
            return
        redirect_uri = first("redirect_uri")
        if redirect_uri is None or redirect_uri not in client["redirect_uris"]:
            self.send_html(400, error_page("Invalid redirect URI",
                                           "The redirect URI does not match the one registered "
                                           "for this app."))
            return
        state = first("state")

        def back(**kv):
            q = [(k, v) for k, v in kv.items()]
            if state is not None:
                q.append(("state", state))
            sep = "&" if "?" in redirect_uri else "?"
            self.send_redirect(redirect_uri + sep +
                               "&".join(f"{k}={quote(v, safe='')}" for k, v in q))

        response_type = first("response_type")
        if response_type is not None and response_type != "code":
            back(error="unsupported_response_type")
            return
        challenge = first("code_challenge") or None
        method = first("code_challenge_method")
        if challenge is not None:
            # RFC 7636 says a missing method means "plain"; Monei-through-us accepts S256 only.
            if method != "S256" or not CODE_CHALLENGE_RE.match(challenge):
                back(error="invalid_request")
                return
        if self.command == "GET":
            requested = split_scopes(params.get("scope", []))
        else:
            requested = split_scopes(params.get("requested_scope", []))
        checked = split_scopes(params.get("scope", [])) if self.command == "POST" else []
        if any(s not in SCOPES for s in requested + checked):
            back(error="invalid_scope")
            return
        user = first("user") or next(iter(USERS))
        if user not in USERS:
            self.send_html(400, error_page("Unknown user", "There is no such test user."))
            return

        if self.command == "GET":
            with sb.lock:
                already = set(sb.grants.get((user, client_id), set()))
            self.send_html(200, consent_page(client_id, client, redirect_uri, state, challenge,
                                             method, requested, user, already))
            return

        action = first("action")
        if action == "deny":
            back(error="access_denied")
            return
        if action != "approve":
            self.send_html(400, error_page("Bad request", "Choose Approve or Deny."))
            return
        if "requested_scope" in params:
            # A consent form can only grant what the app asked for.
            checked = [s for s in checked if s in requested]
        with sb.lock:
            # Incremental authorization: the new grant adds to what this user already gave
            # this app; unticking a scope on a later consent does not take an old one back.
            granted = set(sb.grants.get((user, client_id), set())) | set(checked)
            sb.grants[(user, client_id)] = granted
            code = sb.new_secret_locked()
            sb.codes[code] = {
                "client_id": client_id, "redirect_uri": redirect_uri, "user": user,
                "scopes": ordered_scopes(granted), "code_challenge": challenge,
                "expires": time.monotonic() + float(sb.config["code_lifetime"]),
                "used": False,
            }
        back(code=code)

    # -- /api/v1/connect/token ---------------------------------------------------------

    def handle_token(self):
        sb = self.sandbox
        self.count_call("token")
        if self.apply_fault("token"):
            return
        data, ctype_ok = self.json_body()
        # The limit is per client: the client_id sent, or for a bare refresh the client the
        # refresh token belongs to.  Every request that reaches us counts, good or bad.
        key = "-"
        if data is not None:
            if isinstance(data.get("client_id"), str):
                key = data["client_id"]
            elif isinstance(data.get("refresh_token"), str):
                with sb.lock:
                    rec = sb.refresh.get(data["refresh_token"])
                    if rec:
                        key = rec["client_id"]
        with sb.lock:
            wait = sb.rate_check_locked("token", key, int(sb.config["token_rate_limit"]))
        if wait:
            self.send_error_json(429, "Too many requests, please try again later",
                                 {"Retry-After": str(wait)})
            return
        if not ctype_ok:
            self.send_error_json(400, "Content-Type must be application/json")
            return
        if data is None:
            self.send_error_json(400, "Request body must be a JSON object")
            return
        grant_type = data.get("grant_type")
        if grant_type == "authorization_code":
            self.token_from_code(data)
        elif grant_type == "refresh_token":
            self.token_from_refresh(data)
        else:
            self.send_error_json(400, "grant_type must be authorization_code or refresh_token")

    def token_from_code(self, data):
        sb = self.sandbox
        fields = ("code", "client_id", "client_secret", "redirect_uri")
        if any(not isinstance(data.get(f), str) or not data.get(f) for f in fields):
            self.send_error_json(400, "code, client_id, client_secret and redirect_uri are required")
            return
        verifier = data.get("code_verifier")
        if verifier is not None and not isinstance(verifier, str):
            self.send_error_json(400, "code_verifier must be a string")
            return
        with sb.lock:
            if not sb.client_auth_ok_locked(data["client_id"], data["client_secret"]):
                status, msg = 401, "Invalid client credentials"
            else:
                status, msg = self._check_code_locked(data, verifier)
            if status == 200:
                rec = sb.codes[data["code"]]
                rec["used"] = True       # stays in the table so reuse is recognised
                sb.counters["code_exchanges"] += 1
                answer = sb.issue_pair_locked(rec["client_id"], rec["user"], rec["scopes"])
        if status != 200:
            self.send_error_json(status, msg)
            return
        self.send_json(200, answer)

    def _check_code_locked(self, data, verifier):
        sb = self.sandbox
        rec = sb.codes.get(data["code"])
        if rec is None:
            return 400, "Invalid authorization code"
        if rec["used"]:
            sb.counters["code_reuse"] += 1
            return 400, "Authorization code has already been used"
        if time.monotonic() >= rec["expires"]:
            return 400, "Authorization code has expired"
        if rec["client_id"] != data["client_id"]:
            return 400, "Authorization code was issued to another client"
        if rec["redirect_uri"] != data["redirect_uri"]:
            return 400, "redirect_uri does not match the authorization request"
        if rec["code_challenge"]:
            if not verifier:
                return 400, "code_verifier is required"
            digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
            computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
            if not hmac.compare_digest(computed, rec["code_challenge"]):
                return 400, "code_verifier does not match code_challenge"
        return 200, None

    def token_from_refresh(self, data):
        sb = self.sandbox
        token = data.get("refresh_token")
        if not isinstance(token, str) or not token:
            self.send_error_json(400, "refresh_token is required")
            return
        cid, csec = data.get("client_id"), data.get("client_secret")
        with sb.lock:
            rec = sb.refresh.get(token)
            status, msg = 200, None
            # Client credentials are optional here; when sent they must be right and must be
            # the client the token was issued to.
            if csec is not None and not sb.client_auth_ok_locked(cid, csec):
                status, msg = 401, "Invalid client credentials"
            elif cid is not None and rec is not None and cid != rec["client_id"]:
                status, msg = 401, "Invalid client credentials"
            elif rec is None:
                status, msg = 401, "Invalid refresh token"
            elif rec["state"] == "rotated":
                sb.counters["refresh_reuse"] += 1
                status, msg = 401, "Refresh token has already been used"
            elif rec["state"] != "active":
                status, msg = 401, "Refresh token has been revoked"
            if status == 200:
                # Rotation: both halves of the old pair die now, before the answer is sent;
                # a client that loses this answer has lost the session (as with Monei).
                rec["state"] = "rotated"
                old = sb.access.get(rec["access"])
                if old:
                    old["revoked"] = True
                sb.counters["refreshes"] += 1
                answer = sb.issue_pair_locked(rec["client_id"], rec["user"], rec["scopes"])
        if status != 200:
            self.send_error_json(status, msg)
            return
        self.send_json(200, answer)

    # -- /api/v1/connect/token/revoke --------------------------------------------------

    def handle_revoke(self):
        sb = self.sandbox
        self.count_call("revoke")
        if self.apply_fault("revoke"):
            return
        data, ctype_ok = self.json_body()
        if not ctype_ok:
            self.send_error_json(400, "Content-Type must be application/json")
            return
        if data is None or not isinstance(data.get("token"), str) or not data["token"]:
            self.send_error_json(400, "token is required")
            return
        token = data["token"]
        with sb.lock:
            # Unknown tokens also get 200 (RFC 7009 §2.2): revocation must not be an oracle.
            if token in sb.access:
                sb.access[token]["named_in_revoke"] = True
                sb.revoke_pair_locked(access=token)
                sb.counters["revocations"] += 1
            elif token in sb.refresh:
                sb.refresh[token]["named_in_revoke"] = True
                sb.revoke_pair_locked(refresh=token)
                sb.counters["revocations"] += 1
        self.send_json(200, {"statusCode": 200, "message": "Token revoked"})

    # -- API endpoints -----------------------------------------------------------------

    def bearer_token(self):
        auth = self.headers.get("Authorization") or ""
        parts = auth.split(None, 1)
        if len(parts) == 2 and parts[0].lower() == "bearer":
            return parts[1].strip()
        return None

    def handle_api(self, path):
        sb = self.sandbox
        name, scope, message, key = API_ENDPOINTS[path]
        self.count_call(name)
        if self.apply_fault(name):
            return
        token = self.bearer_token()
        with sb.lock:
            rec = sb.valid_access_locked(token) if token else None
            rec = dict(rec) if rec else None
        if rec is None:
            self.send_error_json(401, "Invalid or expired token")
            return
        if scope not in rec["scopes"]:
            self.send_error_json(403, f"Insufficient scope: {scope} is required")
            return
        with sb.lock:
            data = dict(USERS[rec["user"]][key])
            data.update(sb.user_data.get((rec["user"], key), {}))
        self.send_json(200, {"statusCode": 200, "message": message, "data": data})

    # -- /_sandbox/ control API --------------------------------------------------------

    def handle_control(self, what):
        sb = self.sandbox
        m = self.command
        data = {}
        if m in ("POST", "PUT") and self.body:
            try:
                data = json.loads(self.body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                self.send_error_json(400, "Body must be JSON")
                return
            if not isinstance(data, dict):
                self.send_error_json(400, "Body must be a JSON object")
                return
        try:
            if what == "health" and m == "GET":
                self.send_json(200, {"ok": True})
            elif what == "reset" and m == "POST":
                sb.reset()
                self.send_json(200, {"ok": True})
            elif what == "clients" and m == "POST":
                self.control_clients(data)
            elif what == "clients" and m == "GET":
                with sb.lock:
                    out = {cid: {"redirect_uris": c["redirect_uris"], "name": c["name"]}
                           for cid, c in sb.clients.items()}
                self.send_json(200, {"clients": out})
            elif what == "config" and m == "POST":
                self.control_config(data)
            elif what == "config" and m == "GET":
                with sb.lock:
                    self.send_json(200, dict(sb.config))
            elif what == "expire_tokens" and m == "POST":
                self.control_expire(data)
            elif what == "revoke_user" and m == "POST":
                self.control_revoke_user(data)
            elif what == "user_data" and m == "POST":
                self.control_user_data(data)
            elif what == "faults" and m == "POST":
                self.control_faults(data)
            elif what == "faults" and m == "DELETE":
                with sb.lock:
                    sb.faults = []
                self.send_json(200, {"ok": True})
            elif what == "faults" and m == "GET":
                with sb.lock:
                    self.send_json(200, {"faults": [dict(f) for f in sb.faults]})
            elif what == "counters" and m == "GET":
                with sb.lock:
                    self.send_json(200, json.loads(json.dumps(sb.counters)))
            elif what == "secrets" and m == "GET":
                with sb.lock:
                    self.send_json(200, {"secrets": list(sb.secrets)})
            elif what == "tokens" and m == "GET":
                self.control_tokens()
            elif what == "grants" and m == "GET":
                with sb.lock:
                    out = [{"user": u, "client_id": c, "scopes": ordered_scopes(s)}
                           for (u, c), s in sb.grants.items()]
                self.send_json(200, {"grants": out})
            else:
                self.send_error_json(404, f"Cannot {m} /_sandbox/{what}")
        except BodyError as exc:
            self.send_error_json(exc.status, exc.message)

    def control_clients(self, data):
        cid, csec, uris = data.get("client_id"), data.get("client_secret"), data.get("redirect_uris")
        if not (isinstance(cid, str) and cid and isinstance(csec, str) and csec
                and isinstance(uris, list) and uris and all(isinstance(u, str) and u for u in uris)):
            raise BodyError(400, "client_id, client_secret and redirect_uris (non-empty list) required")
        name = data.get("name")
        self.sandbox.register_client(cid, csec, uris, name if isinstance(name, str) else None)
        self.send_json(200, {"ok": True, "client_id": cid})

    def control_config(self, data):
        sb = self.sandbox
        unknown = set(data) - set(DEFAULT_CONFIG)
        if unknown:
            raise BodyError(400, "unknown config keys: " + ", ".join(sorted(unknown)))
        for k, v in data.items():
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise BodyError(400, f"{k} must be an integer >= 0")
        with sb.lock:
            sb.config.update(data)
            out = dict(sb.config)
        self.send_json(200, out)

    def control_tokens(self):
        """How many tokens of a user (and client) are in each state, and how many a revoke
        call named: whether a logout really ended everything Monei issued."""
        sb = self.sandbox
        user = (self.query.get("user") or [None])[0]
        cid = (self.query.get("client_id") or [None])[0]

        def match(rec):
            return (user is None or rec["user"] == user) and (cid is None or rec["client_id"] == cid)

        out = {"access": {"active": 0, "expired": 0, "revoked": 0, "named_in_revoke": 0},
               "refresh": {"active": 0, "rotated": 0, "revoked": 0, "named_in_revoke": 0}}
        with sb.lock:
            now = time.monotonic()
            for rec in filter(match, sb.access.values()):
                state = ("revoked" if rec["revoked"] else
                         "expired" if now >= rec["expires"] else "active")
                out["access"][state] += 1
                out["access"]["named_in_revoke"] += bool(rec.get("named_in_revoke"))
            for rec in filter(match, sb.refresh.values()):
                out["refresh"][rec["state"]] += 1
                out["refresh"]["named_in_revoke"] += bool(rec.get("named_in_revoke"))
        self.send_json(200, out)

    def control_user_data(self, data):
        # Fields laid over a test user's data (a huge profile field, a wallet that grows):
        # {"user":"ada","profile":{...},"wallet":{...},"kyc":{...}}; reset forgets them.
        user = data.get("user")
        if user not in USERS:
            raise BodyError(400, "user must be one of " + ", ".join(USERS))
        parts = {k: v for k, v in data.items() if k != "user"}
        if not parts or any(k not in ("profile", "wallet", "kyc") or not isinstance(v, dict)
                            for k, v in parts.items()):
            raise BodyError(400, "profile, wallet and kyc must be objects (at least one)")
        with self.sandbox.lock:
            for k, v in parts.items():
                self.sandbox.user_data.setdefault((user, k), {}).update(v)
        self.send_json(200, {"ok": True})

    def control_expire(self, data):
        sb = self.sandbox
        user = data.get("user")
        if user is not None and user not in USERS:
            raise BodyError(404, "no such user")
        n = 0
        with sb.lock:
            now = time.monotonic()
            for rec in sb.access.values():
                if user is None or rec["user"] == user:
                    rec["expires"] = min(rec["expires"], now)
                    n += 1
        self.send_json(200, {"ok": True, "expired": n})

    def control_revoke_user(self, data):
        sb = self.sandbox
        user, cid = data.get("user"), data.get("client_id")
        if user not in USERS:
            raise BodyError(400 if user is None else 404, "user is required and must exist")

        def match(rec):
            return rec["user"] == user and (cid is None or rec["client_id"] == cid)

        with sb.lock:
            for rec in sb.access.values():
                if match(rec):
                    rec["revoked"] = True
            for rec in sb.refresh.values():
                if match(rec) and rec["state"] == "active":
                    rec["state"] = "revoked"
            # Codes not yet exchanged die too: the user withdrew consent.
            for code in [c for c, rec in sb.codes.items() if match(rec) and not rec["used"]]:
                del sb.codes[code]
            for key in [k for k in sb.grants if k[0] == user and (cid is None or k[1] == cid)]:
                del sb.grants[key]
        self.send_json(200, {"ok": True})

    def control_faults(self, data):
        endpoint = data.get("endpoint")
        if endpoint not in FAULT_ENDPOINTS:
            raise BodyError(400, "endpoint must be one of " + "|".join(FAULT_ENDPOINTS))
        fault = {"endpoint": endpoint}
        count = data.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise BodyError(400, "count must be an integer >= 1")
        fault["remaining"] = count
        if "status" in data:
            if not isinstance(data["status"], int) or not 100 <= data["status"] <= 599:
                raise BodyError(400, "status must be an HTTP status code")
            fault["status"] = data["status"]
        if "delay" in data:
            d = data["delay"]
            if not isinstance(d, (int, float)) or isinstance(d, bool) or not 0 <= d <= 300:
                raise BodyError(400, "delay must be a number of seconds 0..300")
            fault["delay"] = float(d)
        if "body" in data:
            if data["body"] not in FAULT_BODIES:
                raise BodyError(400, "body must be one of " + "|".join(FAULT_BODIES))
            fault["body"] = data["body"]
        if "json" in data:
            fault["json"] = data["json"]
            fault.setdefault("body", "json")
        elif fault.get("body") == "json":
            raise BodyError(400, "body=json needs a json member")
        if "headers" in data:
            h = data["headers"]
            if not isinstance(h, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) and "\n" not in k + v and "\r" not in k + v
                    for k, v in h.items()):
                raise BodyError(400, "headers must map strings to strings")
            fault["headers"] = dict(h)
        if data.get("close"):
            fault["close"] = True
        if data.get("after"):
            if "delay" not in fault or {"status", "body", "close"} & set(fault):
                raise BodyError(400, "after needs a delay and no status, body or close")
            fault["after"] = True
        with self.sandbox.lock:
            self.sandbox.faults.append(fault)
            queued = len(self.sandbox.faults)
        self.send_json(200, {"ok": True, "queued": queued})


# --------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------

class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False        # a delayed fault must not hold up shutdown

    def server_bind(self):
        # HTTPServer.server_bind calls getfqdn(), a DNS lookup that can stall startup.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class SandboxHTTPSServer(SandboxHTTPServer):
    def __init__(self, address, handler, tls_context):
        self.tls_context = tls_context
        super().__init__(address, handler)

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the per-connection thread, not in accept():
        # one slow or broken client must not block every other connection.
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            conn = self.tls_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(conn, client_address)
        finally:
            try:
                conn.close()
            except OSError:
                pass


def server_class_for(host, base):
    if ":" in host:
        return type(base.__name__ + "6", (base,), {"address_family": socket.AF_INET6})
    return base


def parse_client(spec):
    # mc_id:mcs_secret:https://a[,https://b][ App name] -- URIs contain ':' so split only
    # twice; they never contain a space, so whatever follows the first space names the app.
    spec, _, name = spec.strip().partition(" ")
    parts = spec.split(":", 2)
    if len(parts) != 3 or not all(parts):
        raise ValueError("a client line wants ID:SECRET:URI[,URI...]")
    uris = [u for u in parts[2].split(",") if u]
    if not uris:
        raise ValueError("a client line wants at least one redirect URI")
    return parts[0], parts[1], uris, name.strip() or None


def read_client_file(path):
    """Clients to register, one `ID:SECRET:URI[,URI...]` per line (`#` comments). A file,
    never the command line, so that the secret is not visible in `ps`; like ssh with its
    keys, a file that others may read is refused."""
    try:
        st = os.stat(path)
        if st.st_mode & 0o077:
            raise argparse.ArgumentTypeError(
                "%s holds client secrets and must not be readable by others (chmod 600)" % path)
        with open(path) as fh:
            lines = [ln.strip() for ln in fh]
    except OSError as e:
        raise argparse.ArgumentTypeError("cannot read %s: %s" % (path, e.strerror))
    clients = []
    for n, line in enumerate(lines, 1):
        if line and not line.startswith("#"):
            try:
                clients.append(parse_client(line))
            except ValueError as e:
                raise argparse.ArgumentTypeError("%s line %d: %s" % (path, n, e))
    return clients


def main(argv=None):
    ap = argparse.ArgumentParser(description="Local Monei Connect provider for tests.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True, help="HTTP port (0 = pick a free one)")
    ap.add_argument("--tls-port", type=int, help="also serve HTTPS on this port (0 = free one)")
    ap.add_argument("--cert", help="PEM certificate (chain) for HTTPS")
    ap.add_argument("--key", help="PEM private key for HTTPS")
    ap.add_argument("--client-file", action="append", type=read_client_file, default=[],
                    help="register the clients of a mode-600 file, one ID:SECRET:URI[,URI...]"
                         "[ APP NAME] per line (repeatable)")
    ap.add_argument("--secrets-file", help="append every secret issued or known, one per line")
    ap.add_argument("--pid-file")
    ap.add_argument("--quiet", action="store_true", help="no request log on stderr")
    args = ap.parse_args(argv)
    if args.tls_port is not None and not (args.cert and args.key):
        ap.error("--tls-port needs --cert and --key")

    sandbox = Sandbox(args.secrets_file)
    for clients in args.client_file:
        for cid, csec, uris, name in clients:
            sandbox.register_client(cid, csec, uris, name)

    handler = type("BoundHandler", (Handler,), {"sandbox": sandbox, "quiet": args.quiet})
    servers = [server_class_for(args.host, SandboxHTTPServer)((args.host, args.port), handler)]
    urls = []
    host_in_url = f"[{args.host}]" if ":" in args.host else args.host
    urls.append(f"http://{host_in_url}:{servers[0].server_address[1]}")
    if args.tls_port is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(args.cert, args.key)
        tls = server_class_for(args.host, SandboxHTTPSServer)((args.host, args.tls_port), handler, ctx)
        servers.append(tls)
        urls.append(f"https://{host_in_url}:{tls.server_address[1]}")

    if args.pid_file:
        with open(args.pid_file, "w") as fh:
            fh.write(f"{os.getpid()}\n")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2},
                                daemon=True) for s in servers]
    for t in threads:
        t.start()
    # The sockets are already listening (bound in the constructors), so the line is true.
    print("monei-sandbox listening on " + " ".join(urls), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()
        if args.pid_file:
            try:
                os.unlink(args.pid_file)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
