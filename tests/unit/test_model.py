"""The common model refuses what does not fit and says which field and why."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from hub.model.domain import Benefit, Closure, HealthStatus, Intervention, Plan, Referral
from hub.model.records import CommonRecord, Transfer
from hub.model.vocab import Category

NUMBER = "189001019802"


def _errors(exc: pytest.ExceptionInfo[ValidationError]) -> dict[str, str]:
    return {".".join(str(p) for p in e["loc"]): e["msg"] for e in exc.value.errors()}


def test_health_status_has_no_place_for_a_diagnosis() -> None:
    with pytest.raises(ValidationError) as exc:
        HealthStatus(
            ongoing_treatment_contact=True, rehab_coordinator_assigned=False, diagnosis="F32"
        )
    assert _errors(exc) == {"diagnosis": "Extra inputs are not permitted"}


def test_sick_leave_needs_start_end_and_degree_together() -> None:
    with pytest.raises(ValidationError, match="start, end and degree together"):
        HealthStatus(
            sick_leave_start=date(2026, 1, 1),
            ongoing_treatment_contact=False,
            rehab_coordinator_assigned=False,
        )
    with pytest.raises(ValidationError) as exc:
        HealthStatus(
            sick_leave_start=date(2026, 1, 1),
            sick_leave_end=date(2026, 2, 1),
            sick_leave_degree=60,
            ongoing_treatment_contact=False,
            rehab_coordinator_assigned=False,
        )
    assert "sick_leave_degree" in _errors(exc)


def test_periods_must_not_end_before_they_start() -> None:
    with pytest.raises(ValidationError, match="end must not be before start"):
        Benefit(type="sjukpenning", start=date(2026, 3, 1), end=date(2026, 2, 1))


def test_codes_outside_the_common_lists_are_named() -> None:
    with pytest.raises(ValidationError) as exc:
        Intervention(type="yoga", provider="af", status="ongoing", start=date(2026, 1, 1))
    assert list(_errors(exc)) == ["type"]
    with pytest.raises(ValidationError) as exc:
        Closure(closed_on=date(2026, 1, 1), reason="goal_reached", outcome="work", survey_answer=9)
    assert list(_errors(exc)) == ["survey_answer"]


def test_party_names_are_checked() -> None:
    with pytest.raises(ValidationError) as exc:
        Referral(referring_party="Arbetsförmedlingen", received_on=date(2026, 1, 1), reason="other")
    assert "lowercase" in _errors(exc)["referring_party"]
    with pytest.raises(ValidationError, match="at least 1"):
        Plan(established_on=date(2026, 1, 1), responsible_parties=())


def test_a_record_knows_its_category_and_fingerprint_without_the_number() -> None:
    record = CommonRecord(
        source="af",
        source_id="af-1",
        person=NUMBER,
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
        body={
            "kind": "closure",
            "closed_on": "2026-01-01",
            "reason": "goal_reached",
            "outcome": "work",
        },
    )
    assert record.category is Category.OUTCOME
    assert record.person.number == NUMBER
    assert len(record.payload_sha256()) == 64
    assert NUMBER not in repr(record)


def test_records_refuse_naive_times_and_bad_numbers() -> None:
    base = {
        "source": "af",
        "source_id": "a",
        "body": {"kind": "benefit", "type": "none", "start": "2026-01-01"},
    }
    with pytest.raises(ValidationError, match="timezone"):
        CommonRecord(person=NUMBER, updated_at=datetime(2026, 1, 1), **base)
    with pytest.raises(ValidationError) as exc:
        CommonRecord(person=NUMBER[:-1] + "0", updated_at=datetime(2026, 1, 1, tzinfo=UTC), **base)
    assert "check digit" in _errors(exc)["person"]
    assert NUMBER[:8] not in str(exc.value).split("input_value")[0]


def test_transfer_without_identity_for_protected_people() -> None:
    transfer = Transfer(
        idempotency_key="k" * 32,
        origin="af",
        recipient="kommun",
        purpose="coordination",
        participant="p-" + "0" * 32,
        person=None,
        source_id="af-1",
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
        body={"kind": "benefit", "type": "aktivitetsstod", "start": "2026-01-01"},
    )
    assert transfer.person is None
    assert transfer.category is Category.BENEFIT


def test_problem_lines_name_the_field_but_never_the_value() -> None:
    from hub.model.problems import problems

    wrong = NUMBER[:-1] + "0"
    with pytest.raises(ValidationError) as exc:
        CommonRecord(
            source="af",
            source_id="a",
            person=wrong,
            updated_at=datetime(2026, 1, 1, tzinfo=UTC),
            body={"kind": "benefit", "type": "none", "start": "2026-01-01", "note": "x"},
        )
    lines = problems(exc.value)
    assert any(line.startswith("person: ") and "check digit" in line for line in lines)
    assert "body.benefit.note: unknown field; remove it or check its spelling" in lines
    assert all(wrong not in line and wrong[:8] not in line for line in lines)
