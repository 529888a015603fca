"""The ceiling: the same text protocol directly on the `websockets` asyncio server with its
`broadcast()`, no ASGI, nothing stored, on uvloop like uvicorn
(`python -m bench.baselines.ceiling --port N`)."""

import argparse
from collections import deque

import uvloop
from websockets.asyncio.server import ServerConnection, broadcast, serve

from bench.baselines import REPLAY

rooms: dict[str, set[ServerConnection]] = {}
recent: dict[str, deque[str]] = {}


async def handler(websocket: ServerConnection) -> None:
    room = websocket.request.path if websocket.request else "/"
    for old in list(recent.get(room, ())):
        await websocket.send(f"A client says: {old}")
    members = rooms.setdefault(room, set())
    members.add(websocket)
    try:
        async for text in websocket:
            recent.setdefault(room, deque(maxlen=REPLAY)).append(str(text))
            await websocket.send(f"You wrote: {text}")
            broadcast((m for m in members if m is not websocket), f"A client says: {text}")
    finally:
        members.discard(websocket)


async def serve_forever(port: int) -> None:
    async with serve(handler, "127.0.0.1", port, compression=None) as server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    uvloop.run(serve_forever(parser.parse_args().port))


if __name__ == "__main__":
    main()
