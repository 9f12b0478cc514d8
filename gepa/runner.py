"""One entry point for every caller that scores a submission: the CLI, the worker, the benchmarks.

`prepare` reads the artifact through the safe codec, picks the family (the config's `family` key,
else detection from the decoded content), parses the config with that family's rules (or infers
one from the tensors when there is none) and checks the container against it. `run_evaluation`
then loads the validation data, builds the model and runs the configured procedure, and stamps
the result with its provenance: family, validation fingerprint, stream length and any demo cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from torch import Tensor

from gepa import codec, families
from gepa.config import load_json, loads_json
from gepa.evaluate import device_of
from gepa.families.base import ChunkCallback, Family, FamilyConfig
from gepa.results import EvalResult
from gepa.shards import ASSETS_DIR, BUNDLED_VAL_GLOB, count_tokens


@dataclass
class Prepared:
    family: Family
    cfg: FamilyConfig
    artifact: codec.Artifact
    state: dict[str, Tensor]
    inferred: bool  # the config was inferred from the tensors (no config given)


def read_config(source: str | Path | bytes | Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """A raw config from a path, JSON text or an already parsed dict (None stays None)."""
    if source is None or isinstance(source, Mapping):
        return source
    if isinstance(source, (bytes, str)) and not isinstance(source, Path) and str(source).lstrip()[:1] == "{":
        return loads_json(source)
    return load_json(source)


def prepare(artifact: str | Path | bytes | codec.Artifact, config: Any = None, *, mode: str | None = None,
            **caps: int) -> Prepared:
    """Decode, detect, parse and check; raises `InputError` subclasses for what a submitter can fix."""
    art = artifact if isinstance(artifact, codec.Artifact) else codec.read_artifact(artifact, **caps)
    raw = read_config(config)
    inferred = raw is None
    if mode is not None:
        raw = dict(raw if raw is not None else families.family_of(None, art).infer_config(art))
        raw["eval"] = {**raw.get("eval", {}), "mode": mode}
    family, cfg, _ = families.resolve(raw, art)
    state = family.load_state(art, cfg)
    return Prepared(family=family, cfg=cfg, artifact=art, state=state, inferred=inferred)


def default_tokenizer(family: Family) -> Path:
    return ASSETS_DIR / family.tokenizer_asset


def default_val_glob(family: Family) -> str:
    """The family's bundled validation sample (tokenized with its own tokenizer)."""
    return str(ASSETS_DIR / family.val_asset) if family.val_asset else BUNDLED_VAL_GLOB


def run_prepared(p: Prepared, *, val_glob: str | None = None, tokenizer: str | Path | None = None,
                 sidecar_glob: str | None = None, device: str = "cpu", on_chunk: ChunkCallback | None = None,
                 should_stop: Callable[[], bool] | None = None, max_tokens: int | None = None,
                 impl: str = "fast") -> EvalResult:
    dev = device_of(device)
    data = p.family.load_data(p.cfg, val_glob or default_val_glob(p.family), tokenizer or default_tokenizer(p.family),
                              sidecar_glob=sidecar_glob)
    model = p.family.build_model(p.cfg, p.state, dev)
    result = p.family.evaluate(model, data, p.cfg, device=dev, impl=impl, on_chunk=on_chunk,
                               should_stop=should_stop, max_tokens=max_tokens)
    result.family = p.family.name
    result.val_sha256 = data.sha256
    result.val_tokens = data.total_tokens
    result.max_tokens = max_tokens
    return result


def run_evaluation(artifact: str | Path | bytes | codec.Artifact, config: Any = None, *, val_glob: str | None = None,
                   tokenizer: str | Path | None = None, sidecar_glob: str | None = None, device: str = "cpu",
                   on_chunk: ChunkCallback | None = None, should_stop: Callable[[], bool] | None = None,
                   max_tokens: int | None = None, impl: str = "fast", mode: str | None = None) -> EvalResult:
    """Score a submitted artifact; `config` is a path, JSON text, a dict or None (inferred)."""
    return run_prepared(prepare(artifact, config, mode=mode), val_glob=val_glob, tokenizer=tokenizer,
                        sidecar_glob=sidecar_glob, device=device, on_chunk=on_chunk, should_stop=should_stop,
                        max_tokens=max_tokens, impl=impl)


def count_chunks(p: Prepared, val_glob: str | None = None, max_tokens: int | None = None) -> int:
    """Progress records the evaluation will emit, from the shard headers alone."""
    return p.family.chunk_count(p.cfg, count_tokens(val_glob or default_val_glob(p.family)), max_tokens)


