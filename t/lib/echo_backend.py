#!/usr/bin/env python3
"""A backend for mod_proxy tests: answers every request with its headers as JSON."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo(BaseHTTPRequestHandler):
    def do_GET(self):
        # "raw": every header line as sent (duplicates too); "cgi": the names as CGI and WSGI
        # read them (HTTP_ + upper case, '-' and '_' folded into '_'), each with all its values.
        cgi = {}
        for name, value in self.headers.items():
            cgi.setdefault("HTTP_" + name.upper().replace("-", "_"), []).append(value)
        body = json.dumps({"path": self.path, "headers": dict(self.headers.items()),
                           "raw": list(self.headers.items()), "cgi": cgi},
                          ensure_ascii=False).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Echo).serve_forever()
