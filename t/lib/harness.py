"""Test harness: a private httpd with the built module, the Monei sandbox, and a throwaway CA.

Everything a run produces (configs, logs, secrets seen) lives under t/run/ so that the log
guard can scan every log afterwards. Ports are taken from a per-run range on 127.0.0.1.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Under /tmp, not the checkout: httpd's children run as www-data when the suite runs as root,
# and a checkout under /root is not readable to them.
RUN = os.environ.get("MC_RUN_DIR", "/tmp/mod_monei_connect-t-run")
HTDOCS = os.path.join(RUN, "htdocs")
HTTPD = os.environ.get("HTTPD", "/usr/sbin/apache2")
MODULE = os.environ.get("MODULE", os.path.join(ROOT, "mod_monei_connect.so"))
MODDIR = os.environ.get("APACHE_MODULES", "/usr/lib/apache2/modules")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
SECRETS_SEEN = os.path.join(RUN, "secrets-seen.txt")

CLIENT_ID = "mc_testclient01"
APP_NAME = "Test Shop"             # what the sandbox's consent page calls the client
CLIENT_SECRET = "mcs_" + "S3cr3tForTests" + "x9q7w2"
PASSPHRASE = "test-passphrase-" + "k2j4h6g8f0d9s7a5"


def sanitizer_env():
    """With MC_SANITIZE=1 (a module built with ./configure --enable-sanitizers), httpd runs with
    the ASan runtime preloaded (httpd itself is not instrumented) and every report goes to
    RUN/asan.*, which t/run-all turns into a failure."""
    env = dict(os.environ)
    if os.environ.get("MC_SANITIZE") != "1":
        return env
    lib = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True,
                         text=True).stdout.strip()
    env["LD_PRELOAD"] = lib
    env["ASAN_OPTIONS"] = ("detect_leaks=0:abort_on_error=0:log_path=%s/asan"
                           ":allow_user_segv_handler=1" % RUN)
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:log_path=%s/ubsan" % RUN
    return env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def record_secret(value):
    """Remember a value that must never appear in a log (cookie values, tokens seen by tests)."""
    if not value:
        return
    os.makedirs(RUN, exist_ok=True)
    with open(SECRETS_SEEN, "a") as f:
        f.write(value + "\n")


def prepare_htdocs():
    """Copy t/htdocs (CGI, SSI pages) to where www-data can read it."""
    if os.path.isdir(HTDOCS):
        return
    os.makedirs(RUN, exist_ok=True)
    os.chmod(RUN, 0o755)
    shutil.copytree(os.path.join(ROOT, "t", "htdocs"), HTDOCS)
    for dirpath, _, files in os.walk(HTDOCS):
        os.chmod(dirpath, 0o755)
        for fn in files:
            fp = os.path.join(dirpath, fn)
            os.chmod(fp, 0o755 if fn.endswith(".cgi") else 0o644)


def wait_port(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on port %d" % port)


class CA:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.ca_cert = os.path.join(directory, "ca.pem")
        self.ca_key = os.path.join(directory, "ca.key")
        self.cert = os.path.join(directory, "server.pem")
        self.key = os.path.join(directory, "server.key")
        if not os.path.exists(self.cert):
            self._make()

    def _run(self, *args):
        subprocess.run(["openssl"] + list(args), check=True, cwd=self.dir,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _make(self):
        self._run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                  "-subj", "/CN=mod_monei_connect test CA", "-keyout", self.ca_key,
                  "-out", self.ca_cert, "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self._run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                  "-keyout", self.key, "-out", "server.csr")
        ext = os.path.join(self.dir, "ext.cnf")
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                    "extendedKeyUsage=serverAuth\n")
        self._run("x509", "-req", "-in", "server.csr", "-CA", self.ca_cert, "-CAkey",
                  self.ca_key, "-CAcreateserial", "-days", "2", "-out", self.cert,
                  "-extfile", ext)
        os.chmod(self.key, 0o644)  # httpd children (www-data) may read it in TLS tests


class Service:
    """A helper process of the suite (sandbox, backend, redis, memcached): stopped for sure."""
    proc = None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None


class Sandbox(Service):
    """The Monei sandbox provider as a subprocess (sandbox/monei_sandbox.py)."""

    def __init__(self, name="sandbox", ca=None, clients=()):
        self.dir = os.path.join(RUN, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.tls_port = free_port() if ca else None
        self.ca = ca
        self.secrets_file = os.path.join(self.dir, "secrets.txt")
        self.clients = list(clients)
        self.proc = None

    @property
    def http(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def https(self):
        return "https://127.0.0.1:%d" % self.tls_port

    def start(self):
        cmd = [PYTHON, os.path.join(ROOT, "sandbox", "monei_sandbox.py"),
               "--port", str(self.port), "--secrets-file", self.secrets_file, "--quiet"]
        if self.ca:
            cmd += ["--tls-port", str(self.tls_port), "--cert", self.ca.cert,
                    "--key", self.ca.key]
        if self.clients:
            # ID:SECRET:URI lines in a private file: a secret on a command line shows in ps.
            clients = os.path.join(self.dir, "clients.txt")
            fd = os.open(clients, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write("".join(c + "\n" for c in self.clients))
            cmd += ["--client-file", clients]
        log = open(os.path.join(self.dir, "sandbox.log"), "a")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=log)
        wait_port(self.port)
        if self.tls_port:
            wait_port(self.tls_port)
        return self


    def control(self, path, body=None, method=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.http + "/_sandbox/" + path, data=data,
                                     method=method or ("POST" if data is not None else "GET"),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"{}")

    def register(self, client_id, secret, redirect_uris, name=APP_NAME):
        # Several httpds of a run share the client: keep every redirect URI registered.
        self.redirects = getattr(self, "redirects", set()) | set(redirect_uris)
        return self.control("clients", {"client_id": client_id, "client_secret": secret,
                                        "name": name,
                                        "redirect_uris": sorted(self.redirects)})

    def counters(self):
        return self.control("counters")

    def reset(self):
        return self.control("reset", {})


# Configuration pieces most tests share: a protected area and the quickstart's /dashboard.
ACCOUNT_LOCATION = """<Location /account>
    AuthType MoneiConnect
    Require valid-user
