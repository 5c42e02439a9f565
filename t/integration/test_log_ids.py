"""Every line the module logs starts with an id of its own (MC0nnn, as httpd's AH0nnnn), so an
administrator can search what it means: the ids are unique, every log call has one, and the
troubleshooting index (docs/log-messages.md) lists each of them. No httpd needed."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CALL = re.compile(r"ap_log_(?:r|p|c)?error\s*\(\s*APLOG_MARK\s*,\s*([^,]+),")


def log_calls():
    """[(file, id or None, level, first literal)] for every log call of the module."""
    files = [os.path.join(ROOT, "mod_monei_connect.c")] + sorted(
        os.path.join(ROOT, "src", f) for f in os.listdir(os.path.join(ROOT, "src"))
        if f.startswith("mod_mc") and f.endswith(".c"))
    out = []
    for path in files:
        text = open(path).read()
        for m in CALL.finditer(text):
            pos, literal = text.index('"', m.end()), ""
            # the format: adjacent literals, and format macros (APR_TIME_T_FMT) between them
            while True:
                end = pos + 1
                while text[end] != '"' or text[end - 1] == "\\":
                    end += 1
                literal += text[pos + 1:end]
                rest = re.match(r'\s*(?:([A-Z][A-Z0-9_]*_FMT)\s*)?"', text[end + 1:])
                if not rest:
                    break
                if rest.group(1):
                    literal += "…"
                pos = end + 1 + rest.end() - 1
            ident = re.match(r"(MC0\d{3}): ", literal)
            level = " or ".join(sorted(set(re.findall(r"APLOG_(EMERG|ALERT|CRIT|ERR|WARNING|NOTICE|INFO|DEBUG)\b", m.group(1))))).lower() or "varies"
            out.append((os.path.relpath(path, ROOT), ident and ident.group(1), level, literal))
    return out


def test_every_log_call_has_an_id():
    missing = [(f, lit) for f, i, _, lit in log_calls() if not i]
    assert not missing, missing


def test_each_id_is_used_once():
    seen = {}
    for f, i, _, _ in log_calls():
        assert i not in seen, "%s used in %s and in %s" % (i, seen[i], f)
        seen[i] = f
    assert len(seen) > 50


def test_troubleshooting_index_lists_every_id():
    index = open(os.path.join(ROOT, "docs", "log-messages.md")).read()
    listed = set(re.findall(r"^\| `(MC0\d{3})`", index, re.M))
    used = {i for _, i, _, _ in log_calls()}
    assert used <= listed, "not in docs/log-messages.md: %s" % sorted(used - listed)
    assert listed <= used, "docs/log-messages.md lists ids no code logs: %s" % sorted(listed - used)
