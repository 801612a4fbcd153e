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
