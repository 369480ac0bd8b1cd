"""The one place where mailadvisor's plugin manager is built.

Plugins are found through the ``mailadvisor`` entry-point group. The three
built-in provider plugins ship inside the mailadvisor distribution and are
registered in that same group by its pyproject.toml, so they are found exactly
as third-party plugins are; they differ only in being trusted: a broken built-in
is our bug and raises, a broken third-party plugin is a warning naming its
distribution.

The rest of the code talks to plugins only through :class:`PluginHost`, whose
typed methods wrap ``pm.hook``.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pluggy

from advisor.errors import PluginError
from advisor.plugins import hookspecs
from advisor.plugins.types import (
    AddressMatch,
    AdviceFactor,
    AuthMethod,
    FolderPolicy,
    OAuthConfig,
    PreflightFinding,
    ProviderInfo,
    ProviderLimits,
    ServerFolder,
    ServerSettings,
    ThrottleAdvice,
    UploadRules,
)

ENTRY_POINT_GROUP = "mailadvisor"
BUILTIN_DISTRIBUTION = "mailadvisor"
"""The distribution whose own entry points are the built-in plugins."""
BUILTIN_ONLY_ENV = "MAILADVISOR_BUILTIN_PLUGINS_ONLY"
"""Set to 1 to load only the built-in plugins (to rule out a misbehaving third-party one)."""


class EntryPointLike(Protocol):
    """What we use of :class:`importlib.metadata.EntryPoint` (tests pass fakes)."""

    name: str

    @property
    def dist(self) -> importlib.metadata.Distribution | None: ...

    def load(self) -> Any: ...


@dataclass(frozen=True)
class PluginRecord:
    """One loaded plugin, as ``mailadvisor plugins`` shows it."""

    name: str
    distribution: str
    version: str
    builtin: bool
    hooks: tuple[str, ...]
    providers: tuple[str, ...]


@dataclass(frozen=True)
class PluginWarning:
    """A plugin that was not loaded, and why."""

    distribution: str
    message: str


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def builtin_only_requested() -> bool:
    """True when the environment asks for the built-in plugins alone."""
    return os.environ.get(BUILTIN_ONLY_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


class PluginHost:
    """Typed access to every loaded plugin's hooks."""

    def __init__(
        self,
        pm: pluggy.PluginManager,
        records: Sequence[PluginRecord],
        warnings: Sequence[PluginWarning],
    ) -> None:
        self._pm = pm
        self.records: tuple[PluginRecord, ...] = tuple(records)
        self.warnings: tuple[PluginWarning, ...] = tuple(warnings)

    # --- collected hooks -------------------------------------------------
    def providers(self) -> list[ProviderInfo]:
        """Every provider the loaded plugins serve (names are unique)."""
        found: list[ProviderInfo] = []
        for batch in self._pm.hook.mailadvisor_providers():
            found.extend(batch)
        return found

    def provider(self, name: str) -> ProviderInfo:
        """The provider called ``name``; :class:`PluginError` if none is loaded."""
        for info in self.providers():
            if info.name == name:
                return info
        known = ", ".join(sorted(p.name for p in self.providers())) or "none"
        raise PluginError(f"no plugin provides {name!r} (loaded providers: {known})")

    def match_address(self, email: str, mx_hosts: Sequence[str] = ()) -> list[AddressMatch]:
        """Every plugin's claim on ``email``, most confident first."""
        domain = email.rpartition("@")[2].lower()
        matches = [
            m
            for m in self._pm.hook.mailadvisor_match_address(
                email=email, domain=domain, mx_hosts=list(mx_hosts)
            )
            if m is not None
        ]
        return sorted(matches, key=lambda m: m.confidence, reverse=True)

    # --- per-provider hooks (first result wins) --------------------------
    def server_settings(self, provider: str, email: str) -> ServerSettings | None:
        result: ServerSettings | None = self._pm.hook.mailadvisor_server_settings(
            provider=provider, email=email
        )
        return result

    def auth_methods(self, provider: str, email: str) -> list[AuthMethod]:
        result = self._pm.hook.mailadvisor_auth_methods(provider=provider, email=email)
        return list(result or ())

    def oauth_config(self, provider: str) -> OAuthConfig | None:
        """The provider's OAuth2 settings; None when it has no OAuth2 sign-in."""
        result: OAuthConfig | None = self._pm.hook.mailadvisor_oauth_config(provider=provider)
        return result

    def folder_policy(self, provider: str, server_folders: Sequence[ServerFolder]) -> FolderPolicy:
        result: FolderPolicy | None = self._pm.hook.mailadvisor_folder_policy(
            provider=provider, server_folders=list(server_folders)
        )
        return result if result is not None else FolderPolicy()

    def upload_rules(self, provider: str) -> UploadRules:
        result: UploadRules | None = self._pm.hook.mailadvisor_upload_rules(provider=provider)
        return result if result is not None else UploadRules()

    def limits(self, provider: str) -> ProviderLimits:
        result: ProviderLimits | None = self._pm.hook.mailadvisor_limits(provider=provider)
        return result if result is not None else ProviderLimits()

    def preflight(self, provider: str, email: str) -> list[PreflightFinding]:
        result = self._pm.hook.mailadvisor_preflight(provider=provider, email=email)
        return list(result or ())

    def classify_response(self, provider: str, response: str) -> ThrottleAdvice | None:
        result: ThrottleAdvice | None = self._pm.hook.mailadvisor_classify_response(
            provider=provider, response=response
        )
        return result

    def advice_factors(self, provider: str, email: str) -> list[AdviceFactor]:
        result = self._pm.hook.mailadvisor_advice_factors(provider=provider, email=email)
        return list(result or ())


