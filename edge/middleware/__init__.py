"""Plain ASGI middleware of the edge, one concern a module."""
