"""What a parsed upload must satisfy before it becomes a submission (and is charged to the quota):
a track this leaderboard has, and an evaluation config whose sections and keys a model family
knows, with values of the right types.

The config check is structural and torch-free (the API process never loads torch): it runs each
candidate family's config sections (`gepa.config.parse_sections`) without the family's
cross-field validation, because model keys the config leaves out are only known once the worker
reads them from the artifact. Anything the structure cannot show is still refused by the worker.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import Any

from api.core.crud import configured_tracks, normalise_track
from api.http.problems import Problem
from api.core.settings import Settings
from api.http.uploads import ParsedUpload
from gepa import families
from gepa.config import parse_sections
from gepa.errors import ConfigError


def check_upload(upload: ParsedUpload, settings: Settings) -> None:
    """Raise a 422 Problem naming the field when the track or the config cannot be used."""
    check_track(upload, settings)
    if upload.config_raw is not None:
        check_config(upload.config_raw)


def check_track(upload: ParsedUpload, settings: Settings) -> None:
    """The track the submission will be filed under (the form field, else submission.json's claim)
    must be configured: a free-text track would open a new public leaderboard tab."""
    allowed = configured_tracks(settings)
    if upload.track is not None:
        value, where, field = upload.track, "track", "track"
    else:
        value, where, field = (upload.submission_meta or {}).get("track"), "submission.json's track", "submission_json"
    if value is None:
        return
    track = normalise_track(value, settings.default_track) if isinstance(value, str) else None
    if track not in allowed:
        shown = repr(value[:60]) if isinstance(value, str) else f"of type {type(value).__name__}"
        raise Problem("invalid-field", f"{where} {shown} is not a track of this leaderboard; use one of: "
                      f"{', '.join(allowed)}", field=field)


@functools.cache
def _family_sections() -> dict[str, Any]:
    """family name -> its config sections, from each family's torch-free `config` module (the shipped
    families are fixed for the life of the process, so this is discovered once, not per upload)."""
    out: dict[str, Any] = {}
    for info in pkgutil.iter_modules(families.__path__):
        if not info.ispkg:
            continue
        name = f"{families.__name__}.{info.name}.config"
        try:
            # safe: only packages shipped inside gepa/families are imported, never submitted code
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            out[info.name] = None  # no torch-free config module: the worker checks this family's configs
            continue
        out[info.name] = getattr(module, "SECTIONS", None) or getattr(module, "_SECTIONS", None)
    return out


def check_config(raw: Any) -> None:
    sections = _family_sections()
    named = raw.get("family") if isinstance(raw, dict) else None
    if named is not None:
        if not isinstance(named, str) or named not in sections:
            raise Problem("invalid-field", f"config key family must name one of: {', '.join(sorted(sections))}",
                          field="config")
        candidates = [named]
    else:
        # Without `family` the worker detects it from the artifact: any family may be meant.
        candidates = sorted(sections, key=lambda n: n != families.DEFAULT_FAMILY)
    first: ConfigError | None = None
    for name in candidates:
        if sections[name] is None:
            return  # a family whose config cannot be read without its model code: the worker checks it
        try:
            parse_sections(raw, sections[name], name)
            return
        except ConfigError as exc:
            first = first or exc
    assert first is not None
    raise Problem("invalid-field", f"the evaluation config cannot be used: {first}", field="config")
