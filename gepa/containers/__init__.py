"""Container layouts of the challenge's artifacts, after `gepa.codec` has safely decoded them.

- `clean`: the `__quant_format__` dict (seed GEPA and baseline lineages);
- `gptq`: the `{"w": tensors, "m": meta}` dict (SP4096, SP8192 and CaseOps lineages);
- `pergroup`: the #1855 record's per-group lrzip file, decoded into the `gptq` object;
- `checks`: the tensor checks all layouts share.
Families turn a layout into their model's state dict; they never read files themselves.
"""
