"""Emulators of the vendors' admin APIs (ASGI apps) with fault injection, for tests and users.

Each vendor package (``auth0``, ``supabase``, ``keycloak``) builds a Starlette app around
``faults.FaultInjector`` and follows its page of vendor facts in ``docs/idp/``; the shared part
here is how faults are configured, replayed from a seed, and changed at run time, and how a
handler is put behind them.
"""
