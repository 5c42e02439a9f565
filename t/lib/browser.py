"""A scripted browser for the integration tests: one cookie jar, redirects followed by hand
(so tests can look at every hop), the sandbox consent form filled in like a person would."""
import html.parser
import urllib.parse

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

import harness

BROWSER_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
    "User-Agent": "mc-test-browser/1.0",
}


class _FormParser(html.parser.HTMLParser):
    """Collects the consent form: hidden fields, scope checkboxes, the form action."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.hidden = []
        self.scopes = []
        self.users = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = a.get("action")
        elif tag == "input" and a.get("type") == "hidden":
            self.hidden.append((a.get("name"), a.get("value", "")))
        elif tag == "input" and a.get("type") == "checkbox" and a.get("name") == "scope":
            self.scopes.append(a.get("value"))
        elif tag == "option":
            self.users.append(a.get("value"))


class Browser:
    def __init__(self, ca=None):
        self.s = requests.Session()
        self.s.headers.update(BROWSER_HEADERS)
        # Like a browser, retry a GET whose kept-alive connection httpd closed at that very
        # moment (idle timeout, a child retiring). Crashes are caught apart: t/run-all fails
        # the run on any "exit signal" in an httpd error log.
        retry = Retry(total=2, connect=2, read=2, status=0, redirect=False,
                      allowed_methods=frozenset(["GET", "HEAD"]), raise_on_status=False)
        for scheme in ("http://", "https://"):
            self.s.mount(scheme, HTTPAdapter(max_retries=retry))
        self.verify = ca.ca_cert if ca else True
        self.history = []

    def _record(self, resp):
        for c in self.s.cookies:
            harness.record_secret(c.value)
        self.history.append(resp)
        return resp

    def get(self, url, **kw):
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", 30)
        return self._record(self.s.get(url, verify=self.verify, **kw))

    def post(self, url, **kw):
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", 30)
        return self._record(self.s.post(url, verify=self.verify, **kw))

    def status_of(self, url):
        """One GET on its own connection, for many at once: the shared keep-alive pool would
        hand a thread a connection that httpd closed meanwhile (idle timeout, a child
        retiring after a burst), which is the client's race, not the module's."""
        return self.s.get(url, verify=self.verify, timeout=30, allow_redirects=False,
                          headers={"Connection": "close"}).status_code

    def cookie(self, name):
        for c in self.s.cookies:
            if c.name == name:
                return c.value
        return None

    def cookie_names(self):
        return [c.name for c in self.s.cookies]

    def consent(self, authorize_url, scopes=None, action="approve", user="ada"):
        """Open the sandbox consent page and submit it. scopes=None keeps every box ticked.
        Returns the sandbox's redirect (302 to the callback)."""
        page = self.get(authorize_url)
        assert page.status_code == 200, (page.status_code, page.text[:500])
        form = _FormParser()
        form.feed(page.text)
        fields = [(k, v) for k, v in form.hidden if k]
        ticked = form.scopes if scopes is None else [s for s in form.scopes if s in scopes]
        fields += [("scope", s) for s in ticked]
        fields += [("user", user), ("action", action)]
        target = urllib.parse.urljoin(authorize_url, form.action or authorize_url)
        resp = self.post(target, data=fields)
        assert resp.status_code == 302, (resp.status_code, resp.text[:500])
        return resp

    def login(self, start_url, scopes=None, action="approve", user="ada"):
        """Protected URL -> Monei consent -> callback -> back. Returns the callback response."""
        first = self.get(start_url)
        assert first.status_code == 302, (first.status_code, first.text[:300])
        back = self.consent(first.headers["Location"], scopes=scopes, action=action, user=user)
        return self.get(back.headers["Location"])

    def follow(self, resp, base):
        loc = resp.headers["Location"]
        return self.get(urllib.parse.urljoin(base, loc))
