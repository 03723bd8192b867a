"""Pieces shared by the four scripts; not run by itself.

- ``tf``: ``tensorflow.compat.v1`` in graph mode, imported quietly (TensorFlow's import-time log noise is
  silenced unless the user has set ``TF_CPP_MIN_LOG_LEVEL``): in the package's scripts and benchmarks when
  first used, not when this is imported, and without the OPTIONAL_EXTRAS its import would load; in code of
  one's own, as this is imported (input_data.program_of_ours).
- ``UserError`` and ``run_main``: bad input ends a command with one line and a status, never a traceback.
- Checkpoint discovery that tolerates a trainer deleting or writing checkpoints meanwhile; the trainer's
  claim on its model directory, and its removal of what an interrupted save left there.
- ``EmaModel``: the graph that restores the exponential-moving-average (shadow) weights into the network,
  built once and used by both ``mnist_test.py`` and ``mnist_app.py``.
"""
import contextlib
import os
import re
import signal
import stat
import sys
import threading
import types

import input_data  # NumPy only; first, to put the standard streams right before anything else opens a file

input_data.prepare_std_streams()

# TensorFlow's C++ log level: ours is 3 (fatal only; the errors that matter reach us as exceptions) unless
# the user chose one. Some lines come before TensorFlow reads the level (absl's "All log messages before
# absl::InitializeLog()", oneDNN's and the CUDA stub's notices), so they are filtered out during the import
# too, unless the user asked for everything (0).
# Child processes inherit the level, and with it the quiet.
# A value that is not a whole number (empty, say) chooses nothing: TensorFlow would take it as 0, everything.
if not re.fullmatch(r"\s*[+-]?[0-9]+\s*", os.environ.get("TF_CPP_MIN_LOG_LEVEL", "")):
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
_QUIET = int(os.environ["TF_CPP_MIN_LOG_LEVEL"]) > 0

# Copies its standard input to its standard error but for TensorFlow's notices: absl's line, and log lines of
# level I (info) or W (warning), "I0000 00:00:1795500965.496336   14407 port.cc:153] ...". Run as a process of
# its own (and session: Ctrl+C is not its business), it passes on what TensorFlow says even if the import
# kills ours: a fatal "F..." line before an abort(), say, on a CPU without the instructions it was built for.
_NOTICE_FILTER = r"""
import os, re
notice = re.compile(rb"WARNING: All log messages before absl::InitializeLog\(\) is called"
                    rb"|[IW][0-9]{4} [0-9:.]+ +[0-9]+ [^ ]+:[0-9]+\] "
                    rb"|To enable the following instructions: .*, in other operations, rebuild TensorFlow")
buffered = b""
while True:
    data = os.read(0, 65536)
    *lines, buffered = (buffered + data).split(b"\n")
    if not data and buffered:  # the end, without a newline
        lines.append(buffered)
    kept = [line + b"\n" for line in lines if not notice.match(line)]
    out = b"".join(kept)
    try:
        while out:
            out = out[os.write(2, out):]
    except OSError:  # nowhere to write (2>/dev/full): read on, so that the importer is never held up
        pass
    if not data:
        break
"""


# Packages TensorFlow 2.21's import tries, to support what our programs never use (Keras's scikit-learn
# wrappers and notebook detection, legacy Keras's SciPy-sparse and pandas inputs), and carries on without.
# None of them is a requirement of TensorFlow or Keras, so their absence is a set-up both support. Where they
# are installed (Anaconda has all four), they made the import take 3.1 s instead of 2.1 s on this machine.
OPTIONAL_EXTRAS = ("sklearn", "IPython", "scipy", "pandas")


@contextlib.contextmanager
def _without_optional_extras():
    """In our programs (input_data.program_of_ours), the OPTIONAL_EXTRAS not yet imported cannot be imported
    inside the block, as if not installed; after it they can again. Code of one's own, which may use Keras
    with them, imports TensorFlow as usual."""
    blocked = [name for name in OPTIONAL_EXTRAS if name not in sys.modules] if input_data.program_of_ours() else []
    for name in blocked:
        sys.modules[name] = None  # `import name` raises ModuleNotFoundError, as for a package not installed
    try:
        yield
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


