"""mnist_test.py: --once against an independent NumPy evaluation, polling beside a live trainer, bad files."""
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, run_script, start_script, assert_no_traceback, _env
import input_data
from mnist_common import tf, list_checkpoints, checkpoint_step
import mnist_test

LINE = "After %s training step(s), test accuracy = %g"


def numpy_accuracy(prefix, mnist, shadow=True):
    """Accuracy on the test set computed with NumPy from the checkpoint's (shadow) values."""
    reader = tf.train.load_checkpoint(prefix)
    suffix = "/ExponentialMovingAverage" if shadow else ""
    w1, b1, w2, b2 = (reader.get_tensor(n + suffix) for n in ("Variable", "Variable_1", "Variable_2", "Variable_3"))
    logits = np.maximum(mnist.test.images @ w1 + b1, 0) @ w2 + b2
    return float(np.mean(logits.argmax(1) == mnist.test.labels.argmax(1)))


def test_once_matches_numpy_on_shadow_weights(trained_model, mnist, mnist_dir, tmp_path):
    test_only = tmp_path / "test_only"  # the evaluator reads the test split alone: no training files needed
    test_only.mkdir()
    for name in (input_data.TEST_IMAGES, input_data.TEST_LABELS):
        os.symlink(os.path.join(mnist_dir, name), test_only / name)
    proc = run_script("mnist_test.py", "--once", "--model-dir", trained_model, "--data-dir", test_only)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    line = proc.stdout.strip()
    assert line.startswith("After 500 training step(s), test accuracy = ")
    printed = float(line.rsplit("= ", 1)[1])
    prefix = list_checkpoints(trained_model)[0]
    assert printed == pytest.approx(numpy_accuracy(prefix, mnist), abs=1.5e-4)  # at most one image apart


def test_restored_weights_are_the_shadows(trained_model):
    from mnist_common import EmaModel
    prefix = list_checkpoints(trained_model)[0]
    reader = tf.train.load_checkpoint(prefix)
    model = EmaModel()
    model.restore(prefix)
    with model.graph.as_default():
        w1 = model.sess.run(tf.global_variables()[0])
    model.close()
    np.testing.assert_array_equal(w1, reader.get_tensor("Variable/ExponentialMovingAverage"))
    assert np.abs(w1 - reader.get_tensor("Variable")).max() > 1e-4  # and they differ from the raw weights


def test_evaluator_beside_trainer(tmp_path, mnist_dir):
    evaluator = start_script("mnist_test.py", "--interval", 0.05, "--until-step", 600, "--model-dir", tmp_path,
                      "--data-dir", mnist_dir)
    # Started first, it reports the empty directory once, then waits for the trainer.
    assert evaluator.stdout.readline().strip() == "No checkpoint file found"
    trainer = start_script("mnist_backward.py", "--steps", 600, "--log-every", 100, "--seed", 5,
                    "--model-dir", tmp_path, "--data-dir", mnist_dir)
    t_out, t_err = trainer.communicate(timeout=600)
    e_out, e_err = evaluator.communicate(timeout=600)
    assert trainer.returncode == 0 and evaluator.returncode == 0, (t_err, e_err)
    assert "Traceback" not in t_err + e_err
    lines = e_out.strip().splitlines()
    assert "No checkpoint file found" not in lines
    steps = [int(l.split()[1]) for l in lines]
    assert all(l.startswith("After ") and "test accuracy = " in l for l in lines)
    assert len(steps) >= 3 and steps == sorted(set(steps)) and steps[-1] == 600


def _line_reader(stream):
    """A function giving stream's next line ("" at its end), read by a thread of its own. A line that never
    comes does not block the suite: popen()'s deadline kills the process, which ends the stream ("")."""
    import queue
    import threading
    lines = queue.Queue()

    def pump():
        for line in stream:
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    return lines.get


