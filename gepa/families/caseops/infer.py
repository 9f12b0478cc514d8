"""Model settings from a CaseOps artifact's tensors, and the check that a config agrees with them.

The tensors fix the sizes, the gates (dense, sparse or none; SmearGate or not; skip gates) and
the number of U-Net skips; the loop and parallel-lane layout is not stored, so inference takes the
record's layout scaled to the depth (loop layers 3-5 of 11, lanes from layer 8 of 11) and, if
that does not give the stored number of skips, the nearest layout that does.
"""

from __future__ import annotations

from typing import Any

from gepa.codec import Artifact
from gepa.containers import gptq
from gepa.errors import ArtifactContentError
from gepa.families.caseops.config import DEFAULT, ModelConfig


def _shape(art: Artifact, name: str) -> tuple[int, ...] | None:
    if name not in art.container["m"]:
        return None
    return gptq.base_shape(art.container, name)


def _skips(L: int, loops: int, start: int, end: int) -> int:
    return ModelConfig(num_layers=L, caseops_num_loops=loops, caseops_loop_start=start, caseops_loop_end=end).num_skips


def infer_model(art: Artifact) -> dict[str, Any]:
    meta = art.container["m"]
    emb = _shape(art, "tok_emb.weight")
    if emb is None or len(emb) != 2:
        raise ArtifactContentError("artifact lacks tok_emb.weight, which every CaseOps model has")
    vocab, d = emb
    L = 0
    while f"blocks.{L}.attn.c_q.weight" in meta:
        L += 1
    if L == 0:
        raise ArtifactContentError("artifact has no blocks.0.attn.c_q.weight")
    H = (_shape(art, "blocks.0.attn.q_gain") or (DEFAULT.model.num_heads,))[0]
    kvd = (_shape(art, "blocks.0.attn.c_k.weight") or (d, d))[0]
    hd = d // H if H else d
    gate = _shape(art, "blocks.0.attn.attn_gate_w")
    smear = _shape(art, "smear_gate.weight")
    window = gate[1] if gate and gate[1] != d else (smear[1] if smear else DEFAULT.model.caseops_gate_window)
    S = (_shape(art, "skip_weights") or (0,))[0]
    loops, start, end = 2, round(L * 3 / 11), round(L * 5 / 11)
    if _skips(L, loops, start, end) != S:
        found = [(abs(s - start) + abs(e - end) + abs(n - 2), n, s, e) for n in range(0, 5) for s in range(L)
                 for e in range(s, L) if _skips(L, n, s, e) == S]
        if found:
            _, loops, start, end = min(found)
    m = ModelConfig(
        vocab_size=vocab, num_layers=L, model_dim=d, num_heads=H, num_kv_heads=max(1, kvd // hd) if hd else 1,
        mlp_hidden=(_shape(art, "blocks.0.mlp.fc.weight") or (4 * d,))[0], xsa_layers=L,
        caseops_num_loops=loops, caseops_loop_start=start, caseops_loop_end=end,
        caseops_parallel_start_layer=min(L - 1, round(L * 8 / 11)) if L > 1 else 0,
        caseops_skip_gates="skip_gates" in meta,
        caseops_attn_gate="none" if gate is None else ("dense" if gate[1] == d else "sparse"),
        caseops_gate_window=window, caseops_sparse_gate_scale=None,
        caseops_smear_gate="bos_fix" if smear else "none",
        caseops_compressor=art.compression if art.compression in ("brotli+bshf", "brotli", "pergroup")
        else DEFAULT.model.caseops_compressor)
    out = {k: v for k, v in m.__dict__.items()}
    return out


def check_against(m: ModelConfig, art: Artifact) -> None:
    """Reject a config the tensors contradict, naming the config key to change."""
    meta = art.container["m"]

    def bad(key: str, why: str) -> ArtifactContentError:
        return ArtifactContentError(f"config key model.{key} contradicts the artifact: {why}")

    # model.caseops_compressor is informational: the container names itself (magic bytes), and the
    # per-group and brotli containers of one model hold the same tensors, so it is not checked.
    gate = _shape(art, "blocks.0.attn.attn_gate_w")
    if (gate is None) != (m.caseops_attn_gate == "none"):
        raise bad("caseops_attn_gate", f"it says {m.caseops_attn_gate!r} but the artifact "
                  + ("has no attn_gate_w" if gate is None else f"has attn_gate_w of shape {gate}"))
    if gate is not None and m.caseops_attn_gate == "dense" and gate[1] != m.model_dim:
        raise bad("caseops_attn_gate", f"'dense' needs attn_gate_w (H, {m.model_dim}); the artifact's is {gate} "
                  "(a sparse gate)")
    if gate is not None and m.caseops_attn_gate == "sparse" and gate[1] == m.model_dim != m.caseops_gate_window:
        raise bad("caseops_attn_gate", f"'sparse' needs attn_gate_w (H, caseops_gate_window); the artifact's is "
                  f"{gate} (a dense gate)")
    if gate is not None and m.caseops_attn_gate == "sparse" and gate[1] != m.caseops_gate_window:
        raise bad("caseops_gate_window", f"it is {m.caseops_gate_window} but attn_gate_w has shape {gate}")
    smear = "smear_gate.weight" in meta
    if smear != (m.caseops_smear_gate == "bos_fix"):
        raise bad("caseops_smear_gate", f"it says {m.caseops_smear_gate!r} but the artifact "
                  + ("has" if smear else "has no") + " smear_gate.weight")
    if ("skip_gates" in meta) != m.caseops_skip_gates:
        raise bad("caseops_skip_gates", f"it is {str(m.caseops_skip_gates).lower()} but the artifact "
                  + ("has" if "skip_gates" in meta else "has no") + " skip_gates")
    L = 0
    while f"blocks.{L}.attn.c_q.weight" in meta:
        L += 1
    if L != m.num_layers:
        raise bad("num_layers", f"it is {m.num_layers} but the artifact has {L} blocks")
    S = (_shape(art, "skip_weights") or (0,))[0]
    if S != m.num_skips:
        raise bad("caseops_num_loops", f"the loop layout (num_loops {m.caseops_num_loops}, loop_start "
                  f"{m.caseops_loop_start}, loop_end {m.caseops_loop_end}) needs {m.num_skips} skip weights; "
                  f"the artifact has {S}")
    emb = _shape(art, "tok_emb.weight")
    if emb is not None and emb[0] != m.vocab_size:
        raise bad("vocab_size", f"it is {m.vocab_size} but tok_emb.weight has {emb[0]} rows")
    if emb is not None and emb[1] != m.model_dim:
        raise bad("model_dim", f"it is {m.model_dim} but tok_emb.weight has {emb[1]} columns")
    qg = _shape(art, "blocks.0.attn.q_gain")
    if qg is not None and qg[0] != m.num_heads:
        raise bad("num_heads", f"it is {m.num_heads} but q_gain has {qg[0]} entries")
    ck = _shape(art, "blocks.0.attn.c_k.weight")
    if ck is not None and ck[0] != m.kv_dim:
        raise bad("num_kv_heads", f"it is {m.num_kv_heads} (kv dim {m.kv_dim}) but c_k has {ck[0]} rows")
    fc = _shape(art, "blocks.0.mlp.fc.weight")
    if fc is not None and fc[0] != m.mlp_hidden:
        raise bad("mlp_hidden", f"it is {m.mlp_hidden} but mlp.fc has {fc[0]} rows")