def _import_tf():
    """Imports tensorflow.compat.v1; when quiet, the C++ side's pre-logging-setup notices (absl's "All log
    messages before absl::InitializeLog()", the CUDA stub's "Could not find cuda drivers") are filtered out
    of its standard error, and whatever else it says there passes. Ctrl+C during the import (it takes
    seconds) ends the program as Ctrl+C does later: one line, status 130."""
    try:
        if not _QUIET:
            with _without_optional_extras():
                import tensorflow.compat.v1 as tf1
            return tf1
        import subprocess
        sys.stderr.flush()
        try:
            if getattr(sys, "frozen", False) or not sys.executable:  # sys.executable is no Python to run it
                raise OSError
            sieve = subprocess.Popen([sys.executable, "-I", "-S", "-c", _NOTICE_FILTER], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, start_new_session=True)
            into = sieve.stdin.fileno()
        except OSError:  # no interpreter to run it with (a frozen or embedded Python): the notices go, and all
            sieve, into = None, os.open(os.devnull, os.O_WRONLY)
        saved = os.dup(2)
        os.dup2(into, 2)
        try:
            with _without_optional_extras():
                import tensorflow.compat.v1 as tf1
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if sieve is None:
                os.close(into)
            else:
                sieve.stdin.close()
                try:
                    sieve.wait(timeout=10)  # its last lines out before ours
                except subprocess.TimeoutExpired:  # the pipe held open elsewhere: let it finish on its own
                    pass
        tf1.logging.set_verbosity(tf1.logging.ERROR)  # Python-side deprecation warnings
        return tf1
    except ModuleNotFoundError as e:  # the requirements not installed (for this Python): one line in our programs
        if (e.name or "").partition(".")[0] != "tensorflow" or not input_data.program_of_ours():
            raise  # (code of one's own gets the ImportError, as for NumPy and Pillow)
        raise UserError(input_data.not_installed("TensorFlow")) from None
    except KeyboardInterrupt:
        input_data.say_interrupted()
        sys.exit(130)


_tf_lock = threading.Lock()
_tf_module = None  # tensorflow.compat.v1 once imported


def load_tf():
    """tensorflow.compat.v1 in graph mode (v2 behaviour off), imported quietly at the first call."""
    global _tf_module
    with _tf_lock:
        if _tf_module is None:
            module = _import_tf()
            module.disable_v2_behavior()
            _tf_module = module
    return _tf_module


class _TensorFlow(types.ModuleType):
    """``tf``: stands for tensorflow.compat.v1 and imports it at its first use. The scripts read their flags
    and check their paths before they build a graph, so --help, a bad flag or a missing file is answered at
    once rather than after the seconds TensorFlow takes to load."""

    def __getattr__(self, name):  # only for names not yet looked up: later uses find them in __dict__
        value = getattr(load_tf(), name)
        setattr(self, name, value)
        return value


tf = _TensorFlow("tensorflow.compat.v1")


# Our programs load TensorFlow at their first graph. Code of one's own that imports mnist_forward (or this)
# gets it at once, with graph mode on for the tf.placeholder & co. it goes on to call, as the course's did.
if not input_data.program_of_ours():
    load_tf()


def _op_error():
    """tf.errors.OpError once TensorFlow is loaded; before, () (nothing can have raised one), so that an
    `except` naming it does not load TensorFlow just to find that out."""
    return tf.errors.OpError if _tf_module is not None else ()


import mnist_forward  # noqa: E402


class UserError(Exception):
    """An error caused by the user's input; printed as one line, no traceback."""


# Lines of a TensorFlow error message that frame the reason rather than give it.
_TF_FRAMING = re.compile(r"\s*(\[\[|File \"|Node: |Detected at node |Graph execution error|Restoring from "
                         r"checkpoint failed|Original error|Hint: )")


