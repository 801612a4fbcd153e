"""Test doubles that ship with accord, for accord's tests and for its users' own."""

from accord.testing.context import FakeContext, FakeMailer, ManualClock, fake_context
from accord.testing.fake_idp import FakeIdentityProvider, Fault, SimulatedCrash
from accord.testing.memory_store import InMemoryStore

__all__ = [
    "FakeContext",
    "FakeIdentityProvider",
    "FakeMailer",
    "Fault",
    "InMemoryStore",
    "ManualClock",
    "SimulatedCrash",
    "fake_context",
]
