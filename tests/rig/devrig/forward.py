"""TCP forwarder between the host's loopback and a profile's network namespace (like the docker driver's
published ports on macOS: the host only ever sees 127.0.0.1:<port>).

    python -m devrig.forward --netns /run/netns/devrig-x \
        --into 127.0.0.1:40123=192.168.49.2:8443     # listen on the host, connect inside the namespace
        --out  127.0.0.1:40777=127.0.0.1:40777       # listen inside the namespace, connect on the host

Both sides are loopback or inside the namespace: nothing else is ever targeted.  Sockets keep the namespace
they were made in, so the (single-threaded) process enters a namespace only around socket() calls.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys

from . import netns

BUF = 65536


def _addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def _mapping(text: str) -> tuple[tuple[str, int], tuple[str, int]]:
    listen, _, target = text.partition("=")
    if not target:
        raise argparse.ArgumentTypeError(f"expected LISTEN=TARGET (host:port=host:port), got {text!r}")
    return _addr(listen), _addr(target)


def _socket_in(ns_fd: int | None) -> socket.socket:
    if ns_fd is None:
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        netns.setns(ns_fd)
        try:
            return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        finally:
            netns.setns(home)
    finally:
        os.close(home)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(BUF):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, RuntimeError):
            pass


async def _serve_one(
    listen_ns: int | None, listen: tuple[str, int], connect_ns: int | None, target: tuple[str, int]
) -> asyncio.AbstractServer:
    lsock = _socket_in(listen_ns)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(listen)
    lsock.listen(128)
    lsock.setblocking(False)

    async def handle(reader, writer):
        out = _socket_in(connect_ns)
        out.setblocking(False)
        try:
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(out, target), 10)
            t_reader, t_writer = await asyncio.open_connection(sock=out)
        except (TimeoutError, OSError) as exc:
            print(f"forward {listen[0]}:{listen[1]} -> {target[0]}:{target[1]}: {exc}", file=sys.stderr, flush=True)
            out.close()
            writer.close()
            return
        await asyncio.gather(_pipe(reader, t_writer), _pipe(t_reader, writer))
        for w in (writer, t_writer):
            w.close()

    return await asyncio.start_server(handle, sock=lsock)


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="devrig.forward")
    parser.add_argument("--netns", required=True, help="path of the profile's network namespace")
    parser.add_argument("--into", action="append", type=_mapping, default=[], help="host LISTEN -> namespace TARGET")
    parser.add_argument("--out", action="append", type=_mapping, default=[], help="namespace LISTEN -> host TARGET")
    args = parser.parse_args(argv)
    for (host, _), _t in args.into:
        if host != "127.0.0.1":
            parser.error(f"host side must listen on 127.0.0.1, not {host}")
    for _l, (host, _) in args.out:
        if host != "127.0.0.1":
            parser.error(f"host side may only target 127.0.0.1, not {host}")
    ns_fd = os.open(args.netns, os.O_RDONLY)
    if netns.same_namespace(args.netns, "/proc/self/ns/net"):
        parser.error(f"{args.netns} is this process's own namespace; nothing to forward between")
    servers = [await _serve_one(None, listen, ns_fd, target) for listen, target in args.into]
    servers += [await _serve_one(ns_fd, listen, None, target) for listen, target in args.out]
    print(f"forwarding: {len(servers)} port(s) ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for s in servers:
        s.close()


if __name__ == "__main__":
    asyncio.run(main())
