"""The README says what the code and the committed benchmark output say."""

import ast
import re
from pathlib import Path

from attention_zoo.layers import catalog

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```bash\n(.*?)\n```", README, re.S)
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_layer_table_matches_committed_catalog_output():
    text = (ROOT / "benchmarks" / "layers.txt").read_text().splitlines()
    assert text[0] == "$ attention-zoo layers --width 64"
    rows = {line.split()[0]: line.split()[-1] for line in text[3:] if line.strip()
            and not line.startswith(tuple("0123456789"))}
    fresh = {r.name: f"{r.params:,}" for r in catalog.describe_all(width=64)}
    assert rows == fresh
    table = README.split("## Layers")[1].split("### Call conventions")[0]
    for line in table.splitlines():
        if line.startswith("| `") and "params" not in line:
            names = re.findall(r"`([a-z_]+)`", line.split("|")[1])
            params = line.split("|")[-2].strip().split()[0]
            assert rows[names[0]] == params, (names, params)


def test_quick_start_runs():
    """The first example of the README runs as written: on ``keras.Input``,
    with the maps it documents."""
    section = README.split("## Quick start", 1)[1]
    code = re.search(r"```python\n(.*?)\n```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md (Quick start)", "exec"), namespace)
    claim = re.search(r"# maps == (\{.*\})", code)
    if claim:
        documented = ast.literal_eval(claim.group(1).replace("batch", "None"))
        assert {k: tuple(v.shape) for k, v in namespace["maps"].items()} == documented
