"""The edge: REST transcoding, WebSocket channels and the web UI for browsers and HTTP clients."""
