"""Model-based test: random sequences of create, register, delete, retry, IdP fault, crash and
worker run, and identities another system plants in the IdP; after every step the guarantees
hold and the database agrees with a simple model.

The model's rules for issue 11: a create for an address whose IdP identity accord did not make
is refused (``identity_exists``, no row) unless it asks ``adopt_existing`` (then linked, the
identity untouched); a registration for it is told the address is taken. A deprovisioned
address used again is a new person: a new user id, never one the address had before."""

from __future__ import annotations

import asyncio
from uuid import UUID, uuid4

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import text

from accord.bootstrap import build
from accord.config import Settings
from accord.domain import errors
from accord.domain.ports import RemoteUser
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
NEW, ADOPTED, REFUSED = "new", "adopted", "refused"  # how a request must end
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
            # e-mail → (key, request, what it must end as: NEW, ADOPTED or REFUSED)
            self.in_flight: dict[str, tuple[str, object, str]] = {}
            self.keys = 0
            self.foreign: dict[str, RemoteUser] = {}  # planted, not linked: e-mail → identity
            self.adopted: dict[str, RemoteUser] = {}  # planted and linked to a live user
            self.former: dict[str, set[str]] = {}  # e-mail → ids it had (deprovisioned)

        def run(self, coro):
            return self.loop.run_until_complete(coro)

        async def _reset(self) -> None:
            async with self.accord.db.transaction() as conn:
                await conn.execute(text(f"TRUNCATE {TABLES} CASCADE"))

        def teardown(self) -> None:
            self.run(self.accord.aclose())
            self.loop.close()

        def _expect(self, email: str, *, adopt: bool) -> str:
            """What a new request for ``email`` must end as (the address free of live rows)."""
            if email not in self.foreign:
                return NEW
            return ADOPTED if adopt else REFUSED

        def _attempt(self, email: str, call, *, adopt: bool = False, refusal=None):
            """Run a request; record what the model expects from its outcome. ``refusal``: the
            error a request refused for a foreign identity raises."""
            self.keys += 1
            key = f"k{self.keys}"
            taken = email in self.live or email in self.in_flight
            expect = self._expect(email, adopt=adopt)
            try:
                result = self.run(call(key))
            except (errors.OperationPending, SimulatedCrash):
                assert not taken
                self.in_flight[email] = (key, call, expect)
                return
            except errors.EmailAlreadyExists:
                assert taken or (expect == REFUSED and refusal is errors.EmailAlreadyExists)
                if not taken:
                    self._settled(email, expect, self.run(self._user_id(email)))
                return
            except errors.IdentityExists:
                assert not taken and expect == REFUSED and refusal is errors.IdentityExists
                self._settled(email, expect, self.run(self._user_id(email)))  # no row left
                return
            assert not taken and expect != REFUSED
            self._settled(email, expect, result["user"]["id"])

        def _settled(self, email: str, expect: str, user_id: str | None) -> None:
            """An operation for ``email`` ended; check it ended as expected."""
            event(f"ended {expect}" + (" (address used again)" if email in self.former else ""))
            if expect == REFUSED:
                assert user_id is None, f"{email}: a foreign identity was taken over"
                return
            assert user_id is not None, f"{email}: the operation did not make its user"
            assert user_id not in self.former.get(email, set()), f"{email}: an old id reused"
            self.live[email] = user_id
            if expect == ADOPTED:
                identity = self.foreign.pop(email)
                link = self.run(self._link(user_id))
                assert link == (identity.remote_id, False), f"{email}: not linked as foreign"
                self.adopted[email] = identity

        async def _link(self, user_id: str) -> tuple[str, bool] | None:
            async with self.accord.db.transaction() as conn:
                row = (
                    await conn.execute(
                        text(
                            "SELECT remote_id, created_by_accord FROM idp_links WHERE user_id = :u"
                        ),
                        {"u": user_id},
                    )
                ).first()
            return (row.remote_id, row.created_by_accord) if row else None

        def _plantable(self) -> list[str]:
            """E-mails nobody holds: no live row, no request in flight, no IdP user."""
            held = {u.email for u in self.idp.users.values()}
            busy = {*self.live, *self.in_flight, *held}
            return [e for e in EMAILS if e not in busy]

        @precondition(lambda self: self._plantable())
        @rule(data=st.data())
        def plant_foreign(self, data) -> None:
            """Another system sharing the IdP creates an account accord knows nothing of."""
            email = data.draw(st.sampled_from(self._plantable()))
            remote_id = f"legacy|{uuid4().hex}"
            self.idp.users[remote_id] = RemoteUser(remote_id, email, "Legacy User", None)
            self.foreign[email] = self.idp.users[remote_id]

        @rule(
            email=st.sampled_from(EMAILS),
            fault=st.none() | st.sampled_from(FAULTS),
            adopt=st.booleans(),
        )
        def create(self, email: str, fault: Fault | None, adopt: bool) -> None:
            if fault:
                self.idp.script("create", fault)
            request = NewUser(email, "Model User", self.org, adopt_existing=adopt)
            self._attempt(
                email,
                lambda key: create_user(self.accord, request, caller=PLATFORM, idempotency_key=key),
                adopt=adopt,
                refusal=errors.IdentityExists,
            )

        @rule(email=st.sampled_from(EMAILS), fault=st.none() | st.sampled_from(FAULTS))
        def register(self, email: str, fault: Fault | None) -> None:
            if fault:
                self.idp.script("find_by_email", fault)
            request = Registration(email, "model password", "Model User")
            self._attempt(
                email,
                lambda key: register(self.accord, request, idempotency_key=key),
                refusal=errors.EmailAlreadyExists,  # a public caller is told the address is taken
            )

        @precondition(lambda self: self.live)
        @rule(data=st.data())
        def delete(self, data) -> None:
            self._deprovision(data.draw(st.sampled_from(sorted(self.live))))

        @precondition(lambda self: self.live)
        @rule(data=st.data(), again=st.sampled_from(["create", "register"]))
        def deprovision_then_use_again(self, data, again: str) -> None:
            """The address comes back at once: a new person, with a new id."""
            email = data.draw(st.sampled_from(sorted(self.live)))
            self._deprovision(email)
            if again == "create":
                self.create(email, None, False)
            else:
                self.register(email, None)

        def _deprovision(self, email: str) -> None:
            user_id = self.live.pop(email)
            self.run(deprovision_user(self.accord, user_id, caller=PLATFORM))
            self.former.setdefault(email, set()).add(user_id)
            # A platform deprovision deletes the identity accord linked, an adopted one too.
            identity = self.adopted.pop(email, None)
            if identity is not None:
                assert identity.remote_id not in self.idp.users

        @precondition(lambda self: self.in_flight)
        @rule(data=st.data())
        def retry(self, data) -> None:
            email = data.draw(st.sampled_from(sorted(self.in_flight)))
            key, call, expect = self.in_flight[email]
            self.run(make_everything_due(self.accord))
            try:
                result = self.run(call(key))
            except (errors.OperationPending, SimulatedCrash):
                return
            except (errors.IdentityExists, errors.EmailAlreadyExists):
                assert expect == REFUSED  # the stored refusal, answered again for the key
                del self.in_flight[email]
                self._settled(email, expect, self.run(self._user_id(email)))
                return
            del self.in_flight[email]
            self._settled(email, expect, result["user"]["id"])

        @rule()
        def worker_run(self) -> None:
            self.idp.clear_script()
            self.run(make_everything_due(self.accord))
            mailer = SmtpServer(Inbox(), free_port()).mailer()  # down: mail waits, ops don't
            self.run(worker.run_until_idle(self.accord, mailer))
            for email in list(self.in_flight):
                _, _, expect = self.in_flight.pop(email)
                self._settled(email, expect, self.run(self._user_id(email)))

        async def _user_id(self, email: str) -> str | None:
            async with self.accord.db.transaction() as conn:
                found = (
                    await conn.execute(
                        text("SELECT id FROM users WHERE email = :e AND status <> 'disabled'"),
                        {"e": email},
                    )
                ).scalar_one_or_none()
            return None if found is None else str(found)

        @invariant()
        def guarantees_hold(self) -> None:
            self.run(assert_guarantees(self.accord))

        @invariant()
        def planted_identities_are_untouched(self) -> None:
            planted = {**self.foreign, **self.adopted}
            for identity in planted.values():
                assert self.idp.users.get(identity.remote_id) == identity  # name, no stamp
            ids = {identity.remote_id for identity in planted.values()}
            written = [c for c in self.idp.calls if c[0] == "update" and c[1] in ids]
            assert written == [], f"a foreign identity was written to: {written}"

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
