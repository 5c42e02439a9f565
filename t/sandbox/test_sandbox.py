"""Tests of sandbox/monei_sandbox.py against the protocol in docs/protocol.md.

Run from the checkout: /usr/bin/python3 -m pytest -q t/sandbox
"""

import concurrent.futures
import html.parser
import json
import os
import socket
import subprocess
import ssl
import time
import urllib.request
from urllib.parse import quote, urlencode

import pytest
import requests

from monei_sandbox_testlib import (client_file, CLIENT2_ID, CLIENT2_SECRET, CLIENT_ID, CLIENT_SECRET, REDIRECT,
                      REDIRECT_Q, SANDBOX, PYTHON, Api, SandboxProcess, callback_params,
                      pkce_pair)

ALL_SCOPES = ["profile:read", "kyc:read", "wallet:read", "wallet:deposit", "wallet:send",
              "wallet:withdraw", "swap:execute", "bills:pay", "offramp:execute"]


def authorize_query(scope="wallet:read profile:read", state="st-1", **extra):
    q = {"client_id": CLIENT_ID, "redirect_uri": REDIRECT, "scope": scope}
    if state is not None:
        q["state"] = state
    q.update(extra)
    return "/connect/authorize?" + urlencode(q, quote_via=quote)


def assert_monei_error(r, status, phrase):
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["statusCode"] == status
    assert body["error"] == phrase
    assert isinstance(body["message"], str) and body["message"]


class FormParser(html.parser.HTMLParser):
    """Collects what a browser would submit from the consent form."""

    def __init__(self):
        super().__init__()
        self.hidden, self.checkboxes, self.buttons, self.options = {}, [], [], []
        self.selected_user = None
        self.in_select = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and a.get("type") == "hidden":
            self.hidden[a["name"]] = a.get("value", "")
        elif tag == "input" and a.get("type") == "checkbox":
            self.checkboxes.append((a["name"], a["value"], "checked" in a))
        elif tag == "button":
            self.buttons.append((a.get("name"), a.get("value")))
        elif tag == "select":
            self.in_select = a.get("name") == "user"
        elif tag == "option" and self.in_select:
            self.options.append(a["value"])
            if "selected" in a:
                self.selected_user = a["value"]

    def handle_endtag(self, tag):
        if tag == "select":
            self.in_select = False


def parse_form(text):
    p = FormParser()
    p.feed(text)
    return p


# ---------------------------------------------------------------------------------------
# consent page
# ---------------------------------------------------------------------------------------

def test_consent_page_lists_scopes_with_checkboxes_and_buttons(api):
    r = api.get(authorize_query("wallet:read profile:read wallet:send", state="abc"))
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    f = parse_form(r.text)
    assert f.checkboxes == [("scope", "wallet:read", True), ("scope", "profile:read", True),
                            ("scope", "wallet:send", True)]
    assert ("action", "approve") in f.buttons and ("action", "deny") in f.buttons
    assert f.options == ["ada", "adebayo", "nulls"] and f.selected_user == "ada"
    assert f.hidden["client_id"] == CLIENT_ID
    assert f.hidden["redirect_uri"] == REDIRECT
    assert f.hidden["state"] == "abc"
    assert CLIENT_ID in r.text
    # Sensitive scope warned about, plain ones not.
    assert r.text.count("Sensitive") == 1
    assert "Approve</button>" in r.text and "Deny</button>" in r.text
    assert CLIENT_SECRET not in r.text


def test_consent_page_form_submits_like_a_browser(api):
    verifier, challenge = pkce_pair()
    r = api.get(authorize_query("wallet:read kyc:read", state="s t&x",
                                code_challenge=challenge, code_challenge_method="S256",
                                response_type="code", unknown_param="ignored"))
    assert r.status_code == 200
    f = parse_form(r.text)
    assert f.hidden["code_challenge"] == challenge
    form = list(f.hidden.items()) + [("user", f.selected_user), ("action", "approve")]
    form += [(n, v) for n, v, checked in f.checkboxes if checked]
    r = api.post("/connect/authorize", data=form)
    assert r.status_code == 302
    q = callback_params(r.headers["Location"])
    assert q["state"] == "s t&x"
    tok = api.exchange(q["code"], verifier=verifier)
    assert tok.status_code == 200, tok.text
    assert tok.json()["scopes"] == ["kyc:read", "wallet:read"]


def test_already_granted_scopes_not_shown_again(api):
    api.tokens_for(["wallet:read"])
    r = api.get(authorize_query("wallet:read profile:read"))
    f = parse_form(r.text)
    assert [v for _, v, _ in f.checkboxes] == ["profile:read"]
    assert "Already granted" in r.text and "wallet:read" in r.text
    # Another user has granted nothing: both shown.
    f2 = parse_form(api.get(authorize_query("wallet:read profile:read", user="adebayo")).text)
    assert [v for _, v, _ in f2.checkboxes] == ["wallet:read", "profile:read"]
    assert f2.selected_user == "adebayo"
    # Approving the missing scope yields the union.
    tok = api.tokens_for(["profile:read"])
    assert tok["scopes"] == ["profile:read", "wallet:read"]
    grants = api.ctl("grants", method="GET")["grants"]
    assert grants == [{"user": "ada", "client_id": CLIENT_ID,
                       "scopes": ["profile:read", "wallet:read"]}]


