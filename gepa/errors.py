"""Typed errors of the evaluator.

Every error a submitter can cause derives from `InputError`: its message is one line that
says what is wrong and what to do, and the CLI maps it to exit code 2 (the service to a
rejection). Anything else escaping the evaluator is a platform fault.
"""


class InputError(Exception):
    """The submitted input is at fault. `kind` is a stable machine-readable name."""

    kind = "bad-input"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(InputError):
    kind = "bad-config"


class ArtifactError(InputError):
    kind = "bad-artifact"


class ArtifactFormatError(ArtifactError):
    """Not a container we know: wrong magic, truncated stream, unknown format tag."""

    kind = "artifact-format"


class DecompressionLimitError(ArtifactError):
    """The compressed stream expands past the configured cap (a decompression bomb)."""

    kind = "artifact-too-large"


class UnsafeArtifactError(ArtifactError):
    """The pickle references a global outside the tensor allow-list."""

    kind = "artifact-unsafe"


class ArtifactContentError(ArtifactError):
    """Structure is readable but wrong: unknown keys, shapes, dtypes, ranges, NaN/Inf."""

    kind = "artifact-content"


class DataError(InputError):
    """A validation shard or tokenizer file is malformed."""

    kind = "bad-data"
