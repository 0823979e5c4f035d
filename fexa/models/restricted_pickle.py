"""Reading the checkpoints the authors' training scripts save, without running anything from them.

Their scripts save more than tensors: ``{'state_dict', 'optimizer', 'epoch', 'best_acc', 'recorder'}``
where ``recorder`` is an object of a class of their ``__main__`` (Former-DFER, QAFE-Net) or of their
``utils`` package (TraMP-Former). ``torch.load(weights_only=True)`` refuses such files and a plain
unpickler would import (and run) whatever the pickle names. This reader rebuilds tensors, storages,
plain containers and numpy arrays through the globals torch's own ``weights_only`` reader allows; any
other class becomes an inert :class:`Placeholder` (its pickled state kept as data, nothing of it
called); calling anything else (``os.system``, ``builtins.eval``, an unknown class's constructor) is
refused with :class:`RefusedGlobal` before it runs. Modules are never imported.
"""

from __future__ import annotations

import _compat_pickle
import pickle
import types
from functools import cache

import numpy as np
import torch
from torch._weights_only_unpickler import _get_allowed_globals


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked to call (or set the state of) something that is not a tensor or a plain container."""

    def __init__(self, name: str):
        super().__init__(f"refused global {name}")
        self.name = name


class Placeholder:
    """An object of a class the reader does not import: its arguments and pickled state, as data."""

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.args, obj.state = args, None
        return obj

    def __setstate__(self, state) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<placeholder for {type(self).__qualname__}>"


class _Inert(type):
    """Placeholder classes: their instances come only from pickle's NEWOBJ (``cls.__new__``); calling
    the class, as a pickle's REDUCE does with a function, is refused."""

    def __call__(cls, *args, **kwargs):
        raise RefusedGlobal(cls.__qualname__)


@cache
def _placeholder_class(module: str, name: str) -> type:
    return _Inert(f"{module}.{name}", (Placeholder,), {"__module__": module})


def _safe_globals() -> dict[str, object]:
    """torch's weights_only globals plus numpy's array and scalar rebuilders (under numpy 1's and 2's names)."""
    safe = dict(_get_allowed_globals())
    reconstruct, scalar = np.zeros(()).__reduce__()[0], np.float32(0).__reduce__()[0]
    for core in ("numpy.core.multiarray", "numpy._core.multiarray"):
        safe[f"{core}._reconstruct"], safe[f"{core}.scalar"] = reconstruct, scalar
    safe["numpy.ndarray"], safe["numpy.dtype"] = np.ndarray, np.dtype
    return safe


SAFE_GLOBALS = _safe_globals()
_BUILDABLE = (Placeholder, torch.Tensor, np.ndarray, np.dtype, dict, set)  # objects whose state BUILD may set


class RestrictedUnpickler(pickle._Unpickler):
    """The pure-Python unpickler (its opcodes can be overridden) with the rules of the module docstring."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def find_class(self, module: str, name: str):
        if self.proto < 3 and self.fix_imports:  # protocol 2 writes Python 2 names (__builtin__.set)
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        full = f"{module}.{name}"
        return SAFE_GLOBALS[full] if full in SAFE_GLOBALS else _placeholder_class(module, name)

    def load_build(self) -> None:
        inst = self.stack[-2]
        if not isinstance(inst, _BUILDABLE):
            raise RefusedGlobal(f"{type(inst).__module__}.{type(inst).__qualname__} (setting its state)")
        super().load_build()

    dispatch[pickle.BUILD[0]] = load_build


def restricted_load(file, **kwargs):
    """pickle.load with :class:`RestrictedUnpickler` (the ``load`` torch's legacy format reader calls)."""
    return RestrictedUnpickler(file, **kwargs).load()


RESTRICTED = types.ModuleType("fexa_restricted_pickle", "pickle_module for torch.load: see fexa.models.restricted_pickle")
RESTRICTED.Unpickler = RestrictedUnpickler
RESTRICTED.load = restricted_load


def load_restricted(path) -> object:
    """torch.load of ``path`` (zip or legacy format) through the restricted reader, tensors on the CPU."""
    return torch.load(path, map_location="cpu", weights_only=False, pickle_module=RESTRICTED)
