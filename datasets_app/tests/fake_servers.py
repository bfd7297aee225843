"""Real HTTP servers on loopback for tests: a JSON endpoint and an
OpenAI-compatible chat completions API (no network beyond 127.0.0.1)."""

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    server: "FakeServer"

    def log_message(self, *args):  # keep test output quiet
        pass

    def _reply(self, status: int, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        with self.server.lock:
            self.server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            hits = self.server.hits[self.path] = self.server.hits.get(self.path, 0) + 1
        if self.path.endswith("/chat/completions"):
            return self._chat(body)
        if self.path == "/echo":
            return self._reply(200, {"echo": body})
        if self.path == "/flaky":  # 503 twice, then fine
            return self._reply(503, {"error": "overloaded"}) if hits <= 2 else self._reply(200, {"ok": hits})
        if self.path == "/odd-json":  # what Python's JSON reader accepts but storage cannot hold
            reply = {"surrogate": b'{"text": "\\ud800"}', "nan": b'{"value": NaN}'}.get(body.get("kind"))
            return self._reply(200, reply or {"fine": body})
        if self.path == "/bad-request":
            return self._reply(400, b"<html>  missing   field 'question' </html>", "text/html")
        return self._reply(404, {"error": "no such path"})

    def _chat(self, body):
        usage = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
        if body.get("tools"):  # an autoevals judge asking for select_choice
            choices = body["tools"][0]["function"]["parameters"]["properties"]["choice"]["enum"]
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {
                            "name": "select_choice",
                            "arguments": json.dumps({"reasons": "The answers agree.", "choice": choices[-1]}),
                        },
                    }
                ],
            }
        else:
            question = body["messages"][-1]["content"]
            message = {"role": "assistant", "content": f"Answer to: {question}"}
        self._reply(
            200,
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": body.get("model", "fake-model"),
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": usage,
            },
        )


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.hits: dict[str, int] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


@contextmanager
def fake_server():
    server = FakeServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
