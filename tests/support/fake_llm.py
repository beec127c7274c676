"""A small OpenAI-compatible chat server on loopback, scriptable by tests.

It speaks just enough of ``POST /v1/chat/completions`` for the real
``openai`` client.  Tests queue what the next requests get::

    llm.script(FakeLlm.json({"answer": ...}))      # a canned JSON answer
    llm.script(FakeLlm.status(429), FakeLlm.status(500), FakeLlm.json(...))
    llm.script(FakeLlm.garbage("not json"))
    llm.script(FakeLlm.delay(5.0, FakeLlm.json(...)))  # slow answer (timeouts, kills)
    llm.script(FakeLlm.tool_calls(("lookup", {"codes": ["J1030"]})))   # the model calls tools

With nothing queued it answers ``default`` (a plain valid draft).  Every
request body is kept in ``requests`` so tests can check what the model saw.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Step:
    status: int = 200
    body: str = ""
    delay: float = 0.0


DEFAULT_DRAFT = {
    "answer": "Draft answer from the test model.",
    "cited_codes": [],
    "confidence": 0.6,
    "questions": [],
}


class FakeLlm:
    def __init__(self) -> None:
        self.steps: deque[Step] = deque()
        self.requests: list[dict[str, Any]] = []
        self.default: Step = self.json(DEFAULT_DRAFT)
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, json.dumps({"error": {"message": "not found"}}))
                    return
                with fake._lock:
                    fake.requests.append(body)
                    step = fake.steps.popleft() if fake.steps else fake.default
                if step.delay:
                    time.sleep(step.delay)
                self._send(step.status, step.body)

            def _send(self, status: int, body: str) -> None:
                data = body.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    if status in (429, 500, 502, 503):
                        self.send_header("retry-after-ms", "10")  # keep client backoff short
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="fake-llm")

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> FakeLlm:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def script(self, *steps: Step) -> None:
        with self._lock:
            self.steps.extend(steps)

    def reset(self) -> None:
        with self._lock:
            self.steps.clear()
            self.requests.clear()
            self.default = self.json(DEFAULT_DRAFT)

    # -- step builders ---------------------------------------------------------

    @staticmethod
    def completion(content: str, model: str = "fake-model") -> str:
        return json.dumps({
            "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })

    @classmethod
    def json(cls, draft: dict[str, Any]) -> Step:
        return Step(200, cls.completion(json.dumps(draft)))

    @staticmethod
    def tool_calls(*calls: tuple[str, dict[str, Any]], model: str = "fake-model") -> Step:
        """A completion that calls tools instead of answering (OpenAI ``tool_calls``)."""
        return Step(200, json.dumps({
            "id": "chatcmpl-tools", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": None,
                "tool_calls": [{"id": f"call_{i}", "type": "function",
                                "function": {"name": name, "arguments": json.dumps(args)}}
                               for i, (name, args) in enumerate(calls)]}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }))

    @classmethod
    def garbage(cls, content: str = "Sure! Here is your answer: 20610 is fine.") -> Step:
        return Step(200, cls.completion(content))

    @staticmethod
    def status(code: int) -> Step:
        return Step(code, json.dumps({"error": {"message": f"test error {code}", "type": "test"}}))

    @staticmethod
    def delay(seconds: float, step: Step) -> Step:
        return Step(step.status, step.body, seconds)
