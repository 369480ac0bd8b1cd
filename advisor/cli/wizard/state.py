"""What one wizard run knows, and how it asks and speaks.

:class:`WizardState` holds the answers, the servers that passed the test, the profile
being filled in and the console; every step of :mod:`advisor.cli.wizard.steps` is a
class over this state, and :class:`~advisor.cli.wizard.flow.Wizard` puts them in order.
:class:`WizardResult` is how a run ended.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from advisor.advice import Advice, AdviceAnswers
from advisor.cli.render import stdout
from advisor.cli.wizard.questions import Asker, Prompt
from advisor.connection.account import AccountAccess, resolve_account
from advisor.discovery import Detection
from advisor.exitcodes import ExitStatus
from advisor.migration import Migration, MigrationReport
from advisor.migration.journal import default_journal_path
from advisor.platform_compat import config_dir
from advisor.plugins.manager import PluginHost, load_plugins
from advisor.plugins.types import Endpoint, Protocol
from advisor.profile import Profile
from advisor.stores.scan import ScannedStore


@dataclass
class WizardResult:
    """How a wizard run ended (for the CLI's exit status and for tests)."""

    status: ExitStatus
    profile: Profile
    """What the wizard filled in (also when it was not saved)."""
    protocol: Protocol | None = None
    """What the user chose; None when they stopped before choosing."""
    advice: Advice | None = None
    plan: MigrationReport | None = None
    report: MigrationReport | None = None
    profile_path: Path | None = None
    """Where the profile was saved, if it was."""
    device_files: dict[Any, Path] = field(default_factory=dict)
    """What was written for the user's other devices, by kind of device."""


class WizardState:
    """The state of one run, shared by its steps.

    ``home`` and ``spool_dirs`` say where to look for mail (see
    :func:`~advisor.stores.discover.discover_stores`); ``profile_dir`` is where profiles
    are suggested; ``journal_path`` gives the migration journal of an account (the same
    one ``mailadvisor migrate`` uses, so a saved profile continues where the wizard
    stopped).
    """

    def __init__(
        self,
        asker: Asker,
        *,
        plugins: PluginHost | None = None,
        home: Path | None = None,
        spool_dirs: Sequence[Path] | None = None,
        profile_dir: Path | None = None,
        journal_path: Callable[[str, str, int], Path] = default_journal_path,
    ) -> None:
        self.asker = asker
        self.plugins = plugins or load_plugins()
        self.out: Console = stdout  # the console render_advice and render_report print to
        self.home = home
        self.spool_dirs = spool_dirs
        self.profile_dir = profile_dir or config_dir() / "profiles"
        self.journal_path = journal_path
        self.profile = Profile()
        self.result = WizardResult(ExitStatus.OK, self.profile)
        self.stores: list[ScannedStore] = []
        self.asked = AdviceAnswers()
        """The answers the user gave (saved in the profile); measured sizes are not."""
        self.answers = AdviceAnswers()
        """What the advice is based on: the answers plus what was measured."""
        self.detection: Detection | None = None
        self.endpoints: dict[Protocol, Endpoint] = {}
        """The servers that passed the connection test."""
        self.username = ""
        self.ca_file: Path | None = None
        self.allow_insecure = False
        """The user chose a plaintext connection (offered only on loopback or a LAN)."""
        self._password: str | None = None
        self._migration: Migration | None = None
        self._copying = False

    # --- small helpers -----------------------------------------------------------
    def ask(self, prompt: Prompt) -> Any:
        return self.asker.ask(prompt)

    def say(self, text: str = "") -> None:
        self.out.print(text, soft_wrap=False)

    def heading(self, title: str) -> None:
        self.out.print()
        self.out.rule(f"[bold]{escape(title)}[/]", align="left")

    @property
    def email(self) -> str:
        return self.profile.account.email

    def _access(self) -> AccountAccess:
        assert self._password is not None
        return resolve_account(self.profile, self.plugins).with_secret(self._password)
