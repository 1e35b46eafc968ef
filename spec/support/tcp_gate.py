#!/usr/bin/python3
"""A TCP forwarder the specs can shut for a while: a stand-in for a database outage.

  tcp_gate.py LISTEN_PORT TARGET_PORT SHUT_SECONDS
forwards 127.0.0.1:LISTEN_PORT to 127.0.0.1:TARGET_PORT and prints "ready" once it
listens. On SIGUSR1 it cuts every forwarded connection and stops listening (new
connections are refused) for SHUT_SECONDS, then listens again, as a database that was
stopped and started again, and prints "open <unix time>" (when connections are accepted
again: what recovery times are measured from). Not PostgreSQL: it only moves bytes, with
one exception: on SIGUSR2 it arms a cut at the next COMMIT's answer: the first
server-to-client chunk that holds the CommandComplete message of a COMMIT is not forwarded
and that connection is cut, so the transaction is committed and its client never learns it
(an answer lost between the database and the host, as when PostgreSQL is stopped right
after flushing a commit).
"""
import asyncio
import signal
import sys
import time

listen_port, target_port, shut_seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
conns = set()
server = None
armed = False
# CommandComplete ('C', length 11 = 4 + len("COMMIT\0")) with the tag COMMIT
COMMIT_DONE = b"C\x00\x00\x00\x0bCOMMIT\x00"


async def pipe(reader, writer, pair=None):
    global armed
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if pair is not None and armed and COMMIT_DONE in data:
                armed = False
                for w in pair:
                    w.transport.abort()
                print("cut at a COMMIT's answer", flush=True)
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def handle(creader, cwriter):
    try:
        treader, twriter = await asyncio.open_connection("127.0.0.1", target_port)
    except OSError:
        cwriter.close()
        return
    pair = (cwriter, twriter)
    conns.add(pair)
    try:
        await asyncio.gather(pipe(creader, twriter), pipe(treader, cwriter, pair))
    finally:
        conns.discard(pair)


async def listen():
    global server
    server = await asyncio.start_server(handle, "127.0.0.1", listen_port, reuse_address=True)


async def shut():
    server.close()
    for a, b in list(conns):
        for w in (a, b):
            w.transport.abort()
    conns.clear()
    await asyncio.sleep(shut_seconds)
    await listen()
    print("open %.3f" % time.time(), flush=True)


async def main():
    await listen()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, lambda: asyncio.ensure_future(shut()))

    def arm():
        global armed
        armed = True
        print("armed", flush=True)
    loop.add_signal_handler(signal.SIGUSR2, arm)
    print("ready", flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
