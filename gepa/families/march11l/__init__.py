"""The March 11-layer family (records 03-20 to 03-29, the GEPA seed's parent): `config`, `infer`
(config from tensors, sniffing), `model` and `family` (the object the registry finds)."""
