"""The sp8192 family (PR #1394 lineage): `config`, `rotary` (the bf16 tables), `model`, `infer`
(sniff, config from tensors, the check against a config), `flops` (FLOP model) and `family`
(the object the registry finds)."""
