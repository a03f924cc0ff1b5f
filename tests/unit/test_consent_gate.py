"""The gate, case by case: every reason code in a story a caseworker would recognise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.consent.gate import (
    BlockFacts,
    ConsentFacts,
    Reason,
    Snapshot,
    WithdrawalFacts,
    decide,
)

JAN = datetime(2025, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def consent(
    consent_id: str = "c1",
    version: int = 1,
    *,
    parties: tuple[str, ...] = ("af", "kommun", "team"),
    categories: tuple[str, ...] = ("referral", "plan"),
    purposes: tuple[str, ...] = ("coordination",),
    valid_from: datetime = JAN,
    days: int = 365,
    recorded_at: datetime = JAN,
) -> ConsentFacts:
    return ConsentFacts(
        consent_id,
        version,
        frozenset(parties),
        frozenset(categories),
        frozenset(purposes),
        valid_from,
        valid_from + days * DAY,
        recorded_at,
    )


def ask(
    snapshot: Snapshot,
    origin="af",
    recipient="team",
    category="plan",
    purpose="coordination",
    at=JAN + 10 * DAY,
    **flags,
):
    return decide(snapshot, origin, recipient, category, purpose, at, **flags)


def test_no_consent_denies_by_default() -> None:
    decision = ask(Snapshot.build())
    assert (decision.permitted, decision.reason) == (False, Reason.NO_CONSENT)
    assert decision.consent_id is None


def test_a_covering_consent_permits_and_is_cited() -> None:
    decision = ask(Snapshot.build([consent()]))
    assert decision.permitted and decision.reason is Reason.COVERED
    assert (decision.consent_id, decision.consent_version) == ("c1", 1)
    assert decision.decision == "permit"


def test_each_uncovered_dimension_is_named() -> None:
    snapshot = Snapshot.build([consent()])
    assert ask(snapshot, recipient="fk").reason is Reason.PARTY_NOT_COVERED
    assert ask(snapshot, origin="region").reason is Reason.PARTY_NOT_COVERED
    assert ask(snapshot, category="health").reason is Reason.CATEGORY_NOT_COVERED
    assert ask(snapshot, purpose="evaluation").reason is Reason.PURPOSE_NOT_COVERED
    assert ask(snapshot, purpose="evaluation").consent_id == "c1"


def test_expiry_is_automatic() -> None:
    snapshot = Snapshot.build([consent(days=30)])
    assert ask(snapshot, at=JAN + 29 * DAY).permitted
    assert ask(snapshot, at=JAN + 30 * DAY).reason is Reason.EXPIRED


def test_a_consent_that_has_not_started_is_no_consent() -> None:
    assert ask(Snapshot.build([consent(valid_from=JAN + 20 * DAY)])).reason is Reason.NO_CONSENT


def test_whole_withdrawal_denies_from_its_instant() -> None:
    at = JAN + 5 * DAY
    snapshot = Snapshot.build([consent()], [WithdrawalFacts("c1", 1, at)])
    assert ask(snapshot, at=at - timedelta(microseconds=1)).permitted
    assert ask(snapshot, at=at).reason is Reason.WITHDRAWN


def test_partial_withdrawal_stops_only_that_party_or_category() -> None:
    at = JAN + 5 * DAY
    snapshot = Snapshot.build(
        [consent()],
        [WithdrawalFacts("c1", 1, at, party="af"), WithdrawalFacts("c1", 1, at, category="plan")],
    )
    assert ask(snapshot, origin="af", category="referral").reason is Reason.WITHDRAWN
    assert ask(snapshot, origin="kommun", category="plan").reason is Reason.WITHDRAWN
    assert ask(snapshot, origin="kommun", category="referral").permitted


def test_an_amendment_takes_over_when_recorded_and_keeps_the_history() -> None:
    amended_on = JAN + 5 * DAY
    v1 = consent()
    v2 = consent(version=2, parties=("af", "fk", "team"), recorded_at=amended_on)
    snapshot = Snapshot.build([v1, v2])
    before = ask(snapshot, origin="kommun", at=amended_on - DAY)
    assert before.permitted and before.consent_version == 1
    assert ask(snapshot, origin="kommun", at=amended_on).reason is Reason.PARTY_NOT_COVERED
    after = ask(snapshot, origin="fk", at=amended_on)
    assert after.permitted and after.consent_version == 2


def test_an_amendment_starting_later_leaves_the_old_version_in_force_until_then() -> None:
    v1 = consent()
    v2 = consent(version=2, valid_from=JAN + 20 * DAY, recorded_at=JAN + 5 * DAY)
    snapshot = Snapshot.build([v1, v2])
    assert ask(snapshot, at=JAN + 10 * DAY).consent_version == 1
    assert ask(snapshot, at=JAN + 25 * DAY).consent_version == 2


def test_a_newly_signed_amendment_is_not_caught_by_an_earlier_partial_withdrawal() -> None:
    withdrawn_on = JAN + 3 * DAY
    v2 = consent(version=2, recorded_at=JAN + 6 * DAY)
    snapshot = Snapshot.build([consent(), v2], [WithdrawalFacts("c1", 1, withdrawn_on, party="af")])
    assert ask(snapshot, at=JAN + 4 * DAY).reason is Reason.WITHDRAWN
    assert ask(snapshot, at=JAN + 7 * DAY).permitted


def test_a_block_beats_a_consent_and_ends_when_lifted() -> None:
    lifted = JAN + 8 * DAY
    snapshot = Snapshot.build(
        [consent()], blocks=[BlockFacts("b1", JAN + 2 * DAY, lifted, party="team")]
    )
    blocked = ask(snapshot, at=JAN + 3 * DAY)
    assert (blocked.reason, blocked.block_id) == (Reason.BLOCKED, "b1")
    assert ask(snapshot, at=lifted).permitted


def test_a_category_block_leaves_other_categories_alone() -> None:
    snapshot = Snapshot.build([consent()], blocks=[BlockFacts("b1", JAN, None, category="plan")])
    assert ask(snapshot).reason is Reason.BLOCKED
    assert ask(snapshot, category="referral").permitted


def test_restricted_origin_is_never_disclosed_onward() -> None:
    snapshot = Snapshot.build([consent(categories=("benefit",))])
    decision = ask(snapshot, origin="kommun", category="benefit", restricted_origin=True)
    assert decision.reason is Reason.RESTRICTED_ORIGIN
    assert ask(snapshot, origin="kommun", category="benefit").permitted


def test_protected_identity_keeps_identity_details_in_the_hub() -> None:
    snapshot = Snapshot.build([consent(categories=("identity", "plan"))], protected_identity=True)
    assert ask(snapshot, category="identity").reason is Reason.PROTECTED_IDENTITY
    assert ask(snapshot, category="plan").permitted


def test_the_nearest_miss_explains_a_deny() -> None:
    """An expired consent that covered it says more than an active one that never did."""
    old = consent("old", parties=("af", "fk"), days=5)
    current = consent("new", parties=("kommun", "team"), recorded_at=JAN + DAY)
    decision = ask(Snapshot.build([old, current]), origin="af", recipient="fk")
    assert (decision.reason, decision.consent_id) == (Reason.EXPIRED, "old")


def test_parties_at_leaves_out_withdrawn_and_blocked_parties() -> None:
    at = JAN + 10 * DAY
    snapshot = Snapshot.build(
        [consent()],
        [WithdrawalFacts("c1", 1, JAN + DAY, party="kommun")],
        [BlockFacts("b", JAN, None, party="af")],
    )
    assert snapshot.parties_at(at) == {"team"}
    assert Snapshot.build([consent()]).parties_at(JAN + 400 * DAY) == frozenset()
