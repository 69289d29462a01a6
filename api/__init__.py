"""The HTTP API: FastAPI app factory, dependencies, routers and schemas."""
