"""mailadvisor: advice on POP3 or IMAP, and a migration of locally stored mail into IMAP.

Plugins write ``from advisor import hookimpl``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from advisor.plugins.hookspecs import hookimpl

try:
    __version__ = version("mailadvisor")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__", "hookimpl"]
