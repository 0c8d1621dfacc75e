"""SavvyCal webhook signatures: ``x-savvycal-signature: sha256=<HEX>`` over the raw body."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from calflow.apps.savvycal.webhook import sign, verify_signature

SECRET = "whsec_savvy_test"
BODY = b'{"type":"event.created","id":"payload_1","version":"2020-11-18","payload":{}}'
HEX = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    "header",
    [f"sha256={HEX}", f"sha256={HEX.upper()}", f"SHA256={HEX.upper()}", f" sha256={HEX} "],
    ids=["lowercase", "uppercase", "uppercase-prefix", "padded"],
)
def test_good_signatures_verify(header: str) -> None:
    assert verify_signature(SECRET, BODY, header)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        HEX,  # no prefix
        f"sha1={HEX}",
        f"sha256={HEX[:-1]}",
        f"sha256={'0' * 64}",
        f"sha256={hmac.new(b'other', BODY, hashlib.sha256).hexdigest()}",
        "sha256=zz",
        "sha256=é",
    ],
    ids=[
        "missing",
        "empty",
        "no-prefix",
        "sha1",
        "short",
        "zeros",
        "other-secret",
        "not-hex",
        "non-ascii",
    ],
)
def test_bad_or_missing_signatures_fail(header: str | None) -> None:
    assert not verify_signature(SECRET, BODY, header)


def test_a_changed_body_fails() -> None:
    assert not verify_signature(SECRET, BODY + b" ", f"sha256={HEX}")


def test_no_secret_never_verifies() -> None:
    assert not verify_signature("", BODY, sign("", BODY))


def test_sign_matches_verify() -> None:
    assert sign(SECRET, BODY) == f"sha256={HEX}"
    assert verify_signature(SECRET, BODY, sign(SECRET, BODY))
