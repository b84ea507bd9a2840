"""The ingress admission server's process, per profile: certificates, start (detached), stop by PID."""

from __future__ import annotations

import http.client
import ssl
import sys
from pathlib import Path

from . import home

WAIT_SECONDS = 15


def _dir(profile: str) -> Path:
    return home.profile_dir(profile) / "ingress-admission"


def certs(profile: str) -> tuple[Path, Path, Path]:
    """(CA cert, serving cert, serving key) for the admission server, made once per profile."""
    from devrig.certs import ensure_ca, ensure_leaf

    d = _dir(profile)
    ca = ensure_ca(d / "ca.crt", d / "ca.key", f"ingress-nginx-admission-ca ({profile})")
    ensure_leaf(
        d / "tls.crt",
        d / "tls.key",
        ca,
        cn="ingress-nginx-controller-admission",
        sans=[
            "127.0.0.1",
            "localhost",
            "ingress-nginx-controller-admission",
            "ingress-nginx-controller-admission.ingress-nginx.svc",
        ],
        server=True,
    )
    return d / "ca.crt", d / "tls.crt", d / "tls.key"


def _healthy(port: int, ca: Path) -> bool:
    ctx = ssl.create_default_context(cafile=str(ca))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=2)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def ensure(profile: str) -> str:
    """Start the server unless it runs; return its webhook URL."""
    from devrig import procs

    ca, cert, key = certs(profile)
    rig = home.load_rig_state(profile)
    rec = rig.get("admission") or {}
    proc = procs.Proc.from_json(rec.get("proc"))
    port = rec.get("port")
    if not (procs.alive(proc) and port and _healthy(port, ca)):
        procs.terminate(proc, what="stale ingress admission server")
        if not port or not procs.port_free(port):
            port = procs.free_port()
        proc = procs.spawn(
            [sys.executable, "-m", "devrig.ingress.admission", f"--port={port}", f"--cert={cert}", f"--key={key}"],
            log=_dir(profile) / "server.log",
            pidfile=_dir(profile) / "server.pid",
        )
        rig["admission"] = {"proc": proc.to_json(), "port": port}
        home.save_rig_state(profile, rig)
        log = _dir(profile) / "server.log"
        procs.wait_for(
            lambda: procs.alive(proc) and _healthy(port, ca),
            WAIT_SECONDS,
            f"the ingress admission server of {profile!r} to answer on https://127.0.0.1:{port}/healthz",
            detail=lambda: f"log {log}:\n{procs.tail(log)}",
        )
    # the API server runs in the node's network namespace: give it the same loopback port there
    from . import cluster

    cluster.machine(profile).reach_host_port(port)
    return f"https://127.0.0.1:{port}/networking/v1/ingresses"


def stop(profile: str) -> None:
    from devrig import procs

    rig = home.load_rig_state(profile)
    rec = rig.get("admission")
    if not rec:
        return
    procs.terminate(procs.Proc.from_json(rec.get("proc")), what=f"ingress admission server of {profile!r}", timeout=10)
    if home.profile_dir(profile).exists():
        rig["admission"] = {"port": rec.get("port")}  # keep the port: a restart re-registers the same URL
        home.save_rig_state(profile, rig)


def pid(profile: str) -> int | None:
    from devrig import procs

    rec = home.load_rig_state(profile).get("admission") or {}
    proc = procs.Proc.from_json(rec.get("proc"))
    return proc.pid if procs.alive(proc) else None
