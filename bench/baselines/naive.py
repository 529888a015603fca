"""The tutorial's design: a dict of room -> list of sockets, each message awaited to every other
socket in turn, served by uvicorn (`python -m bench.baselines.naive --port N`)."""

import argparse
from collections import deque

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from bench.baselines import REPLAY


class ConnectionManager:
    def __init__(self) -> None:
        self.rooms: dict[str, list[WebSocket]] = {}
        self.recent: dict[str, deque[str]] = {}

    async def connect(self, room: str, websocket: WebSocket) -> None:
        await websocket.accept()
        self.rooms.setdefault(room, []).append(websocket)
        for text in list(self.recent.get(room, ())):
            await websocket.send_text(f"A client says: {text}")

    def disconnect(self, room: str, websocket: WebSocket) -> None:
        self.rooms[room].remove(websocket)

    async def broadcast(self, room: str, text: str, sender: WebSocket) -> None:
        self.recent.setdefault(room, deque(maxlen=REPLAY)).append(text)
        await sender.send_text(f"You wrote: {text}")
        for websocket in list(self.rooms.get(room, ())):
            if websocket is not sender:
                await websocket.send_text(f"A client says: {text}")


app = FastAPI()
manager = ConnectionManager()


@app.websocket("/{room}")
async def room_socket(websocket: WebSocket, room: str) -> None:
    await manager.connect(room, websocket)
    try:
        while True:
            await manager.broadcast(room, await websocket.receive_text(), websocket)
    except WebSocketDisconnect:
        manager.disconnect(room, websocket)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