def test_unknown_client_is_400_without_redirect(api):
    r = api.get("/connect/authorize?" + urlencode(
        {"client_id": "mc_nope", "redirect_uri": REDIRECT, "scope": "wallet:read", "state": "x"}))
    assert r.status_code == 400 and "Location" not in r.headers
    assert r.headers["Content-Type"].startswith("text/html")
    r = api.consent(["wallet:read"], client_id="mc_nope")
    assert r.status_code == 400 and "Location" not in r.headers


@pytest.mark.parametrize("uri", [REDIRECT + "/", REDIRECT.upper(), "http://app.example.com/monei/callback",
                                 "https://app.example.com:443/monei/callback", "https://evil.example/cb",
                                 REDIRECT + "?x=1"])
def test_redirect_uri_must_match_exactly(api, uri):
    r = api.get("/connect/authorize?" + urlencode(
        {"client_id": CLIENT_ID, "redirect_uri": uri, "scope": "wallet:read", "state": "x"}))
    assert r.status_code == 400 and "Location" not in r.headers
    r = api.consent(["wallet:read"], redirect_uri=uri)
    assert r.status_code == 400 and "Location" not in r.headers


def test_missing_redirect_uri_is_400(api):
    r = api.get("/connect/authorize?" + urlencode({"client_id": CLIENT_ID, "scope": "wallet:read"}))
    assert r.status_code == 400 and "Location" not in r.headers


def test_unknown_scope_redirects_invalid_scope(api):
    r = api.get(authorize_query("wallet:read wallet:everything", state="st9"))
    assert r.status_code == 302
    assert r.headers["Location"] == REDIRECT + "?error=invalid_scope&state=st9"
    r = api.consent(["wallet:read", "nope"])
    assert callback_params(r.headers["Location"]) == {"error": "invalid_scope", "state": "st-123"}


@pytest.mark.parametrize("method", ["plain", None, "s256"])
def test_pkce_method_other_than_s256_is_invalid_request(api, method):
    _, challenge = pkce_pair()
    extra = {"code_challenge": challenge}
    if method:
        extra["code_challenge_method"] = method
    r = api.get(authorize_query(**extra))
    assert r.status_code == 302
    assert callback_params(r.headers["Location"]) == {"error": "invalid_request", "state": "st-1"}


def test_deny_redirects_access_denied_with_state(api):
    r = api.consent(["wallet:read"], action="deny", state="opaque/+= value")
    assert r.status_code == 302
    assert callback_params(r.headers["Location"]) == {"error": "access_denied",
                                                      "state": "opaque/+= value"}
    assert r.headers["Location"].startswith(REDIRECT + "?error=access_denied&state=")


def test_state_omitted_when_not_sent_and_query_redirect_uses_ampersand(api):
    r = api.consent(["wallet:read"], state=None)
    assert set(callback_params(r.headers["Location"])) == {"code"}
    r = api.consent(["wallet:read"], redirect_uri=REDIRECT_Q)
    loc = r.headers["Location"]
    assert loc.startswith(REDIRECT_Q + "&code=")
    assert callback_params(loc)["x"] == "1"
    assert r.headers["Cache-Control"] == "no-store"


# ---------------------------------------------------------------------------------------
# code exchange
# ---------------------------------------------------------------------------------------

def test_full_grant_token_shape(api):
    tok = api.tokens_for(["wallet:read", "profile:read"])
    assert set(tok) == {"access_token", "refresh_token", "token_type", "expires_in", "scopes"}
    assert tok["access_token"].startswith("mct_") and tok["refresh_token"].startswith("mcr_")
    assert len(tok["access_token"]) >= 40
    assert tok["token_type"] == "Bearer" and tok["expires_in"] == 3600
    assert tok["scopes"] == ["profile:read", "wallet:read"]


def test_partial_grant(api):
    code = api.code_for(["wallet:read"], requested="wallet:read profile:read kyc:read")
    tok = api.exchange(code).json()
    assert tok["scopes"] == ["wallet:read"]
    assert api.call("wallet/me", tok["access_token"]).status_code == 200
    assert_monei_error(api.call("user/me", tok["access_token"]), 403, "Forbidden")
    assert_monei_error(api.call("kyc/status", tok["access_token"]), 403, "Forbidden")


def test_consent_cannot_grant_more_than_requested(api):
    code = api.code_for(["wallet:read", "wallet:send"], requested="wallet:read")
    assert api.exchange(code).json()["scopes"] == ["wallet:read"]


def test_empty_grant(api):
    code = api.code_for([], user="nulls", requested="wallet:read")
    tok = api.exchange(code)
    assert tok.status_code == 200 and tok.json()["scopes"] == []
    assert api.call("wallet/me", tok.json()["access_token"]).status_code == 403


def test_code_is_single_use(api):
    code = api.code_for(["wallet:read"])
    first = api.exchange(code)
    assert first.status_code == 200
    assert_monei_error(api.exchange(code), 400, "Bad Request")
    c = api.ctl("counters", method="GET")
    assert c["code_reuse"] == 1 and c["code_exchanges"] == 1
    # Tokens from the first exchange stay valid.
    assert api.call("wallet/me", first.json()["access_token"]).status_code == 200


