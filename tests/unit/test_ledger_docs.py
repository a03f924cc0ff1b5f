"""docs/ledger.md: its outsider verifier really checks this hub's proofs, and every
`evi log` command is documented."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import typer.main

from hub.commands.log import log_app
from hub.context import Hub
from hub.ledger.event import Action, LedgerEvent
from hub.ledger.writer import append_many

DOC = Path(__file__).resolve().parents[2] / "docs" / "ledger.md"


def code_blocks_after(marker: str) -> list[str]:
    text = DOC.read_text()
    tail = text[text.index(marker) :]
    return re.findall(r"```python\n(.*?)```", tail, flags=re.S)


def test_the_documented_outsider_verifier_checks_real_proofs(hub: Hub, cli) -> None:
    with hub.db.session() as session:
        append_many(session, [LedgerEvent(action=Action.VIEW, actor=f"u{i}") for i in range(9)])
    first_note = cli("log", "checkpoint", "--new").out
    with hub.db.session() as session:
        append_many(session, [LedgerEvent(action=Action.VIEW, actor="later")] * 4)
    note = cli("log", "checkpoint", "--new").out
    vkey = cli("log", "pubkey").out.strip()
    lines = [json.loads(x) for x in cli("log", "export", "--format", "jsonl").out.splitlines()]

    verifier, usage = code_blocks_after("<!-- outsider-verifier -->")[:2]
    namespace: dict = {}
    exec(verifier, namespace)
    for seq in range(13):
        proof = json.loads(cli("log", "prove", "--seq", str(seq), "--json").out)
        exec(usage, {**namespace, "note": note, "vkey": vkey, "line": lines[seq], "proof": proof})

    old_size, old_root = namespace["open_checkpoint"](first_note, vkey)
    size, root = namespace["open_checkpoint"](note, vkey)
    proof = json.loads(cli("log", "consistency", "--from", str(old_size), "--json").out)
    hashes = [bytes.fromhex(h) for h in proof["hashes"]]
    assert namespace["consistent"](old_size, size, old_root, root, hashes)
    assert not namespace["consistent"](old_size, size, root, root, hashes)
    forged = base64.b64encode(b"x" * 32).decode()
    tampered = note.replace(note.split("\n")[2], forged)
    try:
        namespace["open_checkpoint"](tampered, vkey)
    except Exception as exc:  # cryptography's InvalidSignature
        assert type(exc).__name__ == "InvalidSignature"
    else:
        raise AssertionError("a changed checkpoint passed the documented verifier")


def test_every_log_command_is_documented() -> None:
    text = DOC.read_text()
    group = typer.main.get_group(log_app)
    for name in group.commands:
        assert f"`evi log {name}" in text, name
    assert "`evi db harden" in text
