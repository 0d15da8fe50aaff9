"""The project stands on its own: nothing in it points at notes outside the repository."""

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OUTSIDE = ("../" + "shared", "FIELD_" + "NOTES", "DESIGN" + ".md")  # split so this file does not match itself


def test_no_file_refers_outside_the_repository():
    try:
        files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    hits = []
    for name in files:
        path = REPO / name
        if path.suffix not in {".py", ".md", ".ipynb", ".yaml", ".toml", ".txt", ""} or not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        hits += [f"{name}: {word}" for word in OUTSIDE if word in text]
    assert not hits, hits
