"""A stand-in for the 2020 Python HealthChecker.Server client, for tests/original_client.rs.

It sends exactly the requests the original client sends (written from its source,
healthcheck/server.py of dwightmulcahy/healthchecker.server), so the test shows that apps using it
move to this server unchanged:

* discovery: python-zeroconf's `Zeroconf().get_service_info("_http._tcp.local.",
  "_healthchecker._http._tcp.local.")` with its default timeout of 3 s; the server is
  `http://<first address>:<port>/healthchecker/` (the first address is the first IPv4 one);
* `monitor()`: a form POST of appname, url, email, timeout, interval, unhealthy_threshold and
  healthy_threshold to `monitor`, through a `requests` session with urllib3 retries (3, backoff
  0.3, on 500/502/504) and `Cache-Control: no-cache`;
* `stop()`, `pause()`, `resume()`, `info()`: GETs of `stop`, `pause`, `resume` and `info` with
  `params={"appname": ...}` through such a session.

The original client returns only status codes; this one also reads the JSON of `info` to see
what the server saw. The only additions are client-side time limits, so a test cannot hang.

Usage:
  original_client.py discover
      Looks the server up once, as the original client does (3 s), and prints `FOUND <url>` or
      `NOT-FOUND`.
  original_client.py run APP_NAME EMAIL
      Serves /health on 127.0.0.1 (a real app), discovers the server, registers, waits to be
      polled, prints `POLLED {json}`, waits for a line on stdin, then pauses, resumes, reads
      info and status, stops, and prints `DONE {json}`. Exits 1 (with `FAILED reason`) when the
      server does not answer as the original did.
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry
from zeroconf import Zeroconf

TYPE = "_http._tcp.local."
SERVICE_NAME = "_healthchecker"
# Client-side limits only (the original had none): nothing here may hang a test.
REQUEST_TIMEOUT = 10
PATIENCE = 30
DISCOVERY_ATTEMPTS = 3


class Failed(Exception):
    """The server did not answer as the original would have."""


def retry_session():
    """A session like the original client's: urllib3 retries with backoff."""
    session = requests.Session()
    retry = Retry(total=3, read=3, connect=3, backoff_factor=0.3,
                  status_forcelist=(500, 502, 504))
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def discover(attempts=DISCOVERY_ATTEMPTS):
    """The original's lookup, repeated at most `attempts` times (a server that has just started
    may still be probing its names). Returns (url or None, attempts made)."""
    for attempt in range(1, attempts + 1):
        zc = Zeroconf()
        try:
            info = zc.get_service_info(TYPE, f"{SERVICE_NAME}.{TYPE}")  # timeout: 3000 ms
        finally:
            zc.close()
        if info:
            return f"http://{info.parsed_addresses()[0]}:{info.port}/healthchecker/", attempt
    return None, attempts


class OriginalClient:
    """The original HealthCheckerServer class's requests, against a discovered server."""

    def __init__(self, app, url, server):
        self.appname = app
        self.monitor_url = url
        self.server = server

    def post(self, endpoint, form):
        return retry_session().post(self.server + endpoint, data=form,
                                    headers={"Cache-Control": "no-cache"},
                                    timeout=REQUEST_TIMEOUT)

    def get(self, endpoint, params):
        return retry_session().get(self.server + endpoint, params=params,
                                   headers={"Cache-Control": "no-cache"},
                                   timeout=REQUEST_TIMEOUT)

    def monitor(self, emailaddr="", timeout=5, interval=30, unhealthy=2, healthy=10):
        return self.post("monitor", {
            "appname": self.appname,
            "url": self.monitor_url,
            "email": emailaddr,
            "timeout": timeout,
            "interval": interval,
            "unhealthy_threshold": unhealthy,
            "healthy_threshold": healthy,
        })

    def stop(self):
        return self.get("stop", {"appname": self.appname})

    def pause(self):
        return self.get("pause", {"appname": self.appname})

    def resume(self):
        return self.get("resume", {"appname": self.appname})

    def info(self):
        return self.get("info", {"appname": self.appname})


