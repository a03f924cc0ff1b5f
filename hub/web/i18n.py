"""The pages in Swedish or English.

Swedish is the language of Swedish public administration (språklagen 2009:600), so the
pages speak it by default; a browser that prefers English gets English. The English text
in the templates and in ``hub/web/*.py`` is the message id; the Swedish lives in
``hub/web/locale/sv/LC_MESSAGES/messages.po``, a plain gettext catalog kept with Babel
(docs/web.md says how to update it). The JSON API, the CLI and the CSV files stay in
English: they are read by programs and by the people who run the hub.

The catalog is compiled in memory when first needed (Babel's ``read_po`` and
``write_mo``), so there is no build step and no binary file in the repository.

Picking the language from ``Accept-Language`` is written here by hand: neither Starlette
nor Babel parses that header, and only the two languages the pages have are of interest.
"""

from __future__ import annotations

import io
from functools import cache
from gettext import NullTranslations
from pathlib import Path
from typing import Any, Final

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from fastapi import Request
from jinja2 import pass_context
from jinja2.runtime import Context

LANGUAGES: Final = ("sv", "en")
SOURCE_LANGUAGE: Final = "en"
LOCALE_DIR: Final = Path(__file__).parent / "locale"
CATALOG: Final = "messages"


def catalog_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{CATALOG}.po"


@cache
def translations(language: str) -> NullTranslations:
    """The compiled catalog of ``language`` (the message ids themselves for English)."""
    if language == SOURCE_LANGUAGE:
        return NullTranslations()
    with catalog_path(language).open("rb") as po:
        catalog = read_po(po, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def accepted_languages(header: str) -> list[str]:
    """The primary language tags of an ``Accept-Language`` header, most wanted first
    (ties keep their order; ``q=0`` means not wanted)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().split("-")[0].lower()
        if primary and quality > 0:
            ranked.append((-quality, index, primary))
    return [primary for _, _, primary in sorted(ranked)]


def language_for(request: Request) -> str:
    """The page language for ``request``: the first of sv and en the browser asks for,
    else the configured default (``[web] language``)."""
    for wanted in accepted_languages(request.headers.get("accept-language", "")):
        if wanted in LANGUAGES:
            return wanted
    default: str = request.app.state.hub.settings.web.language
    return default


def N_(message: str) -> str:
    """Marks ``message`` for the catalog where it is defined; translated where it is shown."""
    return message


def tr(request: Request, message: str, **values: Any) -> str:
    """``message`` in the request's language, with ``%(name)s`` placeholders filled."""
    text = translations(language_for(request)).gettext(message)
    return text % values if values else text


def tr_n(request: Request, singular: str, plural: str, count: int, **values: Any) -> str:
    """The singular or plural of a message for ``count`` (also given as ``%(num)d``)."""
    text = translations(language_for(request)).ngettext(singular, plural, count)
    return text % {"num": count, **values}


@pass_context
def template_gettext(context: Context, message: str) -> str:
    """``_()`` and ``gettext()`` in templates: the page's language is ``lang``."""
    return translations(context["lang"]).gettext(message)


@pass_context
def template_ngettext(context: Context, singular: str, plural: str, count: int) -> str:
    return translations(context["lang"]).ngettext(singular, plural, count)
