"""Checks of DESIGN.md's guarantees against the database and the IdP, for any test to call
once the system has settled (worker idle).

Everything is checked every time. The only exemption: the rows and IdP users that belong to an
operation still open (its user id, its e-mail, its remote id) are not yet held to G3 and G7,
because that operation is still making or undoing them.

``assert_guarantees`` is what every test calls. ``assert_tenant_isolation`` checks G10 for one
organization-scoped caller (it needs a caller, so it is separate).

A deprovisioned row has no e-mail (``email`` NULL, the address kept in ``former_email``): it is
held to no e-mail rule, and the address belongs to whoever uses it next.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from accord.bootstrap import Accord
from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.emails import normalize_email
from accord.domain.ports import RemoteUser

# G4: the tables that only accord's service layer may write (no trigger may write them too).
CORE_TABLES = (
    "users",
    "organizations",
    "memberships",
    "idp_links",
    "operations",
    "outbox",
    "audit_events",
    "one_time_tokens",
    "api_tokens",
    "email_verifications",
)
OPERATION_DOCUMENTS = ("request", "result", "flow_state", "error")
SECRET_KEYS = frozenset({"password", "temporary_password", "token"})
# G9, as adapters/idp/local.py and domain/secrets.py write them.
SHA256_HEX = "^[0-9a-f]{64}$"
TEMPORARY_HASH = r"^sha256\$[0-9a-f]{64}$"
ARGON2ID_HASH = (
    r"^\$argon2id\$v=[0-9]+\$m=[0-9]+,t=[0-9]+,p=[0-9]+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$"
)


def normalized(email: str | None) -> str:
    """accord's spelling of ``email``; casefolded where accord would refuse the address."""
    try:
        return normalize_email(email or "")
    except errors.EmailInvalid:
        return (email or "").strip().casefold()


@dataclass(frozen=True)
class OpenClaims:
    """What the open operations are still working on."""

    user_ids: frozenset[str]
    emails: frozenset[str]
    remote_ids: frozenset[str]

    def own_row(self, row: Row) -> bool:
        return str(row.id) in self.user_ids or (
            row.email is not None and normalized(row.email) in self.emails
        )

    def own_remote(self, user: RemoteUser) -> bool:
        return (
            user.remote_id in self.remote_ids
            or (user.accord_user_id or "") in self.user_ids
            or normalized(user.email) in self.emails
        )


@dataclass(frozen=True)
class World:
    """One look at both systems."""

    remote: dict[str, RemoteUser]
    rows: list[Row]
    claims: OpenClaims
    provider: str

    @property
    def linked(self) -> set[str]:
        return {r.remote_id for r in self.rows if r.remote_id}


async def assert_guarantees(accord: Accord) -> None:
    """G1 to G5, G7 to G9 and G11 hold right now (see DESIGN.md; G6, G10 and G12 need a
    request)."""
    remote = {u.remote_id: u async for u in accord.idp.iter_users(page_size=500)}
    provider = accord.idp.name
    async with accord.db.transaction() as conn:
        world = World(remote, await _rows(conn, provider), await _open_claims(conn), provider)
        # Specific diagnoses first: a failed operation's leftover IdP user is G7, not just G3.
        for check in (_g1, _g2, _g2_enabled, _g4, _g5, _g7, _g3, _g8, _g9, _g11):
            await check(conn, world)


async def _all(conn: AsyncConnection, sql: str, **params: Any) -> list[Row]:
    return list((await conn.execute(text(sql), params)).all())


async def _rows(conn: AsyncConnection, provider: str) -> list[Row]:
    return await _all(
        conn,
        "SELECT u.id, u.email, u.former_email, u.status, u.full_name, l.remote_id, "
        "l.created_by_accord FROM users u "
        "LEFT JOIN idp_links l ON l.user_id = u.id AND l.provider = :p",
        p=provider,
    )


async def _open_claims(conn: AsyncConnection) -> OpenClaims:
    ops = await _all(
        conn,
        "SELECT user_id, remote_id, request->>'email' AS email, "
        "flow_state->>'email' AS flow_email FROM operations WHERE state = 'open'",
    )
    return OpenClaims(
        user_ids=frozenset(str(o.user_id) for o in ops if o.user_id),
        emails=frozenset(normalized(e) for o in ops for e in (o.email, o.flow_email) if e),
        remote_ids=frozenset(o.remote_id for o in ops if o.remote_id),
    )


