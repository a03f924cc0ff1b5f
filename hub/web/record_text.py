"""The common model's field names and codes as the pages show them, in the page's language.

A record's body is codes, dates and parties (hub/model/domain.py); on a page each field
gets a name and each code a word (``long_term_sick_leave`` → "long-term sick leave",
"långvarig sjukskrivning"). The names and their Swedish are the core's
(:mod:`hub.text.records`, shared with the register extract); here they become the
templates' filters. Parties are named in Swedish on a Swedish page (:func:`party_label`);
dates are shown as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context

from hub.ledger.extract import PARTIES_SV
from hub.text.records import CODE_NAMES as CODE_NAMES
from hub.text.records import FIELD_NAMES as FIELD_NAMES
from hub.text.records import KIND_NAMES as KIND_NAMES
from hub.text.records import code_text as code_text
from hub.text.records import details_text, kind_text


@pass_context
def code_name(context: Context, code: Any) -> str:
    """Template filter: ``{{ e.body.type | code_name }}``."""
    return code_text(context["lang"], code)


@pass_context
def party_label(context: Context, party: str | None) -> str:
    """Template filter: ``{{ e.origin | party_label }}``: a party as a Swedish page names it
    in a sentence (kommunen, Arbetsförmedlingen); the code itself on an English page."""
    if not party:
        return ""
    return PARTIES_SV.get(party, party) if context["lang"] == "sv" else party


@pass_context
def kind_name(context: Context, kind: str) -> str:
    """Template filter: ``{{ e.kind | kind_name }}``."""
    return kind_text(context["lang"], kind)


@pass_context
def record_details(context: Context, body: Mapping[str, Any]) -> str:
    """Template filter: a record's fields (but its kind) as "name: value, …", in the
    order of :data:`FIELD_NAMES`."""
    return details_text(context["lang"], body)
