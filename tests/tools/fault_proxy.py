#!/usr/bin/python3
"""Fault-injecting HTTP/1.1 reverse proxy for S3 tests and benchmarks (standard library only).

    fault_proxy.py --upstream http://127.0.0.1:PORT [--listen 127.0.0.1:0] [--port-file F]
                   [--plan PLAN.json] [--seed N] [--delay-ms MS] [--bandwidth BYTES_PER_S] [-v]

Requests are forwarded unchanged (request line, headers including Host and Authorization, body),
so SigV4 signatures made for the proxy's host:port still verify upstream. Responses are streamed
back unchanged unless a rule of the fault plan says otherwise. Every client connection gets its
own keep-alive upstream connection. `Expect: 100-continue` is passed through: the upstream's
"100 Continue" is relayed to the client (or, if the client starts sending the body first, the
body is simply relayed).

The chosen port is printed on stdout (one line) and, with --port-file, written to that file
(atomically, once the proxy accepts connections).

Control endpoints (on the proxy's own port, never forwarded):
    GET  /__fault/stats   counters as JSON
    GET  /__fault/plan    the current plan as JSON
    POST /__fault/plan    replace the plan (JSON body, same format as --plan); resets rule counters
    POST /__fault/reset   remove all rules and zero all counters

Plan format (see README.md next to this file):
    {"seed": 1,
     "rules": [{"match": {"method": "GET", "path_contains": "part-0", "ranged": true},
                "times": 2, "after": 0, "probability": 1.0,
                "action": {"status": 503}}]}
The first rule (in order) whose match fits, that has not used up its `times` and whose
probability draw succeeds is applied to a request; at most one rule per request.

Global --delay-ms (before each response's headers) and --bandwidth (per connection and direction,
bodies only) apply to every forwarded request, in addition to any rule.
"""

import argparse
import fcntl
import ipaddress
import json
import os
import random
import re
import select
import signal
import socket
import socketserver
import struct
import sys
import termios
import threading
import time
import urllib.parse

BUF_SIZE = 256 * 1024
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
SPLICE_F_MOVE = getattr(os, "SPLICE_F_MOVE", 1)
SPLICE_F_NONBLOCK = getattr(os, "SPLICE_F_NONBLOCK", 2)
MAX_HEAD = 64 * 1024
UPSTREAM_TIMEOUT = 300.0

DEFAULT_ERRORS = {
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
}
REASONS = {
    400: "Bad Request", 403: "Forbidden", 404: "Not Found", 408: "Request Timeout",
    409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}
ACTION_KEYS = ("status", "code", "message", "headers", "delay_first_byte_ms", "reset_after_bytes",
               "truncate_after_bytes", "bandwidth_bytes_per_s", "reset_before_response")
MATCH_KEYS = ("method", "path_contains", "path_regex", "query_contains", "ranged")
RULE_KEYS = ("match", "action", "times", "after", "probability")


class PlanError(ValueError):
    pass


# --- plan -------------------------------------------------------------------------------------------

