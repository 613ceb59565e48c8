#!/usr/bin/env python3
"""A smart-HTTP Git server for the tests, on 127.0.0.1 only: `git http-backend` run as CGI
behind Basic authentication, as GitHub answers a private repository.

  http_git_server.py --root DIR --log FILE [--redirect-host HOST]

Serves the repositories under DIR. Every request must carry `Authorization: Basic` with the
user `x-access-token` and the password in the environment variable GIT_TEST_TOKEN; any other
gets 401 with a Basic challenge. With --redirect-host, every request is answered with a 302 to
the same path on HOST (same port) instead. Prints `listening on 127.0.0.1:PORT` once it accepts
connections, and appends one line per request to FILE: `METHOD PATH host=HOST auth=STATE`, the
state being `none`, `good` or `bad` (the credentials themselves are never logged).
"""

import argparse
import base64
import http.server
import os
import subprocess
import sys
import threading


def read_body(handler):
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return body
            body += handler.rfile.read(size)
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


def make_handler(args, token, log_lock):
    expected = "Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format, *log_args):  # the request log below replaces stderr's
            pass

        def log_request_line(self, auth):
            with log_lock, open(args.log, "a") as log:
                log.write(f"{self.command} {self.path} host={self.headers.get('Host')} "
                          f"auth={auth}\n")

        def handle_git(self):
            given = self.headers.get("Authorization")
            auth = "none" if given is None else ("good" if given == expected else "bad")
            self.log_request_line(auth)
            if args.redirect_host:
                port = self.server.server_address[1]
                self.send_response(302)
                self.send_header("Location", f"http://{args.redirect_host}:{port}{self.path}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = read_body(self) if self.command == "POST" else b""
            if auth != "good":
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path, _, query = self.path.partition("?")
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "GIT_PROJECT_ROOT": args.root,
                "GIT_HTTP_EXPORT_ALL": "1",
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_CONFIG_GLOBAL": "/dev/null",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_USER": "x-access-token",
                "REMOTE_ADDR": self.client_address[0],
            }
            for header, name in (("Content-Encoding", "HTTP_CONTENT_ENCODING"),
                                 ("Git-Protocol", "GIT_PROTOCOL")):
                if self.headers.get(header):
                    env[name] = self.headers[header]
            result = subprocess.run(["git", "http-backend"], input=body, env=env,
                                    capture_output=True, check=False)
            head, _, payload = result.stdout.partition(b"\r\n\r\n")
            if not _:
                head, _, payload = result.stdout.partition(b"\n\n")
            status = 200
            headers = []
            for line in head.decode("latin-1").splitlines():
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = handle_git
        do_POST = handle_git

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--redirect-host")
    args = parser.parse_args()
    token = os.environ["GIT_TEST_TOKEN"]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             make_handler(args, token, threading.Lock()))
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
