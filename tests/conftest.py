import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.dirname(__file__))

# Imported before Keras loads TensorFlow, as users import it: it prefers
# oneDNN on x86-64 Linux (attention_zoo.onednn), so the tests run the
# kernels users get (TensorFlow's default on AVX-512 CPUs already).
import attention_zoo  # noqa: E402,F401
import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _clean_keras_state():
    """Each test starts from float32 and fresh layer names."""
    keras.config.set_dtype_policy("float32")
    # Without free_memory's full gc.collect(): 0.2 s per test with TensorFlow,
    # torch and timm loaded, a fifth of the suite; Python's own collector runs.
    keras.backend.clear_session(free_memory=False)
    yield
    keras.config.set_dtype_policy("float32")


def write_tiny_cifar_zip(path, per_class: int = 6, seed: int = 0):
    """A CIFAR-like zip: train/<class>/NNNN.jpg of random 32x32 pixels."""
    import zipfile

    import numpy as np
    import tensorflow as tf

    from attention_zoo.data.images import CIFAR10_CLASSES

    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w") as archive:
        for name in CIFAR10_CLASSES:
            for i in range(per_class):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                archive.writestr(f"train/{name}/{i:04d}.jpg",
                                 tf.io.encode_jpeg(pixels).numpy())
    return path


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """Decoded-image caches go to the test's own folder."""
    monkeypatch.setenv("ATTENTION_ZOO_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def tiny_zip(tmp_path_factory):
    """CIFAR-like zip, 6 images per class."""
    return write_tiny_cifar_zip(tmp_path_factory.mktemp("data") / "tiny.zip")


def kill_when(process, ready, what: str, timeout: float = 240.0) -> None:
    """SIGKILLs ``process`` as soon as ``ready()`` is true; fails if the
    process ends first. Leaves no process behind."""
    import signal
    import time

    deadline = time.time() + timeout
    try:
        reached = False
        while time.time() < deadline and process.poll() is None:
            reached = ready()
            if reached:
                break
            time.sleep(0.05)
        assert process.poll() is None, f"{what} ended before it could be killed"
        # Killing on the deadline would let the caller fail later, on a file
        # the process never wrote.
        assert reached, f"{what} did not get far enough to kill within {timeout:.0f} s"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()


def wait_all(processes, timeout: float) -> list[str]:
    """Outputs of processes started with stdout=PIPE; kills any left over."""
    try:
        return [p.communicate(timeout=timeout)[0] for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()


def failures(names, processes, outputs, tail: int = 2500) -> str:
    """For an assertion message: each process that failed, its exit code and
    the end of its output without TensorFlow's start-up log lines (which
    otherwise fill the message and hide the traceback)."""
    noise = ("I0000", "W0000", "E0000", "WARNING: All log messages", "To enable")
    report = []
    for name, process, output in zip(names, processes, outputs):
        if process.returncode != 0:
            kept = "\n".join(line for line in (output or "").splitlines()
                              if not line.startswith(noise))
            report.append(f"--- {name}: exit code {process.returncode}\n{kept[-tail:]}")
    return "\n".join(report)


def cli_error(capsys, argv) -> str:
    """Runs the command ``argv`` expecting an input error: status 2 and one
    line on stderr without a traceback; returns that line."""
    from attention_zoo.cli import main

    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]
