"""devloop.adapters.kube.transport against a real (plain HTTP) server: typed errors, retries, bodies."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from devloop.adapters.kube import ApiError, Conflict, Kubeconfig, NotFound, Unprocessable
from devloop.adapters.kube.transport import Transport
from devloop.base.errors import ClusterError


class _Api(BaseHTTPRequestHandler):
    # path -> list of (status, body) answered in turn (the last one repeats)
    answers: dict[str, list[tuple[int, dict | None]]] = {}
    seen: list[tuple[str, str, dict | None]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.seen.append((self.command, self.path, body))
        queue = self.answers.get(self.path.split("?")[0]) or [
            (404, {"kind": "Status", "reason": "NotFound", "message": "nothing here"})
        ]
        status, payload = queue.pop(0) if len(queue) > 1 else queue[0]
        data = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def api(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Api.answers, _Api.seen = {}, []
    path = tmp_path / "config"
    path.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "p", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
                "contexts": [{"name": "p", "context": {"cluster": "p", "user": "p"}}],
                "users": [{"name": "p", "user": {}}],
            }
        )
    )
    transport = Transport(Kubeconfig.load(str(path)), "p", request_timeout=5)
    try:
        yield transport
    finally:
        transport.close()
        server.shutdown()
        server.server_close()


def _status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "code": code, "reason": reason, "message": message}


@pytest.mark.parametrize(
    ("code", "reason", "error"),
    [
        (404, "NotFound", NotFound),
        (409, "AlreadyExists", Conflict),
        (422, "Invalid", Unprocessable),
        (400, "BadRequest", ApiError),
    ],
)
def test_error_statuses_raise_typed_errors(api, code, reason, error):
    _Api.answers["/api/v1/namespaces/x"] = [(code, _status(code, reason, "said the server"))]
    with pytest.raises(error) as info:
        api.request("GET", "/api/v1/namespaces/x")
    assert type(info.value) is error
    assert info.value.status == code and info.value.reason == reason
    assert info.value.message == f"GET /api/v1/namespaces/x: HTTP {code}: said the server"


def test_forbidden_hints_at_the_credentials(api):
    _Api.answers["/api/v1/pods"] = [(403, _status(403, "Forbidden", "no"))]
    with pytest.raises(ApiError) as info:
        api.request("GET", "/api/v1/pods")
    assert "credentials of context 'p'" in info.value.hint


def test_get_is_none_for_not_found_and_the_body_otherwise(api):
    assert api.get("/api/v1/namespaces/absent") is None
    _Api.answers["/api/v1/namespaces/there"] = [(200, {"metadata": {"name": "there"}})]
    assert api.get("/api/v1/namespaces/there") == {"metadata": {"name": "there"}}


def test_json_body_and_query_reach_the_server(api):
    _Api.answers["/api/v1/namespaces"] = [(201, {"metadata": {"name": "n"}})]
    got = api.request(
        "POST", "/api/v1/namespaces", query={"dryRun": "All", "skip": None}, body={"metadata": {"name": "n"}}
    )
    assert got == {"metadata": {"name": "n"}}
    assert _Api.seen[-1] == ("POST", "/api/v1/namespaces?dryRun=All", {"metadata": {"name": "n"}})


def test_transient_answers_are_retried_then_reported(api):
    _Api.answers["/flaky"] = [(503, _status(503, "ServiceUnavailable", "warming up")), (200, {"ok": True})]
    assert api.request("GET", "/flaky") == {"ok": True}
    _Api.answers["/down"] = [(503, _status(503, "ServiceUnavailable", "still down"))]
    with pytest.raises(ClusterError) as info:
        api.request("GET", "/down")
    assert "HTTP 503: still down (after 4 attempts)" in info.value.message
    assert [p for _, p, _ in _Api.seen].count("/down") == 4
