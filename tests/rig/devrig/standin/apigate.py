"""The Docker >= 29 API-version gate: a unix-socket proxy in front of a profile's engine.

Docker 29.0 raised the daemon's minimum API version to 1.44 (moby#51186); a request whose path starts
`/vX.Y/` with X.Y below the minimum gets 400 and `{"message":"client version X.Y is too old. Minimum
supported API version is 1.44, please upgrade your client to a newer version"}` (moby's
versionUnsupportedError). `DOCKER_MIN_API_VERSION` in the daemon's environment moves the minimum
(moby#46887). The rig's dockerd is Debian's 20.10 (API 1.41), so the gate also plays the newer daemon
towards its clients: `/_ping` answers with `Api-Version: 1.52` (Docker 29.1), so that negotiating
clients stay at their own version, and an accepted request above 1.41 is passed on as /v1.41/.
Responses are passed through untouched; a hijacked stream (attach, exec) is piped raw after its request.

Run: python -m devrig.standin.apigate LISTEN_SOCKET UPSTREAM_SOCKET|machine:MACHINE_DIR MIN_API
The kubelet dials the gate when <home>/machines/P/kubelet-docker-endpoint names its socket
(devrig/machine.py reads it); the stand-in's `start` writes it when the release's engine has a floor.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import threading
from pathlib import Path

SERVER_API = "1.52"  # Docker 29.1's API version, what /_ping advertises
SERVER_HEADER = "Docker/29.1.3 (linux)"
UPSTREAM_MAX_API = (1, 41)  # Debian's dockerd 20.10
_VERSIONED = re.compile(rb"^/v(\d+)\.(\d+)(?=/|$)")


def too_old_message(client: str, minimum: str) -> str:
    return (
        f"client version {client} is too old. Minimum supported API version is {minimum}, "
        "please upgrade your client to a newer version"
    )


def _api(v: str) -> tuple[int, int]:
    major, _, minor = v.partition(".")
    return int(major), int(minor)


class _Reader:
    def __init__(self, sock: socket.socket):
        self.sock, self.buf = sock, b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def until(self, sep: bytes) -> bytes | None:
        while sep not in self.buf:
            if not self._fill():
                return None
        head, _, self.buf = self.buf.partition(sep)
        return head + sep

    def exactly(self, n: int):
        while n > 0:
            if not self.buf and not self._fill():
                return
            part, self.buf = self.buf[:n], self.buf[n:]
            n -= len(part)
            yield part

    def rest(self):
        if self.buf:
            part, self.buf = self.buf, b""
            yield part
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                return
            yield chunk


def _respond(client: socket.socket, status: str, body: bytes, headers: dict[str, str], head_only: bool = False):
    lines = (
        [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers.items()] + [f"Content-Length: {len(body)}", "", ""]
    )
    client.sendall("\r\n".join(lines).encode() + (b"" if head_only else body))


def _pipe(src, dst: socket.socket) -> None:
    try:
        for chunk in src:
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def handle(client: socket.socket, upstream_path: str, minimum: str) -> None:
    reader = _Reader(client)
    upstream: socket.socket | None = None
    replies: threading.Thread | None = None
    try:
        while True:
            head = reader.until(b"\r\n\r\n")
            if head is None:
                # the client is done sending: let the engine finish its replies before closing
                if upstream is not None:
                    upstream.shutdown(socket.SHUT_WR)
                    replies.join()
                return
            line, _, rest = head[:-4].partition(b"\r\n")
            method, path, proto = line.split(b" ", 2)
            headers = {
                k.strip().lower(): v.strip() for k, _, v in (h.partition(b":") for h in rest.split(b"\r\n") if h)
            }
            m = _VERSIONED.match(path)
            bare = path[m.end() :] if m else path
            if bare.split(b"?")[0] == b"/_ping":
                _respond(
                    client,
                    "200 OK",
                    b"OK",
                    {
                        "Api-Version": SERVER_API,
                        "Docker-Experimental": "false",
                        "Ostype": "linux",
                        "Server": SERVER_HEADER,
                        "Content-Type": "text/plain; charset=utf-8",
                    },
                    head_only=method == b"HEAD",
                )
                continue
            if m:
                asked = (int(m.group(1)), int(m.group(2)))
                if asked < _api(minimum):
                    body = json.dumps({"message": too_old_message(f"{asked[0]}.{asked[1]}", minimum)}).encode() + b"\n"
                    _respond(
                        client,
                        "400 Bad Request",
                        body,
                        {
                            "Api-Version": SERVER_API,
                            "Content-Type": "application/json",
                            "Server": SERVER_HEADER,
                            "Connection": "close",
                        },
                    )
                    return
                if asked > UPSTREAM_MAX_API:
                    path = b"/v%d.%d" % UPSTREAM_MAX_API + bare
            if upstream is None:
                upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                upstream.connect(upstream_path)
                replies = threading.Thread(target=_pipe, args=(_Reader(upstream).rest(), client), daemon=True)
                replies.start()
            upstream.sendall(b" ".join((method, path, proto)) + b"\r\n" + (rest + b"\r\n" if rest else b"") + b"\r\n")
            if b"upgrade" in headers.get(b"connection", b"").lower() or b"upgrade" in headers:
                _pipe(reader.rest(), upstream)  # hijacked: raw both ways from here on
                replies.join()
                return
            if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
                while True:
                    size_line = reader.until(b"\r\n")
                    if size_line is None:
                        return
                    upstream.sendall(size_line)
                    size = int(size_line.split(b";")[0].strip() or b"0", 16)
                    for part in reader.exactly(size + 2):
                        upstream.sendall(part)
                    if size == 0:
                        break
            elif int(headers.get(b"content-length", b"0") or 0):
                for part in reader.exactly(int(headers[b"content-length"])):
                    upstream.sendall(part)
    except (OSError, ValueError):
        return
    finally:
        for s in (client, upstream):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass


# --- the gate's process, per profile (started by `start`, ended by `stop`/`delete`) ------------------------

ENDPOINT_FILE = "kubelet-docker-endpoint"  # in <home>/machines/P: the socket the kubelet dials instead
REFUSED = "is too old. Minimum supported API version is"


def _machine_dir(profile: str) -> Path:
    from . import home

    return home.minikube_home() / "machines" / profile


def _socket_path(profile: str) -> Path:
    # unix socket paths are limited to 108 bytes: a short fixed directory, a hashed name
    import hashlib

    digest = hashlib.sha256(str(_machine_dir(profile)).encode()).hexdigest()[:12]
    return Path(os.environ.get("DEVRIG_RUN_DIR", "/run/devrig")) / "gates" / f"{digest}.sock"


def ensure(profile: str, minimum: str) -> Path:
    """Run the gate in front of the profile's engine (for its kubelet); return the gate's socket."""
    from devrig import procs

    from . import home

    rig = home.load_rig_state(profile)
    rec = rig.get("apigate") or {}
    proc = procs.Proc.from_json(rec.get("proc"))
    sock = _socket_path(profile)
    if not (procs.alive(proc) and rec.get("min_api") == minimum and sock.exists()):
        procs.terminate(proc, what="stale Docker API gate")
        sock.parent.mkdir(parents=True, exist_ok=True)
        log_dir = _machine_dir(profile) / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        proc = procs.spawn(
            [sys.executable, "-m", "devrig.standin.apigate", str(sock), f"machine:{_machine_dir(profile)}", minimum],
            log=log_dir / "apigate.log",
            pidfile=sock.with_suffix(".pid"),
        )
        procs.wait_for(
            lambda: sock.exists() or None,
            15,
            f"the Docker API gate of {profile!r} to listen on {sock}",
            detail=lambda: procs.tail(log_dir / "apigate.log"),
        )
        rig["apigate"] = {"proc": proc.to_json(), "min_api": minimum, "socket": str(sock)}
        home.save_rig_state(profile, rig)
    (_machine_dir(profile) / ENDPOINT_FILE).write_text(f"{sock}\n")
    return sock


def stop(profile: str, *, forget: bool = False) -> None:
    """End the gate; `forget` (delete, or a start without a gate) also stops routing the kubelet through it."""
    from devrig import procs

    from . import home

    rig = home.load_rig_state(profile)
    rec = rig.get("apigate") or {}
    procs.terminate(procs.Proc.from_json(rec.get("proc")), what="Docker API gate")
    if forget:
        (_machine_dir(profile) / ENDPOINT_FILE).unlink(missing_ok=True)
        if rec.get("socket"):
            Path(rec["socket"]).unlink(missing_ok=True)
        if "apigate" in rig:
            del rig["apigate"]
            home.save_rig_state(profile, rig)


def kubelet_refused(profile: str) -> str:
    """The kubelet log's refusal line, if the gate turned the kubelet away ('' otherwise)."""
    log = _machine_dir(profile) / "logs" / "kubelet.log"
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return next((line for line in reversed(lines) if REFUSED in line), "")


def _resolve_upstream(spec: str) -> str:
    """`machine:DIR`: the engine socket of that machine (its run dir is chosen at boot, after the gate)."""
    if not spec.startswith("machine:"):
        return spec
    state = json.loads((Path(spec[len("machine:") :]) / "rig.json").read_text())
    return str(Path(state["run_dir"]) / "docker.sock")


def serve(listen: str, upstream: str, minimum: str) -> None:
    # bound and listening under a temporary name first: the socket appears only once it accepts
    tmp = f"{listen}.{os.getpid()}"
    Path(tmp).unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(tmp)
    os.chmod(tmp, 0o660)
    server.listen(64)
    os.replace(tmp, listen)
    while True:
        client, _ = server.accept()
        try:
            target = _resolve_upstream(upstream)
        except (OSError, ValueError, KeyError):
            client.close()  # no engine yet: as a dockerd that is not up
            continue
        threading.Thread(target=handle, args=(client, target, minimum), daemon=True).start()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python -m devrig.standin.apigate LISTEN_SOCKET UPSTREAM_SOCKET MIN_API")
    serve(*sys.argv[1:])
