"""Entrypoints: the CLI, the HTTP API and the worker. Thin: they parse, call a service, render."""
