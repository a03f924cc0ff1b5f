"""`evi demo`: set up the embedded default with sandbox authorities and run one night.

Safe to run again: the caseload is registered once per ``$EVI_HOME`` (remembered in
``hub_meta``); a later run lets a night pass in the sandboxes (each person gets a new
record) and syncs again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from hub.connector.http import is_loopback
from hub.connector.service import build_connector, configured_urls
from hub.context import Hub
from hub.demo.caseload import DemoPerson, register_caseload
from hub.demo.sandboxes import (
    DEMO_POPULATION,
    SandboxTarget,
    configure_for_sandboxes,
    parse_sandbox_urls,
    sandbox_connectors,
    sandbox_targets,
    transports,
)
from hub.errors import ConfigError, InputError
from hub.ledger.service import verify
from hub.store import migrate
from hub.store.meta import get_meta, set_meta
from hub.sync.job import run_sync
from hub.sync.options import SyncOptions

SEED_KEY = "demo:seed"
POPULATION_KEY = "demo:population"
Say = Callable[[str], None]


@dataclass
class DemoOptions:
    seed: int = 1
    setup_only: bool = False
    sandbox_urls: list[str] = field(default_factory=list)
    population: int = DEMO_POPULATION


def run_demo(hub: Hub, options: DemoOptions, say: Say) -> int:
    """Run the demo; returns the exit code (that of the sync, 0 with ``setup_only``)."""
    if hub.settings.environment == "production":
        raise ConfigError(
            "evi demo registers a synthetic caseload and points every connector at a "
            'sandbox; it is refused where environment = "production". Run it with its own '
            "EVI_HOME on a developer's machine"
        )
    before, after = migrate.upgrade(hub.db)
    _require_demo_home(hub)
    hub.keys  # noqa: B018 - creates the keys on a new home, checks them on an existing one
    say(f"database ready at revision {after} ({'new' if before is None else 'existing'})")
    known = sandbox_connectors(hub)
    if not known:
        raise ConfigError("no installed connector ships a sandbox; the demo needs at least one")
    urls = parse_sandbox_urls(options.sandbox_urls, known)
    targets = sandbox_targets(hub, options.seed, urls, options.population)
    configure_for_sandboxes(hub, targets)
    say("connectors enabled: " + ", ".join(f"{n} ({_where(t)})" for n, t in targets.items()))
    first_run = _claim_seed(hub, options.seed, options.population)
    if first_run:
        people = _people(hub, targets, options.population)
        counts = register_caseload(hub, people, options.seed)
        say(
            f"caseload registered for {len(people)} people: "
            + ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in counts.items())
        )
    else:
        say(f"caseload already registered (seed {options.seed})")
        if not options.setup_only:
            _night_passes(hub, targets)
            say("a night passes at the authorities: each person gets a new record")
    if options.setup_only:
        say(_next_step(targets))
        return 0
    report = run_sync(hub, SyncOptions(transports=transports(targets)))
    say("")
    say(report.table())
    result = verify(hub)
    say("")
    if result.ok:
        say(f"ledger verified: {result.size} entries, {result.checkpoints} signed checkpoints")
    else:
        first = result.first_problem
        say(f"ledger verification FAILED: {first}")
    say(NEXT_STEPS)
    return report.exit_code if result.ok else 1


def _require_demo_home(hub: Hub) -> None:
    """Refuse a home whose connectors an operator pointed at a real authority: the demo
    would replace their settings with the sandboxes' and add its synthetic people."""
    urls = configured_urls(hub)
    real = sorted(name for name, url in urls.items() if not _sandbox_url(url))
    if real:
        raise ConfigError(
            f"this EVI_HOME has connectors set up for real authorities ({', '.join(real)}); "
            "evi demo would replace their settings and add synthetic people. Run the demo "
            "with another EVI_HOME; nothing was changed"
        )


def _sandbox_url(url: object) -> bool:
    """A sandbox's address: the demo's in-process ``*.sandbox.invalid`` or this machine."""
    if not isinstance(url, str):
        return True  # not configured with an address (yet)
    host = (urlsplit(url).hostname or "").lower()
    return host.endswith(".sandbox.invalid") or is_loopback(host)