def error_reason(error):
    """One line saying what went wrong, from an exception whose message may run over many lines.

    TensorFlow wraps the reason in framing: "Graph execution error:", "Restoring from checkpoint failed. This
    is most likely due to a Variable name ...", the Python stack of the node, a "[[{{node ...}}]]" line and,
    after a ResourceExhaustedError such as a full disk, a "Hint:" about out-of-memory reports.
    The reason ("Read less bytes than requested", "Key ... not found in checkpoint", "...; No such file or
    directory") is the last line that is none of those.
    """
    text = str(getattr(error, "message", error)).strip()
    with _directory_fds_lock:  # tf_path's aliases named as the directories they stand for
        for directory, fd in _directory_fds.items():
            text = re.sub(r"/proc/self/fd/%d(?=/)" % fd, lambda _: directory, text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    reasons = [line for line in lines if not _TF_FRAMING.match(line)]
    if reasons:  # a file being written is named as the checkpoint file, not by its temporary name
        return re.sub(r"(\.tempstate[0-9]+|\.tmp[0-9a-f]{32})(?=;)", "", reasons[-1])
    return lines[0] if lines else type(error).__name__


def run_main(main, exit_now=False):
    """Runs main() and exits with its status; UserError/DataError -> one line and 1, Ctrl+C -> 130.

    exit_now (for a script's own process, never where code runs after it): end the process as soon as its
    output is flushed, without Python's teardown, which with TensorFlow loaded takes most of a second and has
    nothing to do for these scripts (their checkpoints and other files are closed by then).
    """
    previous = note_interrupts()  # (a Ctrl+C that TensorFlow lost before training: the trainer still stops)
    try:
        try:
            status = main()
        except Exception:
            if stop_signal() is None:
                raise
            check_stop()  # a stop signal's exception that TensorFlow's C++ code turned into another (its
            #               pybind11 layer's RuntimeError "MISMATCH of original and normalized active exception
            #               types ... REPLACED BY KeyboardInterrupt"): ended as that signal ends the program
    except SystemExit as e:  # argparse's usage errors and --help
        if not exit_now:
            raise
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
        status = e.code if isinstance(e.code, int) else (e.code is not None)
    except (UserError, input_data.DataError) as e:
        print("error: %s" % e, file=sys.stderr)
        status = 1
    except OSError as e:
        if isinstance(e, BrokenPipeError) or e.filename == input_data.STDOUT:  # `| head` (quietly), `> /dev/full`
            status = input_data.stdout_failed(e)
        else:  # e.g. a model directory that is a file, or not writable
            print(input_data.os_error_line(e), file=sys.stderr)
            status = 1
    except _op_error() as e:  # TensorFlow could not read or write a file
        print("error: %s" % error_reason(e), file=sys.stderr)
        status = 1
    except KeyboardInterrupt:
        input_data.say_interrupted()
        status = 130
    finally:
        if signal.getsignal(signal.SIGINT) is _stop_handler and previous is not _stop_handler:
            signal.signal(signal.SIGINT, previous)  # (run_main called from code: its Ctrl+C as it was)
    status = input_data.flush_stdout(status)
    if exit_now:
        try:
            sys.stderr.flush()
        except OSError:
            pass
        os._exit(int(status or 0))
    sys.exit(status or 0)


_stop_signals = []  # the stop signals received by _stop_handler, first first


def _stop_handler(signum, frame):
    """Ends the program for a stop signal: Ctrl+C (SIGINT) raises KeyboardInterrupt, SIGTERM and SIGHUP
    SystemExit(128 + signum). The signal is noted first, for stop_signal() and check_stop(): Python raises the
    exception in whatever code is running, and TensorFlow's C++ code, calling back into Python (its nest
    functions), can print it and carry on as if nothing came (seen once in CI: a benchmark trained on), or
    turn it into a RuntimeError (run_main)."""
    if not _stop_signals:
        _quiet_stop_exceptions()
    _stop_signals.append(signum)
    check_stop()


def _quiet_stop_exceptions():
    """Once a stop signal came, exceptions that code which caught them passes to sys.excepthook (as C code's
    PyErr_Print does: TensorFlow's, printing a Traceback and carrying on) or sys.unraisablehook (where Python
    drops one: in a __del__, a callback) are not shown: the program is ending as the signal asks and says so
    itself. (Seen in CI: the KeyboardInterrupt, raised inside an __import__ that TensorFlow's C++ code called,
    came out as a SystemError it printed.)"""
    sys.excepthook = lambda kind, value, traceback: None
    sys.unraisablehook = lambda unraisable: None


def stop_signal():
    """The first stop signal received through _stop_handler, or None."""
    return _stop_signals[0] if _stop_signals else None


def check_stop():
    """Raises again the exception of a stop signal received (_stop_handler), if one was: for loops that would
    otherwise run on after it was lost."""
    signum = stop_signal()
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    if signum is not None:
        sys.exit(128 + signum)


def note_interrupts():
    """From a program's main thread: Ctrl+C raises KeyboardInterrupt, as by default, and is noted too
    (_stop_handler). A handler set otherwise (ignored, one's own) is left so. Returns the handler before."""
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.default_int_handler and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _stop_handler)
    return previous


