"""`retain serve`, `retain keys add|list|revoke` and `retain audit verify`: the scoring
service, its API keys and the proof of its audit log."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from retain.options import ConfigOption, bank_config, with_options
from retain.output import JsonOption, console, errors, fail, save_json, table, warn

keys_app = typer.Typer(help="API keys of the scoring service (hashed).", no_args_is_help=True)
audit_app = typer.Typer(help="The service's audit log (hash-chained).", no_args_is_help=True)
SOON_DAYS = 14  # `keys list` flags a live key expiring within this many days
KeysOption = Annotated[
    Path | None,
    typer.Option("--keys", help="Keys file (default: the configuration's service.keys)."),
]


def keys_file(option: Path | None, config: Path | None) -> Path:
    """The keys file: the option, else the configuration's ``[service] keys``."""
    return option if option is not None else Path(bank_config(config).service.keys)


@keys_app.command("add")
def keys_add(
    role: Annotated[
        str, typer.Option(help="crm, rm, admin, or metrics (reads /metrics, no customer).")
    ],
    name: Annotated[str, typer.Option(help="Who or what uses the key (never reused).")],
    rm_id: Annotated[str | None, typer.Option(help="For an rm key: whose book.")] = None,
    expires: Annotated[
        str, typer.Option(help="When the key stops working: days from now (90d) or a date.")
    ] = "90d",
    keys: KeysOption = None,
    scores: Annotated[
        Path | None,
        typer.Option(
            help="The scored snapshot whose RMs an rm key may name (default: service.scores)."
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Create a key; it is printed once, alone on the last line, and stored only as a hash.
    An rm key's ``--rm-id`` must be an RM of the latest scored snapshot."""
    from serving.api.auth import KeyError_, add_key

    if rm_id is not None:
        check_rm(rm_id, scores or Path(bank_config(config).service.scores))
    keys = keys_file(keys, config)
    try:
        record, plain = add_key(keys, name, role, rm_id, expires)
    except KeyError_ as exc:
        fail(str(exc), 2)
    console.print(
        f"key [bold]{record.name}[/] ({record.role}"
        f"{', rm ' + record.rm_id if record.rm_id else ''}, expires {record.expires}) added to "
        f"{keys}; it is shown once, below:"
    )
    print(plain)


def check_rm(rm_id: str, snapshot: Path) -> None:
    """Refuse an RM id the snapshot's ``rms.parquet`` does not hold, naming the nearest ids
    (an rm key for an unknown RM would open an empty page with no warning); without a snapshot
    the id cannot be checked: say so and accept it."""
    import pandas as pd

    from serving.lists import id_text

    table_path = snapshot / "rms.parquet"
    if not table_path.is_file():
        warn(
            f"no scored snapshot at {snapshot}: RM {rm_id!r} is not checked against the bank's "
            "RMs (run `retain score` first, or pass --scores)"
        )
        return
    known = id_text(pd.read_parquet(table_path, columns=["rm_id"])["rm_id"]).dropna().tolist()
    if rm_id in known:
        return
    fail(
        f"RM {rm_id!r} is not one of the {len(known):,} RMs of the snapshot {snapshot}; "
        f"nearest: {', '.join(nearest_ids(rm_id, known)) or 'none'}",
        2,
    )


def nearest_ids(wanted: str, known: list[str], n: int = 3) -> list[str]:
    """The ``n`` ids most like ``wanted``: first those with the same number (``17`` →
    ``RM00017``), then by difflib's similarity."""
    import difflib
    import re

    digits = re.sub(r"\D", "", wanted).lstrip("0")
    same_number = [k for k in known if digits and re.sub(r"\D", "", k).lstrip("0") == digits]
    ratio = difflib.SequenceMatcher(None, b=wanted)

    def likeness(k: str) -> tuple[float, str]:
        ratio.set_seq1(k)
        return -ratio.ratio(), k

    similar = sorted(known, key=likeness)[:n]
    return list(dict.fromkeys([*sorted(same_number), *similar]))[:n]


@keys_app.command("list")
def keys_list(
    keys: KeysOption = None, config: ConfigOption = None, json_path: JsonOption = None
) -> None:
    """List keys (name, role, RM, prefix, created, expires, state) — never the keys
    themselves. Stale keys are flagged: expired, expiring within 14 days, or without an expiry
    (made before keys expired)."""
    from dataclasses import asdict
    from datetime import UTC, datetime

    from serving.api.auth import KeyError_, load_keys

    keys = keys_file(keys, config)
    try:
        records = load_keys(keys)
    except KeyError_ as exc:
        fail(str(exc), 2)
    now = datetime.now(UTC)
    states = [key_state(k, now) for k in records]
    rows = [
        (k.name, k.role, k.rm_id or "", k.prefix + "…", k.created, k.expires or "never", state)
        for k, state in zip(records, states, strict=True)
    ]
    columns = ["name", "role", "rm", "key", "created", "expires", "state"]
    console.print(table(f"API keys in {keys}", columns, rows))
    save_json(
        json_path,
        {
            "keys": [
                {**{k: v for k, v in asdict(r).items() if k != "sha256"}, "state": state}
                for r, state in zip(records, states, strict=True)
            ]
        },
    )


def key_state(key, now) -> str:
    """live, revoked or expired — and for a live key whether it is stale."""
    from datetime import datetime

    state = key.state(now)
    if state != "live":
        return state
    if key.expires is None:
        return "live, stale: no expiry (make a new key)"
    left = (datetime.fromisoformat(key.expires) - now).days
    return f"live, expires in {left} d" if left < SOON_DAYS else "live"


@keys_app.command("revoke")
def keys_revoke(
    name: Annotated[str, typer.Option(help="Name of the key to revoke.")],
    keys: KeysOption = None,
    config: ConfigOption = None,
) -> None:
    """Revoke a key; a running service stops accepting it at once."""
    from serving.api.auth import KeyError_, revoke_key

    keys = keys_file(keys, config)
    try:
        revoke_key(keys, name)
    except KeyError_ as exc:
        fail(str(exc), 2)
    console.print(f"key {name} revoked")


def serve(
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 3000,
    host: Annotated[str, typer.Option(help="Interface (0.0.0.0 for all).")] = "127.0.0.1",
    scores: Annotated[
        Path | None,
        typer.Option(help="A `retain score` output directory (default: service.scores)."),
    ] = None,
    keys: KeysOption = None,
    audit: Annotated[
        Path | None, typer.Option(help="Audit log, JSON lines (default: beside the keys).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (default: service.workers).")
    ] = None,
    config: ConfigOption = None,
    outcomes: Annotated[
        str | None,
        typer.Option(help="Outcome store: a SQLite file or a postgres:// URL (service.outcomes)."),
    ] = None,
    env_file: Annotated[
        Path | None,
        typer.Option(
            "--env-file",
            help="Only write the environment the workers would get (KEY=VALUE lines) to this "
            "file, for a Bento or a container to run with (README, Deploy).",
        ),
    ] = None,
) -> None:
    """Run the scoring API (BentoML) with the champion models from the registry.

    Past its admission limits (environment: RETAIN_MAX_IN_FLIGHT, RETAIN_MAX_QUEUE,
    RETAIN_QUEUE_MS, RETAIN_RETRY_AFTER; docs/api.md, "Overload") a worker answers 503 at once."""
    import shutil

    from models.registry import tracking_uri
    from serving.api.shedding import Limits

    try:
        Limits.from_env()  # the workers read them; a bad one is named here, not in a traceback
    except ValueError as exc:
        fail(str(exc), 2)
    bank = served_config(bank_config(config), scores, keys, audit, workers, outcomes)
    _check_keys(Path(bank.service.keys))
    root = Path(__file__).resolve().parents[1]
    served = {
        "MLFLOW_TRACKING_URI": tracking_uri(),
        "RETAIN_BANK_CONFIG": bank.model_dump_json(),
        "RETAIN_WORKERS": str(bank.service.workers),
    }
    if env_file is not None:  # a Bento keeps its own BentoML home (where the Bento lives)
        write_env_file(env_file, served)
        return
    env = {**os.environ, **served, "BENTOML_HOME": str(bentoml_home(bank, port))}
    bentoml = shutil.which("bentoml", path=str(Path(sys.executable).parent)) or "bentoml"
    args = [
        bentoml,
        "serve",
        "serving.api.service:Retain",
        "--port",
        str(port),
        "--host",
        host,
        "--working-dir",
        str(root),
    ]
    console.print(f"serving on http://{host}:{port} (spec at /docs, readiness at /readyz)")
    # what the service creates (outcome store, audit log, sessions) is readable by no one else
    os.umask(0o077)
    os.execve(bentoml, args, env)


def write_env_file(path: Path, served: dict[str, str]) -> None:
    """``KEY=VALUE`` lines, one a variable, nothing quoted (``docker run --env-file``,
    ``kubectl create configmap --from-env-file``); readable by the owner only, as a tracking
    URI may carry a password."""
    text = "".join(f"{key}={value}\n" for key, value in served.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # a new file gets the mode below; an old one keeps its own
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)
    console.print(
        f"the service's environment ({', '.join(served)}) written to {path}: "
        "run the Bento with it, e.g. `docker run --env-file` (paths as on this machine)"
    )


def bentoml_home(bank, port: int) -> Path:
    """BentoML's folder for this service alone (0700, beside the keys): its workers' metrics
    files live there, and a shared one (``~/bentoml``) is emptied by every other service that
    starts on the machine, and mixes their counts into this one's ``/metrics``."""
    from features.atomic import private_dir

    return private_dir(Path(bank.service.keys).parent / f".bentoml-{port}")


def _check_keys(path: Path) -> None:
    """A keys file that cannot be read stops the service before it starts (its workers could
    not tell a key from another); a missing one is a note: every request is refused until
    `retain keys add` writes one (read when it changes, no restart needed)."""
    from serving.api.auth import KeyError_, load_keys

    if not path.exists():
        note = f"no keys file at {path}: every request is refused until `retain keys add`"
        errors.print(f"[yellow]note:[/] {note} writes one (no restart needed)")
        return
    try:
        load_keys(path)
    except (KeyError_, OSError) as exc:
        fail(str(exc), 2, "nothing was started")


def served_config(bank, scores, keys, audit, workers, outcomes):
    """The configuration the workers get: the options over ``[service]``, every path absolute
    (the workers run in the project folder); no snapshot when its folder does not exist."""
    service = with_options(
        bank,
        service={
            "scores": str(scores) if scores else None,
            "keys": str(keys) if keys else None,
            "audit_log": str(audit) if audit else None,
            "workers": workers,
            "outcomes": outcomes,
        },
    ).service
    snapshot = Path(service.scores) if service.scores else None
    if snapshot is None or not snapshot.exists():
        errors.print(
            f"[yellow]note:[/] no scored snapshot at {snapshot}: id lookups and lists "
            "are off until you run `retain score`"
        )
        snapshot = None
    url = service.outcomes.startswith(("postgres://", "postgresql://"))
    resolved = {
        "scores": str(snapshot.resolve()) if snapshot else None,
        "keys": str(Path(service.keys).resolve()),
        "audit_log": str(Path(service.audit_path).resolve()),
        "sessions": str(Path(service.sessions_path).resolve()),
        "outcomes": service.outcomes if url else str(Path(service.outcomes).resolve()),
        "workers": service.workers,
    }
    return bank.model_copy(update={"service": service.model_copy(update=resolved)})


@audit_app.command("verify")
def audit_verify(
    log: Annotated[
        Path | None,
        typer.Option("--log", help="Audit log (default: the configuration's service.audit_log)."),
    ] = None,
    config: ConfigOption = None,
    json_path: JsonOption = None,
) -> None:
    """Check the audit log's hash chain: exit 0 when every line is as written, 1 naming the
    first line that is not (edited, inserted, removed). Note the last hash it prints
    somewhere else: a log cut short after that point is caught by comparing it."""
    from serving.api.auth import verify_audit

    path = log if log is not None else Path(bank_config(config).service.audit_path)
    if not path.is_file():
        fail(f"no audit log at {path}", 2)
    lines, last, problem = verify_audit(path)
    save_json(json_path, {"log": str(path), "lines": lines, "last_hash": last, "problem": problem})
    if problem is not None:
        fail(f"{path}: {problem} ({lines} line(s) before it check out)", 1)
    console.print(f"{path}: {lines} line(s), the chain holds; last hash {last}")
