"""``webhook_signature`` through the real ``calflow`` command: ``integrations add --set``
and ``integrations update`` (in place, same id), refused at once when invalid."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from calflow.db.engine import reset_engines
from calflow.integrations import IntegrationStore
from calflow.settings import Settings

from .conftest import run_calflow, run_many

pytestmark = pytest.mark.slow

STD_SECRET = "whsec_" + base64.b64encode(b"cli-standard-webhooks-key-0123456").decode()
BAD_SECRET = "whsec_not base64!"


def stored(home: Path, name: str) -> dict[str, object]:
    try:
        return IntegrationStore.default(Settings(home=home)).get(name).values()
    finally:
        reset_engines()


def test_add_with_webhook_signature_and_refusals(tmp_path: Path) -> None:
    added = run_calflow(
        tmp_path, "integrations", "add", "cal_com", "--name", "std", "--set", "api_key=cal_x",
        "--set", "webhook_signature=standard", "--set", f"webhook_secret={STD_SECRET}", "--json",
    )  # fmt: skip
    assert added.code == 0, str(added)
    assert added.json["config"]["webhook_signature"] == "standard"
    assert added.json["secrets"] == {"api_key": "********", "webhook_secret": "********"}
    assert STD_SECRET not in added.stdout
    plain, bad_secret, savvy_plain = run_many(
        tmp_path,
        ("integrations", "add", "cal_com", "--name", "p", "--set", "api_key=k",
         "--set", "webhook_signature=plain"),
        ("integrations", "add", "cal_com", "--name", "b", "--set", "api_key=k",
         "--set", "webhook_signature=standard", "--set", f"webhook_secret={BAD_SECRET}"),
        ("integrations", "add", "savvycal", "--name", "s", "--set", "token=pt_secret_x",
         "--set", "webhook_signature=Standard"),
    )  # fmt: skip
    for refused in (plain, savvy_plain):
        assert refused.code == 2, str(refused)
        assert "webhook_signature" in refused.err and "provider, standard" in refused.err
    assert "'plain'" in plain.err and "'Standard'" in savvy_plain.err
    assert bad_secret.code == 2, str(bad_secret)
    assert "webhook_secret" in bad_secret.err and "whsec_<base64>" in bad_secret.err
    assert "not base64!" not in bad_secret.stdout + bad_secret.stderr
    listed = run_calflow(tmp_path, "integrations", "list", "--json")
    assert [i["name"] for i in listed.json] == ["std"]  # nothing refused was saved


def test_update_changes_settings_in_place(tmp_path: Path) -> None:
    added = run_calflow(
        tmp_path, "integrations", "add", "savvycal", "--name", "sc",
        "--set", "token=pt_secret_first", "--set", "webhook_secret=provider-secret", "--json",
    )  # fmt: skip
    assert added.code == 0, str(added)
    ident = added.json["id"]
    # standard with the provider's secret that does not decode: refused, nothing changed
    refused = run_calflow(tmp_path, "integrations", "update", "sc",
                          "--set", "webhook_signature=standard")  # fmt: skip
    assert refused.code == 2, str(refused)
    assert "webhook_secret" in refused.err and "whsec_<base64>" in refused.err
    assert "webhook_signature" not in stored(tmp_path, "sc")
    switched = run_calflow(
        tmp_path, "integrations", "update", "sc", "--set", "webhook_signature=standard",
        "--set", f"webhook_secret={STD_SECRET}", "--json",
    )  # fmt: skip
    assert switched.code == 0, str(switched)
    assert switched.json["id"] == ident and switched.json["name"] == "sc"
    assert switched.json["config"]["webhook_signature"] == "standard"
    assert STD_SECRET not in switched.stdout
    values = stored(tmp_path, "sc")
    assert values["webhook_secret"] == STD_SECRET and values["token"] == "pt_secret_first"
    plain, unknown, unset_unknown, missing, back = run_many(
        tmp_path,
        ("integrations", "update", "sc", "--set", "webhook_signature=plain"),
        ("integrations", "update", "sc", "--set", "colour=red"),
        ("integrations", "update", "sc", "--unset", "colour"),
        ("integrations", "update", "nope", "--set", "webhook_signature=standard"),
        ("integrations", "update", ident, "--unset", "webhook_signature"),
    )  # fmt: skip
    assert plain.code == 2 and "webhook_signature" in plain.err, str(plain)
    assert "provider, standard" in plain.err
    assert unknown.code == 2 and "colour" in unknown.err, str(unknown)
    assert unset_unknown.code == 2 and "unset.colour" in unset_unknown.err, str(unset_unknown)
    assert missing.code == 2 and "nope" in missing.err, str(missing)
    assert back.code == 0, str(back)
    assert f"updated integration 'sc' ({ident})" in back.stdout
    assert "webhook_signature" not in stored(tmp_path, "sc")  # provider again, by default
