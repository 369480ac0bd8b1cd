"""Folder mapping rules (pure) and the small wire helpers of the uploader."""

from __future__ import annotations

import pytest

from advisor.migration.plan import FolderMapper, ServerLayout, to_crlf
from advisor.migration.server_index import message_id_of
from advisor.migration.upload import parse_uid_set, quote_mailbox, valid_flags
from advisor.plugins.types import FolderPolicy, FolderRole, ServerFolder


def layout(
    delim: str = "/", prefix: str = "", special: dict[str, str] | None = None
) -> ServerLayout:
    folders = [ServerFolder("INBOX", delim)]
    for name, attr in (special or {}).items():
        folders.append(ServerFolder(name, delim, frozenset({attr})))
    return ServerLayout(delim, prefix, folders)


@pytest.mark.parametrize(
    ("delim", "name", "expected"),
    [
        ("/", "a/b", "a\u2215b"),
        (".", "v1.2", "v1\u20242"),
        ("\\", "x\\y", "x\u29f5y"),
        ("|", "x|y", "x_y"),
        ("/", "line\r\nbreak\0", "line__break_"),
        ("/", "  spaced  ", "spaced"),
        ("/", "..", "_.."),
        ("/", "", "_"),
        ("/", '*%"\\', '*%"\\'),  # quoted on the wire, not altered
    ],
)
def test_sanitise(delim: str, name: str, expected: str) -> None:
    assert FolderMapper(layout(delim)).sanitise(name) == expected


def test_long_names_are_cut_but_stay_distinct() -> None:
    m = FolderMapper(layout())
    a, b = m.sanitise("x" * 300 + "a"), m.sanitise("x" * 300 + "b")
    assert len(a) <= 200 and len(b) <= 200 and a != b


def test_hierarchy_prefix_and_inbox() -> None:
    m = FolderMapper(layout(".", "INBOX."))
    assert m.target_for(("INBOX",)).name == "INBOX"
    assert m.target_for(("inbox",)).name == "INBOX"
    assert m.target_for(("Work", "a.b")).name == "INBOX.Work.a\u2024b"
    assert m.target_for(("Sent",)).name == "INBOX.Sent"  # created as a special folder
    assert m.target_for(("Sent",)).create_use == "\\Sent"


def test_special_use_wins_then_plugin_names_then_creation() -> None:
    server = layout(special={"[Gmail]/Sent Mail": "\\Sent", "[Gmail]/All Mail": "\\All"})
    assert FolderMapper(server).target_for(("Sent Items",)).name == "[Gmail]/Sent Mail"
    policy = FolderPolicy(roles={FolderRole.TRASH: "Deleted Items"})
    assert FolderMapper(layout(), policy).target_for(("Trash",)).name == "Deleted Items"
    created = FolderMapper(layout()).target_for(("Junk E-mail",))
    assert created.name == "Junk" and not created.exists
    # Only top-level folders are special.
    assert FolderMapper(server).target_for(("Projects", "Sent")).name == "Projects/Sent"


def test_never_upload_into_all_mail_or_calendar() -> None:
    server = layout(special={"[Gmail]/All Mail": "\\All"})
    m = FolderMapper(server, folder_map={"Archive": "[Gmail]/All Mail"})
    assert m.target_for(("Archive",)).name == "[Gmail]/All Mail (imported)"
    outlook = FolderMapper(layout(), FolderPolicy(never_upload=frozenset({"Calendar"})))
    assert outlook.target_for(("Calendar",)).name == "Calendar (imported)"


def test_target_prefix_cannot_be_escaped() -> None:
    m = FolderMapper(layout(), target_prefix="Old mail")
    for hostile in (("..", "x"), ("a/../../b",), ("INBOX",), ("Sent",)):
        assert m.target_for(hostile).name.startswith("Old mail/")
    assert m.target_for(("a/../../b",)).name == "Old mail/a\u2215..\u2215..\u2215b"


def test_folder_map_overrides_and_uses_slash_levels() -> None:
    m = FolderMapper(layout("."), target_prefix="Old", folder_map={"Work/Projects": "Jobs/2024"})
    assert m.target_for(("Work", "Projects")).name == "Jobs.2024"


