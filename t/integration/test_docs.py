"""The repository stands alone: its docs are in docs/, nothing cites a file outside it or an
internal issue number, no committed file names the checkout it was made in, and the README
documents every query parameter of the redirect URI."""
import os
import re

import harness

# Built from pieces so that this file does not match itself.
OUTSIDE_FILES = ["SPEC", "MONEI_CONNECT", "STYLE", "APACHE_NOTES"]
REFERENCE = re.compile(r"\b(?:%s)\.md\b|\b[Ii]ssue [0-9]" % "|".join(OUTSIDE_FILES))
CHECKED = ["src", "sandbox", "conf", "t", "docs", "fuzz", "bench", "debian", "README.md",
           "CHANGELOG.md", "mod_monei_connect.c", "configure.ac", "Makefile.am", "bootstrap"]
SKIP_DIRS = {"node_modules", "build", "__pycache__", ".deps", ".libs", "corpus", "run"}


def text_files():
    for entry in CHECKED:
        top = os.path.join(harness.ROOT, entry)
        if os.path.isfile(top):
            yield top
            continue
        for dirpath, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
            for fn in files:
                path = os.path.join(dirpath, fn)
                with open(path, "rb") as f:
                    head = f.read(200000)
                if b"\0" not in head:             # text only: no built binaries
                    yield path


def test_no_reference_to_outside_files_or_issue_numbers():
    found = []
    for path in text_files():
        if os.path.abspath(path) == os.path.abspath(__file__):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                if REFERENCE.search(line):
                    found.append("%s:%d: %s" % (os.path.relpath(path, harness.ROOT), n,
                                                line.strip()[:120]))
    assert not found, "\n".join(found)


def test_no_absolute_checkout_path_in_committed_files():
    found = []
    for path in text_files():
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for root in {harness.ROOT, os.path.realpath(harness.ROOT)}:
            if root + "/" in text:
                found.append(os.path.relpath(path, harness.ROOT))
        if re.search(r"(?<![\w.])/(?:work|root|home)/[\w.-]+/(?:mod_monei_connect|main)\b", text):
            found.append(os.path.relpath(path, harness.ROOT) + " (a checkout path)")
    assert not found, found
    with open(os.path.join(harness.ROOT, "bench", "README.md")) as f:
        assert "Module: mod_monei_connect.so" in f.read()


def test_docs_folder_covers_protocol_design_and_security():
    def read(name):
        with open(os.path.join(harness.ROOT, "docs", name), encoding="utf-8") as f:
            return f.read()
    protocol, design, security = read("protocol.md"), read("design.md"), read("security.md")
    for word in ("/connect/authorize", "/connect/token", "/connect/token/revoke", "/wallet/me",
                 "/user/me", "Retry-After", "429", "rotat", "\"scopes\""):
        assert word in protocol, word
    for word in ("session record", "store key", "mutex", "refresh lock", "per-process"):
        assert word.lower() in design.lower(), word
    for word in ("client secret", "cookie", "state", "open redirect", "X-Monei-", "log"):
        assert word.lower() in security.lower(), word


def test_readme_documents_every_redirect_uri_parameter():
    with open(os.path.join(harness.ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    used = set()
    for name in ("mod_mc_handlers.c", "mod_mc_login.c"):      # the path's handler, callback
        with open(os.path.join(harness.ROOT, "src", name)) as f:
            used |= set(re.findall(r'(?:has_arg|arg|apr_table_get)\((?:\w+, )?q, "(\w+)"\)',
                                   f.read()))
    assert {"stepup", "login", "return_to", "scope", "code", "state", "error",
            "error_description"} <= used, used
    section = readme.split("Query parameters of the redirect URI path", 1)[1].split("\n## ", 1)[0]
    for name in used:
        assert "`%s" % name in section, name
