"""A persistent WebSocket chat server."""
