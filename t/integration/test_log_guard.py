"""The log guard itself must be able to fail: plant a secret in a log and watch it trip."""
import os
import subprocess

import harness

GUARD = os.path.join(harness.ROOT, "t", "lib", "log_guard.py")


def run_guard(run_dir):
    return subprocess.run([harness.PYTHON, GUARD, run_dir], capture_output=True, text=True)


def make_run(tmp_path, log_text):
    (tmp_path / "sandbox").mkdir()
    (tmp_path / "sandbox" / "secrets.txt").write_text("mct_planted_access_token_0123456789\n"
                                                      "mcs_planted_client_secret_987\n")
    (tmp_path / "httpd-x" / "logs").mkdir(parents=True)
    (tmp_path / "httpd-x" / "logs" / "error_log").write_text(log_text)
    return str(tmp_path)


def test_guard_fails_on_planted_token(tmp_path):
    run = make_run(tmp_path, "[monei_connect:debug] token mct_planted_access_token_0123456789\n")
    r = run_guard(run)
    assert r.returncode == 1, r.stdout
    assert "LEAK" in r.stdout and "error_log:1" in r.stdout
    # the guard never prints the secret it found
    assert "planted_access_token" not in r.stdout


def test_guard_fails_on_planted_cookie_value(tmp_path):
    run = make_run(tmp_path, "clean line\n")
    (tmp_path / "secrets-seen.txt").write_text("Zm9vYmFyYmF6cXV4cXV1eF9zZXNzaW9uX2lkX3ZhbHVl\n")
    (tmp_path / "httpd-x" / "logs" / "access_log").write_text(
        '127.0.0.1 - "GET / HTTP/1.1" 200 5 "monei_session=Zm9vYmFyYmF6cXV4cXV1eF9zZXNzaW9uX2lkX3ZhbHVl"\n')
    r = run_guard(run)
    assert r.returncode == 1 and "access_log:1" in r.stdout


def test_guard_passes_clean_logs(tmp_path):
    run = make_run(tmp_path, "[monei_connect:info] mc-callback: connected\n")
    r = run_guard(run)
    assert r.returncode == 0, r.stdout
    assert "clean" in r.stdout
