"""The hub's gettext catalog: Swedish for the English texts people are shown.

The English text is the message id; the Swedish lives in
``hub/text/locale/sv/LC_MESSAGES/messages.po``, a plain gettext catalog kept with Babel
(docs/web.md, "Languages", says how to update it). It holds the texts of the pages
(``hub/web``) and the names of the common model's fields and codes (:mod:`hub.text.records`),
which the register extract shows too.

The catalog is compiled in memory when first needed (Babel's ``read_po`` and
``write_mo``), so there is no build step and no binary file in the repository.
"""

from __future__ import annotations

import io
from functools import cache
from gettext import NullTranslations
from pathlib import Path
from typing import Final

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

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


def N_(message: str) -> str:
    """Marks ``message`` for the catalog where it is defined; translated where it is shown."""
    return message
