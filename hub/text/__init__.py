"""Texts for people, in Swedish or English, from one gettext catalog.

The web pages (:mod:`hub.web`) and the register extract (:mod:`hub.casework.held`) show
the same names for the common model's fields, kinds and codes; both take them from here:
:mod:`hub.text.records` holds the names (English message ids), :mod:`hub.text.catalog`
loads their Swedish (``hub/text/locale/sv/LC_MESSAGES/messages.po``, which also holds the
pages' own texts). Nothing here imports the web, so the core can use it.
"""
