"""What the weight loader needs to know about a generator architecture, declared next to the architecture.

Each generator file defines a `GeneratorSpec` in a module-level tuple ``GENERATOR_SPECS``; `esrgan.archs`
collects them from every module of the package, so a new architecture is one new file. The spec says:

- ``layouts``: the key layouts ("dialects") its community files come in, ours first (the one this toolkit
  writes, BasicSR ≥ 1.0's names where such a file exists);
- ``identify(keys)``: the layout of a state dict with these key names, or None when it is not this
  architecture (the first spec that recognises a file wins, so checks must be specific);
- ``to_ours(state_dict, layout)`` / ``from_ours(state_dict, layout)``: rename between a layout and ours;
- ``hparams(state_dict)``: constructor arguments that give exactly these tensor shapes (our names);
- ``config_fields`` / ``build``: how training builds it from the ``model.*`` settings of a config
  (`esrgan.config.ModelConfig`): every generator reads `COMMON_CONFIG_FIELDS`, ``config_fields`` names the
  further settings it reads, and ``build`` makes the model from them (default: the constructor, called with
  exactly those settings). The config refuses a setting its architecture does not read.

Renames raise `KeyError` / `ValueError` for keys that do not fit; `esrgan.weights` turns them into one-line
errors naming the file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

__all__ = ["COMMON_CONFIG_FIELDS", "GeneratorSpec", "StateDict", "identity_rename", "module_count"]

StateDict = Mapping[str, Tensor]

# The `model.*` config settings that every generator reads (with the same meaning: width, depth, channels).
COMMON_CONFIG_FIELDS = ("num_in_ch", "num_out_ch", "num_feat", "num_block", "scale")


def identity_rename(sd: StateDict, layout: str) -> dict[str, Tensor]:
    """The rename of an architecture with one layout: the names are ours already."""
    return dict(sd)


def module_count(keys: object, prefix: str) -> int:
    """How many distinct ``{prefix}{N}.`` indices the keys hold (blocks of a Sequential, say)."""
    import re

    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return len({m[1] for k in keys if (m := pattern.match(k))})  # type: ignore[attr-defined]


@dataclass(frozen=True)
class GeneratorSpec:
    """One generator architecture, as the weight loader sees it (see the module docstring)."""

    name: str
    model: type[nn.Module]
    layouts: tuple[str, ...]
    identify: Callable[[set[str]], str | None]
    hparams: Callable[[StateDict], dict[str, Any]]
    to_ours: Callable[[StateDict, str], dict[str, Tensor]] = identity_rename
    from_ours: Callable[[StateDict, str], dict[str, Tensor]] = identity_rename
    config_fields: tuple[str, ...] = ()
    build: Callable[[Mapping[str, Any]], nn.Module] | None = None

    @property
    def our_layout(self) -> str:
        return self.layouts[0]

    def from_config(self, settings: Mapping[str, Any]) -> nn.Module:
        """A freshly initialised model from training settings (`COMMON_CONFIG_FIELDS` + `config_fields`).

        Raises `ValueError` for settings the architecture cannot take (an unsupported scale, say)."""
        if self.build is not None:
            return self.build(settings)
        return self.model(**{name: settings[name] for name in (*COMMON_CONFIG_FIELDS, *self.config_fields)})