def test_wire_helpers() -> None:
    assert quote_mailbox('Entwürfe "x" \\') == b'"Entw&APw-rfe \\"x\\" \\\\"'
    assert quote_mailbox("a\r\nb\0") == b'"a&AA0ACg-b&AAA-"'  # no raw control byte
    assert parse_uid_set(b"3:5,9,12:11") == [3, 4, 5, 9, 12, 11]
    keep, dropped = valid_flags(["\\Seen", "\\Deleted", "$label1", "bad word", "\\Bogus"], True)
    assert keep == ["\\Seen", "$label1"] and dropped == ["bad word", "\\Bogus"]
    assert valid_flags(["$label1"], False) == ([], ["$label1"])
    assert to_crlf(b"a\nb\r\nc\rd") == b"a\r\nb\r\nc\r\nd"
    assert message_id_of(b"Subject: x\nMessage-Id:\n  <a@b>\n\nMessage-ID: <body@x>\n") == "<a@b>"
    assert message_id_of(b"Subject: x\n\nMessage-ID: <body@x>\n") is None


def test_thunderbird_account_level_is_left_out() -> None:
    m = FolderMapper(layout(), account_level=True, folder_map={"Local Folders/Bills": "Money"})
    assert m.target_for(("Local Folders", "Inbox")).name == "INBOX"
    assert m.target_for(("pop.example.com", "Inbox")).name == "INBOX"
    assert m.target_for(("pop.example.com", "Sent")).name == "Sent"
    # A special folder's sub-folders follow it (issue 10, point 6).
    assert m.target_for(("Local Folders", "Archives", "2019")).name == "Archive/2019"
    assert m.target_for(("Local Folders", "Bills")).name == "Money"


@pytest.mark.parametrize(
    ("delim", "prefix", "special", "expected"),
    [
        ("/", "", {}, ["Archive", "Archive/2019", "Archive/2019/Q1", "Sent/Old"]),
        (".", "INBOX.", {}, ["INBOX.Archive", "INBOX.Archive.2019", "INBOX.Archive.2019.Q1",
                            "INBOX.Sent.Old"]),
        ("/", "", {"Archiv": "\\Archive", "Gesendet": "\\Sent"},
         ["Archiv", "Archiv/2019", "Archiv/2019/Q1", "Gesendet/Old"]),
    ],
)  # fmt: skip
def test_sub_folders_follow_their_special_parent(
    delim: str, prefix: str, special: dict[str, str], expected: list[str]
) -> None:
    m = FolderMapper(layout(delim, prefix, special))
    paths = [("Archives",), ("Archives", "2019"), ("Archives", "2019", "Q1"), ("Sent", "Old")]
    assert [m.target_for(p).name for p in paths] == expected
    child = m.target_for(("Archives", "2019"))
    assert child.create_use is None and child.role is None  # only the parent has the role


@pytest.mark.parametrize(
    ("delim", "prefix", "expected"),
    [("/", "", "INBOX/Sub"), (".", "", "INBOX.Sub"), (".", "INBOX.", "INBOX.Sub")],
)
def test_inbox_is_case_insensitive_as_first_level(delim: str, prefix: str, expected: str) -> None:
    listed = layout(delim, prefix)
    server = ServerLayout(delim, prefix, [*listed.folders, ServerFolder(expected, delim)])
    for spelling in ("Inbox", "inbox", "INBOX"):
        target = FolderMapper(server).target_for((spelling, "Sub"))
        assert target.name == expected
        assert target.exists  # the server's INBOX/Sub is this folder: no second CREATE
    assert server.has(expected.replace("INBOX", "Inbox"))


def test_a_rename_the_server_needed_is_kept() -> None:
    dot = "\u2024"
    m = FolderMapper(layout(), renames={"v1.2 notes": f"v1{dot}2 notes"})
    assert m.target_for(("v1.2 notes",)).name == f"v1{dot}2 notes"
    # Without the journal: the look-alike folder an earlier run made is found by name.
    listed = ServerLayout("/", "", [ServerFolder(f"v1{dot}2 notes", "/")])
    assert FolderMapper(listed).target_for(("v1.2 notes",)).name == f"v1{dot}2 notes"
    assert FolderMapper(layout()).target_for(("v1.2 notes",)).name == "v1.2 notes"
