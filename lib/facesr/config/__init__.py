"""Run configuration: every field of a run, each edition's named configs, ``--set`` parsing, quick mode.

- :mod:`~facesr.config.train_config`: ``TrainConfig`` (every field, its default and its why) and its table.
- :mod:`~facesr.config.named_configs`: the named configs of each edition, with the why of each.
- :mod:`~facesr.config.parsing`: values for a dataclass field from text (``--set key=value``, config.json).
- :mod:`~facesr.config.quick_mode`: how quick (CPU-sized) and smoke runs shrink a config.
- :mod:`~facesr.config.resolve`: ``get_config`` (a named config of an edition, shrunk, with overrides) and
  its checks.
"""

from facesr.config.named_configs import config_names, edition_configs, in_budget_names
from facesr.config.resolve import get_config, parse_overrides, validate_config
from facesr.config.train_config import TrainConfig, config_table

__all__ = [
    "TrainConfig",
    "config_names",
    "config_table",
    "edition_configs",
    "get_config",
    "in_budget_names",
    "parse_overrides",
    "validate_config",
]