def test_empty_dir_once_and_polling_pickup(tmp_path, trained_model, mnist_dir, capsys):
    assert mnist_test.main(["--once", "--model-dir", str(tmp_path), "--data-dir", mnist_dir]) == 1
    # the course's line, and on stderr where it looked and how to fill it
    assert capsys.readouterr() == ("No checkpoint file found\n", "note: no checkpoint in %s; train one first: python "
                                   "mnist_backward.py --model-dir %s\n" % (tmp_path, tmp_path))
    import signal
    model_dir = tmp_path / "model"  # missing at first: also "No checkpoint file found"
    evaluator = start_script("mnist_test.py", "--interval", 0.05, "--model-dir", model_dir, "--data-dir", mnist_dir)
    # A line that never comes fails the test (at popen()'s deadline), not hangs it.
    stdout, stderr = _line_reader(evaluator.stdout), _line_reader(evaluator.stderr)
    try:
        assert stdout().strip() == "No checkpoint file found"
        assert stderr() == ("note: waiting for a checkpoint in %s (python mnist_backward.py --model-dir %s writes "
                            "them); Ctrl+C stops\n" % (model_dir, model_dir))
        shutil.copytree(trained_model, tmp_path / "staging")
        os.rename(tmp_path / "staging", model_dir)  # all five checkpoints appear at once
        # Each is printed once, oldest first, and the message is not repeated.
        assert [stdout().split(" test accuracy = ")[0] for _ in range(5)] == [
            "After %d training step(s)," % step for step in (101, 201, 301, 401, 500)]
        # The newest is deleted by hand and training resumes from 401: the four left are not printed again
        # (they were), the trainer's next checkpoints are. The warning about a damaged 450 shows that the
        # evaluator has looked at the directory since the deletion.
        for ext in (".data-00000-of-00001", ".index"):
            os.remove(model_dir / ("mnist_model-500" + ext))
        _publish(str(model_dir), os.path.join(trained_model, "mnist_model-500"), 450, truncate=True)
        damaged = model_dir / "mnist_model-450"
        assert stderr().startswith("warning: skipping checkpoint %s" % damaged)
        _publish(str(model_dir), os.path.join(trained_model, "mnist_model-500"), 460)
        assert stdout().startswith("After 460 training step(s), test accuracy = ")  # was 101
        # The directory is emptied and training starts again: its checkpoints are followed, older though they are.
        restarted = tmp_path / "restarted"
        restarted.mkdir()
        for ext in (".data-00000-of-00001", ".index"):
            shutil.copy(os.path.join(trained_model, "mnist_model-101") + ext, restarted / ("mnist_model-7" + ext))
        os.rename(model_dir, tmp_path / "old")
        os.rename(restarted, model_dir)
        assert stdout().startswith("After 7 training step(s), test accuracy = ")
        evaluator.send_signal(signal.SIGINT)
        evaluator.wait(timeout=300)
        out, err = "".join(iter(stdout, "")), "".join(iter(stderr, ""))  # the rest, to the end
    finally:
        if evaluator.poll() is None:
            evaluator.kill()
    assert (evaluator.returncode, out, err) == (130, "", "Interrupted.\n")


@pytest.mark.parametrize("damage, reason", [("delete", "data-00000-of-00001; No such file or directory"),
                                            ("truncate", "Read less bytes than requested")])
def test_damaged_checkpoint_is_skipped(tmp_path, trained_model, mnist_dir, damage, reason, capsys):
    shutil.copytree(trained_model, tmp_path, dirs_exist_ok=True)
    newest = list_checkpoints(str(tmp_path))[0]
    data = newest + ".data-00000-of-00001"
    if damage == "delete":
        os.remove(data)
    else:
        with open(data, "r+b") as f:
            f.truncate(1000)
    # In-process: the script's main() (TensorFlow is loaded once for the suite).
    assert mnist_test.main(["--once", "--model-dir", str(tmp_path), "--data-dir", mnist_dir]) == 0
    out, err = capsys.readouterr()
    assert err.startswith("warning: skipping checkpoint %s" % newest) and err.count("\n") == 1
    assert err.rstrip().endswith(reason)  # TensorFlow's reason, not its "Graph execution error:" framing
    # The next readable one is evaluated, under its own step number.
    assert out.startswith("After 401 training step(s), test accuracy = ")


def test_a_warning_that_cannot_be_written_does_not_stop_the_evaluator(tmp_path, trained_model, mnist_dir):
    # 2>/dev/full: the warning about the damaged newest checkpoint could not be written, and that OSError ended
    # the evaluator with status 1 and no line at all; the older checkpoint is evaluated as with a usable stderr.
    shutil.copytree(trained_model, tmp_path, dirs_exist_ok=True)
    with open(list_checkpoints(str(tmp_path))[0] + ".data-00000-of-00001", "r+b") as f:
        f.truncate(1000)
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, os.path.join(ROOT, "mnist_test.py"), "--once", "--model-dir", tmp_path,
                               "--data-dir", mnist_dir], cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=full,
                              text=True, timeout=300)
    assert proc.returncode == 0
    assert proc.stdout.startswith("After 401 training step(s), test accuracy = ")


