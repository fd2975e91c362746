"""Run inside a test network namespace: relay TCP connections to ``127.0.0.1:PORT`` (the
namespace's own loopback) to a Unix socket the test process serves, so an agent in the
namespace reaches the NATS server of the test without any route out of its namespace."""

from __future__ import annotations

import asyncio
import sys


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def relay_tcp_to_unix(port: int, path: str) -> None:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_unix_connection(path)
        await asyncio.gather(pipe(r, uw), pipe(ur, w))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(relay_tcp_to_unix(int(sys.argv[1]), sys.argv[2]))
