"""`make proto` output is committed; this fails when proto/ changed without it."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _protogen():
    spec = importlib.util.spec_from_file_location("protogen", ROOT / "tools" / "protogen.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_code_matches_proto(tmp_path: Path) -> None:
    protogen = _protogen()
    fresh = {p.name: p.read_text() for p in protogen.generate(tmp_path)}
    committed = {p.name: p.read_text() for p in protogen.OUT_DIR.iterdir() if p.is_file()}
    stale = sorted(n for n in fresh.keys() | committed.keys() if fresh.get(n) != committed.get(n))
    assert not stale, f"run `make proto`: these generated files are stale: {stale}"
