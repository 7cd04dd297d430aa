"""Static files are addressed by their content's digest (app.web.templating.asset_version)."""

import hashlib
import os

from app.web import templating


def test_a_static_file_edited_while_the_server_runs_gets_a_new_address(tmp_path, monkeypatch):
    monkeypatch.setattr(templating, "STATIC_DIR", tmp_path)
    sheet = tmp_path / "app.css"
    sheet.write_text("main { color: black; }")
    first = templating.asset_version("app.css")
    assert first == hashlib.sha256(sheet.read_bytes()).hexdigest()[:12]
    assert templating.asset_version("app.css") == first  # unchanged file, same address
    sheet.write_text("main { color: navy; }")
    modified = sheet.stat().st_mtime_ns + 1_000_000  # a distinct time, whatever the clock's grain
    os.utime(sheet, ns=(modified, modified))
    assert templating.asset_version("app.css") == hashlib.sha256(sheet.read_bytes()).hexdigest()[:12] != first
