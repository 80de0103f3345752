"""The contracts: buf lint clean, no breaking change against the published
image, and the checked-in generated code is exactly
what proto/ generates."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _buf() -> str:
    beside_python = Path(sys.executable).parent / "buf"
    found = str(beside_python) if beside_python.exists() else shutil.which("buf")
    if not found:
        pytest.fail("buf not found: install the dev extras (buf-bin)")
    return found


def test_buf_lint_is_clean():
    result = subprocess.run([_buf(), "lint"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_breaking_change_against_the_published_contract():
    """Clients built against the published contract (proto/releases/) keep
    working: buf's FILE rules find no breaking change."""
    image = REPO / "proto" / "releases" / "connlog-api-v1.binpb"
    result = subprocess.run([_buf(), "breaking", "--against", str(image)], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_build_compiles_every_file():
    result = subprocess.run([_buf(), "build", "-o", "-#format=json"], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    for name in ("connection_event.proto", "ingest_service.proto", "query_service.proto", "insights_service.proto",
                 "meraki_service.proto", "mojo_service.proto", "zequenze_service.proto", "vendor_sync_service.proto"):
        assert f"connlog/api/v1/{name}" in result.stdout


def test_generated_code_is_reproducible():
    result = subprocess.run(
        [sys.executable, "-m", "connlog.devtools.protogen", "--check"], cwd=REPO, capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_message_field_and_enum_value_is_documented():
    """buf's COMMENTS rules, double-checked from the descriptor set."""
    from google.protobuf import descriptor_pb2

    from connlog.devtools.protogen import descriptor_set

    out = REPO / "build" / "test-descriptor.pb"
    descriptor_set(out, source_info=True)
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    for file in files.file:
        if not file.name.startswith("connlog/"):
            continue
        commented = {tuple(loc.path) for loc in file.source_code_info.location if loc.leading_comments.strip()}
        for i, message in enumerate(file.message_type):
            assert (4, i) in commented, f"{file.name}: message {message.name}"
            for j, field in enumerate(message.field):
                assert (4, i, 2, j) in commented, f"{file.name}: {message.name}.{field.name}"
        for i, enum in enumerate(file.enum_type):
            assert (5, i) in commented, f"{file.name}: enum {enum.name}"
            assert enum.value[0].name.endswith("_UNSPECIFIED") and enum.value[0].number == 0
    out.unlink()
