"""Thunderbird 115+ profiles: hashed folder names from folderCache.json / folderTree.json,
junk verdicts, partial (headers-only) downloads, and dates without a usable .msf."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from advisor.stores.base import SEEN
from advisor.stores.thunderbird import ThunderbirdReader
from advisor.stores.thunderbird.folder_cache import FolderNames
from advisor.stores.thunderbird.junk import junk_keywords
from tests.harness.store_checks import assert_untouched, tree_state
from tests.harness.tb115_gen import Tb115Folder, Tb115Message, jsoncpp_dumps, write_tb115_profile

T0 = datetime(2021, 4, 5, 6, 7, 8, tzinfo=UTC)


def folders() -> list[Tb115Folder]:
    return [
        Tb115Folder("Inbox", "Posteingang", [Tb115Message("hello", T0)]),
        Tb115Folder("Q18e2cfdc9", "Q1/Q2 report", [Tb115Message("q report", T0)]),
        Tb115Folder("8d3e0f7a", "  spaced  ", [Tb115Message("spaced", T0)]),
        Tb115Folder("Archives", "Archives", []),
        # Only folderTree.json names this one (its cache entry was lost).
        Tb115Folder("20197c1e02aa", "2019: taxes", [Tb115Message("tax", T0)], ("Archives",), False),
        Tb115Folder("Plain", "Plain", [Tb115Message("plain", T0)]),
    ]


@pytest.mark.parametrize("prefix", [None, "C:\\Users\\jo\\AppData\\Roaming\\Thunderbird\\x"])
def test_hashed_names_come_from_the_folder_cache(tmp_path: Path, prefix: str | None) -> None:
    profile = tmp_path / "abcd.default-release"
    write_tb115_profile(profile, "Local Folders", folders(), cache_prefix=prefix)
    before = tree_state(profile)
    reader = ThunderbirdReader(profile)
    got = {m.folder: m for m in reader.messages()}
    assert sorted(got) == [
        ("Local Folders", "  spaced  "),
        ("Local Folders", "Archives", "2019: taxes"),
        ("Local Folders", "Inbox"),  # the localised name is not the folder's name
        ("Local Folders", "Plain"),
        ("Local Folders", "Q1/Q2 report"),
    ]
    assert [f.path for f in reader.folders()][:3] == [
        ("Local Folders", "  spaced  "),
        ("Local Folders", "Archives"),
        ("Local Folders", "Archives", "2019: taxes"),
    ]
    assert_untouched(profile, before)


def test_folder_cache_written_by_jsoncpp_reads_back() -> None:
    text = jsoncpp_dumps({"/p/Mail/L/Q18e2cfdc9.msf": {"folderName": "Q1/Q2 réport", "flags": 4}})
    assert text == (
        '{\n\t"/p/Mail/L/Q18e2cfdc9.msf" : \n\t{\n\t\t"flags" : 4,\n'
        '\t\t"folderName" : "Q1/Q2 r\\u00e9port"\n\t}\n}'
    )
    assert json.loads(text)["/p/Mail/L/Q18e2cfdc9.msf"]["folderName"] == "Q1/Q2 réport"


def test_a_broken_or_missing_cache_leaves_the_file_names(tmp_path: Path) -> None:
    profile = tmp_path / "p"
    write_tb115_profile(profile, "Local Folders", folders()[:2])
    (profile / "folderCache.json").write_text("{not json")
    (profile / "folderTree.json").unlink()
    names = {m.folder for m in ThunderbirdReader(profile).messages()}
    assert names == {("Local Folders", "Inbox"), ("Local Folders", "Q18e2cfdc9")}
    assert not FolderNames.load(profile)


def test_junk_scores_become_keywords(tmp_path: Path) -> None:
    profile = tmp_path / "p"
    inbox = [
        Tb115Message("spam", T0, junkscore="100"),
        Tb115Message("ham", T0, junkscore="0"),
        Tb115Message("unsure", T0),
    ]
    write_tb115_profile(profile, "Local Folders", [Tb115Folder("Inbox", "Inbox", inbox)])
    got = {m.data.split(b"Subject: ")[1].split(b"\n")[0]: m.flags for m in
           ThunderbirdReader(profile).messages()}  # fmt: skip
    assert got == {
        b"spam": {SEEN, "$Junk"},
        b"ham": {SEEN, "$NotJunk"},
        b"unsure": {SEEN},
    }
    assert junk_keywords(b"  51 ") == {"$Junk"} and junk_keywords(b"50") == {"$NotJunk"}
    assert junk_keywords(b"") == frozenset() and junk_keywords(None) == frozenset()


def test_without_a_usable_index_the_date_is_the_topmost_received(tmp_path: Path) -> None:
    profile = tmp_path / "p"
    received = datetime(2019, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=1)))
    dated = datetime(2018, 1, 2, 3, 4, 5, tzinfo=UTC)
    messages = [
        Tb115Message("received", received, date=dated),
        Tb115Message("dated", None, date=dated),
        Tb115Message("nothing", None, date=None),
    ]
    inbox = Tb115Folder("Inbox", "Inbox", messages, index=False)  # restored mail files
    write_tb115_profile(profile, "Local Folders", [inbox])
    got = [m.received for m in ThunderbirdReader(profile).messages()]
    # Not the From_ lines (2025-06-01, when Thunderbird wrote the copies) unless nothing else.
    assert got == [received, dated, datetime(2025, 6, 1, 12, 0)]


def test_with_a_usable_index_its_date_wins(tmp_path: Path) -> None:
    profile = tmp_path / "p"
    message = Tb115Message("x", T0, date=T0 - timedelta(days=3))
    write_tb115_profile(profile, "Local Folders", [Tb115Folder("Inbox", "Inbox", [message])])
    (got,) = ThunderbirdReader(profile).messages()
    assert got.received == T0


def test_partial_downloads_are_marked(tmp_path: Path) -> None:
    profile = tmp_path / "p"
    messages = [Tb115Message("big", T0, partial_uidl="UID7-1700000000"), Tb115Message("ok", T0)]
    write_tb115_profile(profile, "Local Folders", [Tb115Folder("Inbox", "Inbox", messages)])
    big, ok = ThunderbirdReader(profile).messages()
    assert big.partial and not ok.partial
    assert [p.code for p in big.problems] == ["partial"]
