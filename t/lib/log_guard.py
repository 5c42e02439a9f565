#!/usr/bin/env python3
"""Log guard: fail when any secret the run saw appears in any log the run produced.

Secrets: every code, token and client secret the sandbox issued (its --secrets-file), plus
what the tests recorded (cookie values, passphrases, client secrets) in secrets-seen.txt.
Logs: every file under a logs/ directory of the run, and the sandbox's own logs.
Usage: log_guard.py RUN_DIR   (exit 0 clean, 1 leak found, 2 nothing to check)
"""
import os
import sys

MIN_LEN = 10  # shorter strings are not secrets we issue and would only make false alarms


def collect_secrets(run):
    secrets = set()
    for dirpath, _, files in os.walk(run):
        for fn in files:
            if fn in ("secrets.txt", "secrets-seen.txt"):
                with open(os.path.join(dirpath, fn), errors="replace") as f:
                    for line in f:
                        v = line.strip()
                        if len(v) >= MIN_LEN:
                            secrets.add(v)
    return secrets


def collect_logs(run):
    logs = []
    for dirpath, _, files in os.walk(run):
        in_logs = os.path.basename(dirpath) == "logs"
        for fn in files:
            if in_logs or fn.endswith(".log") or fn.endswith("_log"):
                logs.append(os.path.join(dirpath, fn))
    return logs


def scan(run):
    secrets = collect_secrets(run)
    logs = collect_logs(run)
    leaks = []
    for path in logs:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        text = data.decode("utf-8", "replace")
        for s in secrets:
            idx = text.find(s)
            if idx >= 0:
                line = text.count("\n", 0, idx) + 1
                # Never print the secret itself: a CI log is a log too.
                leaks.append("%s:%d: a secret (%s…, %d chars) is written here"
                             % (path, line, s[:4], len(s)))
    return secrets, logs, leaks


def main(argv):
    if len(argv) != 2:
        print(__doc__)
        return 2
    secrets, logs, leaks = scan(argv[1])
    if not secrets or not logs:
        print("log guard: nothing to check (%d secrets, %d logs)" % (len(secrets), len(logs)))
        return 2
    for leak in leaks:
        print("log guard: LEAK " + leak)
    print("log guard: %d secrets checked against %d log files: %s"
          % (len(secrets), len(logs), "LEAKS FOUND" if leaks else "clean"))
    return 1 if leaks else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
