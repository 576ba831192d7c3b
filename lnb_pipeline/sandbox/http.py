"""The HTTP layer both sandbox servers share: routing to an API, control endpoints, faults, stats.

Built on the standard library's threading HTTP server rather than an ASGI stack because the
sandbox must misbehave at the socket level (close a connection before answering, or after
applying a request but before the answer leaves), which ASGI cannot express.
"""

from __future__ import annotations

import json
import random
import shutil
import socket
import threading
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

FAULT_KINDS = ("http_500", "http_503", "timeout", "drop", "throttle", "malformed_json", "lost_ack")
RECENT_REQUESTS_KEPT = 2000
DEFAULT_TIMEOUT_FAULT_SECONDS = 30.0


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON; raises ``ValueError`` on a body that is not JSON."""
        if not self.body:
            return None
        return json.loads(self.body)


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    file: Path | None = None
    """Streamed instead of ``body`` when set, so large bulk results never sit in memory."""

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return cls(
            status,
            json.dumps(payload, separators=(",", ":")).encode(),
            {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
        )


@dataclass
class Fault:
    kind: str
    match: str | None
    count: int | None
    rate: float | None
    seconds: float

    @classmethod
    def from_json(cls, payload: Any) -> Fault:
        if not isinstance(payload, dict):
            raise ValueError("a fault is a JSON object")
        kind = payload.get("kind")
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        match = payload.get("match")
        if match is not None and not isinstance(match, str):
            raise ValueError("match must be a string (LNB path prefix or Shopify root field)")
        count, rate = payload.get("count"), payload.get("rate")
        if count is not None and rate is not None:
            raise ValueError("give either count or rate, not both")
        if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
            raise ValueError("count must be a positive integer")
        if rate is not None and (not isinstance(rate, (int, float)) or not 0 <= rate <= 1):
            raise ValueError("rate must be a number from 0 to 1")
        if count is None and rate is None:
            count = 1
        seconds = payload.get("seconds", DEFAULT_TIMEOUT_FAULT_SECONDS)
        if not isinstance(seconds, (int, float)) or seconds < 0:
            raise ValueError("seconds must be a non-negative number")
        return cls(kind, match, count, None if rate is None else float(rate), float(seconds))

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "match": self.match, "count": self.count, "rate": self.rate,
                "seconds": self.seconds}


class FaultBook:
    """Armed faults; each request consumes at most one, the first that matches."""

    def __init__(self, seed: int = 0) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._random = random.Random(seed)

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def armed(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_json() for f in self._faults]

    def take(self, targets: list[str], matches: Callable[[str, str], bool]) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.match is not None and not any(matches(fault.match, target) for target in targets):
                    continue
                if fault.rate is not None:
                    if self._random.random() < fault.rate:
                        return fault
                    continue
                assert fault.count is not None
                fault.count -= 1
                if fault.count == 0:
                    self._faults.remove(fault)
                return fault
        return None


class Stats:
    """Counters behind ``GET /_sandbox/stats``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests: Counter[str] = Counter()
            self.statuses: Counter[int] = Counter()
            self.faults: Counter[str] = Counter()
            self.extra: Counter[str] = Counter()
            self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_REQUESTS_KEPT)

    def record(self, keys: list[str], status: int, entry: dict[str, Any]) -> None:
        with self._lock:
            for key in keys:
                self.requests[key] += 1
            self.statuses[status] += 1
            self.recent.append(entry)

    def count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.extra[name] += amount

    def fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": dict(self.requests),
                "total_requests": sum(self.statuses.values()),
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "errors": sum(v for k, v in self.statuses.items() if k >= 400),
                "faults_injected": dict(self.faults),
                **dict(self.extra),
            }

    def recent_requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.recent)


