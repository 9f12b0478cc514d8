"""Static review: each illegal family is caught, legal (and legal-but-tricky) shapes are not."""
import base64
import lzma
import zlib

import pytest

from gepa.compliance.review import folder_sources, scan_code, scan_sources

from tests.support.compliance import SAMPLES

EXPECTED = {
    "illegal_pre_eval.py": {"code.ttt-pre-eval"},
    "illegal_pre_quant.py": {"code.ttt-pre-eval"},
    "illegal_rescore_epoch.py": {"code.rescore"},
    "illegal_rescore_after.py": {"code.rescore"},
    "illegal_target_key.py": {"code.target-in-key"},
    "illegal_target_gate.py": {"code.target-in-key"},
    "illegal_slot.py": {"code.slot"},
    "illegal_val_train.py": {"code.val-in-training"},
    "illegal_network.py": {"code.network"},
}
LEGAL = ["legal_score_first.py", "legal_phased.py", "legal_lora_score_first.py", "legal_flags_off.py"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_illegal_family_is_flagged(name):
    rep = scan_code((SAMPLES / name).read_text())
    assert rep.verdict == "flagged"
    assert {f.rule for f in rep.findings} == EXPECTED[name]
    for f in rep.findings:
        assert f.line > 0 and f.message.endswith(".")


@pytest.mark.parametrize("name", LEGAL)
def test_legal_shape_is_clean(name):
    rep = scan_code((SAMPLES / name).read_text())
    assert rep.verdict == "clean", [f.to_dict() for f in rep.findings]
    assert rep.findings == []


def test_finding_lines_point_at_the_offending_code():
    src = (SAMPLES / "illegal_pre_eval.py").read_text().splitlines()
    f = scan_code("\n".join(src)).findings[0]
    assert "ttt_adapt(" in src[f.line - 1]
    tk = scan_code((SAMPLES / "illegal_target_key.py").read_text()).findings[0]
    assert "PRIME" in (SAMPLES / "illegal_target_key.py").read_text().splitlines()[tk.line - 1]


def test_warmup_with_restore_is_only_a_warning():
    rep = scan_code((SAMPLES / "legal_warmup_restore.py").read_text())
    assert rep.verdict == "clean" and [f.rule for f in rep.findings] == ["code.val-warmup"]


def test_flag_enabled_by_environment_default_is_reachable():
    src = (SAMPLES / "legal_flags_off.py").read_text().replace('os.environ.get("PRE_TTT", "0")', 'os.environ.get("PRE_TTT", "1")')
    assert {f.rule for f in scan_code(src).findings} == {"code.ttt-pre-eval"}


def test_logged_settings_turn_on_guarded_paths():
    src = (SAMPLES / "legal_flags_off.py").read_text()
    rep = scan_sources({"train_gpt.py": src}, settings=[{"ngram_eval_order": "3", "download_data": "1"}])
    # A hashed count ratio keyed by the target is also not normalised over the vocabulary (X3).
    assert {f.rule for f in rep.findings} - {"code.unnormalised"} == {"code.target-in-key", "code.network"}


def _wrap_lzma_b85(src: str) -> str:
    return "import lzma,base64\nexec(lzma.decompress(base64.b85decode(%r)))\n" % base64.b85encode(lzma.compress(src.encode())).decode()


def test_self_extracting_wrappers_are_decoded_and_reviewed():
    illegal = (SAMPLES / "illegal_pre_eval.py").read_text()
    rep = scan_code(_wrap_lzma_b85(illegal))
    assert rep.verdict == "flagged" and rep.layers["train_gpt.py"] == ["base64.b85decode+lzma.decompress"]
    raw = lzma.compress(illegal.encode(), format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "preset": 9}])
    w2 = ("import lzma as L,base64 as B\nP=%r\nexec(L.decompress(B.b64decode(P),format=L.FORMAT_RAW,"
          "filters=[{'id':L.FILTER_LZMA2}]).decode('utf-8'))\n" % base64.b64encode(raw).decode())
    assert scan_code(w2).verdict == "flagged"
    w3 = "import zlib,base64\nexec(zlib.decompress(base64.b85decode(%r)))\n" % base64.b85encode(zlib.compress(_wrap_lzma_b85(illegal).encode())).decode()
    rep3 = scan_code(w3)
    assert rep3.verdict == "flagged" and len(rep3.layers["train_gpt.py"]) == 2
    legal = scan_code(_wrap_lzma_b85((SAMPLES / "legal_score_first.py").read_text()))
    assert legal.verdict == "clean" and legal.layers


def test_wrapper_is_never_executed(tmp_path):
    marker = tmp_path / "ran"
    src = f"open({str(marker)!r}, 'w').write('x')\n"
    scan_code(_wrap_lzma_b85(src))
    scan_code(src)
    assert not marker.exists()


def test_undecodable_wrapper_is_reported_not_run():
    rep = scan_code("import base64\nexec(base64.b85decode(open('payload.txt').read()))\n")
    assert [f.rule for f in rep.findings] == ["code.opaque"] and rep.verdict == "needs-review"  # never a silent pass


def test_decompression_bomb_is_refused():
    bomb = lzma.compress(b"#" * 20_000_000)
    rep = scan_code("import lzma,base64\nexec(lzma.decompress(base64.b64decode(%r)))\n" % base64.b64encode(bomb).decode())
    assert [f.rule for f in rep.findings] == ["code.opaque"]
    assert "exceeds" in rep.findings[0].message


def test_local_helper_modules_are_followed(tmp_path):
    (tmp_path / "train_gpt.py").write_text(
        "import torch\nfrom ttt_helpers import adapt\n\n\ndef main(val_tokens):\n    adapt(torch.nn.Linear(2, 2), val_tokens)\n\n\nmain(torch.load('v'))\n")
    (tmp_path / "ttt_helpers.py").write_text(
        "import torch\n\n\ndef adapt(model, val_tokens):\n    opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "    for i in range(10):\n        seq = val_tokens[i:i + 9].long()\n        model(seq).sum().backward()\n        opt.step()\n")
    srcs = folder_sources(tmp_path)
    assert set(srcs) == {"train_gpt.py", "ttt_helpers.py"}
    rep = scan_sources(srcs)
    assert rep.verdict == "flagged" and rep.findings[0].file == "train_gpt.py" and rep.findings[0].line == 6


def test_syntax_error_is_reported():
    rep = scan_code("def broken(:\n")
    assert rep.parse_errors and rep.files == []
