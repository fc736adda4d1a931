"""Text generation backends. Importing this package registers the built-in ones."""

from capsafe.backends import transformers_backend, vllm_backend  # noqa: F401  (registers)
from capsafe.backends.base import BACKENDS, Backend, register_backend

__all__ = ["BACKENDS", "Backend", "register_backend"]
