"""The one error hierarchy (STYLE §D): wire codes, statuses, challenges, safe descriptions."""

from __future__ import annotations

import pytest

from ostiary.errors import (
    AuthorizationFlowError,
    ClientError,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
)


def test_an_error_renders_its_code_and_default_description() -> None:
    error = InvalidGrantError(detail="code expired")
    assert (error.status_code, error.detail, error.headers()) == (400, "code expired", {})
    assert error.to_dict() == {
        "error": "invalid_grant",
        "error_description": "The grant is invalid, expired, revoked or was issued to another "
        "client.",
    }


@pytest.mark.parametrize("description", ['say "hi"', "back\\slash", "tab\there", "é"])
def test_a_description_rfc_6749_forbids_is_refused(description: str) -> None:
    """RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E only."""
    with pytest.raises(ValueError, match="error_description has characters RFC 6749 forbids") as e:
        InvalidRequestError(description)
    assert str(e.value) == f"error_description has characters RFC 6749 forbids: {description!r}"


@pytest.mark.parametrize(
    ("status_code", "used_basic", "headers"),
    [
        (None, True, {"WWW-Authenticate": 'Basic realm="ostiary"'}),
        (None, False, {}),
        (400, True, {}),
    ],
)
def test_invalid_client_challenges_only_a_401_after_basic_auth(
    status_code: int | None, used_basic: bool, headers: dict[str, str]
) -> None:
    """RFC 6749 §5.2: a 401 carries the challenge of the scheme the client used."""
    error = InvalidClientError(status_code=status_code, used_basic=used_basic)
    assert error.headers() == headers
    assert error.status_code == (status_code or 401)


def test_an_authorization_flow_error_carries_the_servers_code() -> None:
    error = AuthorizationFlowError("token request refused", error="invalid_grant")
    assert isinstance(error, ClientError)
    assert (str(error), error.error) == ("token request refused", "invalid_grant")
    assert AuthorizationFlowError("no code").error is None