class SandboxApi:
    """One simulated API. Subclasses implement ``handle`` and describe requests for stats/faults."""

    name = "api"
    base_url = ""
    """Where the server answers; set by ``SandboxServer`` once its port is known."""

    def __init__(self) -> None:
        self.faults = FaultBook()
        self.stats = Stats()

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def request_keys(self, request: Request) -> list[str]:
        """Names under which a request is counted and matched by faults."""
        raise NotImplementedError

    def fault_targets(self, request: Request) -> list[str]:
        """What a fault's ``match`` is compared with (a path, or GraphQL root fields)."""
        return self.request_keys(request)

    def fault_matches(self, match: str, target: str) -> bool:
        return target == match

    def log_entry(self, request: Request) -> dict[str, Any]:
        return {"method": request.method, "path": request.path, "query": None, "variables": None}

    def throttled_response(self, request: Request) -> Response:
        raise NotImplementedError

    def reset(self, payload: Any) -> None:
        """Restore the scenario's data; subclasses extend."""
        self.faults.clear()
        self.stats.reset()

    def configure(self, payload: Any) -> dict[str, Any]:
        raise ValueError("this sandbox has no settings to change")

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "api": self.name}

    def control(self, request: Request) -> Response:
        route = request.path.removeprefix("/_sandbox/")
        try:
            payload = request.json() if request.method == "POST" else None
        except ValueError:
            return Response.json({"error": "body is not valid JSON"}, 400)
        try:
            if (request.method, route) == ("GET", "health"):
                return Response.json(self.health())
            if (request.method, route) == ("GET", "stats"):
                return Response.json(self.stats.snapshot())
            if (request.method, route) == ("GET", "requests"):
                return Response.json(self.stats.recent_requests())
            if (request.method, route) == ("GET", "faults"):
                return Response.json(self.faults.armed())
            if (request.method, route) == ("POST", "faults"):
                faults = payload if isinstance(payload, list) else [payload]
                parsed = [Fault.from_json(f) for f in faults]
                for fault in parsed:
                    self.faults.add(fault)
                return Response.json({"armed": self.faults.armed()})
            if (request.method, route) == ("DELETE", "faults"):
                self.faults.clear()
                return Response.json({"armed": []})
            if (request.method, route) == ("POST", "reset"):
                self.reset(payload or {})
                return Response.json({"status": "reset"})
            if (request.method, route) == ("POST", "config"):
                return Response.json(self.configure(payload or {}))
        except ValueError as error:
            return Response.json({"error": str(error)}, 400)
        extra = self.extra_control(request, route)
        if extra is not None:
            return extra
        return Response.json({"error": f"no control endpoint {request.method} /_sandbox/{route}"}, 404)

    def extra_control(self, request: Request, route: str) -> Response | None:
        return None

    def close(self) -> None:
        """Release what the API holds besides its server (the Shopify sandbox: its bulk storage server)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    """Headers and body leave in separate writes; with Nagle on, each answer would wait ~40 ms."""
    server: _SandboxHttpServer

    def log_message(self, format: str, *args: Any) -> None:
        """Request lines go to ``/_sandbox/requests`` instead of stderr."""

    def _serve(self) -> None:
        api = self.server.api
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=split.path,
            params=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        if request.path.startswith("/_sandbox/"):
            self._send(api.control(request))
            return
        keys = api.request_keys(request)
        entry = api.log_entry(request)
        fault = api.faults.take(api.fault_targets(request), api.fault_matches)
        if fault is not None:
            api.stats.fault(fault.kind)
        response = self._respond(api, request, fault)
        entry["status"] = 0 if response is None else response.status
        api.stats.record(keys, entry["status"], entry)
        if response is None:
            self._drop()
        else:
            self._send(response)

    def _respond(self, api: SandboxApi, request: Request, fault: Fault | None) -> Response | None:
        """The answer to send, or None to close the connection without one."""
        if fault is None:
            return self._handle_safely(api, request)
        if fault.kind in ("http_500", "http_503"):
            status = int(fault.kind.removeprefix("http_"))
            return Response.json({"errors": f"Injected fault: HTTP {status}"}, status)
        if fault.kind == "timeout":
            time.sleep(fault.seconds)
            return None
        if fault.kind == "drop":
            return None
        if fault.kind == "throttle":
            return api.throttled_response(request)
        if fault.kind == "malformed_json":
            return Response(200, b'{"data": {"truncated', {"Content-Type": "application/json"})
        if fault.kind == "lost_ack":
            self._handle_safely(api, request)
            return None
        raise AssertionError(fault.kind)

    def _handle_safely(self, api: SandboxApi, request: Request) -> Response:
        """A bug in the sandbox answers 500 with its cause instead of killing the connection."""
        try:
            return api.handle(request)
        except Exception as error:
            traceback.print_exc()
            return Response.json({"errors": f"Sandbox internal error: {error!r}"}, 500)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.file is not None:
            self.send_header("Content-Length", str(response.file.stat().st_size))
            self.end_headers()
            with response.file.open("rb") as stream:
                shutil.copyfileobj(stream, self.wfile, 1 << 20)
            return
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve


class _SandboxHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], api: SandboxApi) -> None:
        self.api = api
        super().__init__(address, _Handler)


class SandboxServer:
    """Serves one ``SandboxApi`` on a background thread; port 0 picks a free port."""

    def __init__(self, api: SandboxApi, host: str = "127.0.0.1", port: int = 0) -> None:
        self.api = api
        self._httpd = _SandboxHttpServer((host, port), api)
        api.base_url = self.url
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=f"sandbox-{api.name}", daemon=True
        )

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        host = self._httpd.server_address[0]
        return f"http://{host}:{self.port}"

    def start(self) -> SandboxServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        self.api.close()
