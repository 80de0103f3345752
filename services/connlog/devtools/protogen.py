"""Generate (or check) the Python code and the Envoy descriptor set of the
contracts in ``proto/``.

``python -m connlog.devtools.protogen`` regenerates ``services/connlog/api`` and
``gateway/connlog.pb`` from ``proto/connlog``; ``--check`` regenerates into a scratch folder and fails when
the checked-in code differs, so CI proves the code is reproducible.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

REPO = Path(__file__).resolve().parents[3]
PROTO_ROOT = REPO / "proto"
CONTRACTS = PROTO_ROOT / "connlog"
OUTPUT = REPO / "services" / "connlog" / "api"
DESCRIPTOR = REPO / "gateway" / "connlog.pb"


def proto_files() -> list[str]:
    """The connlog .proto files, relative to ``proto/``."""
    return sorted(str(p.relative_to(PROTO_ROOT)) for p in CONTRACTS.rglob("*.proto"))


def _protoc(args: list[str]) -> None:
    well_known = Path(protoc.__file__).resolve().parent / "_proto"
    code = protoc.main(["protoc", f"-I{PROTO_ROOT}", f"-I{well_known}", *args])
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")


def generate(into: Path) -> Path:
    """Generate messages, stubs and type hints into ``into``; returns the
    generated ``api`` package folder."""
    _protoc(
        [
            f"--python_out={into}",
            f"--pyi_out={into}",
            f"--grpc_python_out={into}",
            *proto_files(),
        ]
    )
    generated = into / "connlog" / "api"
    for package in [generated, *[p for p in generated.rglob("*") if p.is_dir()]]:
        (package / "__init__.py").write_text('"""Generated from proto/: do not edit."""\n')
    return generated


def descriptor_set(out: Path, *, source_info: bool = False) -> Path:
    """Write a self-contained descriptor set (for Envoy's transcoder)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    extra = ["--include_source_info"] if source_info else []
    _protoc(["--include_imports", *extra, f"--descriptor_set_out={out}", *proto_files()])
    return out


def _differences(left: Path, right: Path) -> list[str]:
    cmp = filecmp.dircmp(left, right, ignore=["__pycache__"])
    diffs = [f"only in checked-in: {n}" for n in cmp.left_only]
    diffs += [f"missing from checked-in: {n}" for n in cmp.right_only]
    diffs += [f"differs: {n}" for n in cmp.diff_files]
    for name in cmp.subdirs:
        diffs += [f"{name}/{d}" for d in _differences(left / name, right / name)]
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if services/connlog/api is stale")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        generated = generate(Path(scratch))
        descriptor = descriptor_set(Path(scratch) / "connlog.pb")
        if args.check:
            diffs = _differences(OUTPUT, generated)
            if not DESCRIPTOR.exists() or DESCRIPTOR.read_bytes() != descriptor.read_bytes():
                diffs.append(f"{DESCRIPTOR.relative_to(REPO)} differs")
            if diffs:
                print("services/connlog/api is not what proto/ generates:", *diffs, sep="\n  ", file=sys.stderr)
                print("run: python -m connlog.devtools.protogen", file=sys.stderr)
                return 1
            print("services/connlog/api matches proto/")
            return 0
        shutil.rmtree(OUTPUT, ignore_errors=True)
        shutil.copytree(generated, OUTPUT, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copyfile(descriptor, DESCRIPTOR)
        print(f"generated {OUTPUT.relative_to(REPO)} and {DESCRIPTOR.relative_to(REPO)}"
              f" from {len(proto_files())} files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
