#!/usr/bin/python3
"""spec/support/slow_reader.py: an HTTP client that asks for a lot and takes its answers
slowly, for slow_clients_spec (MIN_SEND_RATE_BYTES_PER_SECOND). Standard library only.

It pipelines --requests POSTs of a --body-bytes JSON body to --path (spec/fixtures/hello's
/echo answers each with the body, so the answers are far more than the kernel's socket
buffers hold and the server must queue them), with a small receive buffer (--rcvbuf, 4 KiB), then
reads --chunk bytes every --every seconds (fewer when fewer have arrived) for --seconds, watching the connection's TCP
state (TCP_INFO: the bytes already in the receive buffer would hide a close from recv).
Then it reads the rest as fast as it can. Prints one JSON line:

    {"closed_after": seconds or null, "read_slowly": bytes, "total": bytes,
     "answers": complete "HTTP/1.1 200" heads seen}
"""
import argparse
import json
import socket
import threading
import time

ESTABLISHED = 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/echo/a/b")
    ap.add_argument("--requests", type=int, default=4)
    ap.add_argument("--body-bytes", type=int, default=1000000)
    ap.add_argument("--chunk", type=int, default=1)
    ap.add_argument("--every", type=float, default=0.05)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--rcvbuf", type=int, default=4096)
    args = ap.parse_args()

    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
    s.connect(("127.0.0.1", args.port))
    body = b'{"x":"' + b"a" * args.body_bytes + b'"}'
    req = (b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n" % (args.path.encode(), len(body))) + body

    def send_all():
        try:
            s.sendall(req * args.requests)
        except OSError:
            pass  # closed by the server: what the reader reports

    threading.Thread(target=send_all, daemon=True).start()

    def state():
        return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]

    t0 = time.time()
    got = []
    slowly = 0
    closed_after = None
    while time.time() - t0 < args.seconds:
        if state() != ESTABLISHED:
            closed_after = time.time() - t0
            break
        want, d = args.chunk, b""
        s.settimeout(args.every)
        try:
            while want > 0:  # exactly --chunk bytes per --every (what has arrived by then)
                piece = s.recv(want)
                if not piece:
                    break
                d += piece
                want -= len(piece)
        except socket.timeout:
            pass
        except OSError:
            closed_after = time.time() - t0
            break
        if want == args.chunk and state() != ESTABLISHED:
            closed_after = time.time() - t0
            break
        got.append(d)
        slowly += len(d)
        time.sleep(max(0, args.every - (time.time() - t0) % args.every))
    if closed_after is None and state() != ESTABLISHED:
        closed_after = time.time() - t0
    s.settimeout(2)
    while True:
        try:
            d = s.recv(1 << 20)
        except OSError:
            break
        if not d:
            break
        got.append(d)
        if b"".join(got[-2:]).count(b"HTTP/1.1 200 OK\r\n") and \
                b"".join(got).count(b"HTTP/1.1 200 OK\r\n") >= args.requests:
            s.settimeout(0.3)  # the last answer is arriving: stop once it stops
    data = b"".join(got)
    print(json.dumps({"closed_after": closed_after, "read_slowly": slowly, "total": len(data),
                      "answers": data.count(b"HTTP/1.1 200 OK\r\n")}))


if __name__ == "__main__":
    main()
