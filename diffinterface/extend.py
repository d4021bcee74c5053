"""What a new backend or array library needs: the configuration base class, the adapter
protocol, kernel declarations, and the two registries (see docs/writing_a_backend.md).

Example:
    >>> from diffinterface.extend import Adapter, Backend, kernel, register_backend
"""

from diffinterface._adapter import Adapter, Fn, Kernel, Problem, kernel
from diffinterface._arrays import ArrayKind, register_kind, register_kind_module
from diffinterface._backend_types import Backend, register_backend

__all__ = [
    "Adapter",
    "ArrayKind",
    "Backend",
    "Fn",
    "Kernel",
    "Problem",
    "kernel",
    "register_backend",
    "register_kind",
    "register_kind_module",
]
