"""Pieces of :meth:`hub.consent.service.ConsentService.register_many` (`evi consent import`).

Many new consents at once, with the rules of one registration: each evidence is verified
through the same hook, and each consent gets the same rows and the same ledger entry as
:meth:`~hub.consent.service.ConsentService.register` would give it. What changes is the
cost: participants are looked up in bulk, everything is stored in one transaction, and the
ledger entries are appended in one call. Amendments are refused (register those one by one:
each must lock the consent it amends).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from hub.consent.document import submission_terms
from hub.consent.errors import EvidenceRefusedError
from hub.errors import InputError
from hub.keys import KeyRing
from hub.model.consent import ConsentSubmission
from hub.model.identity import PersonalIdentity
from hub.store.tables.participant import ParticipantRow

_CHUNK = 500  # bound parameters per IN (...) list

_MAX_LISTED = 10


class BulkEvidenceRefusedError(EvidenceRefusedError):
    """Some evidence in a batch did not verify; nothing of the batch was stored.

    ``refused`` holds ``(position, reason)`` for every refused submission, position
    0-based in the batch, the reason without personal data.
    """

    def __init__(self, refused: list[tuple[int, str]], total: int) -> None:
        shown = "; ".join(f"#{i + 1}: {why}" for i, why in refused[:_MAX_LISTED])
        more = f"; and {len(refused) - _MAX_LISTED} more" if len(refused) > _MAX_LISTED else ""
        super().__init__(
            f"{len(refused)} of {total} consents refused, so none was stored (fix or remove "
            f"those and run again): {shown}{more}",
            [f"#{i + 1}: {why}" for i, why in refused],
        )
        self.refused = refused


def check_new_consents(
    batch: Sequence[ConsentSubmission], now: datetime, parties: Sequence[str]
) -> None:
    """Refuse the whole batch (InputError) for an amendment, a future ``informed_at`` or a
    party that is not one of ``parties`` (the hub's)."""
    seen: dict[tuple[object, ...], int] = {}
    repeats: list[tuple[int, int]] = []
    for i, s in enumerate(batch, start=1):
        key = (s.pnr.number, *submission_terms(s))
        if key in seen:
            repeats.append((i, seen[key]))
        else:
            seen[key] = i
    if repeats:  # the same line twice would be two consents, listed and withdrawn twice
        raise InputError(
            f"#{_listed([i for i, _ in repeats])} repeat(s) an earlier line of the file word "
            "for word (the same person, terms and informed_at); remove the repeats. Nothing "
            "was stored",
            [f"#{i}: repeats #{first}" for i, first in repeats],
        )
    unknown = [i + 1 for i, s in enumerate(batch) if set(s.parties) - set(parties)]
    if unknown:
        names = sorted({p for i in unknown for p in batch[i - 1].parties} - set(parties))
        raise InputError(
            f"#{_listed(unknown)} name(s) a party this hub does not have ({', '.join(names)}); "
            f"the parties are {', '.join(parties)}. Nothing was stored",
            [
                f"#{i}: parties: {', '.join(sorted(set(batch[i - 1].parties) - set(parties)))} "
                "is not a party of this hub"
                for i in unknown
            ],
        )
    amendments = [i + 1 for i, s in enumerate(batch) if s.amends is not None]
    if amendments:
        raise InputError(
            f"a bulk import registers new consents only, but #{_listed(amendments)} amend(s) "
            "an existing consent; register amendments one by one with "
            "`evi consent register --file FILE`. Nothing was stored",
            [f"#{i}: amends an existing consent" for i in amendments],
        )
    future = [i + 1 for i, s in enumerate(batch) if s.informed_at > now]
    if future:
        raise InputError(
            f"informed_at is in the future in #{_listed(future)}; give the time the person "
            "was informed. Nothing was stored",
            [f"#{i}: informed_at is in the future" for i in future],
        )


def _listed(positions: list[int]) -> str:
    text = ", #".join(str(p) for p in positions[:_MAX_LISTED])
    hidden = len(positions) - _MAX_LISTED
    return text + (f" and {hidden} more" if hidden > 0 else "")


class Participant(NamedTuple):
    id: int
    pseudonym: str


def participants_for(
    session: Session, keys: KeyRing, identities: Sequence[PersonalIdentity]
) -> dict[str, Participant]:
    """Every identity's participant id and pseudonym, by number; inserts the new ones.

    The bulk counterpart of :meth:`hub.store.participants.ParticipantRepository.ensure`
    (which leaves ``protected_identity`` alone when not given, as here).
    """
    digests = {keys.lookup_digest(i.number): i for i in identities}
    found: dict[str, Participant] = {}
    wanted = sorted(digests)
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        rows = session.execute(
            select(ParticipantRow.pnr_lookup, ParticipantRow.id, ParticipantRow.pseudonym).where(
                ParticipantRow.pnr_lookup.in_(chunk)
            )
        )
        for lookup, pid, pseudonym in rows:
            found[digests[lookup].number] = Participant(pid, pseudonym)
    new = [i for i in digests.values() if i.number not in found]
    if not new:
        return found
    created = datetime.now(UTC)
    pseudonyms = [keys.pseudonym(i.number) for i in new]
    ids = session.scalars(
        insert(ParticipantRow).returning(ParticipantRow.id, sort_by_parameter_order=True),
        [
            {
                "pseudonym": pseudonym,
                "pnr_lookup": keys.lookup_digest(identity.number),
                "pnr_ciphertext": keys.encrypt_number(identity.number),
                "coordination_number": identity.is_coordination_number,
                "gender": identity.gender,
                "birth_year": identity.birth_year,
                "protected_identity": False,
                "created_at": created,
            }
            for identity, pseudonym in zip(new, pseudonyms, strict=True)
        ],
    ).all()
    for identity, pid, pseudonym in zip(new, ids, pseudonyms, strict=True):
        found[identity.number] = Participant(pid, pseudonym)
    return found