def test_checkpoint_whose_name_tensorflow_reads_as_a_pattern_is_skipped(tmp_path, trained_model, mnist_dir,
                                                                         capsys):
    from mnist_common import EmaModel, restore_newest
    newest = list_checkpoints(trained_model)[0]
    for name in ("best[v2]-3000", "plain-2000"):  # no state file: the readers take every checkpoint there
        for ext in (".index", ".data-00000-of-00001"):
            shutil.copy(newest + ext, tmp_path / (name + ext))
    skipped = str(tmp_path / "best[v2]-3000")
    reason = "its name has one of the characters * ? [ \\, which TensorFlow reads as a pattern"
    # Was "error: ...: use a directory whose path has none of them", status 1, with a readable one beside it.
    assert mnist_test.main(["--once", "--model-dir", str(tmp_path), "--data-dir", mnist_dir]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("After 2000 training step(s), test accuracy = ")
    assert err == "warning: skipping checkpoint %s: %s\n" % (skipped, reason)
    model = EmaModel()  # the app's way in
    try:
        assert restore_newest(model.restore, str(tmp_path)) == str(tmp_path / "plain-2000")
    finally:
        model.close()
    assert capsys.readouterr().err == "warning: cannot read checkpoint %s (%s); trying an older one\n" % (skipped,
                                                                                                       reason)


def test_pattern_alias_follows_a_directory_replaced_under_the_same_path(tmp_path):
    # The alias of a directory whose path TensorFlow would read as a pattern is a descriptor of it; when the
    # path comes to name another directory (a run moved aside or deleted and started again), the alias
    # follows. It kept naming the old directory: the evaluator scored the old run's checkpoints as new.
    from mnist_common import tf_path, error_reason
    d = tmp_path / "run[1]"
    for version, replace in (("first", None), ("second", "move"), ("third", "delete")):
        if replace == "move":
            d.rename(tmp_path / "old")
        elif replace == "delete":
            shutil.rmtree(d)
            # gone, not yet made anew: still an alias, naming no file (a reader skips the checkpoint, as for
            # a path without pattern characters), not an error that would stop the evaluator
            gone = tf_path(str(d / "a"))
            with pytest.raises(FileNotFoundError):
                open(gone)
        d.mkdir()
        (d / "a").write_text(version)
        alias = tf_path(str(d / "a"))
        assert alias.startswith("/proc/self/fd/")
        with open(alias) as f:
            assert f.read() == version
    message = "cannot read %s; No such file"
    assert error_reason(ValueError(message % alias)) == message % (d / "a")  # named by its path


def _publish(model_dir, source_prefix, step, truncate=False):
    """Copies a checkpoint under a new step number, optionally damaged, and lists it as the newest.

    As TensorFlow does, the .index comes last: readers take a mnist_model-<step> as soon as its .index is
    there, so the data must be complete (or damaged) by then."""
    target = os.path.join(model_dir, "mnist_model-%d" % step)
    shutil.copy(source_prefix + ".data-00000-of-00001", target + ".data-00000-of-00001")
    if truncate:
        with open(target + ".data-00000-of-00001", "r+b") as f:
            f.truncate(1000)
    shutil.copy(source_prefix + ".index", target + ".index.part")
    os.rename(target + ".index.part", target + ".index")
    tf.train.update_checkpoint_state(model_dir, os.path.basename(target))


def test_polling_skips_a_damaged_checkpoint_then_continues(tmp_path, trained_model, mnist_dir):
    good = list_checkpoints(trained_model)[0]
    _publish(str(tmp_path), good, 500)
    evaluator = start_script("mnist_test.py", "--interval", 0.05, "--until-step", 700, "--model-dir", tmp_path,
                      "--data-dir", mnist_dir)
    assert evaluator.stdout.readline().startswith("After 500 training step(s)")
    _publish(str(tmp_path), good, 600, truncate=True)
    assert evaluator.stderr.readline().startswith("warning: skipping checkpoint %s" % tmp_path)
    _publish(str(tmp_path), good, 700)
    out, err = evaluator.communicate(timeout=300)
    assert evaluator.returncode == 0 and "Traceback" not in err
    assert out.strip().splitlines() == [out.strip().splitlines()[0]]
    assert out.startswith("After 700 training step(s)")


def test_named_pipes_in_the_model_dir_are_passed_over(tmp_path, trained_model, mnist_dir):
    # TensorFlow reads a named pipe until something writes to it, and Ctrl+C cannot stop it: a pipe named as the
    # state file, as a newer checkpoint's .index or as the newest one's data hung the evaluator, the app and the
    # trainer. They are passed over as unreadable: the state file as one that cannot be parsed.
    model = tmp_path / "model"
    shutil.copytree(trained_model, model)
    os.remove(model / "checkpoint")
    os.mkfifo(model / "checkpoint")
    os.mkfifo(model / "mnist_model-900.index")
    os.remove(model / "mnist_model-500.data-00000-of-00001")
    os.mkfifo(model / "mnist_model-500.data-00000-of-00001")
    proc = run_script("mnist_test.py", "--once", "--model-dir", model, "--data-dir", mnist_dir, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("After 401 training step(s), test accuracy = ")
    assert proc.stderr == "warning: %s is not a regular file; using the checkpoints found beside it\n" % (
        model / "checkpoint")
    steps = (401, 301, 201, 101)  # (the trainer keeps five: 1 is gone)
    assert list_checkpoints(str(model), "mnist_model") == [os.path.join(model, "mnist_model-%d" % s) for s in steps]


def test_interval_is_the_time_between_polls(tmp_path, mnist_dir, monkeypatch, capsys):
    # In-process, an empty model directory: after "No checkpoint file found" the evaluator sleeps --interval
    # seconds before it looks again (the stand-in for time.sleep ends the run at its second call).
    slept = []

    class Stop(Exception):
        pass

    def sleep(seconds):
        slept.append(seconds)
        if len(slept) == 2:
            raise Stop

    monkeypatch.setattr(mnist_test.time, "sleep", sleep)
    with pytest.raises(Stop):
        mnist_test.main(["--interval", "0.05", "--model-dir", str(tmp_path), "--data-dir", mnist_dir])
    assert slept == [0.05, 0.05]
    out, err = capsys.readouterr()  # said once
    assert out == "No checkpoint file found\n" and err.startswith("note: waiting for a checkpoint in ") and \
        err.count("\n") == 1, err


def test_evaluator_takes_the_data_dir_from_the_environment_and_the_flag_before_it(trained_model, mnist_dir,
                                                                                 tmp_path, monkeypatch, capsys):
    # In-process, as `python mnist_test.py` in a folder without ./data: $MNIST_DATA_DIR is used, and nothing
    # is downloaded or made in ./data. --data-dir comes before the variable.
    import input_data

    def refuse(*args, **kwargs):  # a data directory taken wrongly would otherwise be fetched into
        raise OSError("no downloads in this test")

    monkeypatch.setattr(input_data.urllib.request, "urlopen", refuse)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MNIST_DATA_DIR", mnist_dir)
    assert mnist_test.main(["--once", "--model-dir", trained_model]) == 0
    first = capsys.readouterr().out
    assert first.startswith("After 500 training step(s), test accuracy = ")
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path / "nowhere"))
    assert mnist_test.main(["--once", "--model-dir", trained_model, "--data-dir", mnist_dir]) == 0
    assert capsys.readouterr().out == first
    assert os.listdir(tmp_path) == []  # no ./data, no nowhere/