def _twice(emails: Iterator[str]) -> list[str]:
    return sorted(e for e, n in Counter(emails).items() if n > 1)


async def _g1(conn: AsyncConnection, world: World) -> None:
    rows = _twice(normalized(r.email) for r in world.rows if r.email is not None)
    assert rows == [], f"G1: two user rows for one normalized e-mail: {rows}"
    kept = sorted(str(r.id) for r in world.rows if r.status == "disabled" and r.email is not None)
    assert kept == [], f"G1: deprovisioned rows still hold their e-mail: {kept}"
    lost = sorted(str(r.id) for r in world.rows if r.email is None and r.former_email is None)
    assert lost == [], f"G1: rows with neither an e-mail nor a former one: {lost}"
    managed = [u for u in world.remote.values() if u.remote_id in world.linked or u.accord_user_id]
    remote = _twice(normalized(u.email) for u in managed)
    assert remote == [], f"G1: two IdP users accord manages for one normalized e-mail: {remote}"


async def _g2(conn: AsyncConnection, world: World) -> None:
    for row in world.rows:
        if row.status in ("pending", "active", "suspended"):  # suspended: blocked, still linked
            assert row.remote_id in world.remote, f"G2: {row.email} has no IdP user"
            found = world.remote[row.remote_id].email
            assert found == row.email, f"G2: {row.email} has the IdP e-mail {found}"
            _same_name(row, world.remote[row.remote_id])


def _same_name(row: Row, remote: RemoteUser) -> None:
    """G2's profile half: the IdP's name is the row's, for an identity accord made (an adopted
    foreign one keeps its own name, G11). An IdP that keeps no name (None) is not held to it."""
    if not row.created_by_accord or remote.full_name is None:
        return
    assert " ".join(remote.full_name.split()) == row.full_name, (
        f"G2: {row.email} has the IdP name {remote.full_name!r}, the database {row.full_name!r}"
    )


async def _g2_enabled(conn: AsyncConnection, world: World) -> None:
    """G2, suspension: the IdP refuses sign-in exactly for the suspended users (the IdP's
    enabled state equals the database's), once no operation is working on the user. An
    identity another system made may carry that system's own block (G11: not accord's)."""
    differ = sorted(
        f"{row.email} ({row.status}, enabled in the IdP: {world.remote[row.remote_id].enabled})"
        for row in world.rows
        if row.status in ("pending", "active", "suspended")
        and row.remote_id in world.remote
        and not world.claims.own_row(row)
        and world.remote[row.remote_id].enabled != (row.status != "suspended")
        and (row.status == "suspended" or row.created_by_accord is not False)
    )
    assert differ == [], f"G2: the IdP's enabled state differs from the database's: {differ}"


async def _g3(conn: AsyncConnection, world: World) -> None:
    # Only what accord created (its stamp): a foreign identity without a row is not accord's.
    orphans = sorted(
        u.email
        for u in world.remote.values()
        if u.accord_user_id is not None
        and u.remote_id not in world.linked
        and not world.claims.own_remote(u)
    )
    assert orphans == [], f"G3: IdP users without rows: {orphans}"


async def _g4(conn: AsyncConnection, world: World) -> None:
    owners = await _all(
        conn,
        "SELECT u.id, coalesce(u.email, u.former_email) AS email, count(DISTINCT o.id) AS n "
        "FROM users u "
        "LEFT JOIN organizations o ON o.owner_user_id = u.id "
        "WHERE EXISTS (SELECT 1 FROM operations r WHERE r.user_id = u.id "
        "AND r.kind = 'register' AND r.state = 'succeeded') "
        "GROUP BY u.id HAVING count(DISTINCT o.id) <> 1",
    )
    assert owners == [], f"G4: registrants without exactly one organization: {owners}"
    personal = await _all(
        conn,
        "SELECT owner_user_id FROM organizations WHERE kind = 'personal' "
        "GROUP BY owner_user_id HAVING count(*) > 1",
    )
    assert personal == [], f"G4: owners with two personal organizations: {personal}"
    triggers = await _all(
        conn,
        "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE NOT t.tgisinternal AND n.nspname = current_schema() "
        "AND (c.relname = ANY(:core) OR c.relname LIKE 'local\\_%')",
        core=list(CORE_TABLES),
    )
    assert triggers == [], f"G4: triggers write accord's tables: {triggers}"


