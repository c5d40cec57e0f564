"""Errors a user can cause and fix. Each message is one line naming the file, field and value."""

from contracts.errors import UserError


class ScalingError(UserError):
    """Base class: the command line (`orchestrator.cli`) prints ``error: <message>`` and exits with code 2,
    no traceback."""


class ConfigError(ScalingError):
    """A configuration value is invalid (``model.d_model: 100 is not divisible by n_head 3``)."""


class DataError(ScalingError):
    """A corpus cannot be read or tokenised (``corpus: ~/data/*.jsonl matches no file``)."""