class Rule:
    def __init__(self, spec, index):
        if not isinstance(spec, dict):
            raise PlanError(f"rule {index}: not an object")
        for k in spec:
            if k not in RULE_KEYS:
                raise PlanError(f"rule {index}: unknown key {k!r}")
        match = spec.get("match", {})
        action = spec.get("action")
        if not isinstance(match, dict):
            raise PlanError(f"rule {index}: match must be an object")
        if not isinstance(action, dict) or not action:
            raise PlanError(f"rule {index}: action must be a non-empty object")
        for k in match:
            if k not in MATCH_KEYS:
                raise PlanError(f"rule {index}: unknown match key {k!r}")
        for k in action:
            if k not in ACTION_KEYS:
                raise PlanError(f"rule {index}: unknown action key {k!r}")
        self.spec = spec
        self.index = index
        methods = match.get("method")
        if isinstance(methods, str):
            methods = [methods]
        self.methods = {m.upper() for m in methods} if methods else None
        self.path_contains = match.get("path_contains")
        try:
            self.path_regex = re.compile(match["path_regex"]) if "path_regex" in match else None
        except re.error as e:
            raise PlanError(f"rule {index}: bad path_regex: {e}") from None
        self.query_contains = match.get("query_contains")
        self.ranged = match.get("ranged")
        self.times = _int(spec, "times", index, None)
        self.after = _int(spec, "after", index, 0)
        self.probability = float(spec.get("probability", 1.0))
        if not 0.0 <= self.probability <= 1.0:
            raise PlanError(f"rule {index}: probability must be within [0, 1]")
        a = action
        self.status = _int(a, "status", index, None)
        if self.status is not None and not 100 <= self.status <= 599:
            raise PlanError(f"rule {index}: bad status")
        self.code = a.get("code")
        self.message = a.get("message")
        self.headers = a.get("headers", {})
        if not isinstance(self.headers, dict):
            raise PlanError(f"rule {index}: headers must be an object")
        self.delay_ms = _int(a, "delay_first_byte_ms", index, 0)
        self.reset_after = _int(a, "reset_after_bytes", index, None)
        self.truncate_after = _int(a, "truncate_after_bytes", index, None)
        self.bandwidth = _int(a, "bandwidth_bytes_per_s", index, 0)
        self.reset_before = bool(a.get("reset_before_response", False))
        body_actions = [x for x in (self.status is not None, self.reset_after is not None,
                                    self.truncate_after is not None, self.reset_before) if x]
        if len(body_actions) > 1:
            raise PlanError(f"rule {index}: status, reset_after_bytes, truncate_after_bytes and "
                            "reset_before_response exclude each other")
        self.action_names = [k for k in ("status", "delay_first_byte_ms", "reset_after_bytes",
                                         "truncate_after_bytes", "bandwidth_bytes_per_s",
                                         "reset_before_response") if k in a]
        self.matched = 0
        self.applied = 0

    def matches(self, req):
        if self.methods is not None and req.method not in self.methods:
            return False
        if self.path_contains is not None and self.path_contains not in req.path:
            return False
        if self.path_regex is not None and not self.path_regex.search(req.path):
            return False
        if self.query_contains is not None and self.query_contains not in req.query:
            return False
        if self.ranged is not None and bool(self.ranged) != (req.header("range") is not None):
            return False
        return True


def _int(obj, key, index, default):
    if key not in obj:
        return default
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise PlanError(f"rule {index}: {key} must be a non-negative integer")
    return v


class Plan:
    def __init__(self, doc=None, seed=0):
        if doc is None:
            doc = {"rules": []}
        if isinstance(doc, list):
            doc = {"rules": doc}
        if not isinstance(doc, dict) or not isinstance(doc.get("rules", []), list):
            raise PlanError("plan must be an object with a list 'rules' (or a list of rules)")
        for k in doc:
            if k not in ("rules", "seed"):
                raise PlanError(f"unknown plan key {k!r}")
        self.doc = doc
        self.rules = [Rule(r, i) for i, r in enumerate(doc.get("rules", []))]
        self.rng = random.Random(doc.get("seed", seed))


class State:
    """Plan and counters, shared by all connections."""

    def __init__(self, plan, delay_ms, bandwidth):
        self.lock = threading.Lock()
        self.plan = plan
        self.delay_ms = delay_ms
        self.bandwidth = bandwidth
        self.reset_counters()

    def reset_counters(self):
        self.requests = 0
        self.faults = 0
        self.by_action = {}
        self.connections = 0
        self.upstream_errors = 0
        self.bytes_to_client = 0
        self.bytes_to_upstream = 0

    def set_plan(self, plan):
        with self.lock:
            self.plan = plan

    def pick(self, req):
        """Count the request; return the rule to apply to it, or None."""
        with self.lock:
            self.requests += 1
            for rule in self.plan.rules:
                if rule.times is not None and rule.applied >= rule.times:
                    continue
                if not rule.matches(req):
                    continue
                rule.matched += 1
                if rule.matched <= rule.after:
                    continue
                if rule.probability < 1.0 and self.plan.rng.random() >= rule.probability:
                    continue
                rule.applied += 1
                self.faults += 1
                for name in rule.action_names:
                    self.by_action[name] = self.by_action.get(name, 0) + 1
                return rule
            return None

    def add(self, **kw):
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)

    def stats(self):
        with self.lock:
            return {
                "requests": self.requests,
                "faults": self.faults,
                "by_action": dict(self.by_action),
                "rules": [{"matched": r.matched, "applied": r.applied} for r in self.plan.rules],
                "connections": self.connections,
                "upstream_errors": self.upstream_errors,
                "bytes_to_client": self.bytes_to_client,
                "bytes_to_upstream": self.bytes_to_upstream,
            }


