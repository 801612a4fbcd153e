"""Test doubles that ship with accord, for accord's tests and for its users' own."""

from accord.testing.context import FakeContext, FakeMailer, ManualClock, fake_context
from accord.testing.fake_idp import FakeIdentityProvider, Fault, SimulatedCrash
from accord.testing.memory_store import InMemoryStore
from accord.testing.work_signal import FakeWorkSignal

__all__ = [
    "FakeContext",
    "FakeIdentityProvider",
    "FakeMailer",
    "FakeWorkSignal",
    "Fault",
    "InMemoryStore",
    "ManualClock",
    "SimulatedCrash",
    "fake_context",
]
