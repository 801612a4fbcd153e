"""Emulators of the vendors' admin APIs (ASGI apps) with fault injection, for tests and users.

Each vendor module builds a Starlette/FastAPI app around ``faults.FaultInjector``; the shared part
here is how faults are configured, replayed from a seed, and changed at run time.
"""
