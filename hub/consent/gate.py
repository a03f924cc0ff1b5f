"""THE gate: one pure function that decides whether one disclosure may happen.

    decide(snapshot, origin, recipient, category, purpose, at, *, restricted_origin=False)
        -> Decision

Nothing here touches storage, the clock or the ledger: the caller hands in a
:class:`Snapshot` of one participant's consents, withdrawals, blocks and flags, and the
instant ``at`` (timezone-aware) at which the disclosure would happen.
:mod:`hub.consent.decisions` loads snapshots from the database, calls this function and
records every decision in the ledger.

The rule, in the order it is applied (the first that applies decides):

1. ``restricted_origin=True`` (the data was obtained under a legal right for one purpose,
   e.g. via SSBTEK, and is marked so where it entered the hub): deny ``restricted_origin``,
   whatever any consent says.
2. The participant has a protected identity (``Snapshot.protected_identity``) and the
   category is ``identity``: deny ``protected_identity``.
3. A block active at ``at`` matches (its party is the origin or the recipient, or it names
   no party; its category is the category, or it names none): deny ``blocked``. A block
   always beats a consent.
4. A consent version *in force* at ``at`` names both origin and recipient among its
   parties, the category and the purpose, and no withdrawal that applies to it matches:
   permit ``covered``, citing that consent's id and version.
5. Otherwise deny, with the reason explained below.

Time: every interval is half-open, ``[from, until)``. A version is in force from when it
takes effect, ``max(valid_from, recorded_at)`` (a consent counts once the hub has
verified and recorded it, never before), until the earliest of its ``valid_until`` and the
instant a later version of the same consent takes effect. So a decision about instant
``at`` depends only on what had been recorded by ``at``: asked again later, the gate
gives the same answer. A
withdrawal recorded at ``t`` matches at every ``at >= t``: withdrawal at ``t`` denies at
``t``. A withdrawal applies to the versions that existed when it was recorded
(``version <= up_to_version``); a later, newly signed amendment is a new statement by the
person and is not affected. A withdrawal naming neither party nor category withdraws the
whole consent.

Deny reasons (5.): only versions that have taken effect by ``at`` and have not been
superseded at ``at`` are considered; with none, the reason is ``no_consent``. For each, the
first failing check of: party (origin and recipient both named), category, purpose; a
version that covers all three fails on time instead: ``withdrawn`` if a matching withdrawal
applies, else ``expired``. The reported reason is that of the version that came closest,
ranked ``withdrawn`` > ``expired`` > ``purpose_not_covered`` > ``category_not_covered`` >
``party_not_covered``, ties going to the most recently recorded version; the decision
cites that version.

Why hand-written rather than a policy engine: the rule is small and fixed, every decision
must cite the consent version it relied on and an exact reason code, and it runs on the
hot path of every sync (``bench/consent.py`` compares it with Cedar).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

IDENTITY_CATEGORY = "identity"


class Reason(StrEnum):
    """Why the gate decided as it did. ``covered`` is the only permit reason."""

    COVERED = "covered"
    NO_CONSENT = "no_consent"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"
    BLOCKED = "blocked"
    PARTY_NOT_COVERED = "party_not_covered"
    CATEGORY_NOT_COVERED = "category_not_covered"
    PURPOSE_NOT_COVERED = "purpose_not_covered"
    PROTECTED_IDENTITY = "protected_identity"
    RESTRICTED_ORIGIN = "restricted_origin"


@dataclass(frozen=True, slots=True)
class Decision:
    """The gate's answer.

    ``consent_id``/``consent_version`` name the version relied on for a permit, or the
    version that came closest for a consent-related deny (``expired``, ``withdrawn``,
    ``*_not_covered``); ``None`` otherwise. ``block_id`` names the block for ``blocked``.
    """

    permitted: bool
    reason: Reason
    consent_id: str | None = None
    consent_version: int | None = None
    block_id: str | None = None

    @property
    def decision(self) -> Literal["permit", "deny"]:
        return "permit" if self.permitted else "deny"


# -- the facts a snapshot is built from -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsentFacts:
    """One version of one consent, as the gate needs it. Times are aware UTC.

    ``recorded_at`` is when the hub recorded this version; it takes effect no earlier.
    """

    consent_id: str
    version: int
    parties: frozenset[str]
    categories: frozenset[str]
    purposes: frozenset[str]
    valid_from: datetime
    valid_until: datetime
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class WithdrawalFacts:
    """A withdrawal recorded at ``at``; ``None`` party/category means "any" (whole)."""

    consent_id: str
    up_to_version: int
    at: datetime
    party: str | None = None
    category: str | None = None


@dataclass(frozen=True, slots=True)
class BlockFacts:
    """A block (spärr) active over ``[valid_from, valid_until)``; ``None`` means any/open.

    A block that was lifted is given with ``valid_until`` set to the lifting instant.
    """

    block_id: str
    valid_from: datetime
    valid_until: datetime | None = None
    party: str | None = None
    category: str | None = None


# -- the snapshot ---------------------------------------------------------------------------

# Internal row layouts are plain tuples: unpacking a tuple in a ``for`` is the cheapest way
# CPython offers to read several fields, and this loop is the hot path.
# grant:  (start, stop, parties, categories, purposes, withdrawals, permit, superseded).
# A deny decision citing a version is made when it is given (:func:`_explain`), not
# beforehand: building one of each rank for every version was a seventh of loading a
# city's snapshots, for decisions mostly never given.
# block:  (valid_from, valid_until|None, party|None, category|None, decision)
_Grant = tuple[
    datetime,
    datetime,
    frozenset[str],
    frozenset[str],
    frozenset[str],
    tuple[WithdrawalFacts, ...],
    Decision,
    datetime | None,
]
_Block = tuple[datetime, datetime | None, str | None, str | None, Decision]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One participant's consents, withdrawals, blocks and protected-identity flag.

    Build it with :meth:`build`; it is immutable and may be reused for any number of
    decisions (that is how many records for one person are decided cheaply). Slots, not
    a ``__dict__``: one memory access fewer per field on the hot path.
    """

    protected_identity: bool
    consents: tuple[ConsentFacts, ...]
    withdrawals: tuple[WithdrawalFacts, ...]
    blocks: tuple[BlockFacts, ...]
    _grants: tuple[_Grant, ...] = field(repr=False, compare=False)
    _blocks: tuple[_Block, ...] = field(repr=False, compare=False)
    _order: tuple[ConsentFacts, ...] = field(repr=False, compare=False)

    @classmethod
    def build(
        cls,
        consents: Iterable[ConsentFacts] = (),
        withdrawals: Iterable[WithdrawalFacts] = (),
        blocks: Iterable[BlockFacts] = (),
        *,
        protected_identity: bool = False,
    ) -> Snapshot:
        """Precompute what :func:`decide` needs: effective ends and applicable withdrawals."""
        versions = tuple(consents)
        all_withdrawals = tuple(withdrawals)
        all_blocks = tuple(blocks)
        grants: list[_Grant] = []
        # Most recently recorded first: ties in the deny explanation go to the newest word.
        ordered = sorted(
            versions, key=lambda v: (v.recorded_at, v.consent_id, v.version), reverse=True
        )
        takeovers = _takeovers(versions)
        for v in ordered:
            superseded = _superseded_at(v, takeovers[v.consent_id])
            stop = v.valid_until if superseded is None else min(v.valid_until, superseded)
            applicable = tuple(
                w
                for w in all_withdrawals
                if w.consent_id == v.consent_id and v.version <= w.up_to_version
            )
            start = max(v.valid_from, v.recorded_at)
            permit = Decision(True, Reason.COVERED, v.consent_id, v.version)
            grants.append(
                (start, stop, v.parties, v.categories, v.purposes, applicable, permit, superseded)
            )
        block_rows = tuple(
            (
                b.valid_from,
                b.valid_until,
                b.party,
                b.category,
                Decision(False, Reason.BLOCKED, block_id=b.block_id),
            )
            for b in all_blocks
        )
        return cls(
            protected_identity=protected_identity,
            consents=versions,
            withdrawals=all_withdrawals,
            blocks=all_blocks,
            _grants=tuple(grants),
            _blocks=block_rows,
            _order=tuple(ordered),
        )

    def in_force(self, at: datetime) -> tuple[ConsentFacts, ...]:
        """Versions in force at ``at`` (in effect, not expired, not superseded), newest first.

        Withdrawals are not applied here: a partly withdrawn consent is still in force.
        """
        return tuple(
            facts
            for facts, (start, stop, *_rest) in zip(self._order, self._grants, strict=True)
            if start <= at < stop
        )

    def consent_ends_at(self) -> datetime | None:
        """When the last of this person's consent versions stops being in force: expiry,
        a later version taking over, or a withdrawal of the whole consent, whichever comes
        first for each version; ``None`` with no consent at all.

        A partial withdrawal or a block does not end a consent here, so a consent withdrawn
        party by party counts as running until it expires: retention
        (:mod:`hub.consent.retention`) keeps such records rather than guess.
        """
        return max(
            (
                min([stop, *(w.at for w in withdrawals if w.party is None and w.category is None)])
                for _start, stop, _p, _c, _u, withdrawals, *_rest in self._grants
            ),
            default=None,
        )

    def parties_at(self, at: datetime) -> frozenset[str]:
        """The parties this person's consent names at ``at`` for subscriptions.

        A party counts when a version in force at ``at`` names it, and neither a
        withdrawal of that party (or of the whole consent) applying to the version nor a
        block of that party (or of everything) is in effect. Soundness, not completeness:
        a party not returned can take part in no permitted disclosure at ``at``.
        """
        named: set[str] = set()
        for start, stop, parties, _c, _p, withdrawals, _d, _s in self._grants:
            if not start <= at < stop:
                continue
            for party in parties:
                if not any(
                    w.at <= at and w.category is None and w.party in (None, party)
                    for w in withdrawals
                ):
                    named.add(party)
        for b_from, b_until, b_party, b_category, _d in self._blocks:
            if b_category is None and b_from <= at and (b_until is None or at < b_until):
                if b_party is None:
                    return frozenset()
                named.discard(b_party)
        return frozenset(named)


