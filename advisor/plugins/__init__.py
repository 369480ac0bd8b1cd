"""The plugin layer: the hook specifications, the one plugin manager and the data plugins return.

* :mod:`advisor.plugins.hookspecs`: the markers and the typed specifications;
* :mod:`advisor.plugins.manager`: :func:`load_plugins` and :class:`PluginHost`, the only
  way the rest of mailadvisor talks to plugins;
* :mod:`advisor.plugins.types`: the frozen dataclasses the hooks return.

Plugins still write ``from advisor import hookimpl``; their data types come from
``advisor.plugins.types``.
"""

from __future__ import annotations

from advisor.plugins.hookspecs import PROJECT_NAME, hookimpl, hookspec
from advisor.plugins.manager import PluginHost, load_plugins

__all__ = ["PROJECT_NAME", "PluginHost", "hookimpl", "hookspec", "load_plugins"]