async def _g5(conn: AsyncConnection, world: World) -> None:
    over = await _all(
        conn,
        "SELECT o.slug FROM organizations o WHERE o.max_users < "
        "(SELECT count(*) FROM memberships m WHERE m.organization_id = o.id) + "
        # A pending invitation holds a seat (one past its time only while being accepted).
        "(SELECT count(*) FROM invitations i WHERE i.organization_id = o.id "
        "AND i.status = 'pending' AND (i.expires_at > now() OR i.accept_operation_id IS NOT NULL))",
    )
    assert over == [], f"G5: organizations over their max_users: {over}"


async def _g7(conn: AsyncConnection, world: World) -> None:
    stuck = sorted(
        r.email for r in world.rows if r.status == "provisioning" and not world.claims.own_row(r)
    )
    assert stuck == [], f"G7: rows left half-created: {stuck}"
    mails = await _all(
        conn,
        "SELECT x.dedupe_key FROM outbox x JOIN operations op "
        "ON x.dedupe_key = 'invitation:' || op.id::text WHERE op.state = 'failed'",
    )
    assert mails == [], f"G7: mail queued by failed operations: {mails}"
    for op in await _failed_claims(conn):
        where = f"failed {op.kind} {op.id} ({op.email})"
        if op.reclaimed:
            assert op.status in (None, "disabled"), f"G7: {where} left its row {op.status}"
        else:
            assert op.status is None, f"G7: {where} left the row it created ({op.status})"
        assert op.memberships == 0, f"G7: {where} left {op.memberships} memberships"
        kept = [
            u.remote_id
            for u in world.remote.values()
            if u.accord_user_id == str(op.user_id)
            or (op.created_remote and u.remote_id == op.remote_id)
        ]
        assert kept == [], f"G7: {where} left the IdP users it created: {kept}"


async def _failed_claims(conn: AsyncConnection) -> list[Row]:
    """Failed operations that claimed a row, unless a later claim of the same row went on."""
    return await _all(
        conn,
        "SELECT op.id, op.kind, op.user_id, op.remote_id, op.created_remote, "
        "op.request->>'email' AS email, u.status, "
        "coalesce(op.flow_state->>'reclaimed', 'false') = 'true' AS reclaimed, "
        "(SELECT count(*) FROM memberships m WHERE m.user_id = op.user_id) AS memberships "
        "FROM operations op LEFT JOIN users u ON u.id = op.user_id "
        "WHERE op.state = 'failed' AND op.kind IN ('create_user', 'register') "
        "AND op.user_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM operations later "
        "WHERE later.user_id = op.user_id AND later.kind IN ('create_user', 'register') "
        "AND later.state <> 'failed' AND later.created_at > op.created_at)",
    )


async def _g8(conn: AsyncConnection, world: World) -> None:
    twice = await _all(
        conn, "SELECT dedupe_key FROM outbox GROUP BY dedupe_key HAVING count(*) > 1"
    )
    assert twice == [], f"G8: two messages for one dedupe key: {twice}"
    early = await _all(
        conn,
        "SELECT x.dedupe_key FROM outbox x JOIN operations op "
        "ON x.dedupe_key = 'invitation:' || op.id::text WHERE op.state = 'open'",
    )
    assert early == [], f"G8: mail queued before its operation committed: {early}"
    unsent = await _all(
        conn,
        "SELECT x.dedupe_key, x.recipient, u.status FROM outbox x "
        "LEFT JOIN users u ON u.id::text = x.payload->>'user_id' "
        "WHERE x.sent_at IS NULL AND x.payload ? 'user_id' "  # not a registration's link
        "AND u.status IS DISTINCT FROM 'pending' "
        "AND u.status IS DISTINCT FROM 'active' "
        # A suspended user still hears of changes to their account (an address change's
        # notice), but gets no link to set a password with until reactivated.
        "AND NOT (u.status = 'suspended' AND x.kind NOT IN ('invitation', 'password_setup'))",
    )
    assert unsent == [], f"G8: unsent mail for users who are not pending or active: {unsent}"


