"""CPU use of the server and of the generator itself over a stretch of wall time."""

import time

import psutil


class CpuProbe:
    """`start()` then `stop()`: each process's CPU seconds per wall second in between (1.0 is
    one core fully busy)."""

    def __init__(self, server_pid: int) -> None:
        self._server = psutil.Process(server_pid)
        self._marks: tuple[float, float, float] | None = None
        self.server = 0.0
        self.generator = 0.0

    def _now(self) -> tuple[float, float, float]:
        times = self._server.cpu_times()
        return times.user + times.system, time.process_time(), time.monotonic()

    def start(self) -> None:
        self._marks = self._now()

    def stop(self) -> None:
        assert self._marks is not None
        (server0, own0, wall0), (server1, own1, wall1) = self._marks, self._now()
        wall = max(wall1 - wall0, 1e-9)
        self.server, self.generator = (server1 - server0) / wall, (own1 - own0) / wall