def test_model_dir_that_is_a_file_is_one_line_error(tmp_path, mnist_dir, capsys):
    # (The trainer's case is in test_training.py's test_bad_arguments_are_one_line_errors.)
    from mnist_common import run_main
    bad = tmp_path / "not_a_dir"
    bad.write_text("x")
    with pytest.raises(SystemExit) as exit:
        run_main(lambda: mnist_test.main(["--once", "--model-dir", str(bad), "--data-dir", mnist_dir]))
    assert exit.value.code == 1
    assert capsys.readouterr().err == "error: model directory %s is not a directory\n" % bad


def test_a_checkpoint_given_as_model_dir_is_one_line_error(trained_model, tmp_path, mnist_dir, capsys, monkeypatch):
    # It was "No checkpoint file found" here and in the app; the trainer made a directory of that name and
    # started afresh in it.
    from mnist_common import run_main, UserError, check_model_dir
    prefix = os.path.join(trained_model, "mnist_model-500")
    for given in (prefix, prefix + "/"):
        with pytest.raises(SystemExit) as exit:
            run_main(lambda: mnist_test.main(["--once", "--model-dir", given, "--data-dir", mnist_dir]))
        assert exit.value.code == 1
        assert capsys.readouterr() == ("", "error: model directory %s is a checkpoint, not a directory; use "
                                           "--model-dir %s, the directory that holds it\n" % (given, trained_model))
    monkeypatch.chdir(trained_model)
    with pytest.raises(UserError, match="^model directory mnist_model-500 is a checkpoint, not a directory; use "
                                        "--model-dir ., the directory that holds it$"):
        check_model_dir("mnist_model-500")
    check_model_dir(str(tmp_path / "mnist_model-500"))  # a new directory, to be made: no checkpoint there