async def _g9(conn: AsyncConnection, world: World) -> None:
    for table in ("one_time_tokens", "api_tokens", "email_verifications"):
        plain = await _all(conn, f"SELECT id FROM {table} WHERE digest !~ :d", d=SHA256_HEX)
        assert plain == [], f"G9: {table} rows not stored as SHA-256 digests: {plain}"
    credentials = await _all(
        conn,
        "SELECT identity_id FROM local_credentials WHERE CASE WHEN is_temporary "
        "THEN secret_hash !~ :t OR expires_at IS NULL "
        "ELSE secret_hash !~ :a OR expires_at IS NOT NULL END",
        t=TEMPORARY_HASH,
        a=ARGON2ID_HASH,
    )
    assert credentials == [], (
        f"G9: local credentials neither argon2id nor an expiring sha256$ digest: {credentials}"
    )
    for where, document in await _documents(conn):
        found = sorted(_secret_keys(document))
        assert found == [], f"G9: {where} holds secrets under {found}"
    # Secrets are held until the IdP call; past it only a temporary password, for the caller
    # and then for a replay by key. Never by a registration past its IdP call, a compensation,
    # or a finished keyless operation.
    sealed = await _all(
        conn,
        "SELECT id, kind, state FROM operations WHERE sealed_secrets IS NOT NULL "
        "AND recovery_point <> 'claimed' AND NOT (kind = 'create_user' "
        "AND request->>'credential' = 'temp_password' AND ((state = 'open' "
        "AND recovery_point = 'idp_ensured') OR (state = 'succeeded' "
        "AND idempotency_key IS NOT NULL)))",
    )
    assert sealed == [], f"G9: operations hold secrets nobody needs any more: {sealed}"


# G11: the audit actions that record a person's explicit request to link a foreign identity.
EXPLICIT_LINKS = ("reconcile.identity_adopted", "reconcile.linked")


async def _g11(conn: AsyncConnection, world: World) -> None:
    # An identity is accord's when it carries an id accord issued (a row's or an operation's).
    issued = {
        str(r.id)
        for r in await _all(
            conn,
            "SELECT id FROM users UNION SELECT user_id FROM operations WHERE user_id IS NOT NULL",
        )
    }
    links = await _all(
        conn,
        "SELECT l.user_id, l.remote_id, l.created_by_accord, EXISTS (SELECT 1 FROM audit_events a "
        "LEFT JOIN operations op ON op.id = a.operation_id WHERE a.subject_user_id = l.user_id "
        "AND (a.action = ANY(:explicit) OR (a.action = 'user.identity_adopted' "
        "AND (op.request->>'adopt_existing')::boolean))) AS requested "
        "FROM idp_links l WHERE l.provider = :p",
        explicit=list(EXPLICIT_LINKS),
        p=world.provider,
    )
    foreign = [
        link
        for link in links
        if link.remote_id in world.remote
        and world.remote[link.remote_id].accord_user_id not in issued
    ]
    marked = sorted(link.remote_id for link in foreign if link.created_by_accord)
    assert marked == [], f"G11: identities accord did not make, marked as its own: {marked}"
    unasked = sorted(link.remote_id for link in foreign if not link.requested)
    assert unasked == [], f"G11: foreign identities linked without a request: {unasked}"
    revived = await _all(
        conn,
        # what each one still has, and the operations about them: a failure says why
        "SELECT DISTINCT u.id, u.status, "
        "EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = u.id) AS member, "
        "EXISTS (SELECT 1 FROM idp_links l WHERE l.user_id = u.id) AS linked, "
        "(SELECT string_agg(o.kind || ':' || o.state || ':' || o.recovery_point || ':' || "
        "o.attempts, ' ' ORDER BY o.created_at) FROM operations o WHERE o.user_id = u.id "
        "OR o.request->>'organization_id' IN (SELECT a2.organization_id::text FROM audit_events "
        "a2 WHERE a2.subject_user_id = u.id AND a2.action = 'user.deprovisioned')) AS ops "
        "FROM audit_events a JOIN users u ON u.id = a.subject_user_id "
        "WHERE a.action IN ('user.deprovisioned', 'reconcile.row_deprovisioned') "
        "AND (u.status <> 'disabled' "
        "OR EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = u.id) "
        "OR EXISTS (SELECT 1 FROM idp_links l WHERE l.user_id = u.id) AND NOT EXISTS ("
        # the link kept when the IdP refused the delete, or when the operation that cut the
        # access gave up before the IdP deleted the identity: the user stays disabled, as
        # deprovisioning.py and offboarding.py say, and the link shows what is left to do
        " SELECT 1 FROM audit_events r WHERE r.action = 'user.identity_delete_refused'"
        " AND r.subject_user_id = u.id) AND NOT EXISTS ("
        " SELECT 1 FROM audit_events d JOIN operations o ON o.id = d.operation_id"
        " WHERE d.action = 'user.deprovisioned' AND d.subject_user_id = u.id"
        " AND o.state = 'failed'))",
    )
    assert revived == [], f"G11: deprovisioned users with access again: {revived}"