def exit_on_stop_signals():
    """For a benchmark's own process, from its main thread: SIGTERM (kill, timeout) and SIGHUP (the terminal
    closed) end it with 143 and 129, as they would, but as SystemExit, through its clean-up (the with blocks
    that remove its temporary directories). A signal ignored or handled already (nohup) is left so. The
    signal is noted (_stop_handler), so that its timing loops can raise it again (check_stop) if it was lost."""
    for signum in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):  # (Windows has no SIGHUP)
        if signum is not None and signal.getsignal(signum) == signal.SIG_DFL:
            signal.signal(signum, _stop_handler)


def check_model_dir(model_dir):
    """Raises UserError if model_dir is empty, is not valid UTF-8 (or is, where Python reads file names
    otherwise), is a file or lies under one, is or lies under a symbolic link that leads nowhere, or is missing
    and names a checkpoint (model/mnist_model-50000) instead of its directory."""
    if not model_dir:
        raise UserError("the model directory must not be an empty path")
    try:
        os.fsencode(model_dir).decode("utf-8")  # the name's bytes
    except UnicodeDecodeError:
        raise UserError("model directory %s: TensorFlow takes only paths in UTF-8; rename it, or use another "
                        "--model-dir" % os.fsencode(model_dir).decode("utf-8", "backslashreplace")) from None
    try:
        model_dir.encode("utf-8")  # what TensorFlow will be given
    except UnicodeEncodeError:  # UTF-8 bytes that Python decoded otherwise (PYTHONUTF8=0 in the C locale)
        raise UserError("model directory %s: Python reads file names here as %s, not UTF-8, so TensorFlow "
                        "cannot be given this one; set PYTHONUTF8=1 (or a UTF-8 locale), or use another "
                        "--model-dir" % (model_dir, sys.getfilesystemencoding())) from None
    try:
        info = os.stat(model_dir)
    except FileNotFoundError:  # to be created, unless it or a directory above it is a link to nothing
        nowhere = input_data.leads_nowhere("model directory", model_dir)
        if nowhere:
            raise UserError(nowhere) from None
        prefix = model_dir.rstrip(os.sep)
        if _regular(prefix + ".index"):  # a checkpoint (model/mnist_model-50000) given for its directory
            raise UserError("model directory %s is a checkpoint, not a directory; use --model-dir %s, the directory "
                            "that holds it" % (model_dir, os.path.dirname(prefix) or ".")) from None
        return
    except PermissionError:  # said when its checkpoints are looked for
        return
    except NotADirectoryError:
        raise UserError("model directory %s is not a directory (a part of its path is a file)" % model_dir) from None
    if not stat.S_ISDIR(info.st_mode):
        raise UserError("model directory %s is not a directory" % model_dir)


def no_checkpoint(model_dir, waiting=False):
    """Prints the course's `No checkpoint file found`, and on stderr where it looked and how to fill it.

    waiting: the evaluator's polling, which goes on waiting (else the command ends).
    """
    print("No checkpoint file found")
    sys.stdout.flush()
    import shlex
    import mnist_backward  # for MODEL_SAVE_PATH; imported here to keep module imports acyclic
    train = "python mnist_backward.py" + ("" if model_dir == mnist_backward.MODEL_SAVE_PATH
                                          else " --model-dir " + shlex.quote(model_dir))
    if waiting:
        print("note: waiting for a checkpoint in %s (%s writes them); Ctrl+C stops" % (model_dir, train),
              file=sys.stderr)
    else:
        print("note: no checkpoint in %s; train one first: %s" % (model_dir, train), file=sys.stderr)


