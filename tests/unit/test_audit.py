"""The dependency audit's reading of advisory data (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from connlog.devtools import audit


@pytest.mark.parametrize(
    ("entry", "fixed", "aliases"),
    [
        # pip-audit's JSON
        ({"id": "PYSEC-1", "fix_versions": ["1.2"], "aliases": ["CVE-1"]}, ["1.2"], ["CVE-1"]),
        # PyPI's project page
        ({"id": "GHSA-x", "fixed_in": ["2.0", "1.9.1"], "aliases": None}, ["2.0", "1.9.1"], []),
        ({"id": "PYSEC-2"}, [], []),
    ],
    ids=["pip-audit", "pypi-page", "bare"],
)
def test_findings_from_either_source(entry, fixed, aliases):
    [finding] = audit._findings("pkg", "1.0", [entry])
    assert (finding.vuln_id, finding.fixed_in, finding.aliases) == (entry["id"], fixed, aliases)


def test_explained_ids_come_from_pyproject(tmp_path: Path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.connlog.audit]\nignore = {"PYSEC-1" = "not reachable: we never parse X"}\n')
    assert audit.ignored(pyproject) == {"PYSEC-1": "not reachable: we never parse X"}
    pyproject.write_text("[project]\nname = 'x'\n")
    assert audit.ignored(pyproject) == {}


def test_a_finding_fails_unless_explained(tmp_path: Path, monkeypatch, capsys):
    report = audit.Report(audited={"pkg": "pypi"},
                          findings=audit._findings("pkg", "1.0", [{"id": "PYSEC-9", "aliases": ["CVE-9"]}]))
    monkeypatch.setattr(audit, "audit", lambda: report)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[tool.connlog.audit]\nignore = {}\n")
    assert audit.main(["--pyproject", str(pyproject)]) == 1
    assert "VULNERABLE: pkg 1.0 PYSEC-9" in capsys.readouterr().out
    pyproject.write_text('[tool.connlog.audit]\nignore = {"CVE-9" = "only the CLI, which we do not ship"}\n')
    assert audit.main(["--pyproject", str(pyproject)]) == 0


def test_no_data_is_said_not_failed(monkeypatch, capsys):
    monkeypatch.setattr(audit, "audit", lambda: None)
    assert audit.main([]) == 0
    assert "could not be reached" in capsys.readouterr().out
