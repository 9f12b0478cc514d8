"""Evaluation configs: the JSON a submitter uploads next to the artifact, read safely.

Every family describes its config as frozen dataclasses, one per section; this module turns a
parsed JSON object into them. Missing keys take the dataclass defaults (the family's record
settings); unknown sections or keys, wrong types, NaN and absurd magnitudes raise `ConfigError`
with a message that names the key. Types come from the dataclass annotations: bool, int, float,
str, tuple[int, ...], and any of them or None.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, Mapping

from gepa.errors import ConfigError

MAX_CONFIG_BYTES = 1_000_000


def _one(where: str, value: Any, t: Any) -> Any:
    if t is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key {where} must be true or false, got {value!r}")
        return value
    if t is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key {where} must be an integer, got {value!r}")
        if abs(value) > 2**40:
            raise ConfigError(f"config key {where} is out of range ({value}); use a realistic value")
        return value
    if t is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key {where} must be a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value) or abs(value) > 1e12:
            raise ConfigError(f"config key {where} must be a finite number of sensible size, got {value!r}")
        return value
    if t is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key {where} must be a string, got {value!r}")
        if len(value) > 256:
            raise ConfigError(f"config key {where} is {len(value)} characters long; use a short value")
        return value
    if typing.get_origin(t) is tuple:
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ConfigError(f"config key {where} must be a list of integers, got {value!r}")
        if len(value) > 1024:
            raise ConfigError(f"config key {where} has too many entries ({len(value)})")
        return tuple(value)
    raise ConfigError(f"config key {where} has an unsupported type")  # pragma: no cover


def coerce(where: str, value: Any, annotation: Any) -> Any:
    """Check one value against its field's annotation (optional types accept null)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None:
            return None
        return _one(where, value, args[0])
    return _one(where, value, annotation)


def parse_section(name: str, cls: type, given: Any) -> Any:
    """One section dataclass from a JSON object (missing keys: the defaults)."""
    if not isinstance(given, dict):
        raise ConfigError(f"config section {name} must be a JSON object, got {type(given).__name__}")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    extra = sorted(str(k) for k in set(given) - set(known))
    if extra:
        raise ConfigError(f"unknown key(s) in config section {name}: {', '.join(extra)}; "
                          f"allowed: {', '.join(sorted(known))}")
    return cls(**{k: coerce(f"{name}.{k}", v, hints[k]) for k, v in given.items()})


def parse_sections(raw: Any, sections: Mapping[str, type], family: str) -> dict[str, Any]:
    """Every section of a family's config (absent ones take their defaults)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"the evaluation config must be a JSON object with sections {', '.join(sections)}")
    unknown = sorted(str(k) for k in set(raw) - set(sections) - {"family"})
    if unknown:
        raise ConfigError(f"unknown config section(s) {', '.join(unknown)} for family {family}; "
                          f"allowed: family, {', '.join(sections)}")
    if raw.get("family", family) != family:
        raise ConfigError(f"config names family {raw['family']!r} but is being read as {family}")
    return {name: parse_section(name, cls, raw.get(name, {})) for name, cls in sections.items()}


def section_dict(section: Any) -> dict[str, Any]:
    """A section as JSON-ready values (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(section).items()}


class SectionedConfig:
    """What every family's top-level config dataclass shares: JSON sections plus `family`, and an
    `eval.mode`. Subclasses set `sections` (name -> section dataclass)."""

    sections: ClassVar[Mapping[str, type]]

    @property
    def mode(self) -> str:
        return self.eval.mode  # type: ignore[attr-defined]

    def with_mode(self, mode: str) -> Any:
        """The same config evaluated another way (FLOP estimates compare modes)."""
        return dataclasses.replace(self, eval=dataclasses.replace(self.eval, mode=mode))  # type: ignore[attr-defined,type-var]

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, **{name: section_dict(getattr(self, name)) for name in self.sections}}  # type: ignore[attr-defined]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in an evaluation config")


def loads_json(text: str | bytes) -> Any:
    """Parse config JSON (NaN/Infinity and absurd nesting refused)."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"the evaluation config is {len(text):,} bytes; a config is a few hundred bytes")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ConfigError("the evaluation config is nested too deeply to be a valid config") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"the evaluation config is not valid JSON: {exc}") from None


def load_json(path: str | Path) -> Any:
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file {p} is {size:,} bytes; an evaluation config is a few hundred bytes")
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror or exc}") from None
    return loads_json(data)
