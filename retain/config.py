"""Load ``retain.toml`` into the typed :class:`features.config.BankConfig`.

Every command takes ``--config PATH``; without it the defaults (the synthetic bank's) apply,
and ``./retain.toml`` is read when it exists. Unknown keys and wrong types are errors that
name the key, in one line each.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from features.config import BankConfig, config_problems

DEFAULT_CONFIG = Path("retain.toml")


class ConfigError(ValueError):
    """A configuration file that cannot be used, with every problem named."""


def load_config(path: Path | None = None) -> BankConfig:
    """The configuration in ``path`` (or ``./retain.toml`` when present, else the defaults)."""
    if path is None:
        if not DEFAULT_CONFIG.is_file():
            return BankConfig()
        path = DEFAULT_CONFIG
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"configuration file {path} does not exist")
    try:
        payload = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    payload.pop("synthetic", None)  # read by `retain synth` only (synthetic/config.py)
    return parse_config(payload, str(path))


def parse_config(payload: dict, where: str = "configuration") -> BankConfig:
    try:
        return BankConfig.model_validate(payload)
    except ValidationError as exc:
        raise ConfigError(f"{where}: " + "; ".join(config_problems(exc))) from exc


def config_payload(config: BankConfig) -> dict:
    """The resolved configuration as plain data in the file's own shape (``retain config
    show``): parsing it again gives the same configuration."""
    payload = config.model_dump(mode="json", exclude={"products"})
    payload["tiers"] = payload["tiers"]["tiers"]
    return payload
