"""Dependency audit: every installed distribution against PyPI's advisory data.

``python -m connlog.devtools.audit`` runs ``pip-audit`` (PyPI's vulnerability
service) over this environment. Where PyPI answers only project pages and not
per-release ones (some mirrors and proxies, such as the one CI reaches),
pip-audit reports each dependency as "not found"; for those the audit reads
the project page, whose ``vulnerabilities`` describe the newest release, and
so audits every dependency installed at its newest release. A dependency that
neither way can audit is listed as not audited, with the reason.

Known vulnerabilities fail the audit unless ``[tool.connlog.audit]`` in
``pyproject.toml`` names them with a reason (``ignore = {"ID" = "why"}``).
When PyPI cannot be reached at all, the audit says so and where to run it,
and exits 0: no data is not a finding (see docs/security.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

PYPI = "https://pypi.org/pypi"
_TIMEOUT = 20.0


@dataclass
class Finding:
    """A known vulnerability of an installed dependency."""

    package: str
    version: str
    vuln_id: str
    fixed_in: list[str]
    aliases: list[str] = field(default_factory=list)


@dataclass
class Report:
    """What the audit saw."""

    audited: dict[str, str] = field(default_factory=dict)  # name -> how
    not_audited: dict[str, str] = field(default_factory=dict)  # name -> why
    findings: list[Finding] = field(default_factory=list)


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def installed() -> dict[str, str]:
    """Every distribution of this environment but the project itself."""
    found = {_normal(d.metadata["Name"]): d.version for d in metadata.distributions() if d.metadata["Name"]}
    found.pop("connlog", None)
    return found


def _pip_audit(python: str) -> dict[str, dict[str, Any]] | None:
    """pip-audit's JSON answer per dependency; None if it could not run."""
    result = subprocess.run(
        [python, "-m", "pip_audit", "-s", "pypi", "-f", "json", "--progress-spinner", "off", "--skip-editable"],
        capture_output=True, text=True, check=False,
    )
    try:
        answer = json.loads(result.stdout)
    except json.JSONDecodeError:
        return None
    return {_normal(str(dep["name"])): dep for dep in answer.get("dependencies", [])}


def _project_page(name: str) -> dict[str, Any] | None:
    """PyPI's JSON page of a project; None when it cannot be had."""
    try:
        with urllib.request.urlopen(f"{PYPI}/{name}/json", timeout=_TIMEOUT) as response:
            page: dict[str, Any] = json.load(response)
            return page
    except (urllib.error.URLError, TimeoutError, json.JSONDecodeError, OSError):
        return None


def _findings(package: str, version: str, vulns: list[dict[str, Any]]) -> list[Finding]:
    """pip-audit says ``fix_versions``, PyPI's page ``fixed_in``."""
    return [Finding(package, version, str(v.get("id", "?")),
                    [str(x) for x in v.get("fix_versions") or v.get("fixed_in") or []],
                    [str(x) for x in v.get("aliases") or []])
            for v in vulns]


def audit(python: str = sys.executable) -> Report | None:
    """Audit the environment; None when PyPI could not be reached at all."""
    report = Report()
    deps = installed()
    answers = _pip_audit(python) or {}
    reached = False
    for name, version in sorted(deps.items()):
        answer = answers.get(name)
        if answer is not None and "skip_reason" not in answer:
            reached = True
            report.audited[name] = "pip-audit (per release)"
            report.findings += _findings(name, version, answer.get("vulns") or [])
            continue
        page = _project_page(name)
        if page is None:
            report.not_audited[name] = "PyPI did not answer for it"
            continue
        reached = True
        latest = str((page.get("info") or {}).get("version", ""))
        if latest != version:
            report.not_audited[name] = (f"{version} installed, {latest} newest: PyPI here serves no per-release "
                                        "advisory data for older releases")
            continue
        report.audited[name] = "project page (newest release)"
        report.findings += _findings(name, version, page.get("vulnerabilities") or [])
    return report if reached else None


def ignored(pyproject: Path) -> dict[str, str]:
    """Vulnerability ids explained in ``[tool.connlog.audit] ignore``."""
    config = tomllib.loads(pyproject.read_text())
    table: dict[str, str] = config.get("tool", {}).get("connlog", {}).get("audit", {}).get("ignore", {})
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m connlog.devtools.audit", description=__doc__.splitlines()[0])
    parser.add_argument("--pyproject", type=Path, default=Path("pyproject.toml"))
    args = parser.parse_args(argv)
    report = audit()
    if report is None:
        print("dependency audit: PyPI's advisory data could not be reached from here; nothing was audited. "
              "Run `python -m connlog.devtools.audit` where https://pypi.org is reachable.")
        return 0
    explained = ignored(args.pyproject) if args.pyproject.exists() else {}
    print(f"dependency audit: {len(report.audited)} audited, {len(report.not_audited)} not audited, "
          f"{len(report.findings)} known vulnerabilities")
    for name, why in sorted(report.not_audited.items()):
        print(f"  not audited: {name}: {why}")
    unexplained = 0
    for finding in report.findings:
        ids = {finding.vuln_id, *finding.aliases}
        reason = next((explained[i] for i in ids if i in explained), None)
        fixed = ", ".join(finding.fixed_in) or "no fixed release"
        if reason:
            print(f"  explained: {finding.package} {finding.version} {finding.vuln_id} (fixed in {fixed}): {reason}")
        else:
            unexplained += 1
            print(f"  VULNERABLE: {finding.package} {finding.version} {finding.vuln_id} (fixed in {fixed})")
    return 1 if unexplained else 0


if __name__ == "__main__":
    raise SystemExit(main())
