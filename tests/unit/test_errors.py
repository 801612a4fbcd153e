import json
import subprocess
import sys

from accord.domain import errors


def test_every_error_has_a_code_and_a_message() -> None:
    for code, cls in errors.error_codes().items():
        assert code and code == code.lower() and " " not in code
        instance = cls("x") if cls is not errors.OperationPending else cls("op", 1.0)
        assert instance.message
        assert isinstance(instance, errors.AccordError)


def test_the_documented_codes_exist() -> None:
    codes = set(errors.error_codes())
    assert {
        "email_invalid",
        "email_exists",
        "identity_exists",
        "organization_not_found",
        "organization_full",
        "forbidden",
        "idempotency_key_reused",
        "operation_in_progress",
        "idp_unavailable",
        "idp_rejected",
    } <= codes


def test_default_message_is_the_docstring() -> None:
    assert errors.OrganizationFull().message == "The organization has reached its member limit."


def test_each_error_has_its_own_code() -> None:
    codes = [cls.code for cls in errors.CATALOGUE]
    assert len(codes) == len(set(codes))
    assert errors.error_codes()["idp_unavailable"] is errors.ProviderUnavailable
    assert errors.error_codes()["idp_outcome_unknown"] is errors.OutcomeUnknown
    assert errors.error_codes()["operation_pending"] is errors.OperationPending


def test_a_pending_operation_says_why_it_waits() -> None:
    assert errors.OperationPending("op", 1.0).reason_code == "idp_unavailable"
    reason = errors.OutcomeUnknown.code
    assert errors.OperationPending("op", 1.0, reason_code=reason).reason_code == reason


# A fresh interpreter: pytest's has imported much of accord already (the conftests), and the
# point is the catalogue as read after importing accord.domain.errors and nothing else of accord.
WHOLE_PACKAGE = """
import importlib, json, pkgutil, sys
from accord.domain import errors
loaded = sorted(name for name in sys.modules if name.split(".")[0] == "accord")
before = {code: cls.__qualname__ for code, cls in errors.error_codes().items()}
for module in pkgutil.walk_packages(sys.modules["accord"].__path__, "accord."):
    if not module.name.endswith(".__main__"):  # importing it runs the CLI
        importlib.import_module(module.name)
after = {code: cls.__qualname__ for code, cls in errors.error_codes().items()}
pending, everywhere = [errors.AccordError], []
while pending:
    cls = pending.pop()
    everywhere.append(f"{cls.__module__}.{cls.__qualname__}")
    pending.extend(cls.__subclasses__())
listed = [f"{cls.__module__}.{cls.__qualname__}" for cls in errors.CATALOGUE]
print(json.dumps({"loaded": loaded, "before": before, "after": after,
                  "everywhere": everywhere, "listed": listed}))
"""


def test_the_catalogue_is_every_error_of_the_package_whatever_was_imported() -> None:
    run = subprocess.run(
        [sys.executable, "-c", WHOLE_PACKAGE], capture_output=True, text=True, check=True
    )
    found = json.loads(run.stdout)
    assert found["loaded"] == ["accord", "accord.domain", "accord.domain.errors"]
    assert found["after"] == found["before"]  # (a) importing the package changes nothing
    assert set(found["everywhere"]) == set(found["listed"])  # (b) every subclass is listed
    assert len(found["listed"]) == len(set(found["listed"])) == len(found["after"])  # (c)
