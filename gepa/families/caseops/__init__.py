"""CaseOps family package (see `family.py`); `config`, `caps` and `flops` import without torch."""
