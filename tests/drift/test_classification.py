"""The drift classes and what --fix may do, without any I/O (domain/drift.py)."""

from __future__ import annotations

import pytest

from accord.domain.drift import (
    Action,
    DriftClass,
    ForeignPolicy,
    IdpUserView,
    OrphanRowPolicy,
    RowView,
    classify_idp_user,
    classify_row,
    email_key,
)


def row(**changes) -> RowView:
    values = {
        "user_id": "u1",
        "email": "ada@example.com",
        "status": "pending",
        "link_remote_id": None,
        "link_email": None,
        "match_remote_id": None,
        "match_linked_to": None,
    }
    return RowView(**{**values, **changes})


def idp_user(**changes) -> IdpUserView:
    values = {
        "remote_id": "r1",
        "email": "ada@example.com",
        "accord_user_id": None,
        "created_by_operation": False,
        "finalized": False,
        "row_status": None,
        "row_linked_elsewhere": False,
    }
    return IdpUserView(**{**values, **changes})


def test_email_key_trims_folds_case_and_composes() -> None:
    assert email_key("  Ade\u0301le@Example.COM ") == "ad\u00e9le@example.com"
    assert email_key(None) == ""


def test_a_confirmed_link_with_the_same_email_is_healthy() -> None:
    linked = row(link_remote_id="r1")
    assert classify_row(linked, "ADA@example.com", OrphanRowPolicy.DEPROVISION) is None


def test_a_link_to_an_identity_with_another_email_is_a_mismatch_left_to_a_person() -> None:
    finding = classify_row(row(link_remote_id="r1"), "bob@example.com", OrphanRowPolicy.REPORT)
    assert finding is not None and finding.drift == DriftClass.EMAIL_MISMATCHES
    assert finding.action == Action.LEAVE and finding.ids["idp_email"] == "bob@example.com"


@pytest.mark.parametrize("stale", [None, "gone"])
def test_a_free_identity_with_the_rows_email_is_linked(stale: str | None) -> None:
    finding = classify_row(
        row(link_remote_id=stale, match_remote_id="r2"), None, OrphanRowPolicy.REPORT
    )
    assert finding is not None and finding.drift == DriftClass.UNLINKED_MATCHES
    assert finding.action == Action.LINK and finding.ids["stale_remote_id"] == stale


@pytest.mark.parametrize(
    ("policy", "status", "link", "action"),
    [
        (OrphanRowPolicy.REPORT, "pending", "gone", Action.LEAVE),
        (OrphanRowPolicy.DEPROVISION, "active", "gone", Action.DEPROVISION),
        (OrphanRowPolicy.RECREATE, "active", "gone", Action.RECREATE),
        (OrphanRowPolicy.RECREATE, "pending", None, Action.RECREATE),
        (OrphanRowPolicy.DEPROVISION, "provisioning", None, Action.REMOVE_ROW),
        (OrphanRowPolicy.RECREATE, "provisioning", None, Action.LEAVE),
    ],
)
def test_orphan_rows_follow_their_flag(policy, status, link, action) -> None:
    finding = classify_row(row(status=status, link_remote_id=link), None, policy)
    assert finding is not None and finding.drift == DriftClass.ORPHAN_ROWS
    assert finding.action == action


def test_an_orphan_row_whose_email_another_user_holds_in_the_idp_is_left() -> None:
    taken = row(link_remote_id="gone", match_remote_id="r2", match_linked_to="u2")
    finding = classify_row(taken, None, OrphanRowPolicy.DEPROVISION)
    assert finding is not None and finding.drift == DriftClass.ORPHAN_ROWS
    assert finding.action == Action.LEAVE


@pytest.mark.parametrize(
    ("changes", "policy", "action"),
    [
        ({"accord_user_id": "u9"}, ForeignPolicy.REPORT, Action.DELETE_IDP_USER),
        ({"created_by_operation": True}, ForeignPolicy.REPORT, Action.DELETE_IDP_USER),
        ({"accord_user_id": "u9", "finalized": True}, ForeignPolicy.REPORT, Action.LEAVE),
        ({"accord_user_id": "u9", "finalized": True}, ForeignPolicy.ADOPT, Action.ADOPT),
        (
            {"accord_user_id": "u9", "finalized": True, "row_status": "disabled"},
            ForeignPolicy.ADOPT,
            Action.DELETE_IDP_USER,
        ),
        ({}, ForeignPolicy.REPORT, Action.LEAVE),
        ({}, ForeignPolicy.ADOPT, Action.ADOPT),
        ({"row_status": "disabled"}, ForeignPolicy.ADOPT, Action.LEAVE),
        ({"row_linked_elsewhere": True, "accord_user_id": "u9"}, ForeignPolicy.ADOPT, Action.LEAVE),
    ],
)
def test_unlinked_idp_users_are_deleted_only_when_accord_made_them_and_never_finished(
    changes, policy, action
) -> None:
    finding = classify_idp_user(idp_user(**changes), policy)
    assert finding.drift == DriftClass.ORPHAN_IDP_USERS
    assert finding.action == action
    by_accord = bool(changes.get("accord_user_id") or changes.get("created_by_operation"))
    assert finding.ids["created_by_accord"] is by_accord
