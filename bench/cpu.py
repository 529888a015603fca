"""CPU use of the server and of the generator itself over a stretch of wall time."""

import time

import psutil


class CpuProbe:
    """`start()` then `stop()`: each process's CPU seconds per wall second in between (1.0 is
    one core fully busy), and the server's outside its main thread (`server_off_loop`: the
    SQLite writer's thread and any other; the event loop runs in the main thread)."""

    def __init__(self, server_pid: int) -> None:
        self._server = psutil.Process(server_pid)
        self._marks: tuple[float, float, float, float] | None = None
        self.server = 0.0
        self.server_off_loop = 0.0
        self.generator = 0.0

    def _now(self) -> tuple[float, float, float, float]:
        times = self._server.cpu_times()
        main = [t for t in self._server.threads() if t.id == self._server.pid]
        loop = main[0].user_time + main[0].system_time if main else 0.0
        total = times.user + times.system
        return total, total - loop, time.process_time(), time.monotonic()

    def start(self) -> None:
        self._marks = self._now()

    def stop(self) -> None:
        assert self._marks is not None
        (server0, off0, own0, wall0), (server1, off1, own1, wall1) = self._marks, self._now()
        wall = max(wall1 - wall0, 1e-9)
        self.server, self.generator = (server1 - server0) / wall, (own1 - own0) / wall
        self.server_off_loop = max(off1 - off0, 0.0) / wall
