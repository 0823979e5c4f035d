"""Models by name, timm-style: ``create_model("qafe_net", fusion="sum")``.

Each factory takes its config dataclass's fields as keyword overrides; ``model_info`` gives the
parameter count and, where the spec gives one, the reference count it must match."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

from torch import nn


@dataclass(frozen=True)
class ModelEntry:
    name: str
    factory: Callable[..., nn.Module]
    config_cls: type
    defaults: dict
    description: str
    reference_params: int | None = None  # count measured on the authors' code (../shared/spec)
    paper: str = ""
    param_difference: int = 0  # deliberate difference from reference_params ...
    param_note: str = ""  # ... and its reason


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, config_cls: type, description: str, reference_params: int | None = None,
                   paper: str = "", param_difference: int = 0, param_note: str = "", **defaults) -> Callable:
    """Decorator: register ``factory(config) -> nn.Module`` under ``name`` with config defaults."""

    def wrap(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelEntry(name, factory, config_cls, defaults, description, reference_params, paper,
                                     param_difference, param_note)
        return factory

    return wrap


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(list_models())}") from None


def make_config(name: str, **overrides):
    """The config of model ``name`` with ``overrides``; unknown keys are an error."""
    entry = get_entry(name)
    known = {f.name for f in fields(entry.config_cls)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"model {name!r} has no option(s) {unknown}; options: {sorted(known)}")
    return entry.config_cls(**{**entry.defaults, **overrides})


def create_model(name: str, **overrides) -> nn.Module:
    """Build model ``name`` (randomly initialised; see fexa.models.checkpoints for weights)."""
    return get_entry(name).factory(make_config(name, **overrides))


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
