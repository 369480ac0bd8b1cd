"""Saving the run as a profile file (never with the password in it): where it goes, and
where a later run gets the password (keyring, environment variable, checked command)."""

from __future__ import annotations

import re
from pathlib import Path

from rich.markup import escape

from advisor.cli.wizard.questions import Option, Prompt, QuestionKind, not_empty
from advisor.cli.wizard.state import WizardState
from advisor.errors import MailadvisorError
from advisor.platform_compat import set_env_secretly_hint, shell_quote
from advisor.plugins.types import Protocol
from advisor.profile import AuthConfig, AuthKind, save_profile
from advisor.secrets import KEYRING_SERVICE, KeyringRefused, resolve_secret, store_in_keyring

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_PASSWORD_ENV = "MAILADVISOR_PASSWORD"


class SavingStep(WizardState):
    """Step 8: the profile file, and where a later run finds the password."""

    def _offer_profile(self, protocol: Protocol) -> None:
        self.heading("Saving this for next time")
        repeat = (
            "so that `mailadvisor migrate --profile FILE` repeats this without questions"
            if protocol is Protocol.IMAP
            else "so that `mailadvisor test --profile FILE` checks the account again"
        )
        save: bool = self.ask(
            Prompt(
                "save",
                QuestionKind.CONFIRM,
                "Save these settings in a profile file?",
                f"It never holds your password; {repeat}",
                True,
            )
        )
        if not save:
            self.say("Not saved.")
            return
        path = self._ask_profile_path()
        if self.profile.auth.method is AuthKind.PASSWORD:
            self.profile.auth = self._secret_source()
        written = save_profile(self.profile, path)
        self.result.profile_path = written
        self.say(f"[green]Saved:[/] {escape(str(written))}")
        self._next_steps(written, protocol)

    def _ask_profile_path(self) -> Path:
        default = self.profile_dir / f"{self.email}.toml"
        while True:
            answer: str = self.ask(
                Prompt(
                    "profile_path",
                    QuestionKind.TEXT,
                    "Where shall I save it?",
                    "Press Enter for the suggested place, or type another file name.",
                    str(default),
                    validate=lambda t: (
                        True
                        if t.strip() and not Path(t.strip()).expanduser().is_dir()
                        else "Type a file name (not a folder)."
                    ),
                )
            )
            path = Path(answer.strip()).expanduser()
            if not path.exists():
                return path
            overwrite: bool = self.ask(
                Prompt(
                    "overwrite",
                    QuestionKind.CONFIRM,
                    f"{path} exists. Replace it?",
                    "No lets you type another name.",
                    False,
                )
            )
            if overwrite:
                return path

    def _secret_source(self) -> AuthConfig:
        """Where a later run gets the password: keyring, environment variable or command."""
        from advisor.oauth.tokens import keyring_usable

        options = []
        if keyring_usable():
            options.append(Option("Keep it in this computer's password store (keyring)", "keyring"))
        options.append(Option("Read it from an environment variable when I run mailadvisor", "env"))
        options.append(
            Option("Get it from my password manager with a command (pass, op...)", "command")
        )
        while True:
            how = self.ask(
                Prompt(
                    "secret_source",
                    QuestionKind.SELECT,
                    "Where should mailadvisor find your password next time?",
                    "The profile only says where the password is, never what it is.",
                    options[0].value,
                    tuple(options),
                )
            )
            if how == "keyring":
                auth = self._store_in_keyring()
            elif how == "env":
                auth = self._password_env()
            else:
                auth = self._password_command()
            if auth is not None:
                return auth

    def _store_in_keyring(self) -> AuthConfig | None:
        assert self._password is not None
        try:
            store_in_keyring(self.email, self._password)
        except KeyringRefused as exc:
            self.say(f"[bold red]The keyring refused it[/] ({escape(exc.reason)}).")
            return None
        self.say(f"Your password is in the keyring (service {KEYRING_SERVICE!r}).")
        return AuthConfig(method=AuthKind.PASSWORD, keyring=True)

    def _password_env(self) -> AuthConfig:
        name: str = self.ask(
            Prompt(
                "password_env",
                QuestionKind.TEXT,
                "Which environment variable?",
                "Letters, digits and _; you set it before running mailadvisor.",
                DEFAULT_PASSWORD_ENV,
                validate=lambda t: (
                    True
                    if _ENV_NAME.match(t.strip())
                    else "Letters, digits and _ only, not starting with a digit."
                ),
            )
        )
        return AuthConfig(method=AuthKind.PASSWORD, password_env=name.strip())

    def _password_command(self) -> AuthConfig | None:
        command: str = self.ask(
            Prompt(
                "password_command",
                QuestionKind.TEXT,
                "Which command prints your password?",
                "Its first line is used, for example: pass show mail/alex",
                "",
                validate=not_empty,
            )
        )
        auth = AuthConfig(method=AuthKind.PASSWORD, password_command=command.strip())
        try:
            printed = resolve_secret(auth, self.email)
        except MailadvisorError as exc:
            self.say(f"[bold red]That command does not work:[/] {escape(str(exc))}")
            return None
        if printed != self._password:
            self.say(
                "[bold red]That command prints a different password[/] from the one that "
                "worked a moment ago."
            )
            return None
        return auth

    def _next_steps(self, path: Path, protocol: Protocol) -> None:
        quoted = shell_quote(str(path))
        auth = self.profile.auth
        if auth.password_env:
            self.say(
                f"Before using it, set {auth.password_env} to your password in that terminal, "
                f"for example: [bold]{escape(set_env_secretly_hint(auth.password_env))}[/]"
            )
        if auth.method is AuthKind.OAUTH2:
            self.say(f"Next: [bold]mailadvisor signin --profile {escape(quoted)}[/]")
        if protocol is Protocol.IMAP and self.profile.source.path is not None:
            what = (
                "To run it again (it copies only what is new)"
                if self.result.report is not None
                else "To copy your mail"
            )
            self.say(f"{what}: [bold]mailadvisor migrate --profile {escape(quoted)}[/]")
        self.say(f"To check the account: [bold]mailadvisor test --profile {escape(quoted)}[/]")