def _takeovers(versions: tuple[ConsentFacts, ...]) -> dict[str, list[tuple[int, datetime]]]:
    """Each consent's versions as (version, the instant it takes effect)."""
    found: dict[str, list[tuple[int, datetime]]] = {}
    for w in versions:
        found.setdefault(w.consent_id, []).append((w.version, max(w.recorded_at, w.valid_from)))
    return found


def _superseded_at(v: ConsentFacts, takeovers: list[tuple[int, datetime]]) -> datetime | None:
    """When a later version of the same consent takes effect over ``v`` (None: never);
    ``takeovers`` are that consent's versions (:func:`_takeovers`)."""
    if len(takeovers) == 1:  # most consents have only the one version
        return None
    return min((at for version, at in takeovers if version > v.version), default=None)


# -- the decision ---------------------------------------------------------------------------

# Deny reasons for consent versions, by rank: a higher rank came closer to a permit.
_BY_RANK = (
    Reason.NO_CONSENT,  # rank 0 is never cited by a version
    Reason.PARTY_NOT_COVERED,
    Reason.CATEGORY_NOT_COVERED,
    Reason.PURPOSE_NOT_COVERED,
    Reason.EXPIRED,
    Reason.WITHDRAWN,
)
_RESTRICTED = Decision(False, Reason.RESTRICTED_ORIGIN)
_PROTECTED = Decision(False, Reason.PROTECTED_IDENTITY)
_NO_CONSENT = Decision(False, Reason.NO_CONSENT)