async def _documents(conn: AsyncConnection) -> list[tuple[str, Any]]:
    """Every JSON document accord stores, named by where it is."""
    found: list[tuple[str, Any]] = []
    for op in await _all(conn, "SELECT id, request, result, flow_state, error FROM operations"):
        found += [(f"operation {op.id} {k}", getattr(op, k)) for k in OPERATION_DOCUMENTS]
    for event in await _all(conn, "SELECT id, data FROM audit_events"):
        found.append((f"audit event {event.id}", event.data))
    for message in await _all(conn, "SELECT dedupe_key, payload FROM outbox"):
        found.append((f"outbox message {message.dedupe_key}", message.payload))
    return found


def _secret_keys(document: Any) -> Iterator[str]:
    """Keys named like a secret that carry a value, anywhere in ``document``."""
    if isinstance(document, dict):
        for key, value in document.items():
            if key.lower() in SECRET_KEYS and value not in (None, ""):
                yield key
            yield from _secret_keys(value)
    elif isinstance(document, list):
        for item in document:
            yield from _secret_keys(item)


# -- what today's code does not keep (checked apart; see the module docstring) -----------------


async def assert_tenant_isolation(accord: Accord, caller: Caller) -> None:
    """G10 for an organization-scoped ``caller``: another tenant's users and organizations
    answer exactly as missing ones do, and its listing shows only its own members."""
    from accord.services import reads

    async with accord.db.transaction() as conn:
        others = await _all(
            conn, "SELECT id FROM organizations WHERE id <> :o", o=caller.organization_id
        )
        members = await _all(
            conn,
            "SELECT user_id FROM memberships WHERE organization_id = :o",
            o=caller.organization_id,
        )
        strangers = await _all(
            conn,
            "SELECT u.id FROM users u WHERE NOT EXISTS (SELECT 1 FROM memberships m "
            "WHERE m.user_id = u.id AND m.organization_id = :o)",
            o=caller.organization_id,
        )

    def listing(org_id: Any) -> Any:
        return reads.list_users_page(accord, caller=caller, organization_id=org_id)

    def organization(org_id: Any) -> Any:
        return reads.get_organization(accord, org_id, caller=caller)

    def user(user_id: Any) -> Any:
        return reads.get_user(accord, user_id, caller=caller)

    for name, read, ids in (
        ("organization", organization, [o.id for o in others]),
        ("organization's users", listing, [o.id for o in others]),
        ("user", user, [u.id for u in strangers]),
    ):
        expected = await _answer(read(uuid4()))
        for object_id in ids:
            got = await _answer(read(object_id))
            assert got == expected, f"G10: another tenant's {name} answers {got}, not {expected}"
    page = await reads.list_users_page(accord, caller=caller, limit=200)
    shown = {str(u["id"]) for u in page["items"]} - {str(m.user_id) for m in members}
    assert shown == set(), f"G10: the listing shows users of other tenants: {shown}"


async def _answer(read: Any) -> str:
    """The error code a read answers with, or "ok"."""
    try:
        await read
    except errors.AccordError as refusal:
        return refusal.code
    return "ok"
