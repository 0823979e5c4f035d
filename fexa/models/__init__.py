"""The five papers' architectures, created by name: ``fexa.models.create_model("qafe_net")``."""

from fexa.models import former_dfer, qafe_net, skateformer, slowonly, tramp_former  # noqa: F401  (register)
from fexa.models.registry import count_parameters, create_model, get_entry, list_models, make_config

__all__ = ["count_parameters", "create_model", "get_entry", "list_models", "make_config"]