def decide(
    snapshot: Snapshot,
    origin: str,
    recipient: str,
    category: str,
    purpose: str,
    at: datetime,
    *,
    restricted_origin: bool = False,
) -> Decision:
    """Decide one disclosure of ``category`` data from ``origin`` to ``recipient``.

    ``at`` must be timezone-aware. ``restricted_origin`` is the mark the data carries from
    where it entered the hub (see the module docstring); callers pass the record's mark.
    Pure: the same arguments always give the same decision.
    """
    if restricted_origin:
        return _RESTRICTED
    if snapshot.protected_identity and category == IDENTITY_CATEGORY:
        return _PROTECTED
    for b_from, b_until, b_party, b_category, blocked in snapshot._blocks:
        if (
            b_from <= at
            and (b_until is None or at < b_until)
            and (b_party is None or b_party in (origin, recipient))
            and (b_category is None or b_category == category)
        ):
            return blocked
    for start, stop, parties, categories, purposes, withdrawals, permit, _s in snapshot._grants:
        if (
            start <= at < stop
            and origin in parties
            and recipient in parties
            and category in categories
            and purpose in purposes
            and not (withdrawals and _withdrawn(withdrawals, origin, recipient, category, at))
        ):
            return permit
    return _explain(snapshot, origin, recipient, category, purpose, at)


def _withdrawn(
    withdrawals: tuple[WithdrawalFacts, ...],
    origin: str,
    recipient: str,
    category: str,
    at: datetime,
) -> bool:
    for w in withdrawals:
        if (
            w.at <= at
            and (w.party is None or w.party == origin or w.party == recipient)
            and (w.category is None or w.category == category)
        ):
            return True
    return False


def _explain(
    snapshot: Snapshot,
    origin: str,
    recipient: str,
    category: str,
    purpose: str,
    at: datetime,
) -> Decision:
    """The deny reason when no version covers: the version that came closest."""
    best_rank = 0
    best = _NO_CONSENT
    for (
        start,
        _stop,
        parties,
        categories,
        purposes,
        withdrawals,
        permit,
        superseded,
    ) in snapshot._grants:
        if start > at or (superseded is not None and at >= superseded):
            continue
        if origin not in parties or recipient not in parties:
            rank = 1
        elif category not in categories:
            rank = 2
        elif purpose not in purposes:
            rank = 3
        elif _withdrawn(withdrawals, origin, recipient, category, at):
            rank = 5
        else:
            # In scope, started, not superseded, not withdrawn: only expiry is left.
            rank = 4
        if rank > best_rank:
            best_rank, best = rank, permit
    if best_rank == 0:
        return _NO_CONSENT
    return Decision(False, _BY_RANK[best_rank], best.consent_id, best.consent_version)
