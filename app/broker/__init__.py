"""Fan-out between processes. The backend is picked by the URL's scheme and imported lazily."""

from app.broker.base import Broker, Deliver
from app.broker.memory import MemoryBroker

__all__ = ["Broker", "Deliver", "MemoryBroker", "make_broker"]


def make_broker(redis_url: str | None, *, channel_prefix: str = "chat") -> Broker:
    if not redis_url:
        return MemoryBroker()
    if redis_url.startswith(("redis://", "rediss://", "unix://")):
        from app.broker.redis import RedisBroker

        return RedisBroker(redis_url, channel_prefix=channel_prefix)
    raise ValueError(f"unsupported broker URL scheme: {redis_url.split(':', 1)[0]!r}")
