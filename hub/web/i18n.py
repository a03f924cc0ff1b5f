"""The pages in Swedish or English.

Swedish is the language of Swedish public administration (språklagen 2009:600), so the
pages speak it by default; a browser that prefers English gets English. The English text
in the templates and in ``hub/web/*.py`` is the message id; the Swedish lives in the hub's
catalog, ``hub/text/locale/sv/LC_MESSAGES/messages.po``, loaded by :mod:`hub.text.catalog`
(it also holds the names of the common model's fields and codes, which the register
extract shows too; docs/web.md says how to update it). The JSON API, the CLI and the CSV
files stay in English: they are read by programs and by the people who run the hub.

Picking the language from ``Accept-Language`` is written here by hand: neither Starlette
nor Babel parses that header, and only the two languages the pages have are of interest.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from jinja2 import pass_context
from jinja2.runtime import Context

from hub.text.catalog import CATALOG as CATALOG
from hub.text.catalog import LANGUAGES as LANGUAGES
from hub.text.catalog import LOCALE_DIR as LOCALE_DIR
from hub.text.catalog import N_ as N_
from hub.text.catalog import SOURCE_LANGUAGE as SOURCE_LANGUAGE
from hub.text.catalog import catalog_path as catalog_path
from hub.text.catalog import translations as translations


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
