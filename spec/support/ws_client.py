#!/usr/bin/python3
"""A WebSocket client for the specs (Debian's python3-websockets).

Connects, records what happens as JSON lines in --out, sends --send messages (each after
the previous has been answered or --gap seconds), and stays --seconds. Lines written:
  {"subprotocol": ...}                      after the handshake
  {"refused": STATUS}                       the handshake was refused (no upgrade)
  {"msg": TEXT_OR_JSON, "t": SECONDS}       a message received (JSON decoded when it is)
  {"closed": CODE, "reason": TEXT}          the connection closed (CODE null: no close frame)
  {"sent": TEXT}                            a message sent
--stall: after the first message, stop reading (and keep the receive buffer small), so
the server's queue for this connection fills up.
"""
import argparse
import asyncio
import json
import socket
import sys
import time

import websockets


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token")
    ap.add_argument("--protocol", action="append", default=[])
    ap.add_argument("--origin")
    ap.add_argument("--out", required=True)
    ap.add_argument("--send", action="append", default=[])
    ap.add_argument("--send-size", type=int, default=0, help="send one message of this many bytes")
    ap.add_argument("--gap", type=float, default=0.05)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--stall", action="store_true")
    ap.add_argument("--until", help="stop once a message contains this text")
    args = ap.parse_args()
    out = open(args.out, "a", buffering=1)

    def rec(obj):
        out.write(json.dumps(obj) + "\n")

    async def run():
        protocols = list(args.protocol)
        if args.token:
            protocols.append("bearer." + args.token)
        sock = None
        if args.stall:
            host, port = args.url.split("//")[1].split("/")[0].split(":")
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect((host, int(port)))
        try:
            ws = await websockets.connect(
                args.url, subprotocols=protocols or None, origin=args.origin, sock=sock,
                max_size=None, ping_interval=None, open_timeout=10,
                max_queue=1 if args.stall else 32)
        except websockets.InvalidStatusCode as e:
            rec({"refused": e.status_code})
            return
        except Exception as e:  # noqa: BLE001 - recorded for the spec to see
            rec({"error": repr(e)})
            return
        rec({"subprotocol": ws.subprotocol})
        start = time.time()

        async def reader():
            first = True
            try:
                async for m in ws:
                    try:
                        v = json.loads(m)
                    except ValueError:
                        v = m
                    rec({"msg": v if len(m) < 2000 else "<%d bytes>" % len(m), "t": time.time() - start,
                         "at": time.time()})
                    if args.until and args.until in m:
                        await ws.close()
                        return
                    if first and args.stall:
                        ws.transport.pause_reading()
                        first = False
                        await asyncio.sleep(args.seconds)
                        ws.transport.resume_reading()
            except websockets.ConnectionClosed:
                pass
            rec({"closed": ws.close_code if ws.close_code != 1006 else None,
                 "reason": ws.close_reason})

        async def writer():
            await asyncio.sleep(args.gap)
            for s in args.send:
                await ws.send(s)
                rec({"sent": s, "t": time.time() - start})
                await asyncio.sleep(args.gap)
            if args.send_size:
                await ws.send("x" * args.send_size)
                rec({"sent": "<%d bytes>" % args.send_size})

        r = asyncio.ensure_future(reader())
        try:
            await writer()
        except websockets.ConnectionClosed:
            pass
        done, _ = await asyncio.wait([r], timeout=args.seconds)
        if not done:
            await ws.close()
            await r

    asyncio.run(run())
    out.close()


if __name__ == "__main__":
    sys.exit(main())
