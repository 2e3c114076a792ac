"""A local HTTP server that speaks enough of Anthropic's Messages API for the real SDK.

Answers are scripted: each request pops the next (status, body, headers). Every request
is recorded (path, headers, JSON body) so tests can assert what left the machine.
"""

from __future__ import annotations

import itertools
import json
import threading
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


class MessagesServer:
    """``with MessagesServer() as server:`` then point ANTHROPIC_BASE_URL at ``server.url``."""

    def __init__(self, script: list | None = None):
        self.script = list(script or [])
        self.requests: list[dict] = []
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
                status, payload, headers = outer.script.pop(0)
                self._send(status, payload, headers)

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
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def user_texts(self, i: int) -> str:
        """All text the client sent in request ``i`` (messages and tool results), as one string."""
        return json.dumps(self.requests[i]["body"]["messages"])
