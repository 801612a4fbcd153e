"""Test doubles that ship with accord, for accord's tests and for its users' own."""

from accord.testing.fake_idp import FakeIdentityProvider, Fault, SimulatedCrash

__all__ = ["FakeIdentityProvider", "Fault", "SimulatedCrash"]
