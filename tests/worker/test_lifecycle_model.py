"""Model-based test of the rest of a user's life (issue 13): random sequences of creations,
e-mail and name changes, suspensions and reactivations, invitations accepted by new and
existing people, organizations created and deleted, IdP faults (5xx, 429, timeouts, ghost
writes, a crash mid-call), retries and worker runs.

The model is what a user of accord expects to see: each person's e-mail, name, whether they
are suspended, and their organizations. An operation that could not finish at once (the IdP
failed, the process "died") is in flight; a retry with its key or a worker run finishes it,
and then it must have done exactly what was asked. After every step G1 to G11 hold, the
database equals the model for every person with nothing in flight, and the IdP's e-mail, name
and enabled state equal the database's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import text

from accord.bootstrap import build
from accord.config import Settings
from accord.domain import errors
from accord.services import worker
from accord.services.acceptance import accept
from accord.services.invitations import Invite, invite
from accord.services.offboarding import delete_organization
from accord.services.organizations import NewOrganization, create_organization
from accord.services.profile import ProfileChange, update_user
from accord.services.provisioning import NewUser, create_user
from accord.services.suspension import reactivate_user, suspend_user
from accord.testing import FakeIdentityProvider, Fault, SimulatedCrash
from tests.api.invitation_helpers import mailed_tokens
from tests.engine.conftest import PLATFORM
from tests.guarantees import assert_guarantees
from tests.mailbox import Inbox, SmtpServer, free_port, make_everything_due
from tests.worker.test_model import TABLES

EMAILS = [f"person{i}@example.com" for i in range(6)]
NAMES = ["Ada Lovelace", "Grace Hopper", "Edsger Dijkstra"]
FAULTS = [Fault.UNAVAILABLE, Fault.RATE_LIMITED, Fault.GHOST, Fault.TIMEOUT, Fault.CRASH]
PASSWORD = "a long and unguessable lifecycle passphrase"
UNFINISHED = (errors.OperationPending, SimulatedCrash)


@dataclass
class Person:
    """What the model expects of one person."""

    email: str
    name: str
    orgs: set[UUID]
    suspended: bool = False


@dataclass
class InFlight:
    """An operation that has not finished: how to ask again, and what it must do."""

    again: Callable[[], Awaitable[Any]]
    done: Callable[[Any], None]
    users: set[str] = field(default_factory=set)  # the people it changes (busy meanwhile)
    emails: set[str] = field(default_factory=set)  # the addresses it takes


def machine(settings_: Settings) -> type[RuleBasedStateMachine]:
    class Lifecycle(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.idp = FakeIdentityProvider()
            self.accord = build(settings_, idp=self.idp)
            self.run(self._reset())
            self.people: dict[str, Person] = {}  # user id → what the model expects
            self.orgs: list[UUID] = []
            self.in_flight: list[InFlight] = []
            self.keys = 0
            self.new_org()

        def run(self, coro: Awaitable[Any]) -> Any:
            return self.loop.run_until_complete(coro)

        async def _reset(self) -> None:
            async with self.accord.db.transaction() as conn:
                await conn.execute(text(f"TRUNCATE {TABLES}, invitations, mailbox CASCADE"))

        def teardown(self) -> None:
            self.run(self.accord.aclose())
            self.loop.close()

        # -- what is free, what is busy ---------------------------------------------------------

        def _busy_users(self) -> set[str]:
            return {u for f in self.in_flight for u in f.users}

        def _idle(self, suspended: bool | None = None) -> list[str]:
            busy = self._busy_users()
            return sorted(
                uid
                for uid, p in self.people.items()
                if uid not in busy and (suspended is None or p.suspended == suspended)
            )

        def _free_emails(self) -> list[str]:
            taken = {p.email for p in self.people.values()}
            taken |= {e for f in self.in_flight for e in f.emails}
            return [e for e in EMAILS if e not in taken]

        def _key(self) -> str:
            self.keys += 1
            return f"lifecycle-{self.keys}"

        def _attempt(self, call: Callable[[], Awaitable[Any]], flight: InFlight) -> None:
            """Run a request: it finishes now and does what it must, or it is in flight."""
            try:
                result = self.run(call())
            except UNFINISHED:
                event(f"{flight.done.__name__} left in flight")
                self.in_flight.append(flight)
                return
            flight.done(result)

        # -- rules -------------------------------------------------------------------------------

        @precondition(lambda self: len(self.orgs) < 3)
        @rule()
        def new_org(self) -> None:
            made = create_organization(
                self.accord, NewOrganization(f"Team {self._key()}", max_users=50), caller=PLATFORM
            )
            self.orgs.append(UUID(self.run(made)["id"]))

        @precondition(lambda self: self._free_emails() and self.orgs)
        @rule(data=st.data(), fault=st.none() | st.sampled_from(FAULTS))
        def create(self, data: st.DataObject, fault: Fault | None) -> None:
            email = data.draw(st.sampled_from(self._free_emails()))
            org = data.draw(st.sampled_from(self.orgs))
            if fault:
                self.idp.script("create", fault)
            key, request = self._key(), NewUser(email, NAMES[0], org)

            def created(result: dict[str, Any]) -> None:
                self.people[result["user"]["id"]] = Person(email, NAMES[0], {org})

            def again() -> Awaitable[Any]:
                return create_user(self.accord, request, caller=PLATFORM, idempotency_key=key)

            self._attempt(again, InFlight(again, created, emails={email}))

        @precondition(lambda self: self._idle() and self._free_emails())
        @rule(data=st.data(), fault=st.none() | st.sampled_from(FAULTS), rename=st.booleans())
        def change_email(self, data: st.DataObject, fault: Fault | None, rename: bool) -> None:
            uid = data.draw(st.sampled_from(self._idle()))
            email = data.draw(st.sampled_from(self._free_emails()))
            name = data.draw(st.sampled_from(NAMES)) if rename else None
            if fault:
                self.idp.script("update", fault)
            key, change = self._key(), ProfileChange(email=email, full_name=name)

            def changed(result: dict[str, Any]) -> None:
                person = self.people[uid]
                person.email, person.name = email, name or person.name

            def again() -> Awaitable[Any]:
                return update_user(self.accord, uid, change, caller=PLATFORM, idempotency_key=key)

            self._attempt(again, InFlight(again, changed, users={uid}, emails={email}))

        @precondition(lambda self: self._idle())
        @rule(data=st.data(), fault=st.none() | st.sampled_from(FAULTS))
        def suspend_or_reactivate(self, data: st.DataObject, fault: Fault | None) -> None:
            uid = data.draw(st.sampled_from(self._idle()))
            suspending = not self.people[uid].suspended
            if fault:
                self.idp.script("set_enabled", fault)
            act, key = (suspend_user if suspending else reactivate_user), self._key()

            def switched(result: dict[str, Any]) -> None:
                self.people[uid].suspended = suspending

            def again() -> Awaitable[Any]:
                return act(self.accord, uid, caller=PLATFORM, idempotency_key=key)

            self._attempt(again, InFlight(again, switched, users={uid}))

        @precondition(lambda self: self._free_emails() and self.orgs)
        @rule(data=st.data(), fault=st.none() | st.sampled_from(FAULTS))
        def invite_a_new_person(self, data: st.DataObject, fault: Fault | None) -> None:
            """Invited, then accepted: the person is created in the organization."""
            email = data.draw(st.sampled_from(self._free_emails()))
            org = data.draw(st.sampled_from(self.orgs))
            token = self._invited(org, email)
            if fault:
                self.idp.script("create", fault)

            def joined(result: dict[str, Any]) -> None:
                self.people[result["user"]["id"]] = Person(email, NAMES[1], {org})

            def again() -> Awaitable[Any]:
                return accept(self.accord, token, full_name=NAMES[1], password=PASSWORD)

            self._attempt(again, InFlight(again, joined, emails={email}))

        def _joinable(self) -> list[tuple[str, UUID]]:
            """(idle person, organization they are not in)."""
            return [(u, o) for u in self._idle() for o in self.orgs if o not in self.people[u].orgs]

        @precondition(lambda self: self._joinable())
        @rule(data=st.data())
        def invite_an_existing_person(self, data: st.DataObject) -> None:
            """Accepted by someone accord knows: one transaction, a membership more."""
            uid, org = data.draw(st.sampled_from(self._joinable()))
            token = self._invited(org, self.people[uid].email)
            joined = self.run(accept(self.accord, token, full_name="Ignored", password=PASSWORD))
            assert joined["user"]["id"] == uid
            self.people[uid].orgs.add(org)

        def _invited(self, org: UUID, email: str) -> str:
            self.run(invite(self.accord, Invite(org, email), caller=PLATFORM))
            [token] = self.run(mailed_tokens(self.accord, email))
            return token

        def _deletable(self) -> list[UUID]:
            busy = self._busy_users()
            return [o for o in self.orgs if not any(o in self.people[u].orgs for u in busy)]

        @precondition(lambda self: not self.in_flight and self._deletable())
        @rule(data=st.data(), fault=st.none() | st.sampled_from(FAULTS))
        def delete_org(self, data: st.DataObject, fault: Fault | None) -> None:
            """Its members leave it; those it was the only organization of are deprovisioned."""
            org = data.draw(st.sampled_from(self._deletable()))
            members = {u for u, p in self.people.items() if org in p.orgs}
            if fault:
                self.idp.script("delete", fault)
            self.orgs.remove(org)
            key = self._key()

            def deleted(result: dict[str, Any]) -> None:
                assert result["members_removed"] == len(members)
                for uid in members:
                    self.people[uid].orgs.discard(org)
                    if not self.people[uid].orgs:
                        del self.people[uid]  # deprovisioned: the address is free again

            def again() -> Awaitable[Any]:
                return delete_organization(self.accord, org, caller=PLATFORM, idempotency_key=key)

            self._attempt(again, InFlight(again, deleted, users=members))

        @precondition(lambda self: self.in_flight)
        @rule(data=st.data())
        def retry(self, data: st.DataObject) -> None:
            """The client asks again with its key (after the lease of a "dead" call ran out)."""
            flight = data.draw(st.sampled_from(self.in_flight))
            self.run(make_everything_due(self.accord))
            try:
                result = self.run(flight.again())
            except UNFINISHED:
                return
            self.in_flight.remove(flight)
            flight.done(result)

        @rule()
        def worker_run(self) -> None:
            """The IdP is back; the worker finishes everything, and each retry replays it."""
            self.idp.clear_script()
            self.run(make_everything_due(self.accord))
            mailer = SmtpServer(Inbox(), free_port()).mailer()  # down: mail waits, ops don't
            self.run(worker.run_until_idle(self.accord, mailer))
            for flight in list(self.in_flight):
                self.in_flight.remove(flight)
                flight.done(self.run(flight.again()))

        # -- invariants --------------------------------------------------------------------------

        @invariant()
        def guarantees_hold(self) -> None:
            self.run(assert_guarantees(self.accord))

        @invariant()
        def the_database_and_the_idp_are_the_model(self) -> None:
            rows = self.run(self._people_rows())
            busy = self._busy_users()
            arriving = {e for f in self.in_flight for e in f.emails}  # rows of unfinished ones
            live = {
                uid
                for uid, row in rows.items()
                if row["status"] in ("pending", "active", "suspended")
                and row["email"] not in arriving
            }
            assert live - busy == set(self.people) - busy, "a person the model does not know"
            for uid, person in self.people.items():
                if uid in busy:
                    continue
                row = rows[uid]
                wanted = (person.email, person.name, person.suspended, person.orgs)
                got = (row["email"], row["full_name"], row["status"] == "suspended", row["orgs"])
                assert got == wanted, f"{uid}: the database has {got}, the model {wanted}"
                remote = self.idp.users[row["remote_id"]]
                seen = (remote.email, remote.full_name, not remote.enabled)
                assert seen == wanted[:3], f"{uid}: the IdP has {seen}, the model {wanted}"

        async def _people_rows(self) -> dict[str, dict[str, Any]]:
            async with self.accord.db.transaction() as conn:
                found = await conn.execute(
                    text(
                        "SELECT u.id::text AS id, u.email, u.full_name, u.status::text AS status, "
                        "l.remote_id, coalesce(array_agg(m.organization_id) FILTER "
                        "(WHERE m.organization_id IS NOT NULL), '{}') AS orgs FROM users u "
                        "LEFT JOIN idp_links l ON l.user_id = u.id "
                        "LEFT JOIN memberships m ON m.user_id = u.id "
                        "GROUP BY u.id, l.remote_id"
                    )
                )
                return {r.id: {**r._asdict(), "orgs": set(r.orgs)} for r in found}

    return Lifecycle


def test_random_lifecycles_keep_both_systems_equal(settings: Settings) -> None:
    state_machine = machine(settings)
    state_machine.TestCase.settings = settings_for_ci
    state_machine.TestCase().runTest()


settings_for_ci = settings(
    max_examples=15,
    stateful_step_count=14,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
