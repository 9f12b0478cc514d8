"""docs/families.md stays consistent when a row is edited: 44 numbered record rows, each naming a
real record folder (or saying it has none), re-scorable `**yes**` or `no`, a `no` always saying
what is missing; the summary's total equals the rows marked yes; every registered family has a
line in the families table."""

from __future__ import annotations

import json
import re

from gepa import families
from tests.support.paths import DATA, RECORDS, REPO

DOC = REPO / "docs" / "families.md"
OFFICIAL = DATA / "official_board" / "record_track.json"
RECORD_ROWS = 44


def _table(text: str, heading: str) -> list[list[str]]:
    """The body rows of the first table after `heading`, as lists of cell texts."""
    section = text[text.index(heading):]
    rows: list[list[str]] = []
    for line in section.splitlines()[1:]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            break
    return [r for r in rows[2:]]  # drop the header and the |---| line


def record_rows() -> list[list[str]]:
    return _table(DOC.read_text(), "## Record track")


def test_record_table_has_every_row_once() -> None:
    rows = record_rows()
    assert [int(r[0]) for r in rows] == list(range(1, RECORD_ROWS + 1))
    scores = [float(r[2]) for r in rows]
    assert scores == sorted(scores), "the record table is ordered by score, as the official one"


def test_each_row_names_real_folders_and_says_what_is_missing() -> None:
    on_disk = {p.name for p in (RECORDS / "track_10min_16mb").iterdir()}
    for row in record_rows():
        num, folder_cell, rescorable, missing = row[0], row[3], row[5], row[6]
        folders = re.findall(r"`([^`]+)`", folder_cell)
        if folders:
            unknown = [f for f in folders if f not in on_disk]
            assert not unknown, f"row {num}: no record folder {unknown}"
        else:
            assert folder_cell.startswith("none"), f"row {num}: name the folder or say there is none"
        assert rescorable in ("**yes**", "no"), f"row {num}: re-scorable must be **yes** or no, not {rescorable!r}"
        if rescorable == "no":
            assert len(missing) > 20, f"row {num}: say exactly what is missing"


def test_summary_total_matches_the_rows() -> None:
    text = DOC.read_text()
    yes = sum(1 for r in record_rows() if r[5] == "**yes**")
    total = re.search(r"\*\*total\*\* \| \*\*(\d+) of (\d+)\*\*", text)
    assert total, "the summary has a total line"
    assert (int(total.group(1)), int(total.group(2))) == (yes, RECORD_ROWS)
    per_family = sum(int(r[1]) for r in _table(text, "### Summary") if r[1].isdigit())
    assert per_family == yes


def test_every_registered_family_is_described() -> None:
    described = {re.sub(r"`", "", r[0]) for r in _table(DOC.read_text(), "## The families")}
    missing = set(families.names()) - described
    assert not missing, f"docs/families.md does not describe {sorted(missing)}"


def test_rows_match_the_official_board() -> None:
    """Same rows, order, scores and folders as the README table kept for the ingest test."""
    official = json.loads(OFFICIAL.read_text())["rows"]
    rows = record_rows()
    assert len(rows) == len(official) == RECORD_ROWS
    for row, ref in zip(rows, official):
        assert float(row[2]) == float(ref["score"]), (row[0], row[2], ref["score"])
        folders = re.findall(r"`([^`]+)`", row[3])
        if ref["folder"] is None:
            assert not folders, f"row {row[0]}: the official row links to a PR, not a folder"
        else:
            assert ref["folder"] in folders, f"row {row[0]}: expected {ref['folder']}"
