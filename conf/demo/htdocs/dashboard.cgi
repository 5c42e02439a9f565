#!/usr/bin/env python3
"""The demo's dashboard: the variables mod_monei_connect exports, shown as a wallet user
expects. A row without a value is left out (never a placeholder), the balance reads
"₦1,805.00", the snapshot's time is shown when Monei could not be reached, and the account
id carries a label saying which id it is. Only the standard library; runs as a CGI."""
import html
import json
import os
import sys
import time
from decimal import Decimal, InvalidOperation

env = os.environ


def v(name):
    """A variable's value, or None when it is absent or empty (Monei sent null or nothing)."""
    val = env.get(name, "").strip()
    return val or None


def e(text):
    return html.escape(text, quote=True)


def naira(value):
    """'1805' or '1805.5' -> '₦1,805.00'; None when it is not a number."""
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError):
        return None
    if not amount.is_finite():
        return None
    return "\u20a6{:,.2f}".format(amount)


def when(unix):
    """Unix seconds -> '3 March 2025, 14:05 UTC'."""
    try:
        t = time.gmtime(int(unix))
    except (TypeError, ValueError, OverflowError):
        return None
    return "%d %s %d, %02d:%02d UTC" % (t.tm_mday, time.strftime("%B", t), t.tm_year,
                                        t.tm_hour, t.tm_min)


def fiat_id():
    """The NGN (FIAT) sub-wallet's id, from the wallet JSON the module exports."""
    try:
        data = json.loads(env.get("MONEI_WALLET_JSON") or "null")
    except ValueError:
        return None
    subs = data.get("subwallets") if isinstance(data, dict) else None
    for s in subs if isinstance(subs, list) else []:
        if isinstance(s, dict) and s.get("type") == "FIAT" and isinstance(s.get("id"), str):
            return s["id"]
    return None


def row(dt, dd, ident):
    return '<dt>%s</dt><dd id="%s">%s</dd>' % (e(dt), ident, dd) if dd else ""


def main():
    wallet = v("MONEI_SCOPE_WALLET_READ") == "1"
    profile = v("MONEI_SCOPE_PROFILE_READ") == "1"
    name = " ".join(n for n in (v("MONEI_USER_FIRST_NAME"), v("MONEI_USER_LAST_NAME")) if n)
    out = ["<h1>Connected%s</h1>" % (": " + e(name) if name else "")]

    if wallet and v("MONEI_WALLET_STALE") == "1":
        as_of = when(v("MONEI_WALLET_UPDATED"))
        out.append('<p class="stale" id="stale" role="status"><strong>Monei cannot be reached '
                   "right now.</strong> These are the last known values%s.</p>"
                   % (", as of <time>%s</time>" % e(as_of) if as_of else ""))

    if wallet:
        bal = naira(v("MONEI_WALLET_NAIRA_BALANCE"))
        if bal:
            out.append('<p class="balance" id="balance">%s</p>' % e(bal))
        acct = " \u00b7 ".join(x for x in (v("MONEI_WALLET_VIRTUAL_ACCOUNT_NUMBER"),
                                           v("MONEI_WALLET_VIRTUAL_ACCOUNT_BANK")) if x)
        rows = [row("Virtual account", e(acct), "account"),
                row("EVM address", e(v("MONEI_WALLET_EVM_ADDRESS") or ""), "evm"),
                row("Solana address", e(v("MONEI_WALLET_SOLANA_ADDRESS") or ""), "solana")]
        if any(rows):
            out.append('<dl class="addr">%s</dl>' % "".join(rows))
    else:
        out.append('<p class="note">You did not share your wallet. <a href="/monei/callback?'
                   'login&amp;stepup&amp;scope=wallet:read&amp;return_to=/dashboard">'
                   "Share wallet balance</a></p>")

    rows = []
    if profile:
        rows.append(row("Email", e(v("MONEI_USER_EMAIL") or ""), "email"))
    scopes = (v("MONEI_SCOPES") or "").split()
    if scopes:
        # One chip per scope, never broken inside ("wallet:re/ad" on a phone).
        rows.append(row("Granted", " ".join('<span class="scope">%s</span>' % e(s)
                                            for s in scopes), "scopes"))
    # REMOTE_USER is the session's account id; it stays the same for the whole session,
    # step-ups included. Say which id it is.
    user = v("REMOTE_USER")
    if user:
        if user == v("MONEI_USER_ID"):
            label = "Monei user id"
        elif user == fiat_id():
            label = "naira wallet id"
        else:
            label = "session pseudonym"
        rows.append(row("Account id", '<code>%s</code> <small id="account-id-kind">(%s)</small>'
                        % (e(user), e(label)), "account-id"))
    out.append("<dl>%s</dl>" % "".join(rows))
    if not profile:
        out.append('<p class="note">You did not share your profile. <a href="/monei/callback?'
                   'login&amp;stepup&amp;scope=profile:read&amp;return_to=/dashboard">'
                   "Share name and email</a></p>")
    out.append('<p><a class="button" href="/disconnect">Disconnect</a> '
               '&nbsp; <a href="/">Home</a></p>')
    return "\n".join(out)


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Your Monei wallet</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em;color:#222}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.4em 1.2em}dt{color:#666}dd{margin:0}
dl.addr dd,code{font-family:ui-monospace,monospace;overflow-wrap:anywhere}
.scope{display:inline-block;white-space:nowrap;background:#eef6f0;border-radius:4px;padding:0 .4em;margin:0 .3em .2em 0}
small{color:#666}.balance{font-size:2em;font-weight:600;white-space:nowrap;margin:.2em 0}
a.button{padding:.5em 1em;border-radius:6px;background:#c33;color:#fff;text-decoration:none}
.note{background:#f3f3f3;padding:.6em 1em;border-radius:6px}
.stale{background:#fff3cd;border:1px solid #e0b400;padding:.6em 1em;border-radius:6px}</style></head>
<body>
%s
</body></html>
"""

if __name__ == "__main__":
    page = (PAGE % main()).encode("utf-8")
    sys.stdout.buffer.write(b"Content-Type: text/html; charset=utf-8\r\n"
                            b"Cache-Control: no-store\r\n\r\n" + page)
