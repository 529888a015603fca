"""A TCP relay on loopback between a browser and a server, which a test can cut or mute."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from tests.support import free_port

CHUNK = 65536


class Relay:
    """Forwards `127.0.0.1:port` to `127.0.0.1:target`, in a thread of its own.

    WebSocket connections (those whose first bytes ask for an upgrade) can be refused
    (`block_websockets`), cut right after the next frame the client sends, before anything
    the server answers reaches the client (`cut_after_next_send`), or kept open with the
    server's frames dropped (`mute`). Plain HTTP passes untouched.
    """

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self.block_websockets = False
        self.mute = False
        self.cuts = 0  # connections cut by `cut_after_next_send`
        self._armed = False
        self._sockets: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Relay:
        self._thread.start()
        self._started.wait(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _shutdown(self) -> None:
        self._abort_all()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def cut_after_next_send(self) -> None:
        self._armed = True

    def cut_websockets(self) -> None:
        """Drop every open WebSocket at once, as a network failure would."""
        self._loop.call_soon_threadsafe(self._abort_all)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port)
        )
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            self._loop.close()

    def _abort_all(self) -> None:
        for writer in list(self._sockets):
            writer.transport.abort()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter):
        first = await client_r.read(CHUNK)
        websocket = b"upgrade: websocket" in first.lower()
        if not first or (websocket and self.block_websockets):
            client_w.transport.abort()
            return
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            client_w.transport.abort()
            return
        server_w.write(first)
        if websocket:
            self._sockets.add(client_w)
        cut = asyncio.Event()

        async def client_to_server() -> None:
            while data := await client_r.read(CHUNK):
                if websocket and self._armed:
                    self._armed = False
                    cut.set()
                    client_w.transport.abort()  # nothing more reaches the client
                    server_w.write(data)
                    await server_w.drain()
                    self.cuts += 1
                    # Let the frame reach the server before the connection goes (closing a
                    # socket with unread data sends a reset, which may discard it).
                    await asyncio.sleep(1.0)
                    return
                server_w.write(data)
                await server_w.drain()

        async def server_to_client() -> None:
            handshake_done = False
            while data := await server_r.read(CHUNK):
                if cut.is_set() or (websocket and self.mute and handshake_done):
                    continue  # read and dropped
                handshake_done = True
                client_w.write(data)
                await client_w.drain()

        tasks = [
            asyncio.ensure_future(client_to_server()),
            asyncio.ensure_future(server_to_client()),
        ]
        with contextlib.suppress(Exception):
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._sockets.discard(client_w)
        client_w.transport.abort()
        server_w.close()