def session_config():
    """Session options: each op uses every core (os.cpu_count()), one op at a time (best on the 2 cores here)."""
    return tf.ConfigProto(intra_op_parallelism_threads=os.cpu_count() or 1, inter_op_parallelism_threads=1)


# ----------------------------------------------------------------------------------------------------------
# Checkpoints

def checkpoint_step(path):
    """The global step in a checkpoint path such as model/mnist_model-1001 (the number after the last '-')."""
    m = re.search(r"-([0-9]+)$", path)
    return int(m.group(1)) if m else None


_warned_state_files = set()


def list_checkpoints(model_dir, own_name=None):
    """Checkpoint prefixes in model_dir, newest first: those its 'checkpoint' state file lists, and the trainer's.

    The trainer's checkpoints, <own_name>-<step> (own_name: the trainer's MODEL_NAME when not given), are
    added to the state file's list whatever that says: those it lost track of (deleted, damaged, rewritten
    by another run, or not yet updated when a save was cut short) are still resumed from and never
    overwritten by a fresh start, and the evaluator and the app see the same newest checkpoint as the
    trainer. Checkpoints of other names count only if the state file lists them, except for a reader (no
    own_name) that finds nothing that way: it then takes every checkpoint in model_dir (its .index files),
    as when the state file is missing or cannot be parsed (said once, on stderr).
    That is safe beside a trainer: TensorFlow renames a checkpoint's .index into place only after its data,
    so a listed checkpoint is complete (though the trainer may delete it meanwhile: restoring then fails,
    and the caller skips it).

    Paths in the state file are resolved by their base name inside model_dir, so a model directory that was
    moved, or written by the course code with paths relative to another directory, still works. Only
    prefixes whose .index file exists are returned. A model directory or state file that cannot be read
    raises OSError (PermissionError & co.): the caller reports it.
    """
    state_file = os.path.join(model_dir, "checkpoint")
    names = []
    try:
        regular = stat.S_ISREG(os.stat(state_file).st_mode)
    except (FileNotFoundError, NotADirectoryError):  # no state file, or no model directory
        pass
    else:
        state = None
        if regular:  # (TensorFlow would wait on a named pipe until something writes to it, Ctrl+C or not)
            with open(state_file, "rb"):  # raises PermissionError & co., before TensorFlow is loaded to parse it
                pass
            if not _any_index_file(model_dir):  # a state file left beside no checkpoint: it names none there, and
                return []                       # is not parsed (TensorFlow's parser takes seconds to load)
            read_state = tf.train.get_checkpoint_state  # (TensorFlow failing to load is not the file's fault)
            try:
                state = read_state(model_dir)
            except Exception:  # OpError, UnicodeDecodeError (binary garbage), ...: warned of below
                pass
        if state is not None:
            names = list(state.all_model_checkpoint_paths or []) + [state.model_checkpoint_path]
        else:
            if state_file not in _warned_state_files:
                _warned_state_files.add(state_file)
                print("warning: %s %s; using the checkpoints found beside it"
                      % (state_file, "cannot be parsed" if regular else "is not a regular file"), file=sys.stderr)
    import mnist_backward  # for MODEL_NAME; imported here to keep module imports acyclic
    try:
        own = own_checkpoints(model_dir, own_name or mnist_backward.MODEL_NAME)
    except PermissionError:  # a directory one may enter but not list (mode 711): a reader has the state file
        if own_name or not names:
            raise
        return _newest_first(model_dir, names)
    found = _newest_first(model_dir, names + own)
    if found or own_name:
        return found
    return _newest_first(model_dir, _index_files(model_dir))


def _any_index_file(model_dir):
    """Whether model_dir holds a .index file (a checkpoint's), or cannot be listed to tell (mode 711)."""
    try:
        return any(f.endswith(".index") for f in os.listdir(model_dir))
    except OSError:
        return True


def _index_files(model_dir):
    """The prefixes of the *.index files in model_dir; none if it does not exist."""
    try:
        return [f[:-len(".index")] for f in os.listdir(model_dir) if f.endswith(".index")]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _own_prefix(own_name):
    """A regular expression for <own_name>-<step>: the step in ASCII digits, as TensorFlow writes it (a
    plain \\d would take other scripts' digits too)."""
    return re.escape(own_name) + r"-[0-9]+"


