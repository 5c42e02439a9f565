"""Fixtures for the Monei sandbox tests: a throwaway CA, a running sandbox, a client.

One sandbox process serves the whole session (starting it per test would cost time);
each test begins with POST /_sandbox/reset, so tests do not see each other's state.
These fixtures override the same-named ones of t/conftest.py for tests in this folder.
"""

import subprocess

import pytest
import requests

from monei_sandbox_testlib import (CLIENT_ID, CLIENT_SECRET, REDIRECT, REDIRECT_Q, Api,
                                   SandboxProcess, client_file)


def run(cmd, cwd):
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    """A CA and a server certificate for 127.0.0.1/localhost, made with the openssl CLI."""
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run(["openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
         "-subj", "/CN=Monei Sandbox Test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)
    run(["openssl", "req", *ec, "-keyout", "server.key", "-out", "server.csr",
         "-subj", "/CN=localhost"], d)
    (d / "ext.cnf").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n")
    run(["openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf"], d)
    return {"ca": str(d / "ca.pem"), "cert": str(d / "server.pem"), "key": str(d / "server.key")}


@pytest.fixture(scope="session")
def secrets_file(tmp_path_factory):
    return str(tmp_path_factory.mktemp("sandbox") / "secrets.txt")


@pytest.fixture(scope="session")
def sandbox(tls_files, secrets_file, tmp_path_factory):
    clients = client_file(tmp_path_factory.mktemp("clients"),
                          f"{CLIENT_ID}:{CLIENT_SECRET}:{REDIRECT},{REDIRECT_Q}")
    sp = SandboxProcess([
        "--tls-port", "0", "--cert", tls_files["cert"], "--key", tls_files["key"],
        "--client-file", clients,
        "--secrets-file", secrets_file,
    ])
    yield sp
    sp.stop()


@pytest.fixture(autouse=True)
def _reset(request):
    # Only tests that use the shared sandbox get a reset.
    if "sandbox" in request.fixturenames:
        sp = request.getfixturevalue("sandbox")
        r = requests.post(sp.http + "/_sandbox/reset", timeout=5)
        assert r.status_code == 200


@pytest.fixture
def api(sandbox):
    a = Api(sandbox.http)
    yield a
    a.s.close()