def _next_step(targets: Mapping[str, SandboxTarget]) -> str:
    """What runs the night on a home just set up: `evi sync --sandbox` plays every authority
    in-process, so it fits only when none was given a URL; over HTTP only, plain `evi sync`
    reaches them as configured."""
    served = [name for name, target in targets.items() if target.transport is None]
    if not served:
        return "setup done; run `evi sync --sandbox` (or `evi demo`) to run the nightly sync"
    if len(served) == len(targets):
        return "setup done; run `evi sync` (or `evi demo` with the same --sandbox-url options)"
    return (
        "setup done; run `evi demo` with the same --sandbox-url options to run the nightly "
        f"sync (`evi sync --sandbox` would play {', '.join(served)} in-process too)"
    )


def _where(target: SandboxTarget) -> str:
    return "in-process sandbox" if target.transport is not None else target.url


def _claim_seed(hub: Hub, seed: int, population: int) -> bool:
    """True the first time; refuses a different seed on a home that already has a caseload."""
    with hub.db.session(write_lock=True) as session:
        existing = get_meta(session, SEED_KEY)
        if existing is None:
            set_meta(session, SEED_KEY, str(seed))
            set_meta(session, POPULATION_KEY, str(population))
            return True
    if existing != str(seed):
        raise InputError(
            f"this EVI_HOME holds the demo caseload for seed {existing}; run with --seed "
            f"{existing}, or use another EVI_HOME for seed {seed}"
        )
    return False


def _people(hub: Hub, targets: Mapping[str, SandboxTarget], population: int) -> list[DemoPerson]:
    """The sandbox population (identical in every sandbox with the same seed)."""
    name = sorted(targets)[0]
    with build_connector(hub, name, transport=targets[name].transport) as connector:
        answer = connector.client.get("/_sandbox/people", params={"offset": 0, "limit": population})
        answer.raise_for_status()
        items = answer.json()["items"]
    return [DemoPerson(number=i["number"], protected=bool(i["protected"])) for i in items]


def _night_passes(hub: Hub, targets: Mapping[str, SandboxTarget]) -> None:
    for name, target in targets.items():
        with build_connector(hub, name, transport=target.transport) as connector:
            connector.client.post("/_sandbox/advance", json={"rounds": 1}).raise_for_status()


NEXT_STEPS = """
What to try next:
  evi connectors list                      the authorities, their last sync and status
  evi sync history                         the latest runs' counts
  evi consent list --json                  the registered consents (participant = pseudonym)
  evi participants status --pnr PNR --as team
                                           one person as the joint team may see them
                                           (numbers: evi consent list --json)
  evi participants extract --pnr PNR       all the hub stores about one person (registerutdrag)
  evi stats --from 2023-01-01 --to 2024-12-31
                                           follow-up statistics by gender, small counts hidden
  evi users add anna --party team --role caseworker   then   evi web serve
                                           the web pages (sign in with the printed token;
                                           also privacy_officer, steering_group, administrator)
  evi log search --decision deny           what the gate refused, and why
  evi log sample --action decision --size 10
                                           a random sample of the log for review (stickprov)
  evi log verify                           recompute the whole transfer log
  evi log checkpoint                       the latest signed checkpoint
  evi keys list                            the keys, where each comes from; never a key
  evi transfers failed                     dead letters, with their reasons
  evi demo                                 again: a night passes and the sync runs again
  evi sandbox serve af --port 8001         an authority over real HTTP; then
    evi demo --sandbox-url af=http://127.0.0.1:8001
"""


def demo_sandboxes(hub: Hub) -> dict[str, SandboxTarget]:
    """The in-process sandboxes of the demo set up in this home (for `evi sync --sandbox`)."""
    with hub.db.session() as session:
        seed = get_meta(session, SEED_KEY)
        population = get_meta(session, POPULATION_KEY)
    if seed is None:
        raise ConfigError(
            "--sandbox needs the demo set up in this EVI_HOME: run `evi demo --setup-only`"
        )
    return sandbox_targets(hub, int(seed), {}, int(population or DEMO_POPULATION))
