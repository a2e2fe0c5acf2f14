"""What the benchmark scripts that write their own Markdown share: the
command line as run, the CPU (model, vector and matrix flags, cores),
package versions, the date line, and the file write.

Standard library only, and it imports neither TensorFlow nor the package:
a script's parent process can use it while its workers run the backends.
The scripts run as ``python benchmarks/NAME.py`` from the repository root,
so this folder is first on ``sys.path`` and ``import _common`` finds this
file.
"""

from __future__ import annotations

import datetime
import importlib.util
import os
import platform
import re
import shlex
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def import_from(*folders: Path) -> None:
    """Puts ``folders`` (the repository root, ``tests/``) first on
    ``sys.path`` and takes this folder off it: ``python benchmarks/timm.py``
    puts ``benchmarks/`` first, where ``import timm`` would import that
    script instead of timm."""
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    for folder in reversed(folders):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))


def command() -> str:
    """The command line that started this process, as ``python SCRIPT ARGS``,
    the script relative to the working directory where it lies under it."""
    script = Path(sys.argv[0]).resolve()
    try:
        script = script.relative_to(Path.cwd().resolve())
    except ValueError:
        pass
    return shlex.join(["python", str(script), *sys.argv[1:]])


def version(name: str) -> str:
    """The installed version of the distribution ``name``, or "not installed"."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpu_lines() -> str:
    """The CPU's model name, its logical and physical cores, the machine and
    kernel, and its vector and matrix flags from /proc/cpuinfo."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = ""
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                  if line.lower().startswith(("model name", "cpu model"))),
                 platform.processor() or platform.machine())
    flags_line = next((line.split(":", 1)[1] for line in info.splitlines()
                       if line.startswith(("flags", "Features"))), "")
    wanted = re.compile(r"^(sse4_\d|avx.*|fma|f16c|amx.*|neon|asimd.*|sve.*|sme(?!p).*)$")
    flags = [f for f in flags_line.split() if wanted.match(f)]
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    physical, ids = set(), {}
    for line in info.splitlines() + [""]:
        key, _, value = line.partition(":")
        if key.strip() in ("physical id", "core id"):
            ids[key.strip()] = value.strip()
        elif not line.strip() and ids:
            physical.add((ids.get("physical id"), ids.get("core id")))
            ids = {}
    cores = f"{os.cpu_count()} logical CPUs" + (
        f" on {len(physical)} physical core{'s' * (len(physical) != 1)}" if physical else "") + (
        f" ({usable} usable by this process)" if usable and usable != os.cpu_count() else "")
    return (f"{model}, {cores}, {platform.machine()}, {platform.system()} "
            f"{platform.release()}; vector and matrix flags in /proc/cpuinfo: "
            f"{' '.join(flags) or 'none found'}")


def made_on(seconds: float) -> str:
    """"Made on DATE; the run took N min." for a run of ``seconds``."""
    return (f"Made on {datetime.date.today().isoformat()}; the run took "
            f"{seconds / 60:.1f} min.")


def write_text(path: str | os.PathLike, text: str) -> Path:
    """``attention_zoo.files.write_text``: ``text`` written to ``path`` whole
    or not at all, with the permissions a plain ``open()`` would give it.
    Where the package is not imported yet, its ``files`` module is loaded
    from its own file, so that this process still imports neither the
    package nor TensorFlow (``files`` needs only the standard library)."""
    files = sys.modules.get("attention_zoo.files")
    if files is None:
        spec = importlib.util.spec_from_file_location(
            "_attention_zoo_files", ROOT / "attention_zoo" / "files.py")
        files = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(files)
    return files.write_text(path, text)
