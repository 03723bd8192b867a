"""Shared fixtures: the repository and bench/ on sys.path, the real MNIST directory, and a briefly trained model.

Tests that need the real MNIST find it through $MNIST_DATA_DIR (CI points it at ../shared/mnist), else
../shared/mnist beside the checkout, else ./data/. Without it they are skipped locally; .ci/run fails if
any test was skipped, so in CI they always run.
"""
import os
import signal
import subprocess
import sys
import threading

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(1, os.path.join(ROOT, "bench"))  # the benchmarks' modules, for tests that import them

import input_data  # noqa: E402


def _ignored_here(signum, frame):
    """SIGTERM or SIGHUP that this run of the suite was started with ignored: still ignored here."""


# The tests send Ctrl+C, SIGTERM and SIGHUP to the scripts they start, which keep a signal they were started
# with ignored (as `python mnist_backward.py &` in a shell script ignores Ctrl+C, and `nohup` SIGHUP). A suite
# run that way (`pytest &` in a script, `nohup pytest`, `trap '' TERM`) would pass that on to every script: the
# scripts start with the usual dispositions all the same (a handler, unlike an ignored signal, is not
# inherited), while the suite itself still ignores SIGTERM and SIGHUP; Ctrl+C stops it as usual.
for _signum, _handler in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, _ignored_here),
                          (signal.SIGHUP, _ignored_here)):
    if signal.getsignal(_signum) == signal.SIG_IGN:
        signal.signal(_signum, _handler)


def _find_real_data():
    for d in (os.environ.get(input_data.DATA_DIR_ENV), os.path.join(ROOT, "..", "shared", "mnist"),
              os.path.join(ROOT, "data")):
        if d and all(os.path.exists(os.path.join(d, f)) for f in input_data.MD5):
            return os.path.abspath(d)
    return None


def _env(extra=None):
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the scripts' own default (quiet) is what users see
    env.update(extra or {})
    return env


def run_script(script, *args, env=None, timeout=600, input=None):
    """Runs `python script args...` in the repository; returns the CompletedProcess (text mode)."""
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *map(str, args)], cwd=ROOT,
                          env=_env(env), capture_output=True, text=True, timeout=timeout, input=input)


def run_script_redirected(redirects, script, *args, input=None):
    """run_script with shell redirections applied to the script's process: "<&-" closes its stdin, ">&-" its
    stdout. Returns the CompletedProcess (text mode)."""
    return subprocess.run(["bash", "-c", 'exec "$0" "$@" ' + redirects, sys.executable,
                           os.path.join(ROOT, script), *map(str, args)],
                          cwd=ROOT, env=_env(), input=input, capture_output=True, text=True, timeout=300)


def fake_optional_extras(folder):
    """Makes a package for each of mnist_common.OPTIONAL_EXTRAS in folder (to go first on PYTHONPATH) that notes
    in folder/tried that it was imported, then fails as one not installed. Returns that file's path."""
    from mnist_common import OPTIONAL_EXTRAS
    tried = folder / "tried"
    for name in OPTIONAL_EXTRAS:
        (folder / name).mkdir(parents=True)
        (folder / name / "__init__.py").write_text(
            "with open(%r, 'a') as f:\n    f.write(%r)\nraise ImportError('not here', name=%r)\n"
            % (str(tried), name + "\n", name))
    return tried


_started = []  # (Popen, its watchdog) for each process the running test started through popen()


def popen(command, deadline=600, **options):
    """subprocess.Popen(command, **options) for a test: the process is killed if it still runs `deadline`
    seconds later, or when the test ends. A line the test waits for that never comes then ends the stream
    (the read gives ""), failing the test instead of blocking the suite, and no process outlives its test."""
    proc = subprocess.Popen(command, **options)
    watchdog = threading.Timer(deadline, proc.kill)
    watchdog.daemon = True
    watchdog.start()
    _started.append((proc, watchdog))
    return proc


@pytest.fixture(autouse=True)
def _end_started_processes():
    yield
    while _started:
        proc, watchdog = _started.pop()
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def start_script(script, *args):
    """Starts `python script args...` in the repository with piped text stdout/stderr (popen); returns the
    Popen."""
    return popen([sys.executable, os.path.join(ROOT, script), *map(str, args)], cwd=ROOT, env=_env(),
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def lose_a_signal(monkeypatch):
    """lose_a_signal(signum, how): mnist_forward.forward first has this process sent signum, and the exception
    its handler raises is lost as TensorFlow's C++ code calling back into Python can lose it: "dropped" (where
    Python drops it, in a __del__, through sys.unraisablehook), "printed" (caught, and the SystemError it caused
    passed to sys.excepthook, as PyErr_Print does) or "turned" (into the RuntimeError TensorFlow's pybind11
    layer raises). The record of stop signals, the two hooks and the SIGTERM and SIGHUP handlers (which
    mnist_common.exit_on_stop_signals sets) are the test's own."""
    import mnist_common
    import mnist_forward
    monkeypatch.setattr(mnist_common, "_stop_signals", [])
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # (given back after the test)
    monkeypatch.setattr(sys, "unraisablehook", sys.__unraisablehook__)  # Python's own, to stderr (not pytest's)
    forward = mnist_forward.forward

    class Signaller:
        def __init__(self, signum):
            self.signum = signum

        def __del__(self):
            os.kill(os.getpid(), self.signum)

    def arrange(signum, how):
        def forward_losing_the_signal(*args):
            if how == "dropped":
                Signaller(signum)  # (collected at once: its exception is dropped)
                return forward(*args)
            try:
                os.kill(os.getpid(), signum)
            except (KeyboardInterrupt, SystemExit) as stop:
                if how == "turned":
                    raise RuntimeError("pybind11::error_already_set: MISMATCH of original and normalized active "
                                       "exception types: ORIGINAL InvalidArgumentError REPLACED BY "
                                       "KeyboardInterrupt")
                try:  # as in CI: raised inside an __import__ that TensorFlow's C++ code called
                    raise SystemError("<built-in function __import__> returned a result with an exception "
                                      "set") from stop
                except SystemError:
                    sys.excepthook(*sys.exc_info())
            else:
                raise AssertionError("the signal raised nothing")
            return forward(*args)

        monkeypatch.setattr(mnist_forward, "forward", forward_losing_the_signal)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    yield arrange
    for s, handler in handlers.items():
        signal.signal(s, handler)


def assert_no_traceback(proc):
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout, proc.stdout


@pytest.fixture(scope="session")
def mnist_dir():
    d = _find_real_data()
    if d is None:
        pytest.skip("real MNIST not found (set MNIST_DATA_DIR)")
    return d


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    """The real data sets, one-hot labels, loaded once."""
    return input_data.read_data_sets(mnist_dir, one_hot=True, seed=0)


@pytest.fixture(scope="session")
def trained_model(mnist_dir, tmp_path_factory):
    """A model directory trained 500 steps (seed 1) by the real script; checkpoints at 1, 101, ..., 500."""
    model_dir = tmp_path_factory.mktemp("trained_model")
    proc = run_script("mnist_backward.py", "--steps", 500, "--log-every", 100, "--seed", 1,
                      "--model-dir", model_dir, "--data-dir", mnist_dir)
    assert proc.returncode == 0, proc.stderr
    return str(model_dir)
