"""Model-based test: random sequences of create, register, delete, retry, IdP fault, crash and
worker run; after every step the guarantees hold and the database agrees with a simple model."""

from __future__ import annotations

import asyncio
from uuid import UUID

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import text

from accord.bootstrap import build
from accord.config import Settings
from accord.domain import errors
from accord.services import worker
from accord.services.deprovisioning import deprovision_user
from accord.services.organizations import NewOrganization, create_organization
from accord.services.provisioning import NewUser, create_user
from accord.services.registration import Registration, register
from accord.testing import FakeIdentityProvider, Fault, SimulatedCrash
from tests.engine.conftest import PLATFORM
from tests.guarantees import assert_guarantees
from tests.mailbox import Inbox, SmtpServer, free_port, make_everything_due

EMAILS = [f"person{i}@example.com" for i in range(4)]
FAULTS = [Fault.UNAVAILABLE, Fault.RATE_LIMITED, Fault.GHOST, Fault.TIMEOUT, Fault.CRASH]
TABLES = (
    "audit_events, outbox, operations, memberships, idp_links, one_time_tokens, "
    "organizations, users, local_credentials, local_identities"
)


def machine(settings_: Settings):
    class Provisioning(RuleBasedStateMachine):
        """The model: which e-mails have a live user, and which requests are in flight."""

        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.idp = FakeIdentityProvider()
            self.accord = build(settings_, idp=self.idp)
            self.run(self._reset())
            self.org = UUID(
                self.run(
                    create_organization(
                        self.accord, NewOrganization("Model", max_users=50), caller=PLATFORM
                    )
                )["id"]
            )
            self.live: dict[str, str] = {}  # e-mail → user id
            self.in_flight: dict[str, tuple[str, object]] = {}  # e-mail → (key, request)
            self.keys = 0

        def run(self, coro):
            return self.loop.run_until_complete(coro)

        async def _reset(self) -> None:
            async with self.accord.db.transaction() as conn:
                await conn.execute(text(f"TRUNCATE {TABLES} CASCADE"))

        def teardown(self) -> None:
            self.run(self.accord.aclose())
            self.loop.close()

        def _attempt(self, email: str, call):
            """Run a request; record what the model expects from its outcome."""
            self.keys += 1
            key = f"k{self.keys}"
            try:
                result = self.run(call(key))
            except (errors.OperationPending, SimulatedCrash):
                self.in_flight[email] = (key, call)
                return
            except errors.EmailAlreadyExists:
                assert email in self.live or email in self.in_flight
                return
            assert email not in self.live and email not in self.in_flight
            self.live[email] = result["user"]["id"]

        @rule(email=st.sampled_from(EMAILS), fault=st.none() | st.sampled_from(FAULTS))
        def create(self, email: str, fault: Fault | None) -> None:
            if fault:
                self.idp.script("create", fault)
            request = NewUser(email, "Model User", self.org)
            self._attempt(
                email,
                lambda key: create_user(self.accord, request, caller=PLATFORM, idempotency_key=key),
            )

        @rule(email=st.sampled_from(EMAILS), fault=st.none() | st.sampled_from(FAULTS))
        def register(self, email: str, fault: Fault | None) -> None:
            if fault:
                self.idp.script("find_by_email", fault)
            request = Registration(email, "model password", "Model User")
            self._attempt(email, lambda key: register(self.accord, request, idempotency_key=key))

        @precondition(lambda self: self.live)
        @rule(data=st.data())
        def delete(self, data) -> None:
            email = data.draw(st.sampled_from(sorted(self.live)))
            user_id = self.live.pop(email)
            self.run(deprovision_user(self.accord, user_id, caller=PLATFORM))

        @precondition(lambda self: self.in_flight)
        @rule(data=st.data())
        def retry(self, data) -> None:
            email = data.draw(st.sampled_from(sorted(self.in_flight)))
            key, call = self.in_flight[email]
            self.run(make_everything_due(self.accord))
            try:
                result = self.run(call(key))
            except (errors.OperationPending, SimulatedCrash):
                return
            del self.in_flight[email]
            self.live[email] = result["user"]["id"]

        @rule()
        def worker_run(self) -> None:
            self.idp.clear_script()
            self.run(make_everything_due(self.accord))
            mailer = SmtpServer(Inbox(), free_port()).mailer()  # down: mail waits, ops don't
            self.run(worker.run_until_idle(self.accord, mailer))
            for email in list(self.in_flight):
                del self.in_flight[email]
                self.live[email] = self.run(self._user_id(email))

        async def _user_id(self, email: str) -> str:
            async with self.accord.db.transaction() as conn:
                return str(
                    (
                        await conn.execute(
                            text("SELECT id FROM users WHERE email = :e AND status <> 'disabled'"),
                            {"e": email},
                        )
                    ).scalar_one()
                )

        @invariant()
        def guarantees_hold(self) -> None:
            self.run(assert_guarantees(self.accord))

        @invariant()
        def database_matches_the_model(self) -> None:
            async def live_rows() -> dict[str, str]:
                async with self.accord.db.transaction() as conn:
                    rows = await conn.execute(
                        text(
                            "SELECT email, id::text FROM users "
                            "WHERE status IN ('pending', 'active')"
                        )
                    )
                    return dict(rows.all())

            assert self.run(live_rows()) == self.live

    return Provisioning


def test_random_sequences_keep_the_guarantees(settings: Settings) -> None:
    state_machine = machine(settings)
    state_machine.TestCase.settings = settings_for_ci
    state_machine.TestCase().runTest()


settings_for_ci = settings(
    max_examples=20,
    stateful_step_count=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
