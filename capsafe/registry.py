"""Name -> factory registries, filled by decorators.

A new judge, backend, prompt set or task is one new module that decorates its factory;
nothing else changes. Factories import their heavy dependencies inside, so importing
capsafe stays fast.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from capsafe.errors import UserError

T = TypeVar("T")


class UnknownNameError(UserError, KeyError):
    """A name that no module registered; the message suggests the closest names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry(Generic[T]):
    def __init__(self, kind: str, plugin_package: str) -> None:
        self.kind = kind
        self._plugin_package = plugin_package
        self._factories: dict[str, Callable[..., T]] = {}
        self._checks: dict[str, Callable[..., None]] = {}
        self._loaded = False

    def register(
        self, name: str, check: Callable[..., None] | None = None
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Register the decorated factory as `name`. `check`, called with every argument of
        the factory by name (defaults filled in), raises ValueError for values the factory
        would refuse, without building anything: for factories that load weights when
        called, so that check_args can refuse their values at plan time."""

        def decorate(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories and self._factories[name] is not factory:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            if check is not None:
                self._checks[name] = check
            return factory

        return decorate

    def _load_plugins(self) -> None:
        # Registration happens when a plugin module is imported; the package's
        # __init__ imports its light plugin modules (factories stay lazy inside).
        if not self._loaded:
            importlib.import_module(self._plugin_package)
            self._loaded = True

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._factories)

    def factory(self, name: str) -> Callable[..., T]:
        self._load_plugins()
        if name not in self._factories:
            close = difflib.get_close_matches(name, self._factories, n=3, cutoff=0.4)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            known = ", ".join(sorted(self._factories))
            raise UnknownNameError(f"unknown {self.kind} {name!r}{hint} (known: {known})")
        return self._factories[name]

    def create(self, name: str, *positional: Any, where: str | None = None, **args: Any) -> T:
        """Build `name` from its arguments. With `where` (the config field they came from),
        a ValueError the factory raises while checking them becomes a UserError naming that
        field: arguments a factory refuses are the user's to fix."""
        factory = self.factory(name)
        if where is None:
            return factory(*positional, **args)
        try:
            return factory(*positional, **args)
        except UserError as err:
            if str(err).startswith(where):
                raise
            # A user error from inside (a judge's unknown backend): say which field led there.
            raise UserError(f"{where}: {self.kind} {name!r}: {err}") from err
        except ValueError as err:
            raise UserError(f"{where}: {self.kind} {name!r}: {err}") from err

    def check_args(self, name: str, where: str | None, *positional: Any, **args: Any) -> None:
        """Refuse, naming `where` (the config field), arguments the factory of `name` does
        not take, and values its registered check refuses; nothing is built or loaded.
        `positional` stands in for what capsafe passes itself (a data context). where None:
        the caller names the field (a judge checking the backend it will load)."""
        factory = self.factory(name)
        signature = inspect.signature(factory)
        said = f"{where}: {self.kind} {name!r}" if where else f"{self.kind} {name!r}"
        try:
            bound = signature.bind(*positional, **args)
        except TypeError as err:
            takes = [p for p in signature.parameters if p not in ("ctx", "self")]
            raise UserError(f"{said}: {err} (it takes: {', '.join(takes) or 'none'})") from None
        check = self._checks.get(name)
        if check is not None:
            bound.apply_defaults()
            try:
                check(**bound.arguments)
            except ValueError as err:
                raise UserError(f"{said}: {err}") from None
