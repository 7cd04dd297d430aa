"""Static files are addressed by their content's digest (app.web.templating.static_url)."""

import hashlib
import os

from app.web import templating


def test_a_static_file_edited_while_the_server_runs_gets_a_new_address(tmp_path, monkeypatch):
    monkeypatch.setattr(templating, "STATIC_DIR", tmp_path)
    sheet = tmp_path / "app.css"
    sheet.write_text("main { color: black; }")

    def address() -> str:
        return f"/static/app.css?v={hashlib.sha256(sheet.read_bytes()).hexdigest()[:12]}"

    first = templating.static_url("app.css")
    assert first == address()
    assert templating.static_url("app.css") == first  # unchanged file, same address
    sheet.write_text("main { color: navy; }")
    modified = sheet.stat().st_mtime_ns + 1_000_000  # a distinct time, whatever the clock's grain
    os.utime(sheet, ns=(modified, modified))
    assert templating.static_url("app.css") == address() != first