def test_ctrl_c_ends_polling_with_130(tmp_path, mnist_dir):
    import signal
    evaluator = start_script("mnist_test.py", "--interval", 0.05, "--model-dir", tmp_path, "--data-dir", mnist_dir)
    assert evaluator.stdout.readline().strip() == "No checkpoint file found"  # polling, model dir empty
    # (the note on stderr comes after that line: read before the signal, so that what follows it is known)
    assert evaluator.stderr.readline().startswith("note: waiting for a checkpoint in %s " % tmp_path)
    evaluator.send_signal(signal.SIGINT)
    out, err = evaluator.communicate(timeout=300)
    assert evaluator.returncode == 130
    assert "Traceback" not in err and err == "Interrupted.\n"
    assert out == ""


def test_what_tensorflow_says_as_it_dies_while_loading_reaches_the_user(tmp_path, mnist_dir):
    # A stand-in for TensorFlow on a CPU without the instructions it was built for: its notices, then a fatal
    # line and abort(). The notices are dropped; the fatal line was dropped with them (status 134, no word).
    package = tmp_path / "fake" / "tensorflow"
    (package / "compat").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "compat" / "__init__.py").write_text("")
    fatal = ("F0000 00:00:1795500965.500000   14407 cpu_feature_guard.cc:108] The TensorFlow library was "
             "compiled to use AVX instructions, but these aren't available on your machine.")
    (package / "compat" / "v1.py").write_text(
        "import os\n"
        "os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n')\n"
        "os.write(2, b'I0000 00:00:1795500965.496336   14407 port.cc:153] oneDNN custom operations are on.\\n')\n"
        "os.write(2, b'W0000 00:00:1795500965.496690   14407 cudart_stub.cc:31] Could not find cuda drivers\\n')\n"
        "os.write(2, %r)\n"
        "os.abort()\n" % (fatal + "\n").encode())
    (tmp_path / "mnist_model-1.index").write_bytes(b"")  # a checkpoint to restore: TensorFlow is loaded for it
    # (TensorFlow loads after the test images are read: they are given, not looked for in $MNIST_DATA_DIR or ./data)
    proc = run_script("mnist_test.py", "--once", "--model-dir", tmp_path, "--data-dir", mnist_dir,
                      env={"PYTHONPATH": str(package.parent)})
    assert (proc.returncode, proc.stdout, proc.stderr) == (-6, "", fatal + "\n")  # SIGABRT


def test_a_tensorflow_that_fails_to_load_is_not_blamed_on_the_state_file(tmp_path, mnist_dir):
    # TensorFlow loads when the state file is first parsed: its ImportError was taken for the file's, which was
    # said to be unparsable ("using the checkpoints found beside it") before the same error came again.
    package = tmp_path / "fake" / "tensorflow"
    (package / "compat").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "compat" / "__init__.py").write_text("")
    (package / "compat" / "v1.py").write_text("raise ImportError('this TensorFlow is broken')\n")
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "checkpoint").write_text('model_checkpoint_path: "mnist_model-1"\n')
    (model_dir / "mnist_model-1.index").write_bytes(b"")
    proc = run_script("mnist_test.py", "--once", "--model-dir", model_dir, "--data-dir", mnist_dir,
                      env={"PYTHONPATH": str(package.parent)})
    assert proc.returncode == 1 and proc.stdout == ""
    assert "cannot be parsed" not in proc.stderr and "this TensorFlow is broken" in proc.stderr, proc.stderr


@pytest.mark.parametrize("level", [None, "3", "2", "", "abc"])
def test_tensorflow_import_is_quiet_unless_asked(trained_model, mnist_dir, level):
    # Unset, TF_CPP_MIN_LOG_LEVEL becomes 3; set by the user (or inherited from a parent script) it is kept,
    # and the lines TensorFlow prints before reading it are silenced all the same. A value that is no number
    # (TensorFlow would read it as 0) is unset: it let through the CPU notice's second line and the rest.
    # (A checkpoint to score: with none, TensorFlow is not loaded at all.)
    env = {} if level is None else {"TF_CPP_MIN_LOG_LEVEL": level}
    proc = run_script("mnist_test.py", "--once", "--model-dir", trained_model, "--data-dir", mnist_dir, env=env)
    assert proc.returncode == 0 and re.fullmatch(r"After 500 training step\(s\), test accuracy = 0\.9[0-9]*\n",
                                                 proc.stdout), proc.stdout
    if level == "2":  # the user's level lets TensorFlow's later error lines through, but not the import's notices
        assert "InitializeLog" not in proc.stderr and "oneDNN custom operations" not in proc.stderr
    else:
        assert proc.stderr == ""


