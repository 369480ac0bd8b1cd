"""Profile files: a whole mailadvisor run written down in TOML.

The wizard fills the same :class:`Profile` dataclass that :func:`load_profile`
produces, so a saved profile repeats the wizard's run without questions.
Every error names the file, the key (and its line when it can be found) and
what was expected. A profile never holds a secret, only where to get it.
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, fields
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

import tomli_w

from advisor.advice import SIZE_ANSWERS, AdviceAnswers, Connectivity, parse_size
from advisor.errors import ProfileError
from advisor.provider import DEFAULT_PORTS, Protocol, Security

PROFILE_VERSION = 1

SECRET_WAYS = (
    'password_env = "VAR" (read it from an environment variable), '
    'password_command = "..." (run a command that prints it), '
    "or keyring = true (keep it in the system keyring)"
)


class AuthKind(StrEnum):
    """How the account signs in."""

    PASSWORD = "password"
    OAUTH2 = "oauth2"


class SourceKind(StrEnum):
    """Which local store (or live POP3 account) to read."""

    AUTO = "auto"
    THUNDERBIRD = "thunderbird"
    MBOX = "mbox"
    MAILDIR = "maildir"
    MH = "mh"
    EML = "eml"
    EMLX = "emlx"
    PST = "pst"
    POP3 = "pop3"


@dataclass
class AccountConfig:
    email: str = ""
    provider: str = "auto"
    """"auto" (detect from the address) or a provider plugin's name."""


@dataclass
class ServerConfig:
    """An explicit IMAP server; overrides what the provider plugin says."""

    host: str
    port: int
    security: Security = Security.TLS
    username: str | None = None
    ca_file: Path | None = None
    allow_insecure: bool = False


@dataclass
class AuthConfig:
    method: AuthKind = AuthKind.PASSWORD
    password_env: str | None = None
    password_command: str | None = None
    keyring: bool = False
    token_command: str | None = None
    """A command printing an OAuth2 access token (oama, mutt_oauth2.py...)."""
    client_id: str | None = None
    """oauth2: the id of the user's own OAuth client registration (not a secret)."""
    client_secret_env: str | None = None
    """oauth2: the environment variable holding that client's secret, if it has one."""


@dataclass
class SourceConfig:
    kind: SourceKind = SourceKind.AUTO
    path: Path | None = None
    """None: find the installed clients' stores on this machine."""
    url: str | None = None
    """For kind "pop3": ``pop3s://user@host[:port]`` (implicit TLS) or ``pop3://...``
    (STARTTLS, enforced); the password is the account's ([auth])."""


@dataclass
class MigrationConfig:
    target_prefix: str = ""
    dry_run: bool = False
    skip_deleted: bool = True
    folder_map: dict[str, str] = field(default_factory=dict)
    when_full: str = "stop"
    """"stop" or "newest-first": what migrate does when the mail does not fit."""