def test_expired_code(api):
    api.ctl("config", {"code_lifetime": 0})
    code = api.code_for(["wallet:read"])
    assert_monei_error(api.exchange(code), 400, "Bad Request")
    api.ctl("config", {"code_lifetime": 1})
    code = api.code_for(["wallet:read"])
    time.sleep(1.05)
    assert_monei_error(api.exchange(code), 400, "Bad Request")


def test_unknown_code(api):
    assert_monei_error(api.exchange("not-a-code"), 400, "Bad Request")


@pytest.mark.parametrize("uri", [REDIRECT + "/", REDIRECT_Q])
def test_wrong_redirect_uri_at_token(api, uri):
    code = api.code_for(["wallet:read"])
    assert_monei_error(api.exchange(code, redirect_uri=uri), 400, "Bad Request")
    # A failed attempt does not burn the code.
    assert api.exchange(code).status_code == 200


def test_bad_client_credentials(api):
    code = api.code_for(["wallet:read"])
    assert_monei_error(api.exchange(code, client_secret="mcs_wrong"), 401, "Unauthorized")
    assert_monei_error(api.exchange(code, client_id="mc_nope"), 401, "Unauthorized")


def test_code_bound_to_client(api):
    api.ctl("clients", {"client_id": CLIENT2_ID, "client_secret": CLIENT2_SECRET,
                        "redirect_uris": [REDIRECT]})
    code = api.code_for(["wallet:read"])
    assert_monei_error(api.exchange(code, client_id=CLIENT2_ID, client_secret=CLIENT2_SECRET),
                       400, "Bad Request")


def test_pkce(api):
    verifier, challenge = pkce_pair()
    code = api.code_for(["wallet:read"], challenge=challenge)
    assert_monei_error(api.exchange(code), 400, "Bad Request")                       # missing
    assert_monei_error(api.exchange(code, verifier=pkce_pair()[0]), 400, "Bad Request")  # wrong
    assert api.exchange(code, verifier=verifier).status_code == 200                  # right


