"""The five papers' architectures, created by name: ``fexa.models.create_model("qafe_net")``."""

from fexa.models import (  # noqa: F401  (importing registers the models)
    cfc_sp,
    checkpoints,
    face_backbones,
    pcda,
    former_dfer,
    qafe_net,
    skateformer,
    slowonly,
    stt,
    tramp_former,
)
from fexa.models.registry import count_parameters, create_model, get_entry, list_models, make_config

__all__ = ["count_parameters", "create_model", "get_entry", "list_models", "make_config"]