# --- HTTP plumbing ------------------------------------------------------------------------------------

class Closed(Exception):
    """The peer closed the connection (or sent garbage)."""


class Cut(Exception):
    """The byte budget of a reset/truncate action is used up."""


class Conn:
    """A socket with a read buffer that we can inspect."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.pipe = None

    def fill(self):
        data = self.sock.recv(BUF_SIZE)
        if not data:
            raise Closed("connection closed")
        self.buf += data

    def read_head(self, allow_eof=False):
        """Bytes up to and including the blank line; None on EOF before any byte if allow_eof."""
        start = 0
        while True:
            i = self.buf.find(b"\r\n\r\n", start)
            if i >= 0:
                head = bytes(self.buf[:i + 4])
                del self.buf[:i + 4]
                return head
            if len(self.buf) > MAX_HEAD:
                raise Closed("header too large")
            start = max(0, len(self.buf) - 3)
            try:
                self.fill()
            except Closed:
                if allow_eof and not self.buf:
                    return None
                raise

    def read_line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i + 2])
                del self.buf[:i + 2]
                return line
            if len(self.buf) > MAX_HEAD:
                raise Closed("line too long")
            self.fill()

    def relay(self, n, out):
        """Move exactly n bytes from this connection to out (a Sender)."""
        if self.buf:
            k = min(n, len(self.buf))
            chunk = bytes(self.buf[:k])
            del self.buf[:k]
            out.send(chunk)
            n -= k
        if n <= 0:
            return
        if out.plain() and hasattr(os, "splice"):
            self._splice(n, out)
            return
        buf = bytearray(min(BUF_SIZE, n))
        mv = memoryview(buf)
        while n > 0:
            k = self.sock.recv_into(mv, min(n, len(buf)))
            if k == 0:
                raise Closed("connection closed in a body")
            out.send(mv[:k])
            n -= k

    def _splice(self, n, out):
        """Zero-copy relay of n bytes socket -> pipe -> socket (Linux)."""
        if self.pipe is None:
            self.pipe = os.pipe()
            try:
                fcntl.fcntl(self.pipe[1], F_SETPIPE_SZ, 1 << 20)
            except OSError:
                pass
        rfd, wfd = self.pipe
        src = self.sock.fileno()
        dst = out.sock.fileno()
        timeout = self.sock.gettimeout()
        while n > 0:
            try:
                k = os.splice(src, wfd, min(n, 1 << 20), flags=SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
            except BlockingIOError:
                r, _, _ = select.select([src], [], [], timeout)
                if not r:
                    raise socket.timeout("upstream read timed out")
                continue
            if k == 0:
                raise Closed("connection closed in a body")
            n -= k
            left = k
            while left > 0:
                try:
                    left -= os.splice(rfd, dst, left, flags=SPLICE_F_MOVE)
                except BlockingIOError:
                    select.select([], [dst], [], UPSTREAM_TIMEOUT)
            out.account(k)

    def close(self):
        if self.pipe is not None:
            for fd in self.pipe:
                os.close(fd)
            self.pipe = None
        self.sock.close()

    def relay_to_eof(self, out):
        if self.buf:
            chunk = bytes(self.buf)
            self.buf.clear()
            out.send(chunk)
        buf = bytearray(BUF_SIZE)
        mv = memoryview(buf)
        while True:
            k = self.sock.recv_into(mv)
            if k == 0:
                return
            out.send(mv[:k])

    def relay_chunked(self, out):
        while True:
            line = self.read_line()
            out.send(line)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise Closed("bad chunk size") from None
            if size == 0:
                while True:  # trailers up to the blank line
                    t = self.read_line()
                    out.send(t)
                    if t == b"\r\n":
                        return
            self.relay(size + 2, out)


class Sender:
    """Writes to a socket with optional pacing (bytes/s) and an optional byte budget."""

    def __init__(self, sock, state, counter, rate=0, budget=None):
        self.sock = sock
        self.state = state
        self.counter = counter
        self.rate = rate
        self.budget = budget
        self.sent = 0
        self.t0 = time.monotonic()

    def plain(self):
        return not self.rate and self.budget is None and isinstance(self.sock, socket.socket)

    def account(self, n):
        self.sent += n
        if self.counter:
            self.state.add(**{self.counter: n})

    def send(self, data):
        if not len(data):
            return
        mv = memoryview(data)
        cut = False
        if self.budget is not None and self.sent + len(mv) >= self.budget:
            mv = mv[:self.budget - self.sent]
            cut = True
        if self.rate:
            step = max(1024, min(64 * 1024, self.rate // 50))
            for i in range(0, len(mv), step):
                part = mv[i:i + step]
                self.sock.sendall(part)
                self.sent += len(part)
                ahead = self.t0 + self.sent / self.rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        elif len(mv):
            self.sock.sendall(mv)
            self.sent += len(mv)
        if self.counter:
            self.state.add(**{self.counter: len(mv)})
        if cut:
            raise Cut()


class Request:
    def __init__(self, head):
        lines = head[:-4].split(b"\r\n")
        try:
            method, target, version = lines[0].decode("latin-1").split(" ", 2)
        except ValueError:
            raise Closed("bad request line") from None
        self.head = head
        self.method = method.upper()
        self.target = target
        self.version = version.strip()
        raw_path, _, self.query = target.partition("?")
        self.path = urllib.parse.unquote(raw_path)
        self.headers = _parse_headers(lines[1:])

    def header(self, name):
        return self.headers.get(name)


class Response:
    def __init__(self, head):
        lines = head[:-4].split(b"\r\n")
        parts = lines[0].decode("latin-1").split(" ", 2)
        try:
            self.version = parts[0]
            self.status = int(parts[1])
        except (IndexError, ValueError):
            raise Closed("bad status line") from None
        self.head = head
        self.headers = _parse_headers(lines[1:])


def _parse_headers(lines):
    headers = {}
    for line in lines:
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            continue
        name = name.strip().lower()
        value = value.strip()
        headers[name] = headers[name] + ", " + value if name in headers else value
    return headers


def _tokens(value):
    return {t.strip().lower() for t in (value or "").split(",")}


def _rst(sock):
    """Close abruptly: the peer gets a TCP RST, not a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def _wait_sent(sock, timeout=2.0):
    """Wait until the peer has acknowledged everything we sent (so an RST cannot overtake it)."""
    end = time.monotonic() + timeout
    buf = bytearray(4)
    while time.monotonic() < end:
        try:
            fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, buf)
        except OSError:
            return
        if struct.unpack("i", buf)[0] == 0:
            return
        time.sleep(0.001)


