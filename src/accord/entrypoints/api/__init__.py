"""The HTTP API (FastAPI). ``create_app`` builds it; ``accord serve`` runs it with uvicorn."""

from accord.entrypoints.api.app import app_from_environment, create_app

__all__ = ["app_from_environment", "create_app"]
