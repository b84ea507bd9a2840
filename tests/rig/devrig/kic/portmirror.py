"""Loopback forwarders for the kic engine: what Docker Desktop's VM gives the host for free.

    python -m devrig.kic.portmirror --netns /run/netns/devrig-kic-1 --engine 127.0.0.1:41234

Forwards host 127.0.0.1:<engine port> into the namespace, then polls the engine's containers and, for every port
one publishes inside the namespace (minikube publishes the node's 22, 2376, 5000, 8443 and 32443, on
127.0.0.1 for a local engine and on every address for a remote one, as this engine looks to it), listens on the same port on the host's loopback and forwards it inside. A port
that is gone (the container removed) stops being forwarded. Both ends are loopback: nothing else is ever targeted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys

from .. import netns
from ..forward import _serve_one, _socket_in

POLL = 0.2  # seconds: minikube SSHes into a new node within a second of creating it, and retries


async def _engine_ports(ns_fd: int, engine: tuple[str, int]) -> set[int]:
    sock = _socket_in(ns_fd)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.sock_connect(sock, engine), 2)
        reader, writer = await asyncio.open_connection(sock=sock)
    except (TimeoutError, OSError):
        sock.close()
        return set()
    try:
        writer.write(b"GET /containers/json HTTP/1.0\r\nHost: docker\r\n\r\n")
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 5)
    except (TimeoutError, OSError):
        return set()
    finally:
        writer.close()
    _, _, body = raw.partition(b"\r\n\r\n")
    return published_ports(body)


def published_ports(body: bytes) -> set[int]:
    """The TCP ports `GET /containers/json` says are published where the host's loopback can stand for them."""
    try:
        containers = json.loads(body)
    except ValueError:
        return set()
    return {
        p["PublicPort"]
        for c in containers
        for p in c.get("Ports") or []
        # minikube publishes on 127.0.0.1 for a local engine, on every address for one it sees as remote
        if p.get("IP") in ("127.0.0.1", "0.0.0.0") and p.get("PublicPort") and p.get("Type", "tcp") == "tcp"
    }


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="devrig.kic.portmirror")
    parser.add_argument("--netns", required=True)
    parser.add_argument("--engine", required=True, help="127.0.0.1:PORT of the engine inside the namespace")
    args = parser.parse_args(argv)
    host, _, port = args.engine.rpartition(":")
    engine = (host, int(port))
    if host != "127.0.0.1":
        parser.error("the engine must listen on 127.0.0.1 inside the namespace")
    if netns.same_namespace(args.netns, "/proc/self/ns/net"):
        parser.error(f"{args.netns} is this process's own namespace; nothing to forward between")
    ns_fd = os.open(args.netns, os.O_RDONLY)
    servers = {engine[1]: await _serve_one(None, engine, ns_fd, engine)}
    print(f"portmirror: engine 127.0.0.1:{engine[1]} forwarded", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    while not stop.is_set():
        published = await _engine_ports(ns_fd, engine)
        for p in sorted(published - servers.keys()):
            try:
                servers[p] = await _serve_one(None, ("127.0.0.1", p), ns_fd, ("127.0.0.1", p))
                print(f"portmirror: + 127.0.0.1:{p}", flush=True)
            except OSError as exc:  # the host already uses that port: say so, minikube will fail to reach it
                print(f"portmirror: cannot listen on host 127.0.0.1:{p}: {exc}", file=sys.stderr, flush=True)
        for p in sorted(servers.keys() - published - {engine[1]}):
            servers.pop(p).close()
            print(f"portmirror: - 127.0.0.1:{p}", flush=True)
        try:
            await asyncio.wait_for(stop.wait(), POLL)
        except TimeoutError:
            pass
    for s in servers.values():
        s.close()


if __name__ == "__main__":
    asyncio.run(main())
