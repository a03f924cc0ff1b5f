"""HTML form bodies (``application/x-www-form-urlencoded``), read without extra packages.

FastAPI's ``Form()`` needs the python-multipart package; the pages' forms are small and
never upload files, so the standard library's parser is enough. Forms are POSTed, so what
they carry (a token, a personnummer) never appears in a URL or an access log.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import Request

from hub.errors import InputError

MAX_FORM_BYTES = 16_384


async def read_form(request: Request) -> dict[str, str]:
    """The posted fields (last value wins); empty fields are left out."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise InputError("send the form as application/x-www-form-urlencoded")
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise InputError("the form is too large")  # before reading it
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise InputError("the form is too large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("the form is not UTF-8") from None
    return {k: v.strip() for k, v in parse_qsl(text, keep_blank_values=False) if v.strip()}