def _save_unfit_checkpoint(prefix, hidden, with_ema):
    """Saves a checkpoint of the course's variable names, but hidden units and/or EMA shadows changed."""
    import mnist_forward
    with tf.Graph().as_default():
        w1 = tf.Variable(tf.zeros([mnist_forward.INPUT_NODE, hidden]))
        b1 = tf.Variable(tf.zeros([hidden]))
        w2 = tf.Variable(tf.zeros([hidden, mnist_forward.OUTPUT_NODE]))
        b2 = tf.Variable(tf.zeros([mnist_forward.OUTPUT_NODE]))
        if with_ema:
            tf.train.ExponentialMovingAverage(0.99).apply([w1, b1, w2, b2])
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            tf.train.Saver().save(sess, prefix)


@pytest.mark.parametrize("hidden, with_ema, reason", [
    (500, False, r"Key Variable(_\d)?/ExponentialMovingAverage not found in checkpoint"),
    # whichever of the three mismatched variables TensorFlow assigns first
    (100, True, r"Assign requires shapes of both tensors to match\. "
                r"lhs shape= \[(784,500\] rhs shape= \[784,100|500\] rhs shape= \[100"
                r"|500,10\] rhs shape= \[100,10)\]")])
def test_error_reason_of_a_checkpoint_that_does_not_fit(tmp_path, hidden, with_ema, reason):
    from mnist_common import EmaModel, error_reason
    prefix = str(tmp_path / "other")
    _save_unfit_checkpoint(prefix, hidden, with_ema)
    model = EmaModel()
    with pytest.raises(tf.errors.OpError) as caught:
        model.restore(prefix)
    model.close()
    assert "\n" in caught.value.message  # TensorFlow's message runs over lines of framing ...
    assert re.fullmatch(reason, error_reason(caught.value))  # ... and the reason is the one line kept


def test_error_reason_of_a_full_disk():
    # TensorFlow's message when a save runs out of space (measured on a 5 MB tmpfs): the reason, not the
    # "Hint:" line that follows it, and the file by its checkpoint name, not its temporary one.
    from mnist_common import error_reason
    message = ("Graph execution error:\n\nDetected at node 'save/SaveV2' defined at (most recent call last):\n"
               "    File \"<stdin>\", line 9, in <module>\nNode: 'save/SaveV2'\n/mnt/s/x.data-00000-of-00001."
               "tempstate14274694245268556933; No space left on device\n\t [[{{node save/SaveV2}}]]\nHint: If you "
               "want to see a list of allocated tensors when OOM happens, add report_tensor_allocations_upon_oom "
               "to RunOptions for current allocation info. This isn't available when running in Eager mode.")
    error = tf.errors.ResourceExhaustedError(None, None, message)
    assert error_reason(error) == "/mnt/s/x.data-00000-of-00001; No space left on device"
    meta = tf.errors.ResourceExhaustedError(None, None, "m/mnist_model-2.meta.tmp4a7e9c0b1d2f3a4b5c6d7e8f9a0b1c2d; "
                                            "No space left on device")  # Python's writer: its own temporary
    assert error_reason(meta) == "m/mnist_model-2.meta; No space left on device"


@pytest.mark.parametrize("interval", ["nan", "1e300"])
def test_interval_out_of_range_is_a_usage_error(tmp_path, interval):
    # refused before anything is loaded: time.sleep would fail on these only after the first evaluation
    proc = run_script("mnist_test.py", "--interval", interval, "--model-dir", tmp_path)
    assert_no_traceback(proc)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith(
        "error: --interval must be from 0 to 86400 seconds, got %g" % float(interval))


