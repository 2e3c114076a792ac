"""A local HTTP server that speaks enough of Anthropic's Messages API for the real SDK (tests, HealBench).

Answers are scripted: each request pops the next (status, body, headers). Every request
is recorded (path, headers, JSON body) so tests can assert what left the machine. A hostile
gateway is scripted too: ``Raw`` bytes (not JSON, no content-length), ``Hang`` (answer late,
or never), ``Trickle`` (a body a few bytes at a time).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_ids = itertools.count(1)


def usage(input_tokens=1200, output_tokens=200, cache_write=900, cache_read=0) -> dict:
    return {"input_tokens": input_tokens, "output_tokens": output_tokens,
            "cache_creation_input_tokens": cache_write, "cache_read_input_tokens": cache_read}


def tool_answer(name: str, tool_input: dict, model: str = "claude-sonnet-4-5", **usage_kw) -> tuple[int, dict, dict]:
    n = next(_ids)
    return 200, {
        "id": f"msg_{n:04d}", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": "Here is my answer."},
                    {"type": "tool_use", "id": f"toolu_{n:04d}", "name": name, "input": tool_input}],
        "stop_reason": "tool_use", "stop_sequence": None, "usage": usage(**usage_kw),
    }, {}


def fix(edits: list[dict], root_cause="repair", confidence=0.8, changes_meaning=False, doubts=None, **usage_kw):
    return tool_answer("propose_fix", {"root_cause": root_cause, "rationale": f"because {root_cause}", "edits": edits,
                                       "confidence": confidence, "changes_meaning": changes_meaning,
                                       "doubts": doubts or []}, **usage_kw)


def error(status: int, kind: str, message: str, retry_after_ms: int | None = 5) -> tuple[int, dict, dict]:
    headers = {"retry-after-ms": str(retry_after_ms)} if retry_after_ms is not None else {}
    return status, {"type": "error", "error": {"type": kind, "message": message}}, headers


@dataclass
class Raw:
    """An answer sent byte for byte: a body that is not JSON, or one without a content-length
    (HTTP/1.0: the body ends when the connection closes)."""

    status: int
    body: bytes
    content_type: str = "application/json"
    content_length: bool = True
    headers: dict = field(default_factory=dict)


@dataclass
class Hang:
    """Say nothing for ``seconds`` (cut short when the server stops), then answer ``then``, if given."""

    seconds: float
    then: object = None


@dataclass
class Trickle:
    """A 200 whose body comes ``step`` bytes every ``every_s`` seconds."""

    body: bytes
    step: int = 1
    every_s: float = 0.2


class MessagesServer:
    """``with MessagesServer() as server:`` then point ANTHROPIC_BASE_URL at ``server.url``."""

    def __init__(self, script: list | None = None):
        self.script = list(script or [])
        self.requests: list[dict] = []
        self.stopping = threading.Event()  # wakes Hang handlers, so that stopping the server is quick
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                outer.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                       "body": body})
                if self.path != "/v1/messages":
                    return self._send(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}}, {})
                if not outer.script:
                    return self._send(500, {"type": "error", "error": {"type": "api_error", "message": "script exhausted"}}, {})
                answer = outer.script.pop(0)
                try:
                    self._answer(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout, its deadline): as it should

            def _answer(self, answer):
                if isinstance(answer, Hang):
                    if outer.stopping.wait(answer.seconds) or answer.then is None:
                        return
                    return self._answer(answer.then)
                if isinstance(answer, Raw):
                    return self._send_raw(answer.status, answer.body, answer.content_type, answer.headers,
                                          answer.content_length)
                if isinstance(answer, Trickle):
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.end_headers()
                    for i in range(0, len(answer.body), answer.step):
                        if outer.stopping.wait(answer.every_s):
                            return
                        self.wfile.write(answer.body[i:i + answer.step])
                        self.wfile.flush()
                    return
                status, payload, headers = answer
                self._send(status, payload, headers)

            def _send_raw(self, status, data, content_type, headers, content_length=True):
                self.send_response(status)
                self.send_header("content-type", content_type)
                if content_length:
                    self.send_header("content-length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _send(self, status, payload, headers):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("request-id", f"req_{len(outer.requests)}")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        # a short poll: shutdown() waits for it, once per test
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def user_texts(self, i: int) -> str:
        """All text the client sent in request ``i`` (messages and tool results), as one string."""
        return json.dumps(self.requests[i]["body"]["messages"])
