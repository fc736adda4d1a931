"""Text generation backends. Importing this package registers the built-in ones."""

from capsafe.backends import openai_backend, transformers_backend, vllm_backend  # noqa: F401
from capsafe.backends.base import BACKENDS, Backend, register_backend

__all__ = ["BACKENDS", "Backend", "register_backend"]
