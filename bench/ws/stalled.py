#!/usr/bin/python3
"""bench/ws/stalled.py: WebSocket clients that never read, for `make bench-ws` (phase
"stalled"). Opens N connections to /ws with one token (a busy user), reads the 101 head
of each and then never reads again (a 4 KiB receive buffer), until SIGTERM. Writes
"N" to the ready file once every handshake is done. Standard library only.

    stalled.py --port P --token T --connections N --ready FILE
"""
import argparse
import base64
import os
import signal
import socket
import time


def open_one(port, token):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Protocol: todo.v1, bearer.%s\r\n\r\n" % (port, key, token)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)  # byte by byte: nothing after the head is taken off the socket
        if not chunk:
            raise SystemExit("stalled.py: connection closed during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise SystemExit("stalled.py: handshake refused: %r" % head[:60])
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--ready", required=True)
    args = ap.parse_args()
    socks = [open_one(args.port, args.token) for _ in range(args.connections)]
    with open(args.ready, "w") as f:
        f.write("%d\n" % len(socks))
    signal.signal(signal.SIGTERM, lambda *_: raise_exit())
    while True:
        time.sleep(1)


def raise_exit():
    raise SystemExit(0)


if __name__ == "__main__":
    main()
