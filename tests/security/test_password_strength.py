"""Finding "passwords ``password`` and ``12345678`` are accepted" (issue 11, abuse is free): on
2a4d142 any password of 8 characters was taken. Now every password a person chooses
(registration, a set-password link, replacing a temporary password, ``accord register``) is
judged by zxcvbn; below ``password.min_score`` (default 3) the answer is 400
``password_too_weak`` with zxcvbn's advice, and nothing is used up or stored. A generated
temporary password always passes."""

from __future__ import annotations

from uuid import UUID, uuid4

import httpx
import pytest

from accord.bootstrap import Accord
from accord.domain import errors, secrets
from accord.domain.model import CredentialMode
from accord.domain.passwords import strength
from accord.services import credentials
from accord.services.provisioning import NewUser, create_user
from accord.services.registration import Registration, register
from tests.engine.conftest import PLATFORM, new_org, scalar
from tests.security import verifying_server
from tests.security.verifying_server import PASSWORD, signs_in

settings, http = verifying_server.settings, verifying_server.http

WEAK = ["password", "12345678", "qwertyuiop", "Passw0rd!"]


def weak(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "password_too_weak"
    return response.json()["detail"]


@pytest.mark.parametrize("password", WEAK)
async def test_public_registration_refuses_a_weak_password(
    http: httpx.AsyncClient, accord: Accord, password: str
) -> None:
    email = f"w-{uuid4().hex[:10]}@example.com"
    body = {"email": email, "password": password, "full_name": "Wendy"}
    detail = weak(await http.post("/api/auth/register", json=body))
    assert "too easy to guess" in detail and len(detail) > 60  # zxcvbn's advice is in it
    assert await scalar(accord, "SELECT count(*) FROM email_verifications") == 0


async def test_a_password_made_of_the_persons_own_name_is_weak(accord: Accord) -> None:
    with pytest.raises(errors.PasswordTooWeak):
        await register(
            accord,
            Registration("margaret.hamilton@example.com", "margarethamilton", "Margaret Hamilton"),
        )


async def test_a_set_password_link_survives_a_weak_choice(
    http: httpx.AsyncClient, accord: Accord
) -> None:
    email = f"s-{uuid4().hex[:10]}@example.com"
    org = await new_org(accord, f"Org {email}")
    made = await create_user(
        accord, NewUser(email, "Sam", org, credential=CredentialMode.INVITE), caller=PLATFORM
    )
    token, _ = await credentials.issue_password_setup(accord, UUID(made["user"]["id"]))
    weak(
        await http.post(
            "/api/auth/password/setup", json={"token": token, "new_password": "12345678"}
        )
    )
    chosen = await http.post(
        "/api/auth/password/setup", json={"token": token, "new_password": PASSWORD}
    )
    assert chosen.status_code == 200, chosen.text
    assert await signs_in(http, email, PASSWORD)


async def test_a_temporary_password_is_replaced_only_by_a_strong_one(
    http: httpx.AsyncClient, accord: Accord
) -> None:
    email = f"t-{uuid4().hex[:10]}@example.com"
    org = await new_org(accord, f"Org {email}")
    made = await create_user(
        accord, NewUser(email, "Tia", org, credential=CredentialMode.TEMP_PASSWORD), caller=PLATFORM
    )
    temporary = made["temporary_password"]
    assert strength(temporary)[0] == 4  # what accord generates passes

    def swap(new: str) -> dict[str, str]:
        return {"email": email, "temporary_password": temporary, "new_password": new}

    weak(await http.post("/api/auth/password/replace-temporary", json=swap("password")))
    swapped = await http.post("/api/auth/password/replace-temporary", json=swap(PASSWORD))
    assert swapped.status_code == 200, swapped.text


def test_generated_temporary_passwords_always_pass() -> None:
    assert min(strength(secrets.temporary_password())[0] for _ in range(200)) >= 3