</Location>
"""
# A scope beyond the login's, with step-up (/send) and without it (/nostep); callers fill
# {htdocs}.
STEP_UP_LOCATIONS = """<Location /send>
    AuthType MoneiConnect
    MoneiConnectScope "wallet:read"
    Require monei-scope wallet:read wallet:send
</Location>
Alias /send {htdocs}/account
<Location /nostep>
    AuthType MoneiConnect
    MoneiConnectStepUp Off
    Require monei-scope wallet:send
</Location>
Alias /nostep {htdocs}/account
"""
DASHBOARD_LOCATION = """<Location /dashboard>
    AuthType MoneiConnect
    MoneiConnectUnauthAction pass
    Require all granted
    SetHandler monei-connect-info
</Location>
"""


BASE_MODULES = ["mpm_event", "authn_core", "authz_core", "authz_host", "authz_user",
                "mime", "dir", "alias", "env", "headers", "setenvif", "include", "cgid",
                "socache_shmcb"]


class HttpdCrashed(AssertionError):
    """A child of a test's httpd died of a signal (found in its error log after the stop)."""


class Httpd:
    """A private httpd (event MPM, several children) running the built module."""

    def __init__(self, name, body, modules=(), port=None, load_monei=True, tls=None,
                 exclude=(), env=None):
        self.name = name
        self.dir = os.path.join(RUN, "httpd-" + name)
        self.port = port or free_port()
        self.body = body
        self.modules = [m for m in BASE_MODULES if m not in exclude]
        self.modules += [m for m in modules if m not in self.modules]
        self.load_monei = load_monei
        self.tls = tls
        self.env = env or {}
        self.conf = os.path.join(self.dir, "httpd.conf")
        self.pidfile = os.path.join(self.dir, "httpd.pid")
        self.error_log = os.path.join(self.dir, "logs", "error_log")

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    def write_conf(self):
        prepare_htdocs()
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
        os.chmod(self.dir, 0o755)
        loads = "\n".join("LoadModule %s_module %s/mod_%s.so" % (m, MODDIR, m)
                          for m in self.modules)
        if self.load_monei:
            loads += "\nLoadModule monei_connect_module %s" % MODULE
        user = "User www-data\nGroup www-data\n" if os.geteuid() == 0 else ""
        tls = ""
        if self.tls:
            tls = ("SSLEngine on\nSSLCertificateFile %s\nSSLCertificateKeyFile %s\n"
                   % (self.tls.cert, self.tls.key))
        conf = f"""# generated by t/lib/harness.py
ServerRoot {self.dir}
{loads}
{user}Listen 127.0.0.1:{self.port}
ServerName 127.0.0.1:{self.port}
PidFile {self.pidfile}
Mutex file:{self.dir} default
ScriptSock {self.dir}/cgisock
ErrorLog {self.error_log}
LogLevel warn monei_connect:debug
LogFormat "%h %u \\"%r\\" %>s %b \\"%{{Cookie}}i\\" \\"%{{Referer}}i\\"" full
CustomLog {self.dir}/logs/access_log full
TypesConfig /etc/mime.types
DocumentRoot {HTDOCS}
StartServers 2
ServerLimit 4
ThreadsPerChild 16
MaxRequestWorkers 64
MinSpareThreads 8
MaxSpareThreads 64
KeepAliveTimeout 2
GracefulShutdownTimeout 5
{tls}
<Directory {HTDOCS}>
    Options +Includes +ExecCGI
    AddHandler cgi-script .cgi
    AddOutputFilter INCLUDES .shtml
    AddType text/html .shtml
    Require all granted
</Directory>
{self.body}
"""
        with open(self.conf, "w") as f:
            f.write(conf)

    def _ctl(self, *args, timeout=30):
        env = sanitizer_env()
        extra = dict(self.env)
        if "LD_PRELOAD" in extra and env.get("LD_PRELOAD"):
            # the ASan runtime must come first in the list
            extra["LD_PRELOAD"] = env["LD_PRELOAD"] + " " + extra["LD_PRELOAD"]
        env.update(extra)
        return subprocess.run([HTTPD, "-f", self.conf] + list(args), capture_output=True,
                              text=True, timeout=timeout, env=env)

    def configtest(self):
        self.write_conf()
        r = self._ctl("-t")
        return r.returncode, r.stdout + r.stderr

    def start(self):
        self.write_conf()
        # The crash guard reads only what this start logs: a name may be started again.
        self.log_offset = os.path.getsize(self.error_log) if os.path.exists(self.error_log) else 0
        r = self._ctl("-k", "start")
        if r.returncode != 0:
            raise RuntimeError("httpd %s failed to start: %s%s\n%s" % (
                self.name, r.stdout, r.stderr, self.tail_error_log()))
        wait_port(self.port)
        self.wait_running()
        return self

    def wait_running(self, timeout=15.0):
        """Wait for the parent's pidfile and check that process lives. The port alone does
        not prove a start: the event MPM detaches and opens its listeners before the
        modules' post_config, so a daemon that then fails has already answered wait_port
        (and `-k start` returned 0) before it exits."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                with open(self.pidfile) as f:
                    pid = int(f.read().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid:
                try:
                    os.kill(pid, 0)
                    return pid
                except ProcessLookupError:
                    break
            time.sleep(0.05)
        raise RuntimeError("httpd %s is not running after its start:\n%s"
                           % (self.name, self.tail_error_log()))

    def graceful(self):
        r = self._ctl("-k", "graceful")
        assert r.returncode == 0, r.stderr
        time.sleep(1.0)
        wait_port(self.port)

    def stop(self, check=True):
        """Stop, then fail (HttpdCrashed) if a child of this start died of a signal: read
        after the stop, so a crash while children exit counts too.

        graceful-stop, not stop: an ungraceful stop makes the event MPM's main thread close
        the sockets of workers that may be freeing them at that moment (close_worker_sockets
        in httpd's event.c), which now and then kills a child with SIGSEGV while it exits,
        with no frame of any module on its stack (seen with this suite and a core dump).
        GracefulShutdownTimeout bounds the wait for requests still in flight."""
        if os.path.exists(self.pidfile):
            self._ctl("-k", "graceful-stop")
            deadline = time.time() + 15
            while os.path.exists(self.pidfile) and time.time() < deadline:
                time.sleep(0.05)
        if check:
            crashes = self.crashes()
            if crashes:
                raise HttpdCrashed("httpd %s: a child died of a signal:\n%s"
                                   % (self.name, "\n".join(crashes[:10])))

    def crashes(self):
        """Lines of this start's error log saying a child died of a signal."""
        try:
            with open(self.error_log, errors="replace") as f:
                f.seek(getattr(self, "log_offset", 0))
                return [l.rstrip("\n") for l in f if "exit signal" in l]
        except OSError:
            return []

    def tail_error_log(self, n=40):
        try:
            with open(self.error_log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def error_log_text(self):
        try:
            with open(self.error_log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


def monei_directives(sandbox, port, scheme="http", api="https", extra=""):
    """The required directives for a server on `port`, pointing at `sandbox`; registers the
    redirect URI with the sandbox. Secrets are given as file: values like production."""
    redirect = "%s://127.0.0.1:%d/monei/callback" % (scheme, port)
    sandbox.register(CLIENT_ID, CLIENT_SECRET, [redirect])
    secret_file = os.path.join(RUN, "client-secret")
    pass_file = os.path.join(RUN, "session-key")
    for path, value in ((secret_file, CLIENT_SECRET), (pass_file, PASSPHRASE)):
        with open(path, "w") as f:
            f.write(value + "\n")
        os.chmod(path, 0o600)
    base = sandbox.https if api == "https" else sandbox.http
    return f"""MoneiConnectClientID {CLIENT_ID}
MoneiConnectClientSecret file:{secret_file}
MoneiConnectRedirectURI {redirect}
MoneiConnectCryptoPassphrase file:{pass_file}
MoneiConnectAuthorizeURL {base}/connect/authorize
MoneiConnectAPIBase {base}/api/v1
MoneiConnectCAFile {sandbox.ca.ca_cert if sandbox.ca else "/etc/ssl/certs/ca-certificates.crt"}
MoneiConnectHTTPTimeout 2 4
{extra}
"""


class EchoBackend(Service):
    """t/lib/echo_backend.py as a subprocess: what a proxied application receives."""

    def __init__(self):
        self.port = free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([PYTHON, os.path.join(ROOT, "t", "lib", "echo_backend.py"),
                                      str(self.port)])
        wait_port(self.port)
        return self



class Redis(Service):
    """A private redis-server on a loopback port, no persistence."""

    def __init__(self, name="redis"):
        self.port = free_port()
        self.dir = os.path.join(RUN, name)
        self.proc = None

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        if os.geteuid() == 0:
            os.chmod(self.dir, 0o777)
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind",
                                      "127.0.0.1", "--save", "", "--appendonly", "no",
                                      "--dir", self.dir, "--logfile",
                                      os.path.join(self.dir, "redis.log")])
        wait_port(self.port)
        return self


    # mod_socache_redis stores "<cache name>:" + hex(key); these helpers speak store keys.
    PREFIX = b"monei-connect:"

    def keys(self):
        out = subprocess.run(["redis-cli", "-p", str(self.port), "--raw", "KEYS", "*"],
                             capture_output=True, timeout=10).stdout
        keys = []
        for k in out.split(b"\n"):
            if k.startswith(self.PREFIX):
                keys.append(bytes.fromhex(k[len(self.PREFIX):].decode()))
        return keys

    def get(self, key):
        if isinstance(key, str):
            key = key.encode()
        raw = self.PREFIX + key.hex().encode()
        return subprocess.run(["redis-cli", "-p", str(self.port), "--raw", "GET", raw],
                              capture_output=True, timeout=10).stdout

    def snapshot(self):
        return {k: self.get(k) for k in self.keys()}

    def assert_unchanged_since(self, before):
        """Nothing written, rewritten or removed since snapshot `before`."""
        after = self.snapshot()
        assert after.items() <= before.items(), "a record was written or rewritten"
        assert before.keys() <= after.keys(), "a stored record was removed"


class Memcached(Service):
    """A private memcached on a loopback port."""

    def __init__(self):
        self.port = free_port()
        self.proc = None

    def start(self):
        cmd = ["memcached", "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", "16"]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        self.proc = subprocess.Popen(cmd)
        wait_port(self.port)
        return self


class Tinyproxy(Service):
    """A private tinyproxy (Debian's) on a loopback port, its config and log under the run
    directory: the outbound HTTP proxy between the module and Monei."""

    def __init__(self, name="tinyproxy"):
        self.port = free_port()
        self.dir = os.path.join(RUN, name)
        self.log = os.path.join(self.dir, "tinyproxy.log")
        self.proc = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o777)
        conf = os.path.join(self.dir, "tinyproxy.conf")
        with open(conf, "w") as f:
            # No ConnectPort line: CONNECT to the sandbox's TLS port (not 443) is allowed.
            f.write("Port %d\nListen 127.0.0.1\nTimeout 30\nLogFile \"%s\"\nLogLevel Info\n"
                    "MaxClients 50\nAllow 127.0.0.1\nDisableViaHeader Yes\n"
                    % (self.port, self.log))
        out = open(os.path.join(self.dir, "stdout.log"), "a")
        self.proc = subprocess.Popen(["tinyproxy", "-d", "-c", conf], stdout=out, stderr=out)
        wait_port(self.port)
        return self

    def requests(self):
        """The request lines the proxy logged ("GET http://…", "CONNECT host:port")."""
        try:
            with open(self.log, errors="replace") as f:
                text = f.read()
        except OSError:
            return []
        return [line.split("): ", 1)[1] for line in text.splitlines()
                if "Request (file descriptor" in line and "): " in line]