def test_missing_stale_or_unparsable_state_file_falls_back_to_the_checkpoints_beside_it(tmp_path, trained_model,
                                                                                       mnist_dir, capsys):
    shutil.copytree(trained_model, tmp_path, dirs_exist_ok=True)
    # In-process: text that does not parse, an empty file, a state file naming only deleted checkpoints, none.
    for garbage in (b"model_checkpoint_path: {", b"", b'model_checkpoint_path: "mnist_model-9999"\n', None):
        if garbage is None:
            os.remove(tmp_path / "checkpoint")
        else:
            (tmp_path / "checkpoint").write_bytes(garbage)
        assert [checkpoint_step(p) for p in list_checkpoints(str(tmp_path))] == [500, 401, 301, 201, 101]
    (tmp_path / "checkpoint").write_bytes(b"\x8f\xff\x00binary")  # not even UTF-8: through the evaluator
    assert mnist_test.main(["--once", "--model-dir", str(tmp_path), "--data-dir", mnist_dir]) == 0
    out, err = capsys.readouterr()  # said once for the file, however often it was read
    assert err == "warning: %s cannot be parsed; using the checkpoints found beside it\n" % (tmp_path / "checkpoint")
    assert out.startswith("After 500 training step(s), test accuracy = ")  # the newest by step
    assert [checkpoint_step(p) for p in list_checkpoints(str(tmp_path))] == [500, 401, 301, 201, 101]


def test_readers_see_the_newest_checkpoint_a_state_file_has_not_caught_up_with(tmp_path, trained_model):
    # A save cut short (killed, or a full disk) after the checkpoint's files and before the state file: the
    # state file still names step 101, but the trainer would resume from 500; so do the readers.
    shutil.copytree(trained_model, tmp_path, dirs_exist_ok=True)
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "mnist_model-101"\n'
                                         'all_model_checkpoint_paths: "mnist_model-101"\n')
    (tmp_path / "other.index").write_text("")  # not listed, not the trainer's: not taken
    assert [checkpoint_step(p) for p in list_checkpoints(str(tmp_path))] == [500, 401, 301, 201, 101]
    assert list_checkpoints(str(tmp_path)) == list_checkpoints(str(tmp_path), "mnist_model")


def test_readers_of_a_directory_they_may_enter_but_not_list_use_its_state_file(tmp_path, trained_model,
                                                                               monkeypatch):
    # A shared model directory of mode 711: the state file and the checkpoints can be read by name.
    shutil.copytree(trained_model, tmp_path, dirs_exist_ok=True)
    listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path: (_ for _ in ()).throw(PermissionError(13, "Permission denied"))
                        if os.path.samefile(path, tmp_path) else listdir(path))
    assert [checkpoint_step(p) for p in list_checkpoints(str(tmp_path))] == [500, 401, 301, 201, 101]
    with pytest.raises(PermissionError):
        list_checkpoints(str(tmp_path), "mnist_model")  # the trainer must see every file it may overwrite
    os.remove(tmp_path / "checkpoint")
    with pytest.raises(PermissionError):
        list_checkpoints(str(tmp_path))  # nothing to go by: said, not "No checkpoint file found"


def test_checkpoint_named_without_a_step_reports_its_stored_step(tmp_path, trained_model, mnist_dir):
    newest = list_checkpoints(trained_model)[0]
    for ext in (".index", ".data-00000-of-00001"):
        shutil.copy(newest + ext, tmp_path / ("my_model" + ext))
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "my_model"\n')
    proc = run_script("mnist_test.py", "--interval", 0.05, "--until-step", 500, "--model-dir", tmp_path,
                      "--data-dir", mnist_dir)  # ends only if the step (500, stored as Variable_4) is known
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.startswith("After 500 training step(s), test accuracy = ")


def test_a_stored_step_that_is_not_a_number_is_unknown(tmp_path):
    # A checkpoint of one's own naming from another graph, its Variable_4 a matrix or NaN: int() of it was a
    # TypeError or a ValueError.
    import mnist_test
    # (A string "123" was taken for step 123, a complex 5+1j for step 5, with a ComplexWarning.) A whole number
    # stored as a float is a step.
    for name, value, step in (("matrix", np.ones((2, 3), np.float32), None), ("nan", np.float32("nan"), None),
                              ("text", b"123", None), ("complex", np.complex64(5 + 1j), None),
                              ("float", np.float32(300), 300), ("int64", np.int64(7), 7)):
        path = str(tmp_path / name)
        with tf.Graph().as_default():
            tf.Variable(value, name="Variable_4")
            with tf.Session() as sess:
                sess.run(tf.global_variables_initializer())
                tf.train.Saver().save(sess, path)
        assert mnist_test.step_of(path) == step, name


