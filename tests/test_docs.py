"""The documentation runs as written: every Python example of README.md and
docs/*.md, and the rules the pages keep.

Which blocks run
    A fenced block opened with exactly ```` ```python ```` runs. A block whose
    info string adds ``no-run`` (```` ```python no-run ````) is shown, not run:
    it downloads (``models.load("timm/...")``) or trains for long. Commands go
    in ```` ```bash ```` blocks, signatures and output in ```` ```text ````
    blocks; neither runs. Keep no-run blocks few.

How a block runs
    Each block runs alone, in a fresh ``sys.executable`` process, from the
    project root, and must exit with status 0 within ``TIMEOUT`` seconds
    (four minutes on a 2-core machine; the blocks are sized to take seconds).
    The process gets the Keras backend a user gets by default (TensorFlow:
    ``KERAS_BACKEND`` is removed and ``KERAS_HOME`` is a fresh folder), and
    ``ATTENTION_ZOO_CACHE`` and ``MPLCONFIGDIR`` point into a temporary folder,
    so the user's caches are not touched. A block that writes files makes its
    own temporary folder (``tempfile.mkdtemp()``); none writes into the
    repository. A block that reads ``../shared/data`` is skipped where that
    folder is absent.

Each case is named ``FILE:LINE`` of the block's opening fence.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHARED_DATA = ROOT.parent / "shared" / "data"
TIMEOUT = 240
README_MAX_LINES = 300
FENCE = re.compile(r"^(\s*)```+\s*([^`]*)$")


def blocks(path: Path) -> list[tuple[int, str, str]]:
    """``(line of the opening fence, info string, code)`` of every fenced
    block of ``path``."""
    found, lines, open_at = [], path.read_text(encoding="utf-8").splitlines(), None
    for number, line in enumerate(lines, start=1):
        match = FENCE.match(line)
        if open_at is None and match:
            open_at, indent, info, body = number, len(match.group(1)), match.group(2).strip(), []
        elif open_at is not None and line.strip().startswith("```") and not line.strip("`").strip():
            found.append((open_at, info, "\n".join(body) + "\n"))
            open_at = None
        elif open_at is not None:
            body.append(line[indent:] if line[:indent].isspace() else line)
    assert open_at is None, f"{path.name}:{open_at}: a fenced block is never closed"
    return found


def python_blocks() -> list:
    cases = []
    for page in PAGES:
        for line, info, code in blocks(page):
            words = info.split()
            if words[:1] == ["python"] and "no-run" not in words[1:]:
                cases.append(pytest.param(code, id=f"{page.relative_to(ROOT)}:{line}"))
    return cases


@pytest.mark.parametrize("code", python_blocks())
def test_python_block_runs(code, tmp_path):
    if "../shared/data" in code and not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env.update(KERAS_HOME=str(tmp_path / "keras"), MPLCONFIGDIR=str(tmp_path / "mpl"),
               ATTENTION_ZOO_CACHE=str(tmp_path / "cache"), TF_CPP_MIN_LOG_LEVEL="2")
    script = tmp_path / "block.py"
    script.write_text(code, encoding="utf-8")
    try:
        done = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"the block ran past {TIMEOUT} s; stderr tail:\n"
                    f"{(error.stderr or b'')[-3000:]!s}")
    assert done.returncode == 0, (f"exit status {done.returncode}; stderr tail:\n"
                                  f"{done.stderr[-3000:]}")


def test_no_run_blocks_are_few():
    skipped = [f"{page.name}:{line}" for page in PAGES for line, info, _ in blocks(page)
               if info.split()[:1] == ["python"] and "no-run" in info.split()]
    assert len(skipped) <= 3, skipped


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, len(lines)


#: The project's own chronology has no place in what it says of itself.
CHRONOLOGY = re.compile(r"\bsessions? \d+|\b(?:at|since|until|before) commit\b|"
                        r"\bcommit [0-9a-f]{7,40}\b|\buntil then\b", re.IGNORECASE)


#: Every file that speaks of the project: its Markdown (README, docs,
#: benchmarks, examples) and the model cards.
OWN_TEXTS = sorted(p for pattern in ("**/*.md", "saved_models/*/card.json")
                   for p in ROOT.glob(pattern)
                   if not any(part.startswith(".") for part in p.relative_to(ROOT).parts))


def test_no_development_chronology():
    # One test over every file: the conftest's per-test set-up costs more
    # than reading them.
    found = []
    for page in OWN_TEXTS:
        text = page.read_text(encoding="utf-8")
        found += [f"{page.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1}: "
                  f"{m.group(0)!r}" for m in CHRONOLOGY.finditer(text)]
    assert len(OWN_TEXTS) > 40 and not found, found


LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_links_resolve():
    """Links of README.md and docs/ to files of the repository point at
    files that exist, and links to a heading of a page at a heading that
    exists."""
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists() or (anchor and file.suffix == ".md"
                                     and anchor not in _anchors(file)):
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, broken


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors of the headings of ``page``."""
    anchors = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors
