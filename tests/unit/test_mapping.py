"""Mapping files: every code a sandbox can emit is mapped, and bad files fail at load."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import connectors.af.sandbox as af_sandbox
import connectors.fk.sandbox as fk_sandbox
import connectors.kommun.sandbox as kommun_sandbox
import connectors.region.sandbox as region_sandbox
from connectors.region.client import GRADE_PERCENT
from hub.connector import ConnectorConfigError, UnmappedCodeError, mapping_for
from hub.connector.mapping import load_mapping
from hub.model.codes import CODE_LISTS, BenefitType, ReferralReason
from hub.resources import bundled_path

SANDBOXES = {
    "kommun": kommun_sandbox,
    "af": af_sandbox,
    "fk": fk_sandbox,
    "region": region_sandbox,
}


@pytest.mark.parametrize("name", sorted(SANDBOXES))
def test_every_code_the_sandbox_can_emit_is_mapped(name: str) -> None:
    mapping = mapping_for(name)
    emitted = SANDBOXES[name].EMITTED_CODES
    assert emitted, "a sandbox declares what it emits"
    for code_list, codes in emitted.items():
        missing = sorted(set(codes) - mapping.known(code_list))
        assert missing == [], f"{name}: [{code_list}] lacks {missing}"


@pytest.mark.parametrize("name", sorted(SANDBOXES))
def test_the_deliberately_unknown_code_is_mapped_nowhere(name: str) -> None:
    mapping = mapping_for(name)
    unknown = SANDBOXES[name].UNKNOWN_CODE
    assert all(unknown not in mapping.known(code_list) for code_list in CODE_LISTS)


def test_every_sick_leave_grade_the_region_can_emit_has_a_degree() -> None:
    assert set(region_sandbox.EMITTED_GRADES) <= set(GRADE_PERCENT)


def test_the_shipped_folder_holds_exactly_one_versioned_file_per_authority() -> None:
    files = sorted(p.stem for p in bundled_path("mappings").glob("*.toml"))
    assert files == sorted(SANDBOXES)
    assert all(mapping_for(name).version for name in files)


def test_a_known_code_maps_and_an_unknown_one_is_flagged() -> None:
    codes = mapping_for("fk").codes_for("fk", "FK-1", strict=False)
    assert codes.map(BenefitType, "SJP", field="formanskod") is BenefitType.SJUKPENNING
    assert codes.map(BenefitType, "NYKOD", field="formanskod") is BenefitType.UNMAPPED
    assert [(u.field, u.code) for u in codes.unmapped] == [("formanskod", "NYKOD")]


def test_strict_mode_refuses_an_unknown_code_naming_file_field_and_code() -> None:
    codes = mapping_for("af").codes_for("af", "af-evt-1", strict=True)
    with pytest.raises(UnmappedCodeError) as err:
        codes.map(ReferralReason, "NEW", field="reason_code")
    assert str(err.value).startswith("af: record af-evt-1 has reason_code code 'NEW'")
    assert "af.toml" in str(err.value)


GOOD = '[mapping]\nauthority = "x"\nversion = "1"\n[benefit_type]\nA = "sjukpenning"\n'


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (GOOD.replace('version = "1"\n', ""), "needs a [mapping] section"),
        (GOOD.replace('"x"', '"y"'), "authority is 'y', expected 'x'"),
        (GOOD.replace("[benefit_type]", "[benefits]"), "unknown section [benefits]"),
        (GOOD.replace('"sjukpenning"', '"sickpay"'), "'sickpay', which is not a common code"),
        (GOOD.replace('"sjukpenning"', '"unmapped"'), "not a common code"),
        (GOOD + "oops", "not valid TOML"),
    ],
)
def test_a_broken_mapping_file_fails_at_load_saying_why(
    tmp_path: Path, text: str, words: str
) -> None:
    path = tmp_path / "x.toml"
    path.write_text(text)
    with pytest.raises(ConnectorConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
        load_mapping(path, connector="x")


def test_a_missing_mapping_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConnectorConfigError, match="does not exist"):
        mapping_for("x", tmp_path / "nope.toml")


def test_an_edited_mapping_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text(GOOD)
    assert mapping_for("x", path).known("benefit_type") == {"A"}
    path.write_text(GOOD + 'B = "sjukersattning"\n')
    os.utime(path, ns=(1, 2_000_000_000_000_000_000))
    assert mapping_for("x", path).known("benefit_type") == {"A", "B"}
