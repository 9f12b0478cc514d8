"""The family registry: which model families golfcheck can re-score, and which one a file is.

Every subpackage of `gepa/families/` with a `family` module exposing `FAMILY` is a family; they are
discovered on first use, so adding a family means adding one folder (and a family's torch-free
modules, such as its config and FLOP model, can be imported without loading any model code). A config's top-level `family` key selects one;
without it the family is detected from the artifact's decoded content (format tags, tensor names
and shapes, never the file name), and exactly one family must claim it.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import TYPE_CHECKING, Any, Mapping

from gepa.errors import ArtifactFormatError, ConfigError

if TYPE_CHECKING:
    from gepa.codec import Artifact
    from gepa.families.base import Family, FamilyConfig

DEFAULT_FAMILY = "gepa"  # what a config without `family` and without an artifact means (the seed's)


@functools.cache
def registry() -> dict[str, Family]:
    found: dict[str, Family] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.ispkg:
            continue
        # safe: only the packages shipped inside gepa/families are imported, never submitted code
        module = importlib.import_module(f"{__name__}.{info.name}.family")
        family = getattr(module, "FAMILY", None)
        if family is not None:
            found[family.name] = family
    return found


def names() -> list[str]:
    return sorted(registry())


def get(name: str) -> Family:
    try:
        return registry()[name]
    except KeyError:
        raise ConfigError(f"unknown family {str(name)[:40]!r}; this verifier knows: {', '.join(names())}") from None


def detect(art: Artifact) -> Family:
    """The one family whose `sniff` claims the decoded artifact."""
    claims = [f for f in registry().values() if f.sniff(art)]
    if len(claims) == 1:
        return claims[0]
    if not claims:
        raise ArtifactFormatError(
            f"no model family recognises this artifact ({art.kind} container, {art.format}); golfcheck re-scores "
            f"{', '.join(names())} — set the config's `family` key if it is one of them")
    raise ArtifactFormatError(f"the artifact matches several families ({', '.join(f.name for f in claims)}); "
                              "set the config's `family` key")


def family_of(raw: Mapping[str, Any] | None, art: Artifact | None) -> Family:
    """The family a config names, else the one the artifact is, else the default."""
    if raw is not None and "family" in raw:
        name = raw["family"]
        if not isinstance(name, str):
            raise ConfigError(f"config key family must be a string naming one of: {', '.join(names())}")
        return get(name)
    if art is not None:
        return detect(art)
    return get(DEFAULT_FAMILY)


def resolve(raw: Mapping[str, Any] | None, art: Artifact | None) -> tuple[Family, FamilyConfig, bool]:
    """(family, parsed config, whether the whole config was inferred from the artifact).

    Without a config, the model is inferred from the artifact's tensors and everything else takes
    the family's record defaults. With one, model keys it leaves out are taken from the tensors
    too (a key the tensors determine can have only that value); the keys it gives are checked
    against the tensors by the family's `load_state`."""
    family = family_of(raw, art)
    if art is None:
        if raw is None:
            raise ConfigError("no evaluation config and no artifact to infer one from")
        return family, family.parse_config(raw), False
    inferred = family.infer_config(art)
    if raw is None:
        return family, family.parse_config(inferred), True
    detected = "family" not in raw
    family.check_raw(raw, art)
    model = raw.get("model", {})
    if isinstance(model, Mapping) and isinstance(inferred.get("model"), Mapping):
        raw = {**raw, "model": {**inferred["model"], **model}}
    try:
        return family, family.parse_config(raw), False
    except ConfigError as e:
        if not detected:
            raise
        # A config written for one family meeting another family's artifact reads as a pile of
        # unknown keys; say which family the artifact is.
        raise ConfigError(f"{e} (the artifact is a {family.name}-family model, detected from its content; "
                          "a config for another family must name it in its `family` key)") from None
