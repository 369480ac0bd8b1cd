"""What the old POP3 program does to the server while it still runs.

During the switch the old program keeps downloading; set to remove mail from the
server, it deletes new mail from the very account the user now reads over IMAP. This
reads Thunderbird's POP3 account settings from prefs.js (the only program whose
settings are on disk in a form we read today) and says, in plain words, what each
account does to the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from advisor.stores.thunderbird import read_prefs

_TRUE = "true"


@dataclass(frozen=True)
class Pop3Habit:
    """One POP3 account of the old program, and what it does to the server."""

    program: str
    host: str
    username: str
    leaves_on_server: bool
    deletes_after_days: int | None
    """Leaves mail on the server, but deletes it after this many days."""
    deletes_when_deleted_here: bool
    """Leaves mail on the server, but deletes it when deleted in the program."""
    checks_by_itself: bool
    """Checks for new mail at start-up or every few minutes."""

    @property
    def deletes_from_server(self) -> bool:
        return (
            not self.leaves_on_server
            or self.deletes_after_days is not None
            or self.deletes_when_deleted_here
        )

    def warning(self) -> str | None:
        """The plain-words warning when this account deletes mail from the server."""
        who = f"{self.program}'s POP3 account {self.username}@{self.host}"
        if not self.leaves_on_server:
            what = (
                "removes every message from the server as soon as it has downloaded it: "
                "while it runs, new mail lands on this computer only and never reaches your "
                "IMAP mailbox or your phone"
            )
        elif self.deletes_after_days is not None:
            what = (
                f"deletes messages from the server {self.deletes_after_days} days after "
                "downloading them: they disappear from your IMAP mailbox too"
            )
        elif self.deletes_when_deleted_here:
            what = (
                "deletes a message from the server when you delete it in "
                f"{self.program}: it disappears from your IMAP mailbox too"
            )
        else:
            return None
        return (
            f"{who} {what}. Stop that account (turn off checking for new mail, or remove it) "
            "before you rely on IMAP."
        )


GMAIL_POP_NOTE = (
    "Gmail has its own POP setting: Settings > See all settings > Forwarding and POP/IMAP > "
    "'When messages are accessed with POP'. Choose 'keep Gmail's copy in the Inbox', "
    "or a POP program's download archives or deletes mail on Gmail's side too."
)


def thunderbird_pop3_habits(profile_dir: Path) -> list[Pop3Habit]:
    """The POP3 accounts in a Thunderbird profile's prefs.js, with their server habits.

    Missing settings take Thunderbird's defaults (mailnews.js): leave_on_server false,
    delete_by_age_from_server false, num_days_to_leave_on_server 7,
    delete_mail_left_on_server false.
    """
    prefs = read_prefs(profile_dir)
    servers: dict[str, dict[str, str]] = {}
    for key, value in prefs.items():
        if key.startswith("mail.server.") and key.count(".") >= 3:
            _, _, server, name = key.split(".", 3)
            servers.setdefault(server, {})[name] = value
    default = servers.get("default", {})
    habits = []
    for server, raw in sorted(servers.items()):
        if server == "default" or raw.get("type") != "pop3":
            continue
        values = {**default, **raw}
        leave = values.get("leave_on_server") == _TRUE
        by_age = leave and values.get("delete_by_age_from_server") == _TRUE
        days = _int(values.get("num_days_to_leave_on_server"), 7) if by_age else None
        habits.append(
            Pop3Habit(
                program="Thunderbird",
                host=values.get("realhostname") or values.get("hostname", "?"),
                username=values.get("realuserName") or values.get("userName", "?"),
                leaves_on_server=leave,
                deletes_after_days=days,
                deletes_when_deleted_here=leave
                and values.get("delete_mail_left_on_server") == _TRUE,
                checks_by_itself=values.get("check_new_mail") == _TRUE
                or values.get("login_at_startup") == _TRUE,
            )
        )
    return habits


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default
