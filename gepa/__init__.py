"""gepa: the trusted evaluator for Parameter Golf GEPA submissions.

Pure computation: model, artifact codec, data, bits-per-byte, evaluation (standard,
sliding-window, legal score-first TTT), size accounting and compliance rules. It imports
nothing from `api/` or `worker/` and no web or database library.
"""

__version__ = "0.1.0"