class App:
    """A real app on 127.0.0.1 whose /health passes, as the original's Flask example's did."""

    def __init__(self, name):
        app = self
        self.name = name
        self.hits = []  # (time, User-Agent) of each GET /health
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != "/health":
                    self.send_error(404)
                    return
                with app.lock:
                    app.hits.append((time.monotonic(), self.headers.get("User-Agent", "")))
                body = json.dumps({"status": "pass", "description": app.name}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/health+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def hit_count(self):
        with self.lock:
            return len(self.hits)


def expect(what, response, status, text=None):
    if response.status_code != status or (text is not None and response.text != text):
        raise Failed(f"{what}: expected {status} {text!r}, got {response.status_code} "
                     f"{response.text!r}")


def wait_until(what, condition):
    """Polls `condition` until it returns something truthy, for at most PATIENCE seconds."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise Failed(f"{what} within {PATIENCE} s")


def run(app_name, email):
    app = App(app_name)
    started = time.monotonic()
    server, attempts = discover()
    discovery_s = round(time.monotonic() - started, 3)
    if server is None:
        raise Failed(f"no {SERVICE_NAME}.{TYPE} in {attempts} lookups of 3 s")
    client = OriginalClient(app_name, app.url, server)

    # As the original's example registers: interval 10, unhealthy 2, healthy 4; here at the
    # shortest interval, so that the test is quick.
    expect("monitor", client.monitor(emailaddr=email, timeout=2, interval=5, unhealthy=2,
                                     healthy=4), 201)
    expect("monitor again", client.monitor(emailaddr=email, timeout=2, interval=5, unhealthy=2,
                                           healthy=4), 200)
    expect("out of range", client.monitor(emailaddr=email, interval=301), 406)
    expect("bad email", client.monitor(emailaddr="not an address"), 400)

    def polled():
        if app.hit_count() == 0:
            return None
        answer = client.info()
        expect("info", answer, 200)
        info = answer.json()
        checks = info["checks"]
        return info if checks and checks[0]["outcome"] == "pass" and \
            info["state"] == "HEALTHY" else None

    info = wait_until("no passing check of /health", polled)
    print("POLLED " + json.dumps({"server": server, "attempts": attempts, "discovery_s": discovery_s, "app_url": app.url,
                                  "info": info, "user_agent": app.hits[0][1]}), flush=True)
    if not sys.stdin.readline():
        raise Failed("the test went away")

    expect("pause", client.pause(), 200, "OK")
    paused = client.info().json()
    if not paused["paused"]:
        raise Failed(f"not paused: {paused}")
    expect("resume", client.resume(), 200, "OK")
    hits = app.hit_count()
    resumed = time.monotonic()
    wait_until("no check after resume", lambda: app.hit_count() > hits)
    after_resume = next(t for t, _ in app.hits[hits:]) - resumed

    answer = client.info()
    expect("info", answer, 200)
    info = answer.json()
    status = retry_session().get(server + "status", timeout=REQUEST_TIMEOUT)
    expect("status", status, 200)

    expect("stop", client.stop(), 200, "OK")
    expect("stop again", client.stop(), 404)
    expect("info after stop", client.info(), 404)
    expect("pause after stop", client.pause(), 404)
    print("DONE " + json.dumps({"info": info, "status": status.json(), "hits": app.hit_count(),
                                "paused_view": paused,
                                "first_check_after_resume_s": round(after_resume, 3)}),
          flush=True)


def main():
    if sys.argv[1:2] == ["discover"]:
        server, attempts = discover(attempts=1)
        print(f"FOUND {server}" if server else f"NOT-FOUND after {attempts} lookup(s)", flush=True)
        return 0
    if sys.argv[1:2] == ["run"] and len(sys.argv) == 4:
        try:
            run(sys.argv[2], sys.argv[3])
        except Failed as failure:
            print(f"FAILED {failure}", flush=True)
            return 1
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
