"""The GEPA family (the seed submission): `config`, `model`, `quantize` (the reference quantizer),
`infer` (config from tensors), `flops` (FLOP model), `train` (demo artifacts) and `family` (the
object the registry finds)."""