def own_checkpoints(model_dir, own_name):
    """The checkpoints <own_name>-<step> in model_dir, whatever its state file says, newest first."""
    pattern = re.compile(_own_prefix(own_name))
    return _newest_first(model_dir, [p for p in _index_files(model_dir) if pattern.fullmatch(p)])


_claimed = {}  # real path of a model directory -> the descriptor holding its lock


def claim_model_dir(model_dir):
    """Makes this process the only trainer of model_dir (an existing directory) for as long as it runs.

    Two trainers in one directory would write the same checkpoint names and delete each other's files. The
    claim is an exclusive flock on the directory itself: no file is added, and the kernel releases it when
    the process ends, even by SIGKILL. Claiming a directory this process holds already does nothing; where
    the file system has no locks, nothing is claimed. When the path has come to name another directory than
    the one claimed (deleted, moved aside or replaced, then made anew), that one is claimed in its place: the
    trainer calls this before each save, as TensorFlow would write into whatever directory is there.

    Returns:
      Whether a directory was claimed now (False: this process held it already).
    Raises:
      UserError: another process holds model_dir.
    """
    import fcntl  # here: only the trainer needs it
    key = os.path.realpath(model_dir)
    fd = _claimed.get(key)
    if fd is not None:
        now, held = os.stat(model_dir), os.fstat(fd)
        if (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
            return False
    fd = os.open(model_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UserError("model directory %s is being trained by another process; wait for it to end, or "
                        "use another --model-dir" % model_dir) from None
    except OSError:  # no locks here (some network file systems): go on unguarded
        pass
    if key in _claimed:  # the directory claimed before is no longer there: let it go
        os.close(_claimed[key])
    _claimed[key] = fd
    return True


def release_model_dir(model_dir):
    """Lets go of model_dir, claimed by claim_model_dir (nothing if this process does not hold it)."""
    with _training_lock:
        fd = _claimed.pop(os.path.realpath(model_dir), None)
    if fd is not None:
        os.close(fd)  # closing the descriptor drops the lock


_training = set()              # real paths of the model directories a backward() of this process is training
_training_lock = threading.Lock()


@contextlib.contextmanager
def holding_model_dir(model_dir):
    """claim_model_dir(model_dir) for the length of a with block (released after it unless held before),
    which only one block of this process may be in at a time: the lock is the process's, so two threads
    would share it.

    Raises:
      UserError: another process holds model_dir, or another thread of this one is in such a block.
    """
    key = os.path.realpath(model_dir)
    with _training_lock:
        if key in _training:
            raise UserError("model directory %s is being trained by another thread of this process; wait for "
                            "it to end, or use another --model-dir" % model_dir)
        held_before = key in _claimed
        claim_model_dir(model_dir)
        _training.add(key)
    try:
        yield
    finally:
        with _training_lock:
            _training.discard(key)
            if not held_before and key in _claimed:
                os.close(_claimed.pop(key))  # closing the descriptor drops the lock


def remove_save_leftovers(model_dir, own_name):
    """Deletes what saves of <own_name>-<step> checkpoints that never finished left in model_dir.

    TensorFlow writes each file of a checkpoint under a temporary name and renames it into place: the data,
    then the .index, then the state file "checkpoint", then the .meta; old checkpoints are deleted .meta,
    .index, then data. A process killed part way leaves temporaries (*.tempstate<digits>,
    *.tmp<32 hex digits>) and .data or .meta files whose .index is missing. None of them can be restored.
    Only regular files are deleted (TensorFlow leaves nothing else), and one that cannot be is reported on
    stderr and left: it does not stop training. Only the trainer that claimed model_dir may call this (see
    claim_model_dir).

    Returns:
      The names of the files removed, sorted.
    """
    prefix = _own_prefix(own_name)
    data = r"data-[0-9]{5}-of-[0-9]{5}"
    temporary = re.compile(r"%s\.(%s|index)\.tempstate[0-9]+|(%s\.meta|checkpoint)\.tmp[0-9a-f]{32}"
                           % (prefix, data, prefix))
    part = re.compile(r"(%s)\.(%s|meta)" % (prefix, data))
    names = set(os.listdir(model_dir))
    removed = []
    for name in sorted(names):
        m = part.fullmatch(name)
        if not (temporary.fullmatch(name) or (m and m.group(1) + ".index" not in names)):
            continue
        path = os.path.join(model_dir, name)
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):  # a directory or symlink of that name is not TF's
                continue
            os.remove(path)
            removed.append(name)
        except OSError as e:
            print("warning: cannot remove %s, left by a save that was cut short (%s)" % (path, e.strerror or e),
                  file=sys.stderr)
    return removed


def _newest_first(model_dir, names):
    """The prefixes model_dir/<base name> of names whose .index exists, once each, by step, newest first.

    A checkpoint whose .index or data is not a regular file (a named pipe, a device, a directory) is left
    out: TensorFlow would read a pipe until something wrote to it, and Ctrl+C could not stop it.
    """
    found = set()
    for name in names:
        prefix = os.path.join(model_dir, os.path.basename(name))
        if name and _regular(prefix + ".index"):
            found.add(prefix)
    if found:
        try:
            listed = os.listdir(model_dir)
        except OSError:  # searchable, not listable (mode 711): the .index files were found regular
            listed = []
        for prefix in list(found):
            data = os.path.basename(prefix) + ".data-"
            if not all(_regular(os.path.join(model_dir, f)) for f in listed if f.startswith(data)):
                found.discard(prefix)
    # Newest step first: the one the name ends with, else the one stored in the checkpoint (a name of one's
    # own); one with neither comes last. The state file's order (oldest first) is not relied on: the course's
    # and this package's files both name the step.
    return sorted(found, key=checkpoint_order, reverse=True)


def _regular(path):
    """Whether path is a regular file (or a symlink to one)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def checkpoint_order(prefix):
    """The sort key of list_checkpoints' order: by step (step_of), one not known before every step."""
    step = step_of(prefix)
    return -1 if step is None else step, prefix


def step_of(prefix):
    """The global step of a checkpoint: the number its name ends with, else the global step stored in it
    (the course's Variable_4, for a checkpoint saved under a name of one's own), else None."""
    step = checkpoint_step(prefix)
    return stored_step(prefix) if step is None else step


def checkpoint_identity(prefix):
    """What tells checkpoint prefix apart from a later one of the same name (its .index's inode and time),
    or None when it is gone."""
    try:
        st = os.stat(prefix + ".index")
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


_stored_steps = {}  # checkpoint prefix -> (checkpoint_identity, the step stored_step found in it)


def stored_step(prefix):
    """The global step stored in checkpoint prefix (its Variable_4), or None when it has none that can be read
    (another graph's checkpoint, a damaged one). Remembered while the .index file stays the same."""
    identity = checkpoint_identity(prefix)
    if identity is None:
        return None
    known = _stored_steps.get(prefix)
    if known is not None and known[0] == identity:
        return known[1]
    step = None
    try:
        reader = tf.train.load_checkpoint(tf_path(prefix))
        # Another graph's Variable_4 may be anything: a large matrix (not read), a string, NaN, a complex number.
        if reader.get_variable_to_shape_map().get("Variable_4") == []:
            stored = reader.get_tensor("Variable_4")
            if getattr(stored, "dtype", None) is not None and stored.dtype.kind in "iuf":
                step = int(stored)
    except (tf.errors.OpError, ValueError, TypeError, OverflowError):  # unreadable; NaN, infinite
        pass
    _stored_steps[prefix] = (identity, step)
    return step


# TensorFlow reads a checkpoint path as a file pattern (tf.io.gfile.glob) when it holds one of these, to
# restore it and to delete old checkpoints: a model directory named "run[1]" would match only "run1".
_PATTERN_CHARS = re.compile(r"[*?\[\\]")
_directory_fds = {}
_directory_fds_lock = threading.Lock()


def tf_path(path):
    """path, or an alias of it that TensorFlow will not read as a file pattern; use it in TF's calls only.

    A directory path with pattern characters is reached through /proc/self/fd/<fd of its directory> (Linux),
    which names the same directory; the directory must exist. The directory is opened once and opened again
    when the path has come to name another one (moved aside or deleted, then made anew), so the alias always
    names the directory that the path names at the time of the call.
    A file name with pattern characters (never the trainer's own) raises ValueError, which the readers take
    as an unreadable checkpoint.
    """
    if not _PATTERN_CHARS.search(path):
        return path
    directory, name = os.path.split(os.path.abspath(path))
    if _PATTERN_CHARS.search(name):  # a checkpoint of someone else's naming: readers skip it, as unreadable
        raise ValueError("its name has one of the characters * ? [ \\, which TensorFlow reads as a pattern")
    if not os.path.isdir("/proc/self/fd"):
        raise UserError("%s: TensorFlow reads the characters * ? [ \\ in a checkpoint path as a pattern; "
                        "use a directory whose path has none of them" % path)
    with _directory_fds_lock:  # (backward() may run in threads)
        fd = _directory_fds.get(directory)
        if fd is not None:
            try:
                now, held = os.stat(directory), os.fstat(fd)
                if (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino):
                    fd = None
            except OSError:  # gone, not yet made anew: the alias stays, and TensorFlow finds no file there
                pass
        if fd is None:
            # (An old descriptor is left open, not closed: an alias given out before may still be in use, and
            # a closed descriptor's number is soon another file's.)
            fd = _directory_fds[directory] = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    return "/proc/self/fd/%d/%s" % (fd, name)


def restore_newest(restore, model_dir, own_name=None):
    """Restores the newest readable checkpoint in model_dir, falling back to older ones.

    Args:
      restore: function(prefix) that loads a checkpoint; raises tf.errors.OpError or ValueError if it cannot.
      model_dir: the checkpoint directory.
      own_name: see list_checkpoints.
    Returns:
      The prefix restored, or None if model_dir has no checkpoint.
    Raises:
      UserError: checkpoints are listed but none of them can be restored.
    """
    candidates = list_checkpoints(model_dir, own_name)
    denied = 0  # the checkpoints this process may not read (another user's): nothing says they do not fit
    for i, prefix in enumerate(candidates):
        try:
            restore(prefix)
            return prefix
        except (tf.errors.OpError, ValueError) as e:
            denied += isinstance(e, tf.errors.PermissionDeniedError)
            print("warning: cannot read checkpoint %s (%s)%s" % (prefix, error_reason(e), "; trying an older one"
                                                                   if i + 1 < len(candidates) else ""),
                  file=sys.stderr)
    if candidates and denied == len(candidates):
        raise UserError("%s: none of its checkpoints may be read by this user (Permission denied); ask their "
                        "owner for read permission, or use another --model-dir" % model_dir)
    if candidates:
        raise UserError("%s: none of its checkpoints could be restored into this network; move them away or "
                        "use another --model-dir" % model_dir)
    return None


class EmaModel:
    """The network with its weights restored from the EMA shadows of a checkpoint; build once, restore many.

    Attributes:
      x: float32 placeholder [None, 784].
      logits: [None, 10]; probabilities: softmax of logits [None, 10].
    """

    def __init__(self):
        import mnist_backward  # for MOVING_AVERAGE_DECAY; imported here to keep module imports acyclic
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.x = tf.placeholder(tf.float32, [None, mnist_forward.INPUT_NODE])
            self.logits = mnist_forward.forward(self.x, None)
            self.probabilities = tf.nn.softmax(self.logits)
            # variables_to_restore() maps "<var>/ExponentialMovingAverage" in the checkpoint onto each
            # variable, so the plain variables receive the averaged (shadow) values.
            ema = tf.train.ExponentialMovingAverage(mnist_backward.MOVING_AVERAGE_DECAY)
            self.saver = tf.train.Saver(ema.variables_to_restore())
        self.sess = tf.Session(graph=self.graph, config=session_config())
        self.checkpoint = None

    def restore(self, prefix):
        """Loads the shadow weights of checkpoint prefix; raises tf.errors.OpError if it cannot be read."""
        self.saver.restore(self.sess, tf_path(prefix))
        self.checkpoint = prefix

    def probabilities_of(self, images):
        """Softmax probabilities [N, 10] for images float32 [N, 784]."""
        return self.sess.run(self.probabilities, {self.x: images})

    def close(self):
        self.sess.close()
