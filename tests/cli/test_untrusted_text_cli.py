"""Text from a file reaches the terminal as plain, inert text (second review).

A finding's segment id or message is the payer's bytes: rich markup in it crashed ``claimsync
ingest`` (``[/]``) or vanished (``[bold]``), and an ESC in it drove the analyst's terminal. The
quarantine lines must also start with what caused the quarantine, not with the file's first
warnings.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from claimsync_console.cli.app import app
from claimsync_console.cli.ingest_cmd import SEGMENT_ID_MAX, print_results
from claimsync_console.cli.output import print_table, printable
from claimsync_console.engine.ingest import IngestResult

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "835" / "835_AET_HOC_0001.x12"
runner = CliRunner()


def url(tmp_path: Path) -> str:
    return f"sqlite+pysqlite:///{tmp_path / 'db.sqlite'}"


def variant(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def ingest(tmp_path: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["ingest", *args, "--database", url(tmp_path)])


def test_markup_in_a_finding_prints_as_it_is(tmp_path: Path) -> None:
    text = SAMPLE.read_text().replace("BPR*I*8859.98*", "BPR*I*[/]*")
    result = ingest(tmp_path, str(variant(tmp_path, "t11.x12", text)))
    assert result.exit_code == 1, result.output  # quarantined, not "unexpected error"
    assert "MarkupError" not in result.output
    assert "got '[/]'" in result.stderr
    bold = SAMPLE.read_text().replace("BPR*I*8859.98*", "BPR*I*[bold]X*")
    result = ingest(tmp_path, str(variant(tmp_path, "t12.x12", bold)))
    assert result.exit_code == 1
    assert "got '[bold]X'" in result.stderr


def test_control_characters_are_shown_escaped_not_sent_to_the_terminal(capsys) -> None:  # type: ignore[no-untyped-def]
    # the reviewer's segment (an xterm "set title"), plus a C1 CSI, as a quarantine's reason
    title = "\x1b]0;TITLE\x07\x9b2JZZ"
    finding = {
        "severity": "fatal", "segment_index": 252, "segment_id": title, "code": "x",
        "message": f"segment {title} broke it",
    }  # fmt: skip
    result = IngestResult(f"/in/{title}.x12", "0" * 64, "quarantined", "835", findings=(finding,))
    print_results([result])
    out, err = capsys.readouterr()
    assert not {"\x1b", "\x07", "\x9b"} & set(out + err)
    assert f"({printable(title)}): segment {printable(title)} broke it" in err
    assert printable(title) == "\\x1b]0;TITLE\\x07\\x9b2JZZ"
    assert f"{printable(title)}.x12" in out  # the file name in the table, too


def test_json_keeps_the_text_but_caps_a_huge_segment_id(tmp_path: Path) -> None:
    garbage = "Q" * 5000 + "\x1b[2J"
    text = SAMPLE.read_text().replace("DTM*405*20260118~", f"{garbage}*1~DTM*405*20260118~")
    result = ingest(tmp_path, str(variant(tmp_path, "big.x12", text)), "--json")
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    ids = [f["segment_id"] for f in row["findings"]]
    assert ids and all(len(i) <= SEGMENT_ID_MAX for i in ids)
    assert any(i.endswith("…") for i in ids)
    assert any("\x1b[2J" in f["message"] for f in row["findings"])  # JSON escapes it


def test_the_quarantine_reason_comes_before_the_warnings(tmp_path: Path) -> None:
    junk = "".join(f"ZZ{n}*1~" for n in range(5))  # 5 warnings before ST, in file order first
    text = SAMPLE.read_text().replace("ST*835*0001~", junk + "ST*835*0001~")
    text = text.replace("CLP*HOC0000014*1*217.80*143.77*", "CLP*HOC0000014*1*217.80*X1*")
    result = ingest(tmp_path, str(variant(tmp_path, "late.x12", text)))
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("quarantined")]
    assert "CLP04 must be an amount" in lines[0], result.stderr
    assert "more finding(s)" in result.stderr


def test_table_cells_are_plain_text(capsys) -> None:  # type: ignore[no-untyped-def]
    print_table("t", ("a", "b"), [("[bold]X", "[/]"), ("\x1b[31mred", None)])
    out = capsys.readouterr().out
    assert "[bold]X" in out and "[/]" in out and "\\x1b[31mred" in out and "\x1b" not in out


def test_printable_escapes_c0_del_c1_but_not_tab_or_text() -> None:
    assert printable("a\tb é ü") == "a\tb é ü"
    assert printable("\x00\x1b\n\r\x7f\x85\x9f") == "\\x00\\x1b\\x0a\\x0d\\x7f\\x85\\x9f"


def test_items_show_escapes_control_characters_from_the_data(capsys) -> None:  # type: ignore[no-untyped-def]
    from claimsync_console.cli.items_cmd import print_detail

    item = {
        "id": 7, "queue": "dead-letter", "state": "open", "version": 1, "amount": "10.00",
        "payer_id": "SMPAE", "error": "ERP said \x1b]0;pwned\x07 no", "created_at": "2026",
        "age_seconds": 5, "kind": "dead_letter", "details": {},
    }  # fmt: skip
    source = {"file_name": "a\x1b[2J.x12", "kind": "835"}
    detail = {"item": item, "source": source, "segments_truncated": False,
              "segments": [{"index": 3, "text": "NM1*QC*1*\x1b[31mX"}], "candidates": [],
              "history": [], "actions": [], "outbox": None, "attempts": []}  # fmt: skip
    print_detail(detail)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b]0;pwned\\x07" in out and "\\x1b[2J" in out