@dataclass
class Profile:
    """Everything a run needs, from a profile file or from the wizard."""

    account: AccountConfig = field(default_factory=AccountConfig)
    server: ServerConfig | None = None
    auth: AuthConfig = field(default_factory=AuthConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    migration: MigrationConfig = field(default_factory=MigrationConfig)
    advice: AdviceAnswers = field(default_factory=AdviceAnswers)
    """Answers for the POP3-or-IMAP advice (the optional ``[advice]`` table); None = unknown."""
    version: int = PROFILE_VERSION
    path: Path | None = None
    """The file it was loaded from, if any (relative paths in it are resolved against it)."""


# --- loading -------------------------------------------------------------

_SECRETISH = re.compile(r"pass(word|wd|phrase)?|secret|token|credential|api[_-]?key", re.I)
_SECRET_REFERENCES = frozenset(
    {"password_env", "password_command", "token_command", "keyring", "client_secret_env"}
)
POP3_URL = re.compile(
    r"^(?P<scheme>pop3s?)://(?P<user>[^@/]+)@(?P<host>[^:/]+)(?::(?P<port>\d+))?/?$"
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class _Reader:
    """Validates one parsed profile, turning every problem into a ProfileError."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text

    def fail(self, message: str, table: str | None = None, key: str | None = None) -> ProfileError:
        label = None
        if key is not None:
            label = f"[{table}] {key}" if table else key
        elif table is not None:
            label = f"[{table}]"
        return ProfileError(str(self.path), message, key=label, line=self.line_of(table, key))

    def line_of(self, table: str | None, key: str | None) -> int | None:
        """Best-effort line number of ``key`` in ``[table]`` (tomllib keeps none)."""
        lines = self.text.splitlines()
        start = 0
        if table is not None:
            header = re.compile(rf"^\s*\[\s*{re.escape(table)}\s*\]")
            for i, line in enumerate(lines):
                if header.match(line):
                    start = i
                    break
            else:
                # Inline or dotted form: account.email = ...
                pattern = re.compile(rf"^\s*{re.escape(table)}\s*[.=]")
                for i, line in enumerate(lines):
                    if pattern.match(line):
                        return i + 1
                return None
            if key is None:
                return start + 1
        if key is None:
            return None
        pattern = re.compile(rf'^\s*["\']?{re.escape(key)}["\']?\s*=')
        for i in range(start + (1 if table else 0), len(lines)):
            if table is not None and re.match(r"^\s*\[", lines[i]):
                break
            if pattern.match(lines[i]):
                return i + 1
        # A missing key: point at its table's header.
        return start + 1 if table is not None else None

    def table(self, data: Mapping[str, Any], name: str) -> dict[str, Any] | None:
        value = data.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(f"expected a table [{name}]", table=None, key=name)
        return value

    def refuse_secrets(self, data: Mapping[str, Any], table: str | None = None) -> None:
        for key, value in data.items():
            if table == "migration" and key == "folder_map":
                continue  # folder names, not settings
            if isinstance(value, dict):
                self.refuse_secrets(value, key if table is None else f"{table}.{key}")
            elif (
                key not in _SECRET_REFERENCES and _SECRETISH.search(key) and value not in ("", None)
            ):
                raise self.fail(
                    "a profile must not hold a secret (profiles get shared and backed up). "
                    f"Remove it and say where to get it instead: {SECRET_WAYS}",
                    table,
                    key,
                )

    def check_keys(self, data: Mapping[str, Any], table: str | None, allowed: set[str]) -> None:
        for key in data:
            if key not in allowed:
                hint = ", ".join(sorted(allowed))
                where = f"in [{table}]" if table else "at the top level"
                raise self.fail(f"unknown key {where}; expected one of: {hint}", table, key)

    def get(
        self,
        data: Mapping[str, Any],
        table: str,
        key: str,
        convert: Callable[[Any], Any],
        expected: str,
        default: Any = None,
        *,
        secret: bool = False,
    ) -> Any:
        """``data[key]`` converted; a wrong value names the file, line and key.

        ``secret``: the value may be a password typed where its source's name belongs,
        so the error never shows it.
        """
        if key not in data:
            return default
        try:
            return convert(data[key])
        except (TypeError, ValueError):
            got = "something else (not shown: it may be a secret)" if secret else repr(data[key])
            raise self.fail(f"expected {expected}, got {got}", table, key) from None


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError
    return value


def _nonempty_str(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError
    return value


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _env_name(value: Any) -> str:
    if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
        raise ValueError
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError
    return value


def _when_full(value: Any) -> str:
    if value not in ("stop", "newest-first"):
        raise ValueError
    return str(value)


def _port(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
        raise ValueError
    return value


def _enum(kind: type[Enum]) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if not isinstance(value, str):
            raise TypeError
        return kind(value)

    return convert


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError
    return value


def _size(value: Any) -> int:
    """A size in bytes: a whole number, or text like "4GB" / "1.5 GiB"."""
    if isinstance(value, str):
        return parse_size(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError
    return value


def _choices(kind: type[Enum]) -> str:
    return "one of " + ", ".join(f'"{m.value}"' for m in kind)


def load_profile(path: str | Path) -> Profile:
    """Read and validate a profile file; :class:`ProfileError` says what is wrong."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ProfileError(str(path), "no such profile file") from None
    except OSError as exc:
        raise ProfileError(str(path), f"cannot read the file: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProfileError(str(path), "not UTF-8 text; a profile is a TOML file") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        line = int(match.group(1)) if match else None
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise ProfileError(str(path), f"not valid TOML: {message}", line=line) from None
    return parse_profile(data, path=path, text=text)


def parse_profile(data: Mapping[str, Any], *, path: Path, text: str = "") -> Profile:
    """Validate already-parsed TOML data (see :func:`load_profile`)."""
    r = _Reader(path, text)
    r.refuse_secrets(data)
    r.check_keys(
        data, None, {"version", "account", "server", "auth", "source", "migration", "advice"}
    )

    if "version" not in data:
        raise r.fail(
            f"missing; expected version = {PROFILE_VERSION} as the first line", key="version"
        )
    version = data["version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise r.fail(f"expected version = {PROFILE_VERSION}, got {version!r}", key="version")
    if version > PROFILE_VERSION:
        raise r.fail(
            f"this profile is version {version}, written by a newer mailadvisor; "
            f"this one reads version {PROFILE_VERSION}. Upgrade mailadvisor.",
            key="version",
        )

    base = path.parent
    profile = Profile(version=version, path=path)

    account = r.table(data, "account")
    if account is None:
        raise r.fail('missing; expected [account] with email = "you@example.com"', table="account")
    r.check_keys(account, "account", {"email", "provider"})
    email = r.get(account, "account", "email", _nonempty_str, "an email address")
    if email is None:
        raise r.fail('missing; expected email = "you@example.com"', "account", "email")
    if not _EMAIL.match(email):
        raise r.fail(
            f'expected an email address like "you@example.com", got {email!r}', "account", "email"
        )
    profile.account = AccountConfig(
        email=email,
        provider=r.get(
            account,
            "account",
            "provider",
            _nonempty_str,
            '"auto" or a provider plugin\'s name',
            "auto",
        ),
    )

    server = r.table(data, "server")
    if server is not None:
        r.check_keys(
            server, "server", {"host", "port", "security", "username", "ca_file", "allow_insecure"}
        )
        host = r.get(server, "server", "host", _nonempty_str, "a host name")
        if host is None:
            raise r.fail('missing; expected host = "imap.example.com"', "server", "host")
        security = r.get(
            server, "server", "security", _enum(Security), _choices(Security), Security.TLS
        )
        allow_insecure = r.get(server, "server", "allow_insecure", _bool, "true or false", False)
        if security is Security.NONE and not allow_insecure:
            raise r.fail(
                'security = "none" sends your password and mail unencrypted; it is accepted '
                "only together with allow_insecure = true (for a lab or loopback server)",
                "server",
                "security",
            )
        ca_file = r.get(server, "server", "ca_file", _nonempty_str, "a path to a PEM file")
        profile.server = ServerConfig(
            host=host,
            port=r.get(
                server,
                "server",
                "port",
                _port,
                "a port number 1-65535",
                DEFAULT_PORTS[(Protocol.IMAP, security)],
            ),
            security=security,
            username=r.get(server, "server", "username", _nonempty_str, "a login name"),
            ca_file=_resolve(base, ca_file) if ca_file else None,
            allow_insecure=allow_insecure,
        )

    auth = r.table(data, "auth") or {}
    r.check_keys(auth, "auth", set(_SECRET_REFERENCES) | {"method", "client_id"})
    method = r.get(auth, "auth", "method", _enum(AuthKind), _choices(AuthKind), AuthKind.PASSWORD)
    cfg = AuthConfig(
        method=method,
        password_env=r.get(
            auth,
            "auth",
            "password_env",
            _env_name,
            "the name of an environment variable (letters, digits, _), not the password",
            secret=True,
        ),
        password_command=r.get(auth, "auth", "password_command", _nonempty_str, "a command line"),
        keyring=r.get(auth, "auth", "keyring", _bool, "true or false", False),
        token_command=r.get(auth, "auth", "token_command", _nonempty_str, "a command line"),
        client_id=r.get(auth, "auth", "client_id", _nonempty_str, "an OAuth client id"),
        client_secret_env=r.get(
            auth,
            "auth",
            "client_secret_env",
            _env_name,
            "the name of an environment variable (letters, digits, _), not the secret",
            secret=True,
        ),
    )
    for key in ("client_id", "client_secret_env"):
        if getattr(cfg, key) and method is not AuthKind.OAUTH2:
            raise r.fail(
                f'{key} is part of OAuth2 sign-in; use it with method = "oauth2"', "auth", key
            )
    chosen = [k for k in ("password_env", "password_command", "token_command") if getattr(cfg, k)]
    if cfg.keyring:
        chosen.append("keyring")
    if len(chosen) > 1:
        raise r.fail(
            f"choose one way to get the secret, not {' and '.join(chosen)}", "auth", chosen[1]
        )
    if method is AuthKind.PASSWORD and "token_command" in chosen:
        raise r.fail(
            'token_command gives OAuth2 tokens; use it with method = "oauth2"',
            "auth",
            "token_command",
        )
    if method is AuthKind.OAUTH2 and set(chosen) & {"password_env", "password_command"}:
        raise r.fail(
            'a password is not used with method = "oauth2"; use token_command, '
            "keyring = true, or nothing (sign in through the browser)",
            "auth",
            chosen[0],
        )
    if method is AuthKind.PASSWORD and not chosen:
        raise r.fail(f"say where to get the password: {SECRET_WAYS}", table="auth")
    profile.auth = cfg

    source = r.table(data, "source") or {}
    r.check_keys(source, "source", {"kind", "path"})
    src_path = r.get(source, "source", "path", _nonempty_str, "a path")
    kind = r.get(source, "source", "kind", _enum(SourceKind), _choices(SourceKind), SourceKind.AUTO)
    if kind is SourceKind.POP3:
        if not src_path or not POP3_URL.match(src_path):
            raise r.fail(
                'expected path = "pop3s://user@pop.example.com" (or pop3:// for '
                "STARTTLS) for a POP3 account",
                "source",
                "path",
            )
        profile.source = SourceConfig(kind=kind, url=src_path)
    else:
        profile.source = SourceConfig(
            kind=kind, path=_resolve(base, src_path) if src_path else None
        )

    migration = r.table(data, "migration") or {}
    r.check_keys(
        migration,
        "migration",
        {"target_prefix", "dry_run", "skip_deleted", "folder_map", "when_full"},
    )
    folder_map = migration.get("folder_map", {})
    if not isinstance(folder_map, dict) or not all(
        isinstance(v, str) and v.strip() for v in folder_map.values()
    ):
        raise r.fail(
            'expected a table of "source folder" = "server folder" names', "migration", "folder_map"
        )
    profile.migration = MigrationConfig(
        target_prefix=r.get(migration, "migration", "target_prefix", _str, "a folder name", ""),
        dry_run=r.get(migration, "migration", "dry_run", _bool, "true or false", False),
        skip_deleted=r.get(migration, "migration", "skip_deleted", _bool, "true or false", True),
        folder_map=dict(folder_map),
        when_full=r.get(
            migration, "migration", "when_full", _when_full, '"stop" or "newest-first"', "stop"
        ),
    )

    advice = r.table(data, "advice")
    if advice is not None:
        profile.advice = _parse_advice(r, advice)
    return profile


def _parse_advice(r: _Reader, advice: Mapping[str, Any]) -> AdviceAnswers:
    """The ``[advice]`` table: answer names as in :class:`AdviceAnswers`, all optional."""
    names = [f.name for f in fields(AdviceAnswers)]
    r.check_keys(advice, "advice", set(names))
    values: dict[str, Any] = {}
    convert: Callable[[Any], Any]
    for name in names:
        if name == "devices":
            convert, expected = _count, "a whole number of devices, 1 or more"
        elif name == "connectivity":
            convert, expected = _enum(Connectivity), _choices(Connectivity)
        elif name in SIZE_ANSWERS:
            convert = _size
            expected = 'a size like "4GB", "500 MB", "1.5 GiB", or a number of bytes'
        else:
            convert, expected = _bool, "true or false"
        values[name] = r.get(advice, "advice", name, convert, expected)
    return AdviceAnswers(**values)


def _resolve(base: Path, value: str) -> Path:
    """Expand ``~`` and make relative paths relative to the profile's folder."""
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


# --- saving ----------------------------------------------------------------


def profile_to_dict(profile: Profile) -> dict[str, Any]:
    """The TOML structure of a profile (never a secret: the dataclass holds none)."""
    out: dict[str, Any] = {"version": profile.version}
    out["account"] = {"email": profile.account.email, "provider": profile.account.provider}
    if profile.server is not None:
        s = profile.server
        server: dict[str, Any] = {"host": s.host, "port": s.port, "security": s.security.value}
        if s.username:
            server["username"] = s.username
        if s.ca_file:
            server["ca_file"] = str(s.ca_file)
        if s.allow_insecure:
            server["allow_insecure"] = True
        out["server"] = server
    a = profile.auth
    auth: dict[str, Any] = {"method": a.method.value}
    for key in (
        "password_env",
        "password_command",
        "token_command",
        "client_id",
        "client_secret_env",
    ):
        if getattr(a, key):
            auth[key] = getattr(a, key)
    if a.keyring:
        auth["keyring"] = True
    out["auth"] = auth
    source: dict[str, Any] = {"kind": profile.source.kind.value}
    if profile.source.url is not None:
        source["path"] = profile.source.url
    elif profile.source.path is not None:
        source["path"] = str(profile.source.path)
    out["source"] = source
    m = profile.migration
    out["migration"] = {
        "target_prefix": m.target_prefix,
        "dry_run": m.dry_run,
        "skip_deleted": m.skip_deleted,
        "folder_map": dict(m.folder_map),
        "when_full": m.when_full,
    }
    answers = {name: getattr(profile.advice, name) for name in profile.advice.given()}
    if answers:
        out["advice"] = {k: v.value if isinstance(v, Enum) else v for k, v in answers.items()}
    return out


def dump_profile(profile: Profile) -> str:
    """Render a profile as TOML text that :func:`load_profile` reads back."""
    return tomli_w.dumps(profile_to_dict(profile))


def save_profile(profile: Profile, path: str | Path) -> Path:
    """Save ``profile`` at ``path`` in one step (0600: it names where the secrets live),
    and check that it reads back.

    The file appears complete or not at all: it is written beside its final name and
    renamed, so a Ctrl-C leaves no half-written profile.
    """
    path = Path(path).expanduser().absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = dump_profile(profile)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:  # mkstemp makes it 0600
            f.write(text)
        load_profile(tmp)  # a profile written must be one that runs
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    profile.path = path
    return path


# --- checking ----------------------------------------------------------------


def check_profile(path: str | Path, known_providers: Collection[str]) -> tuple[Profile, list[str]]:
    """Load a profile and check what can be checked without connecting.

    Returns the profile and notes (things that are valid but worth a look, such
    as a source path missing on this machine); raises :class:`ProfileError`.
    """
    profile = load_profile(path)
    r = _Reader(Path(path), profile.path.read_text("utf-8") if profile.path else "")
    provider = profile.account.provider
    if provider != "auto" and provider not in known_providers:
        known = ", ".join(f'"{p}"' for p in sorted(known_providers))
        raise r.fail(
            f'no plugin provides {provider!r}; expected "auto" or one of: {known}',
            "account",
            "provider",
        )
    server = profile.server
    if server is not None and server.ca_file is not None and not server.ca_file.is_file():
        raise r.fail(f"no such file: {server.ca_file}", "server", "ca_file")
    notes: list[str] = []
    src = profile.source.path
    if src is not None and not src.exists():
        notes.append(f"[source] path {src} does not exist on this machine")
    return profile, notes