def test_token_request_validation(api):
    r = api.post("/api/v1/connect/token", data=urlencode(
        {"grant_type": "authorization_code", "code": "x", "client_id": CLIENT_ID,
         "client_secret": CLIENT_SECRET, "redirect_uri": REDIRECT}),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_monei_error(r, 400, "Bad Request")
    r = api.post("/api/v1/connect/token", data="{not json",
                 headers={"Content-Type": "application/json"})
    assert_monei_error(r, 400, "Bad Request")
    assert_monei_error(api.post("/api/v1/connect/token", json={"grant_type": "password"}),
                       400, "Bad Request")
    assert_monei_error(api.post("/api/v1/connect/token",
                                json={"grant_type": "authorization_code", "code": "x"}),
                       400, "Bad Request")
    assert_monei_error(api.post("/api/v1/connect/token", json={"grant_type": "refresh_token"}),
                       400, "Bad Request")
    assert_monei_error(api.get("/api/v1/connect/token"), 404, "Not Found")


# ---------------------------------------------------------------------------------------
# refresh, revoke, user revocation, expiry
# ---------------------------------------------------------------------------------------

def test_refresh_rotates(api):
    old = api.tokens_for(["wallet:read"])
    r = api.refresh(old["refresh_token"])
    assert r.status_code == 200
    new = r.json()
    assert new["access_token"] != old["access_token"]
    assert new["refresh_token"] != old["refresh_token"]
    assert new["scopes"] == ["wallet:read"] and new["token_type"] == "Bearer"
    assert_monei_error(api.call("wallet/me", old["access_token"]), 401, "Unauthorized")
    assert api.call("wallet/me", new["access_token"]).status_code == 200
    assert_monei_error(api.refresh(old["refresh_token"]), 401, "Unauthorized")
    c = api.ctl("counters", method="GET")
    assert c["refreshes"] == 1 and c["refresh_reuse"] == 1
    # The reuse did not kill the new pair.
    assert api.refresh(new["refresh_token"]).status_code == 200


def test_refresh_with_client_credentials(api):
    tok = api.tokens_for(["wallet:read"])
    r = api.refresh(tok["refresh_token"], client_id=CLIENT_ID, client_secret="mcs_wrong")
    assert_monei_error(r, 401, "Unauthorized")
    r = api.refresh(tok["refresh_token"], client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    assert r.status_code == 200
    assert_monei_error(api.refresh("mcr_unknown"), 401, "Unauthorized")


def test_concurrent_refresh_only_one_wins(api, sandbox):
    import concurrent.futures
    tok = api.tokens_for(["wallet:read"])

    def one(_):
        return requests.post(sandbox.http + "/api/v1/connect/token", timeout=10,
                             json={"grant_type": "refresh_token",
                                   "refresh_token": tok["refresh_token"]}).status_code

    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        codes = sorted(ex.map(one, range(4)))
    assert codes == [200, 401, 401, 401]
    c = api.ctl("counters", method="GET")
    assert c["refreshes"] == 1 and c["refresh_reuse"] == 3


@pytest.mark.parametrize("which", ["access_token", "refresh_token"])
def test_revoke_invalidates_pair(api, which):
    tok = api.tokens_for(["wallet:read"])
    r = api.post("/api/v1/connect/token/revoke", json={"token": tok[which]})
    assert r.status_code == 200
    assert r.json() == {"statusCode": 200, "message": "Token revoked"}
    assert_monei_error(api.call("wallet/me", tok["access_token"]), 401, "Unauthorized")
    assert_monei_error(api.refresh(tok["refresh_token"]), 401, "Unauthorized")
    assert api.ctl("counters", method="GET")["revocations"] == 1


def test_revoke_unknown_token_is_200_and_bad_requests_400(api):
    r = api.post("/api/v1/connect/token/revoke", json={"token": "mct_whatever"})
    assert r.status_code == 200
    assert_monei_error(api.post("/api/v1/connect/token/revoke", json={}), 400, "Bad Request")
    assert_monei_error(api.post("/api/v1/connect/token/revoke", data="token=x"), 400, "Bad Request")
    assert api.ctl("counters", method="GET")["calls"]["revoke"] == 3


def test_revoke_user(api):
    ada = api.tokens_for(["wallet:read"], user="ada")
    bayo = api.tokens_for(["wallet:read"], user="adebayo")
    api.ctl("revoke_user", {"user": "ada"})
    assert_monei_error(api.call("wallet/me", ada["access_token"]), 401, "Unauthorized")
    assert_monei_error(api.refresh(ada["refresh_token"]), 401, "Unauthorized")
    assert api.call("wallet/me", bayo["access_token"]).status_code == 200
    # Grant forgotten: consent shows everything again.
    f = parse_form(api.get(authorize_query("wallet:read")).text)
    assert [v for _, v, _ in f.checkboxes] == ["wallet:read"]
    assert [g["user"] for g in api.ctl("grants", method="GET")["grants"]] == ["adebayo"]


def test_revoke_user_per_client(api):
    api.ctl("clients", {"client_id": CLIENT2_ID, "client_secret": CLIENT2_SECRET,
                        "redirect_uris": [REDIRECT]})
    one = api.tokens_for(["wallet:read"])
    code = api.code_for(["wallet:read"], client_id=CLIENT2_ID)
    two = api.exchange(code, client_id=CLIENT2_ID, client_secret=CLIENT2_SECRET).json()
    api.ctl("revoke_user", {"user": "ada", "client_id": CLIENT2_ID})
    assert api.call("wallet/me", one["access_token"]).status_code == 200
    assert api.call("wallet/me", two["access_token"]).status_code == 401


def test_expire_tokens(api):
    ada = api.tokens_for(["wallet:read"], user="ada")
    nul = api.tokens_for(["wallet:read"], user="nulls")
    api.ctl("expire_tokens", {"user": "ada"})
    assert_monei_error(api.call("wallet/me", ada["access_token"]), 401, "Unauthorized")
    assert api.call("wallet/me", nul["access_token"]).status_code == 200
    r = api.refresh(ada["refresh_token"])
    assert r.status_code == 200
    assert api.call("wallet/me", r.json()["access_token"]).status_code == 200
    api.ctl("expire_tokens", {})
    assert api.call("wallet/me", nul["access_token"]).status_code == 401


def test_token_lifetime_config(api):
    api.ctl("config", {"token_lifetime": 1})
    tok = api.tokens_for(["wallet:read"])
    assert tok["expires_in"] == 1
    assert api.call("wallet/me", tok["access_token"]).status_code == 200
    time.sleep(1.05)
    assert api.call("wallet/me", tok["access_token"]).status_code == 401


def test_missing_scope_is_403(api):
    tok = api.tokens_for(["wallet:read"])
    assert_monei_error(api.call("user/me", tok["access_token"]), 403, "Forbidden")
    assert_monei_error(api.call("kyc/status", tok["access_token"]), 403, "Forbidden")


def test_api_auth_failures_are_401(api):
    assert_monei_error(api.get("/api/v1/wallet/me"), 401, "Unauthorized")
    assert_monei_error(api.call("wallet/me", "mct_nope"), 401, "Unauthorized")
    r = api.get("/api/v1/wallet/me", headers={"Authorization": "Basic Zm9vOmJhcg=="})
    assert_monei_error(r, 401, "Unauthorized")
    assert r.json() == {"statusCode": 401, "message": "Invalid or expired token",
                        "error": "Unauthorized"}
    assert_monei_error(api.get("/api/v1/nothing"), 404, "Not Found")


# ---------------------------------------------------------------------------------------
# API bodies
# ---------------------------------------------------------------------------------------

def test_wallet_user_kyc_bodies_for_ada(api):
    tok = api.tokens_for(["wallet:read", "profile:read", "kyc:read"])["access_token"]
    w = api.call("wallet/me", tok).json()
    assert w["statusCode"] == 200 and w["message"] == "User wallet retrieved successfully"
    d = w["data"]
    assert d["nairaBalance"] == "1805.00"
    fiat, evm, sol = d["subwallets"]
    assert fiat["type"] == "FIAT" and fiat["currency"] == "NGN" and fiat["balance"] == 1805
    assert fiat["chain"] is None and fiat["publicAddress"] is None
    assert fiat["virtualAccount"]["accountNumber"] and fiat["virtualAccount"]["bankName"]
    assert evm["type"] == "CRYPTO" and evm["chain"] == "EVM" and evm["publicAddress"].startswith("0x")
    assert len(evm["publicAddress"]) == 42 and evm["balance"] == 0
    assert sol["type"] == "CRYPTO" and sol["chain"] == "SOLANA" and sol["publicAddress"]
    u = api.call("user/me", tok).json()
    assert u["message"] == "User retrieved successfully"
    assert set(u["data"]) == {"id", "email", "firstName", "lastName", "phoneNumber",
                              "status", "createdAt"}
    assert (u["data"]["firstName"], u["data"]["lastName"], u["data"]["status"]) == \
        ("Ada", "Okafor", "active")
    k = api.call("kyc/status", tok).json()
    assert k["statusCode"] == 200 and k["data"]["tier"] == 2 and k["data"]["status"] == "verified"


def test_user_data_overlay_huge_field_until_reset(api):
    tok = api.tokens_for(["wallet:read", "profile:read"])["access_token"]
    api.ctl("user_data", {"user": "ada", "profile": {"firstName": "x" * 100000}})
    api.ctl("user_data", {"user": "ada", "wallet": {"extra": ["y"] * 3}})
    u = api.call("user/me", tok).json()["data"]
    assert u["firstName"] == "x" * 100000 and u["lastName"] == "Okafor"
    assert api.call("wallet/me", tok).json()["data"]["extra"] == ["y"] * 3
    # other users are untouched
    tok2 = api.tokens_for(["profile:read"], user="nulls")["access_token"]
    assert api.call("user/me", tok2).json()["data"]["firstName"] == "Null"
    api.ctl("reset", {})
    tok = api.tokens_for(["profile:read"])["access_token"]
    assert api.call("user/me", tok).json()["data"]["firstName"] == "Ada"
    r = api.s.post(api.base + "/_sandbox/user_data", json={"user": "nobody", "profile": {}},
                   timeout=10, verify=api.verify)
    assert r.status_code == 400
    r = api.s.post(api.base + "/_sandbox/user_data", json={"user": "ada", "profile": 1},
                   timeout=10, verify=api.verify)
    assert r.status_code == 400


def test_adebayo_utf8_intact(api):
    tok = api.tokens_for(["profile:read", "wallet:read"], user="adebayo")["access_token"]
    r = api.call("user/me", tok)
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "Adébáyọ̀".encode("utf-8") in r.content and b"\\u" not in r.content
    assert r.json()["data"]["firstName"] == "Adébáyọ̀"
    assert r.json()["data"]["lastName"] == "Ọlábísí"
    ada_id = "6f1c2a9e-3d4b-4c8a-9e1f-0a2b3c4d5e01"
    assert r.json()["data"]["id"] != ada_id
    assert api.call("wallet/me", tok).json()["data"]["nairaBalance"] != "1805.00"


def test_nulls_user(api):
    tok = api.tokens_for(["profile:read", "wallet:read"], user="nulls")["access_token"]
    d = api.call("wallet/me", tok).json()["data"]
    assert d["nairaBalance"] == "0.00"
    assert [s["type"] for s in d["subwallets"]] == ["FIAT"]
    assert d["subwallets"][0]["virtualAccount"] is None
    assert api.call("user/me", tok).json()["data"]["lastName"] is None


# ---------------------------------------------------------------------------------------
# rate limits
# ---------------------------------------------------------------------------------------

def test_token_rate_limit(api):
    for _ in range(10):
        assert api.exchange("bogus").status_code == 400
    r = api.exchange("bogus")
    assert_monei_error(r, 429, "Too Many Requests")
    ra = r.headers["Retry-After"]
    assert ra.isdigit() and 1 <= int(ra) <= 60
    assert api.ctl("counters", method="GET")["rate_limited"] == 1
    # Raising the limit frees slots at once; lowering it blocks again.
    api.ctl("config", {"token_rate_limit": 20})
    assert api.exchange("bogus").status_code == 400
    api.ctl("config", {"token_rate_limit": 2})
    r = api.exchange("bogus")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    # Limits are per client: another client is unaffected.
    api.ctl("clients", {"client_id": CLIENT2_ID, "client_secret": CLIENT2_SECRET,
                        "redirect_uris": [REDIRECT]})
    assert api.exchange("bogus", client_id=CLIENT2_ID,
                        client_secret=CLIENT2_SECRET).status_code == 400


def test_token_rate_limit_counts_bare_refresh_against_its_client(api):
    api.ctl("config", {"token_rate_limit": 3})
    tok = api.tokens_for(["wallet:read"])            # 1 call for the client
    r1 = api.refresh(tok["refresh_token"])           # 2
    assert r1.status_code == 200
    assert api.refresh(r1.json()["refresh_token"]).status_code == 200   # 3
    assert api.refresh("mcr_x", client_id=CLIENT_ID).status_code == 429


def test_authorize_rate_limit(api):
    api.ctl("config", {"authorize_rate_limit": 5})
    for _ in range(3):
        assert api.get(authorize_query()).status_code == 200
    for _ in range(2):
        assert api.consent(["wallet:read"]).status_code == 302
    r = api.get(authorize_query())
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


def test_authorize_default_rate_limit_20(api):
    for _ in range(20):
        assert api.get(authorize_query()).status_code == 200
    assert api.get(authorize_query()).status_code == 429
    assert api.ctl("counters", method="GET")["calls"]["authorize"] == 21


# ---------------------------------------------------------------------------------------
# faults
# ---------------------------------------------------------------------------------------

def test_fault_status_count_and_headers(api):
    tok = api.tokens_for(["wallet:read"])["access_token"]
    api.ctl("faults", {"endpoint": "wallet", "count": 2, "status": 503,
                       "headers": {"Retry-After": "30"}})
    for _ in range(2):
        r = api.call("wallet/me", tok)
        assert_monei_error(r, 503, "Service Unavailable")
        assert r.headers["Retry-After"] == "30"
    assert api.call("wallet/me", tok).status_code == 200
    assert api.ctl("faults", method="GET")["faults"] == []
    assert api.ctl("counters", method="GET")["calls"]["wallet"] == 3


def test_faults_queue_in_order_and_clear(api):
    api.ctl("faults", {"endpoint": "token", "status": 500})
    api.ctl("faults", {"endpoint": "token", "status": 502})
    api.ctl("faults", {"endpoint": "revoke", "status": 504})
    assert api.exchange("x").status_code == 500
    assert api.exchange("x").status_code == 502
    assert api.exchange("x").status_code == 400
    assert len(api.ctl("faults", method="GET")["faults"]) == 1
    api.ctl("faults", method="DELETE")
    assert api.post("/api/v1/connect/token/revoke", json={"token": "x"}).status_code == 200


def test_fault_delay_then_normal(api):
    tok = api.tokens_for(["wallet:read"])["access_token"]
    api.ctl("faults", {"endpoint": "wallet", "delay": 0.6})
    t0 = time.monotonic()
    r = api.call("wallet/me", tok)
    assert time.monotonic() - t0 >= 0.55 and r.status_code == 200
    t0 = time.monotonic()
    api.call("wallet/me", tok)
    assert time.monotonic() - t0 < 0.5


def test_fault_delay_with_status(api):
    api.ctl("faults", {"endpoint": "token", "delay": 0.3, "status": 504})
    t0 = time.monotonic()
    assert api.exchange("x").status_code == 504
    assert time.monotonic() - t0 >= 0.25


def test_fault_delay_after_processing(api):
    # the refresh rotates at once; its answer comes late
    tok = api.tokens_for(["wallet:read"])
    api.ctl("faults", {"endpoint": "token", "delay": 0.8, "after": True})
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        t0 = time.monotonic()
        late = ex.submit(api.refresh, tok["refresh_token"])
        time.sleep(0.3)
        # already rotated while the answer is still held
        assert api.ctl("counters", method="GET")["refreshes"] == 1
        assert not late.done()
        r = late.result()
    assert time.monotonic() - t0 >= 0.75 and r.status_code == 200
    assert api.call("wallet/me", r.json()["access_token"]).status_code == 200
    for bad in ({"endpoint": "token", "after": True},
                {"endpoint": "token", "after": True, "delay": 1, "status": 503},
                {"endpoint": "token", "after": True, "delay": 1, "close": True}):
        assert api.s.post(api.base + "/_sandbox/faults", json=bad, timeout=5).status_code == 400


def test_tokens_by_state(api):
    zero = {"access": {"active": 0, "expired": 0, "revoked": 0, "named_in_revoke": 0},
            "refresh": {"active": 0, "rotated": 0, "revoked": 0, "named_in_revoke": 0}}
    assert api.ctl("tokens", method="GET") == zero
    first = api.tokens_for(["wallet:read"])
    second = api.refresh(first["refresh_token"]).json()
    api.tokens_for(["wallet:read"], user="adebayo")
    t = api.ctl("tokens?user=ada", method="GET")
    assert t["access"] == {"active": 1, "expired": 0, "revoked": 1, "named_in_revoke": 0}
    assert t["refresh"] == {"active": 1, "rotated": 1, "revoked": 0, "named_in_revoke": 0}
    # revoking the access token ends its pair; only the named token counts as named
    api.post("/api/v1/connect/token/revoke", json={"token": second["access_token"]})
    t = api.ctl("tokens?user=ada", method="GET")
    assert t["access"] == {"active": 0, "expired": 0, "revoked": 2, "named_in_revoke": 1}
    assert t["refresh"] == {"active": 0, "rotated": 1, "revoked": 1, "named_in_revoke": 0}
    api.post("/api/v1/connect/token/revoke", json={"token": second["refresh_token"]})
    assert api.ctl("tokens?user=ada", method="GET")["refresh"]["named_in_revoke"] == 1
    assert api.ctl("tokens?user=adebayo&client_id=" + CLIENT_ID,
                   method="GET")["access"]["active"] == 1
    assert api.ctl("tokens?client_id=mc_nobody", method="GET") == zero
    api.ctl("expire_tokens", {"user": "adebayo"})
    assert api.ctl("tokens?user=adebayo", method="GET")["access"]["expired"] == 1


def test_fault_garbage(api):
    api.ctl("faults", {"endpoint": "token", "body": "garbage"})
    r = api.exchange("x")
    assert r.status_code == 200
    with pytest.raises(ValueError):
        json.loads(r.content)


def test_fault_truncated(api):
    tok = api.tokens_for(["wallet:read"])["access_token"]
    full = api.call("wallet/me", tok).content
    api.ctl("faults", {"endpoint": "wallet", "body": "truncated"})
    r = api.call("wallet/me", tok)
    assert r.status_code == 200 and r.content == full[:len(full) // 2]
    api.ctl("faults", {"endpoint": "token", "body": "truncated"})
    r = api.exchange("x")
    assert r.content.startswith(b'{"access_token":"mct_')
    with pytest.raises(ValueError):
        json.loads(r.content)


def test_fault_oversized(api):
    api.ctl("faults", {"endpoint": "user", "body": "oversized"})
    r = api.call("user/me", "mct_anything")
    assert r.status_code == 200 and len(r.content) > 4_000_000
    assert r.json()["statusCode"] == 200


def test_fault_empty_and_json(api):
    api.ctl("faults", {"endpoint": "kyc", "body": "empty", "status": 502})
    r = api.get("/api/v1/kyc/status")
    assert r.status_code == 502 and r.content == b""
    api.ctl("faults", {"endpoint": "token", "status": 400,
                       "json": {"statusCode": 400, "message": ["<script>x</script>"],
                                "error": "Bad Request"}})
    r = api.exchange("x")
    assert r.status_code == 400 and r.json()["message"] == ["<script>x</script>"]


def test_fault_close(api, sandbox):
    api.ctl("faults", {"endpoint": "token", "close": True})
    with pytest.raises(requests.ConnectionError):
        requests.post(sandbox.http + "/api/v1/connect/token", json={}, timeout=5)
    # truncated + close: full Content-Length announced, half sent, then hang-up.
    # (Checked on a raw socket: urllib3 1.x does not enforce Content-Length.)
    api.ctl("faults", {"endpoint": "wallet", "close": True, "body": "truncated"})
    host, port = sandbox.http[len("http://"):].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"GET /api/v1/wallet/me HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break          # the server hung up
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    length = int([h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")][0]
                 .split(b":")[1])
    assert 0 < len(body) < length and len(body) == length // 2
    # Consumed; the server is fine.
    assert api.exchange("x").status_code == 400
    assert api.ctl("counters", method="GET")["calls"]["token"] == 2


def test_fault_on_authorize(api):
    api.ctl("faults", {"endpoint": "authorize", "status": 500})
    assert api.get(authorize_query()).status_code == 500
    assert api.get(authorize_query()).status_code == 200


def test_fault_validation(api, sandbox):
    for bad in ({"endpoint": "nope"}, {"endpoint": "token", "body": "weird"},
                {"endpoint": "token", "count": 0}, {"endpoint": "token", "status": 42}):
        assert requests.post(sandbox.http + "/_sandbox/faults", json=bad,
                             timeout=5).status_code == 400


def test_reset_clears_faults_and_state_keeps_clients(api):
    api.ctl("clients", {"client_id": CLIENT2_ID, "client_secret": CLIENT2_SECRET,
                        "redirect_uris": [REDIRECT]})
    tok = api.tokens_for(["wallet:read"])
    api.ctl("faults", {"endpoint": "wallet", "status": 500, "count": 5})
    api.ctl("config", {"token_lifetime": 5})
    api.ctl("reset")
    assert api.ctl("faults", method="GET")["faults"] == []
    assert api.ctl("config", method="GET")["token_lifetime"] == 3600
    assert api.call("wallet/me", tok["access_token"]).status_code == 401
    assert api.ctl("grants", method="GET")["grants"] == []
    code = api.code_for(["wallet:read"], client_id=CLIENT2_ID)
    assert api.exchange(code, client_id=CLIENT2_ID,
                        client_secret=CLIENT2_SECRET).status_code == 200


# ---------------------------------------------------------------------------------------
# counters, secrets, health
# ---------------------------------------------------------------------------------------

def test_counters(api):
    c = api.ctl("counters", method="GET")
    assert c == {"calls": {"authorize": 0, "token": 0, "revoke": 0, "wallet": 0, "user": 0,
                           "kyc": 0},
                 "code_exchanges": 0, "code_reuse": 0, "refreshes": 0, "refresh_reuse": 0,
                 "revocations": 0, "rate_limited": 0}
    tok = api.tokens_for(["wallet:read", "profile:read", "kyc:read"])
    api.call("wallet/me", tok["access_token"])
    api.call("user/me", tok["access_token"])
    api.call("kyc/status", "bad")
    new = api.refresh(tok["refresh_token"]).json()
    api.post("/api/v1/connect/token/revoke", json={"token": new["access_token"]})
    c = api.ctl("counters", method="GET")
    assert c["calls"] == {"authorize": 1, "token": 2, "revoke": 1, "wallet": 1, "user": 1,
                          "kyc": 1}
    assert (c["code_exchanges"], c["refreshes"], c["revocations"]) == (1, 1, 1)


def test_secrets_file_and_endpoint_hold_everything(api, secrets_file):
    code = api.code_for(["wallet:read"])
    tok = api.exchange(code).json()
    new = api.refresh(tok["refresh_token"]).json()
    api.ctl("clients", {"client_id": CLIENT2_ID, "client_secret": CLIENT2_SECRET,
                        "redirect_uris": [REDIRECT]})
    with open(secrets_file, encoding="utf-8") as fh:
        lines = set(fh.read().split("\n"))
    listed = set(api.ctl("secrets", method="GET")["secrets"])
    for s in (CLIENT_SECRET, CLIENT2_SECRET, code, tok["access_token"], tok["refresh_token"],
              new["access_token"], new["refresh_token"]):
        assert s in lines and s in listed


def test_health_and_unknown_control(api, sandbox):
    assert api.ctl("health", method="GET") == {"ok": True}
    assert requests.get(sandbox.http + "/_sandbox/nope", timeout=5).status_code == 404
    r = requests.post(sandbox.http + "/_sandbox/config", json={"bogus": 1}, timeout=5)
    assert r.status_code == 400


# ---------------------------------------------------------------------------------------
# HTTPS, process behaviour, logs
# ---------------------------------------------------------------------------------------

def test_https_verified_against_test_ca(sandbox, tls_files):
    assert sandbox.https and sandbox.https.startswith("https://127.0.0.1:")
    ctx = ssl.create_default_context(cafile=tls_files["ca"])
    with urllib.request.urlopen(sandbox.https + "/_sandbox/health", context=ctx, timeout=5) as r:
        assert json.loads(r.read()) == {"ok": True}
    # localhost is in the certificate too.
    port = sandbox.https.rsplit(":", 1)[1]
    with urllib.request.urlopen(f"https://localhost:{port}/_sandbox/health", context=ctx,
                                timeout=5) as r:
        assert r.status == 200
    # Without the CA it must fail: proves the check is real.
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(sandbox.https + "/_sandbox/health",
                               context=ssl.create_default_context(), timeout=5)


def test_https_and_http_share_state(sandbox, tls_files):
    https = Api(sandbox.https, verify=tls_files["ca"])
    http = Api(sandbox.http)
    code = https.code_for(["wallet:read"])
    tok = http.exchange(code).json()
    assert https.call("wallet/me", tok["access_token"]).status_code == 200
    new = https.refresh(tok["refresh_token"]).json()
    assert http.call("wallet/me", new["access_token"]).status_code == 200


def test_broken_tls_client_does_not_block_server(sandbox, tls_files):
    host, port = sandbox.https[len("https://"):].rsplit(":", 1)
    stalled = socket.create_connection((host, int(port)))     # never handshakes
    try:
        assert requests.get(sandbox.http + "/_sandbox/health", timeout=5).status_code == 200
        r = requests.get(sandbox.https + "/_sandbox/health", timeout=5, verify=tls_files["ca"])
        assert r.status_code == 200
    finally:
        stalled.close()


def test_sigterm_exits_cleanly_and_logs_no_secrets(tmp_path):
    pid_file = tmp_path / "sandbox.pid"
    clients = client_file(tmp_path, f"{CLIENT_ID}:{CLIENT_SECRET}:{REDIRECT}")
    sp = SandboxProcess(["--client-file", clients, "--pid-file", str(pid_file)], quiet=False)
    try:
        assert int(pid_file.read_text()) == sp.proc.pid
        api = Api(sp.http)
        code = api.code_for(["wallet:read"])
        tok = api.exchange(code).json()
        new = api.refresh(tok["refresh_token"]).json()
        api.get("/api/v1/wallet/me?token=" + new["access_token"],
                headers={"Authorization": "Bearer " + new["access_token"]})
        api.get(f"/connect/authorize?code={code}&client_id={CLIENT_ID}")
        # A malformed request line carrying a secret must not be echoed to the log either.
        host, port = sp.http[len("http://"):].rsplit(":", 1)
        with socket.create_connection((host, int(port))) as s:
            s.sendall(f"BROKEN {tok['refresh_token']}\r\n\r\n".encode())
            s.recv(4096)
        secrets_seen = Api(sp.http).ctl("secrets", method="GET")["secrets"]
    finally:
        rc = sp.stop()
    assert rc == 0
    assert not pid_file.exists()
    sp._err_thread.join(2)
    log = "".join(sp.stderr_lines)
    assert "POST /api/v1/connect/token 200" in log
    assert "GET /api/v1/wallet/me 200" in log
    assert len(secrets_seen) >= 6
    for s in secrets_seen:
        assert s not in log
    assert "token=" not in log and "code=" not in log
    stdout_rest = sp.proc.stdout.read()
    for s in secrets_seen:
        assert s not in stdout_rest


def test_cli_requires_cert_for_tls():
    import subprocess
    from monei_sandbox_testlib import PYTHON, SANDBOX
    r = subprocess.run([PYTHON, SANDBOX, "--port", "0", "--tls-port", "0"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "--cert" in r.stderr


def test_client_secret_comes_from_a_private_file_never_the_command_line(tmp_path):
    clients = client_file(tmp_path, f"{CLIENT_ID}:{CLIENT_SECRET}:{REDIRECT}")
    sp = SandboxProcess(["--client-file", clients])
    try:
        with open("/proc/%d/cmdline" % sp.proc.pid, "rb") as f:
            assert CLIENT_SECRET.encode() not in f.read()      # what `ps` shows
        api = Api(sp.http)
        assert api.exchange(api.code_for(["wallet:read"])).status_code == 200  # registered
    finally:
        sp.stop()
    os.chmod(clients, 0o640)
    p = subprocess.run([PYTHON, SANDBOX, "--port", "0", "--client-file", clients],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode != 0 and "chmod 600" in p.stderr, p.stderr
    assert CLIENT_SECRET not in p.stderr