def test_a_checkpoint_named_without_a_step_is_the_oldest(tmp_path):
    # A state file may list a checkpoint of one's own naming (my_model, no step), newest as it says: with no
    # step stored in it that can be read (these .index files are empty), it cannot be placed by step, and it
    # comes last, after every numbered one, the trainer's own found beside it too.
    for name in ("my_model", "mnist_model-3", "mnist_model-12", "run-7"):
        (tmp_path / (name + ".index")).write_text("")
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "my_model"\n'
                                         'all_model_checkpoint_paths: "run-7"\n'
                                         'all_model_checkpoint_paths: "mnist_model-3"\n'
                                         'all_model_checkpoint_paths: "my_model"\n')
    expected = [str(tmp_path / name) for name in ("mnist_model-12", "run-7", "mnist_model-3", "my_model")]
    assert list_checkpoints(str(tmp_path)) == list_checkpoints(str(tmp_path), "mnist_model") == expected


def test_once_beside_until_step_is_a_usage_error(trained_model, mnist_dir, capsys):
    # --once returned 0 after evaluating step 500, ignoring the --until-step 600 that it had been given
    with pytest.raises(SystemExit) as e:
        mnist_test.main(["--once", "--until-step", "600", "--model-dir", trained_model, "--data-dir", mnist_dir])
    assert e.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines()[-1].endswith("error: --once and --until-step cannot be used together")


@pytest.mark.parametrize("how", ["dropped", "printed"])
def test_a_ctrl_c_lost_while_the_model_was_built_still_stops_the_polling(trained_model, mnist_dir, lose_a_signal,
                                                                         monkeypatch, capsys, how):
    # lost while EmaModel built its graph, it polled on until a second Ctrl+C
    import signal
    from mnist_common import run_main
    polls = []

    def sleep(seconds):  # (no waiting; and without the fix, the test fails rather than polling for ever)
        polls.append(seconds)
        assert len(polls) < 3, "polled on after the Ctrl+C"

    monkeypatch.setattr(mnist_test.time, "sleep", sleep)
    lose_a_signal(signal.SIGINT, how)
    with pytest.raises(SystemExit) as e:
        run_main(lambda: mnist_test.main(["--model-dir", trained_model, "--data-dir", mnist_dir]))
    out, err = capsys.readouterr()
    assert (e.value.code, err) == (130, "Interrupted.\n"), out + err
    assert out.splitlines()[-1].startswith("After 500 training step(s), test accuracy = ") and len(polls) == 1, out


def test_checkpoints_named_without_a_step_are_ordered_by_their_stored_step(tmp_path, trained_model, mnist_dir):
    # They were ordered by name: with no state file, --once and the app took z_early (step 101) for the newest,
    # and polling printed step 500 before step 101.
    def copy(step, name):
        for ext in (".index", ".data-00000-of-00001"):
            shutil.copy(os.path.join(trained_model, "mnist_model-%d%s" % (step, ext)), tmp_path / (name + ext))

    copy(500, "a_late")
    copy(101, "z_early")
    assert list_checkpoints(str(tmp_path)) == [str(tmp_path / "a_late"), str(tmp_path / "z_early")]
    proc = run_script("mnist_test.py", "--interval", 0.05, "--until-step", 500, "--model-dir", tmp_path,
                      "--data-dir", mnist_dir)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert [line.split(" test accuracy")[0] for line in proc.stdout.splitlines()] == [
        "After 101 training step(s),", "After 500 training step(s),"]
    once = run_script("mnist_test.py", "--once", "--model-dir", tmp_path, "--data-dir", mnist_dir)
    assert once.returncode == 0 and once.stdout.startswith("After 500 training step(s), test accuracy = ")
    # the accuracy printed is a_late's: the same as the trainer's own checkpoint of step 500 gives
    original = run_script("mnist_test.py", "--once", "--model-dir", trained_model, "--data-dir", mnist_dir)
    assert once.stdout == original.stdout.splitlines(keepends=True)[0]
    # beside the trainer's own, listed by the state file: each in its place by step
    copy(301, "mnist_model-301")
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "z_early"\nall_model_checkpoint_paths: "a_late"\n'
                                         'all_model_checkpoint_paths: "z_early"\n')
    assert list_checkpoints(str(tmp_path)) == list_checkpoints(str(tmp_path), "mnist_model") == [
        str(tmp_path / n) for n in ("a_late", "mnist_model-301", "z_early")]


def test_a_stored_step_is_read_again_when_the_checkpoint_is_written_again(tmp_path, trained_model):
    from mnist_common import stored_step
    path = str(tmp_path / "mine")
    for step in (101, 401):
        for ext in (".index", ".data-00000-of-00001"):
            os.replace(shutil.copy(os.path.join(trained_model, "mnist_model-%d%s" % (step, ext)),
                                   path + ext + ".tmp"), path + ext)  # a new file, as TensorFlow's save makes
        assert stored_step(path) == step