def _discover() -> list[EntryPointLike]:
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def load_plugins(
    entry_points: Iterable[EntryPointLike] | None = None,
    *,
    builtin_only: bool | None = None,
) -> PluginHost:
    """Build the plugin manager and load the built-in and third-party plugins.

    ``entry_points`` defaults to the installed ``mailadvisor`` group; tests pass
    their own. ``builtin_only`` defaults to the :data:`BUILTIN_ONLY_ENV` variable.
    """
    if builtin_only is None:
        builtin_only = builtin_only_requested()
    eps = list(_discover() if entry_points is None else entry_points)
    # Built-ins first, so that a third-party plugin can never take their provider names.
    eps.sort(key=lambda ep: (not _is_builtin(ep), ep.name))

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    records: list[PluginRecord] = []
    warnings: list[PluginWarning] = []
    taken: dict[str, str] = {}

    for ep in eps:
        builtin = _is_builtin(ep)
        if builtin_only and not builtin:
            continue
        dist_name, version = _dist_name_version(ep)
        try:
            module = ep.load()
            pm.register(module, name=ep.name)
            _check_hooks(pm, module)
        except Exception as exc:
            if pm.has_plugin(ep.name):
                pm.unregister(name=ep.name)
            if builtin:
                raise PluginError(
                    f"built-in plugin {ep.name!r} ({dist_name}) is broken: {exc}. "
                    "Reinstall mailadvisor."
                ) from exc
            warnings.append(
                PluginWarning(
                    dist_name,
                    f"plugin {ep.name!r} from {dist_name} {version} could not be loaded "
                    f"({type(exc).__name__}: {exc}); it is ignored. "
                    f"Remove it with: pip uninstall {dist_name}",
                )
            )
            continue

        providers = _providers_of(module)
        clash = [p.name for p in providers if p.name in taken]
        if clash:
            pm.unregister(module)
            message = (
                f"plugin {ep.name!r} from {dist_name} claims provider "
                f"{', '.join(repr(c) for c in clash)} already served by "
                f"{', '.join(sorted({taken[c] for c in clash}))}; it is ignored"
            )
            if builtin:
                raise PluginError(message)
            warnings.append(PluginWarning(dist_name, message))
            continue
        for p in providers:
            taken[p.name] = dist_name
        hooks = tuple(sorted(caller.name for caller in pm.get_hookcallers(module) or ()))
        records.append(
            PluginRecord(
                name=ep.name,
                distribution=dist_name,
                version=version,
                builtin=builtin,
                hooks=hooks,
                providers=tuple(p.name for p in providers),
            )
        )
    return PluginHost(pm, records, warnings)


def _is_builtin(ep: EntryPointLike) -> bool:
    dist = ep.dist
    return dist is not None and _normalise(dist.metadata["Name"]) == BUILTIN_DISTRIBUTION


def _dist_name_version(ep: EntryPointLike) -> tuple[str, str]:
    dist = ep.dist
    if dist is None:
        return (f"<unknown distribution of {ep.name}>", "?")
    return (dist.metadata["Name"], dist.version)


def _check_hooks(pm: pluggy.PluginManager, module: object) -> None:
    """Refuse hook implementations whose names match no spec (usually a typo)."""
    for caller in pm.get_hookcallers(module) or ():
        if caller.spec is None:
            raise PluginError(f"implements unknown hook {caller.name!r}")


def _providers_of(module: object) -> list[ProviderInfo]:
    impl = getattr(module, "mailadvisor_providers", None)
    if impl is None:
        return []
    return list(impl())