def _request_body_framing(req):
    """('length', n) | ('chunked', None) | ('none', 0)"""
    if "chunked" in _tokens(req.header("transfer-encoding")):
        return "chunked", None
    cl = req.header("content-length")
    if cl is not None:
        try:
            return "length", int(cl)
        except ValueError:
            raise Closed("bad content-length") from None
    return "none", 0


def _response_body_framing(req, resp):
    if req.method == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200:
        return "none", 0
    if "chunked" in _tokens(resp.headers.get("transfer-encoding")):
        return "chunked", None
    cl = resp.headers.get("content-length")
    if cl is not None:
        try:
            return "length", int(cl)
        except ValueError:
            raise Closed("bad content-length") from None
    return "eof", None


# --- the proxy ------------------------------------------------------------------------------------

class Handler(socketserver.BaseRequestHandler):
    server: "Server"

    def setup(self):
        self.state = self.server.state
        self.csock = self.request
        self.csock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client = Conn(self.csock)
        self.up = None
        self.state.add(connections=1)

    def finish(self):
        self._drop_upstream()
        if self.client.pipe is not None:
            for fd in self.client.pipe:
                os.close(fd)
            self.client.pipe = None

    def log(self, msg):
        if self.server.verbose:
            sys.stderr.write(f"fault_proxy: {msg}\n")

    def handle(self):
        try:
            while True:
                head = self.client.read_head(allow_eof=True)
                if head is None:
                    return
                req = Request(head)
                if req.path.startswith("/__fault/"):
                    if not self._control(req):
                        return
                    continue
                if not self._proxy(req):
                    return
        except (Closed, Cut, OSError) as e:
            self.log(f"connection ended: {e!r}")

    # --- control endpoints ---
    def _control(self, req):
        kind, n = _request_body_framing(req)
        body = b""
        if kind == "length" and n:
            if "100-continue" in _tokens(req.header("expect")):
                self.csock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            while len(self.client.buf) < n:
                self.client.fill()
            body = bytes(self.client.buf[:n])
            del self.client.buf[:n]
        elif kind == "chunked":
            self._send_simple(400, {"error": "chunked control requests are not supported"}, close=True)
            return False
        status, doc = 200, None
        if req.method == "GET" and req.path == "/__fault/stats":
            doc = self.state.stats()
        elif req.method == "GET" and req.path == "/__fault/plan":
            with self.state.lock:
                doc = self.state.plan.doc
        elif req.method == "POST" and req.path == "/__fault/plan":
            try:
                plan = Plan(json.loads(body.decode("utf-8") or "null"), self.server.seed)
                self.state.set_plan(plan)
                doc = {"ok": True, "rules": len(plan.rules)}
            except (ValueError, PlanError) as e:
                status, doc = 400, {"error": str(e)}
        elif req.method == "POST" and req.path == "/__fault/reset":
            with self.state.lock:
                self.state.plan = Plan(None, self.server.seed)
                self.state.reset_counters()
            doc = {"ok": True}
        else:
            status, doc = 404, {"error": "unknown control endpoint"}
        self._send_simple(status, doc)
        return True

    def _send_simple(self, status, doc, close=False):
        body = (json.dumps(doc, indent=1) + "\n").encode()
        head = (f"HTTP/1.1 {status} {REASONS.get(status, 'OK')}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                + ("Connection: close\r\n" if close else "") + "\r\n")
        self.csock.sendall(head.encode() + body)

    # --- upstream connection ---
    def _drop_upstream(self):
        if self.up is not None:
            try:
                self.up.close()
            except OSError:
                pass
            self.up = None

    def _upstream(self):
        if self.up is not None:
            # Reuse only if the upstream has not closed the idle connection meanwhile.
            stale = bool(self.up.buf)
            if not stale:
                r, _, _ = select.select([self.up.sock], [], [], 0)
                if r:
                    try:
                        stale = True  # data or EOF while idle: either way unusable
                        self.up.sock.recv(1, socket.MSG_PEEK)
                    except OSError:
                        pass
            if not stale:
                return self.up
            self._drop_upstream()
        host, port = self.server.upstream
        try:
            s = socket.create_connection((host, port), timeout=10)
        except OSError as e:
            self.state.add(upstream_errors=1)
            self.log(f"cannot connect upstream: {e}")
            return None
        s.settimeout(UPSTREAM_TIMEOUT)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.up = Conn(s)
        return self.up

    # --- one request ---
    def _proxy(self, req):
        """Handle one request; False when the client connection must end."""
        st = self.state
        rule = st.pick(req)
        delay_ms = st.delay_ms + (rule.delay_ms if rule else 0)
        rates = [r for r in (st.bandwidth, rule.bandwidth if rule else 0) if r]
        rate = min(rates) if rates else 0
        kind, length = _request_body_framing(req)
        has_body = kind == "chunked" or (kind == "length" and length > 0)
        expect = "100-continue" in _tokens(req.header("expect"))
        client_close = ("close" in _tokens(req.header("connection"))
                        or (req.version == "HTTP/1.0"
                            and "keep-alive" not in _tokens(req.header("connection"))))
        if rule:
            self.log(f"{req.method} {req.target}: rule {rule.index} {json.dumps(rule.spec['action'])}")

        if rule and rule.reset_before:
            _rst(self.csock)
            return False

        if rule and rule.status is not None:
            if has_body and expect:
                # The client waits for 100 Continue: answer without reading the body, then close.
                self._sleep(delay_ms)
                self._send_error(req, rule, close=True)
                return False
            if has_body:
                sink = Sender(_NullSock(), None, None)
                if kind == "chunked":
                    self.client.relay_chunked(sink)
                else:
                    self.client.relay(length, sink)
            self._sleep(delay_ms)
            self._send_error(req, rule, close=client_close)
            return not client_close

        up = self._upstream()
        if up is None:
            self._send_error(req, None, close=True, status=502, code="BadGateway",
                             message="fault_proxy: cannot connect to the upstream")
            return False

        try:
            up.sock.sendall(req.head)
        except OSError:
            self._drop_upstream()
            up = self._upstream()
            if up is None:
                self._send_error(req, None, close=True, status=502, code="BadGateway",
                                 message="fault_proxy: cannot connect to the upstream")
                return False
            up.sock.sendall(req.head)

        resp = None
        sent_100 = False
        if has_body:
            if expect:
                resp, sent_100 = self._await_continue(up)
            if resp is None:
                to_up = Sender(up.sock, st, "bytes_to_upstream", rate=rate)
                try:
                    if kind == "chunked":
                        self.client.relay_chunked(to_up)
                    else:
                        self.client.relay(length, to_up)
                except Closed:
                    raise  # the client went away in the middle of its body
                except OSError:
                    # The upstream stopped reading (it may have answered early): pass on its answer.
                    client_close = True
            else:
                # Final answer before the body: the client may or may not still send the body.
                client_close = True

        try:
            while resp is None or resp.status < 200:
                resp = Response(up.read_head())
                if resp.status == 100 and sent_100:
                    resp = None
                    continue
                if resp.status < 200:
                    self.csock.sendall(resp.head)
                    sent_100 = sent_100 or resp.status == 100
                    resp = None
        except (Closed, OSError) as e:
            st.add(upstream_errors=1)
            self.log(f"upstream failed before the response: {e!r}")
            self._drop_upstream()
            _rst(self.csock)
            return False

        self._sleep(delay_ms)
        rkind, rlength = _response_body_framing(req, resp)
        budget = None
        if rule and rule.reset_after is not None:
            budget = rule.reset_after
        elif rule and rule.truncate_after is not None:
            budget = rule.truncate_after
        to_client = Sender(self.csock, st, "bytes_to_client", rate=rate, budget=budget)
        self.csock.sendall(resp.head)
        try:
            try:
                if rkind == "length":
                    up.relay(rlength, to_client)
                elif rkind == "chunked":
                    up.relay_chunked(to_client)
                elif rkind == "eof":
                    up.relay_to_eof(to_client)
            except (Closed, OSError) as e:
                # The upstream broke off the body (or the client went away): make the client
                # see a broken body too.
                st.add(upstream_errors=1)
                self.log(f"upstream failed in a response body: {e!r}")
                self._drop_upstream()
                _rst(self.csock)
                return False
            if budget is not None:
                raise Cut()  # the whole response fit in the budget: cut afterwards
        except Cut:
            self._drop_upstream()
            if rule.reset_after is not None:
                _wait_sent(self.csock)
                _rst(self.csock)
            else:
                try:
                    self.csock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                _wait_sent(self.csock)
                self.csock.close()
            return False

        upstream_close = ("close" in _tokens(resp.headers.get("connection"))
                          or rkind == "eof" or resp.version == "HTTP/1.0")
        if upstream_close:
            self._drop_upstream()
        return not (client_close or upstream_close)

    def _await_continue(self, up):
        """After sending an `Expect: 100-continue` head: wait for the upstream's interim answer,
        or for the client to start its body anyway. Returns (final_response_or_None, sent_100)."""
        while True:
            if self.client.buf:
                return None, False
            r, _, _ = select.select([up.sock, self.csock], [], [], UPSTREAM_TIMEOUT)
            if not r:
                raise Closed("no answer to Expect: 100-continue")
            if up.sock in r:
                resp = Response(up.read_head())
                if resp.status == 100:
                    self.csock.sendall(resp.head)
                    return None, True
                if resp.status < 200:
                    self.csock.sendall(resp.head)
                    continue
                return resp, False
            if self.csock in r:
                return None, False

    def _sleep(self, ms):
        if ms > 0:
            time.sleep(ms / 1000.0)

    def _send_error(self, req, rule, close, status=None, code=None, message=None):
        status = status if status is not None else rule.status
        dcode, dmsg = DEFAULT_ERRORS.get(status, ("InjectedFault", "Injected by fault_proxy."))
        code = code or (rule.code if rule and rule.code else dcode)
        message = message or (rule.message if rule and rule.message else dmsg)
        request_id = f"faultproxy-{self.state.requests}"
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{_xml(code)}</Code>'
                f"<Message>{_xml(message)}</Message><Resource>{_xml(req.path)}</Resource>"
                f"<RequestId>{request_id}</RequestId></Error>").encode()
        if req.method == "HEAD":
            body = b""
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}",
                 "Content-Type: application/xml",
                 f"Content-Length: {len(body)}",
                 f"x-amz-request-id: {request_id}",
                 "Date: " + time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())]
        if rule:
            lines += [f"{k}: {v}" for k, v in rule.headers.items()]
        if close:
            lines.append("Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        self.csock.sendall(data)
        self.state.add(bytes_to_client=len(body))


class _NullSock:
    def sendall(self, data):
        pass


def _xml(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        if self.verbose:
            super().handle_error(request, client_address)

    def shutdown_request(self, request):
        # A connection we reset is already closed; socketserver's shutdown(SHUT_WR) would be a FIN.
        if request.fileno() == -1:
            return
        super().shutdown_request(request)


# --- main -----------------------------------------------------------------------------------------

def _parse_upstream(url):
    u = urllib.parse.urlsplit(url)
    if u.scheme != "http" or not u.hostname or not u.port:
        raise SystemExit(f"fault_proxy: --upstream must look like http://127.0.0.1:PORT, not {url!r}")
    host = u.hostname
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise SystemExit(f"fault_proxy: the upstream must be on loopback, not {host!r}")
    return host, u.port


def _parse_listen(s):
    host, sep, port = s.rpartition(":")
    if not sep or not port.isdigit():
        raise SystemExit(f"fault_proxy: --listen must be HOST:PORT, not {s!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Fault-injecting HTTP/1.1 reverse proxy for S3 tests.")
    ap.add_argument("--upstream", required=True, help="http://127.0.0.1:PORT of the real server")
    ap.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT to listen on (default 127.0.0.1:0)")
    ap.add_argument("--port-file", help="write the chosen port to this file once listening")
    ap.add_argument("--plan", help="fault plan JSON file")
    ap.add_argument("--seed", type=int, default=0, help="RNG seed when the plan has none (default 0)")
    ap.add_argument("--delay-ms", type=int, default=0, help="delay before every response's headers")
    ap.add_argument("--bandwidth", type=int, default=0,
                    help="bytes/s per connection and direction for all bodies (0: unlimited)")
    ap.add_argument("-v", "--verbose", action="store_true", help="log connections and faults to stderr")
    args = ap.parse_args(argv)

    upstream = _parse_upstream(args.upstream)
    plan = Plan(None, args.seed)
    if args.plan:
        try:
            with open(args.plan, encoding="utf-8") as f:
                plan = Plan(json.load(f), args.seed)
        except (OSError, ValueError, PlanError) as e:
            raise SystemExit(f"fault_proxy: bad plan {args.plan}: {e}")

    host, port = _parse_listen(args.listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    Server.address_family = family
    server = Server((host, port), Handler)
    server.state = State(plan, args.delay_ms, args.bandwidth)
    server.upstream = upstream
    server.seed = args.seed
    server.verbose = args.verbose
    port = server.server_address[1]

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        if args.port_file:
            tmp = f"{args.port_file}.tmp{os.getpid()}"
            with open(tmp, "w") as f:
                f.write(f"{port}\n")
            os.replace(tmp, args.port_file)
        print(port, flush=True)
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        sys.exit(0)
