"""Training on the real MNIST through the real script: accuracy, resume, checkpoints, Ctrl+C, SIGKILL."""
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import types

import numpy as np
import pytest

from conftest import ROOT, run_script, start_script, assert_no_traceback, _env, popen
from mnist_common import tf, EmaModel, list_checkpoints, checkpoint_step
import mnist_test


def ema_accuracy(model_dir, mnist):
    model = EmaModel()
    try:
        model.restore(list_checkpoints(model_dir)[0])
        return mnist_test.accuracy(model, mnist)
    finally:
        model.close()


def test_short_run_reaches_90_percent(trained_model, mnist):
    assert checkpoint_step(list_checkpoints(trained_model)[0]) == 500
    assert ema_accuracy(trained_model, mnist) >= 0.90


def test_checkpoint_names_and_shapes(trained_model):
    prefix = list_checkpoints(trained_model)[0]
    got = dict(tf.train.list_variables(prefix))
    expected = {"Variable": [784, 500], "Variable_1": [500], "Variable_2": [500, 10], "Variable_3": [10],
                "Variable_4": []}
    for name, shape in list(expected.items())[:4]:
        expected[name + "/ExponentialMovingAverage"] = shape
    assert got == expected
    assert tf.train.load_checkpoint(prefix).get_tensor("Variable_4") == 500
    # Saved at the course's steps 1, 101, ... and the last step; only the five newest are kept.
    assert [checkpoint_step(p) for p in list_checkpoints(trained_model)] == [500, 401, 301, 201, 101]


def test_resume_finishes_the_schedule(mnist_dir, tmp_path, capsys):
    # "[1]", "*", "?" in the model directory: TensorFlow reads them as a file pattern if handed them as they are.
    tmp_path = tmp_path / "run[1] *?"
    first = run_script("mnist_backward.py", "--steps", 300, "--log-every", 100, "--seed", 2,
                       "--model-dir", tmp_path, "--data-dir", mnist_dir)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[1] == ("Training on MNIST from %s: model %s, steps 300, batch size 200, "
                                            "fresh start." % (mnist_dir, tmp_path))
    lines = [l for l in first.stdout.splitlines() if l.startswith("After ")]
    assert [int(l.split()[1]) for l in lines] == [1, 101, 201, 300]
    for line in lines:  # the course's line, as SPEC.md gives it (printed with %d and %g)
        assert re.fullmatch(r"After \d+ training step\(s\), loss on training batch is \d+(\.\d+)?(e-?\d+)?\.", line)
    assert "Finished at step 300: 300 steps in" in first.stdout.splitlines()[-1]
    assert first.stderr == ""  # TensorFlow's import noise is silenced

    started = time.monotonic()
    second = run_script("mnist_backward.py", "--steps", 600, "--log-every", 100,
                        "--model-dir", tmp_path, "--data-dir", mnist_dir)
    wall = time.monotonic() - started
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[1] == ("Training on MNIST from %s: model %s, steps 600, batch size 200, "
                                             "resuming from step 300." % (mnist_dir, tmp_path))
    # The last line counts this run's steps (600 - 300) and its rate is those steps over its time, both as
    # printed: T to 0.1 s, R to 0.1 steps/s. T is part of the process's time, which the test measured.
    finished = re.fullmatch(r"Finished at step 600: (\d+) steps in (\d+\.\d) s, (\d+\.\d) steps/s\.",
                            second.stdout.splitlines()[-1])
    assert finished, second.stdout
    n, t, rate = int(finished.group(1)), float(finished.group(2)), float(finished.group(3))
    assert n == 600 - 300 and 0.1 <= t <= wall
    assert n / (t + 0.05) - 0.05 <= rate <= n / (t - 0.05) + 0.05, (n, t, rate)
    steps = [int(l.split()[1]) for l in second.stdout.splitlines() if l.startswith("After ")]
    assert steps == [301, 401, 501, 600]
    assert "Finished at step 600: 300 steps" in second.stdout
    # The five newest are kept across the resume: the first run's older checkpoints are deleted, not orphaned.
    assert [checkpoint_step(p) for p in list_checkpoints(str(tmp_path))] == [600, 501, 401, 301, 300]
    assert sorted(f for f in os.listdir(tmp_path) if f.endswith(".index")) == sorted(
        "mnist_model-%d.index" % n for n in (300, 301, 401, 501, 600))
    evaluated = run_script("mnist_test.py", "--once", "--model-dir", tmp_path, "--data-dir", mnist_dir)
    assert evaluated.returncode == 0 and evaluated.stdout.startswith("After 600 training step(s), test accuracy = ")

    import mnist_backward  # in-process: nothing to train
    assert mnist_backward.main(["--steps", "600", "--model-dir", str(tmp_path), "--data-dir", mnist_dir]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "Overriding: STEPS = 600, MODEL_SAVE_PATH = %s" % tmp_path,  # the constants changed, not --data-dir
        "Model in %s is already at step 600 (--steps 600): nothing to do." % tmp_path]


def test_more_than_five_of_its_checkpoints_are_pruned_to_five(mnist, tmp_path, trained_model):
    import mnist_backward
    shutil.copytree(trained_model, tmp_path, dirs_exist_ok=True)
    for step in (11, 21, 31):  # older ones of the same name, as the course's own loop leaves them
        for ext in (".index", ".data-00000-of-00001", ".meta"):
            source = os.path.join(trained_model, "mnist_model-101" + ext)
            shutil.copy(source, tmp_path / ("mnist_model-%d%s" % (step, ext)))
    assert mnist_backward.backward(mnist, steps=501, model_dir=str(tmp_path), log_every=100) == 501  # 1 save
    # Were eight .index files on, 31 to 501: the Saver deletes only one per save of those it knows.
    assert [checkpoint_step(p) for p in list_checkpoints(str(tmp_path))] == [501, 500, 401, 301, 201]
    assert sorted(os.listdir(tmp_path)) == sorted(["checkpoint"] + ["mnist_model-%d%s" % (step, ext)
        for step in (201, 301, 401, 500, 501) for ext in (".index", ".data-00000-of-00001", ".meta")])
    state = tf.train.get_checkpoint_state(str(tmp_path))
    assert [checkpoint_step(p) for p in state.all_model_checkpoint_paths] == [201, 301, 401, 500, 501]


def test_lost_state_file_resumes_and_overwrites_nothing(mnist_dir, tmp_path, trained_model):
    # The trainer finds its own checkpoints (mnist_model-<step>) even when the state file lost track of them:
    # a fresh start would have written new mnist_model-101 .. -500 over them.
    shutil.copytree(trained_model, tmp_path, dirs_exist_ok=True)
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "mnist_model-9999"\n')  # stale
    for own_name in (None, "mnist_model"):  # the evaluator's and the app's view, and the trainer's
        assert [checkpoint_step(p) for p in list_checkpoints(str(tmp_path), own_name)] == [500, 401, 301, 201, 101]
    os.remove(tmp_path / "checkpoint")  # gone: through the trainer
    before = {f: (tmp_path / f).read_bytes() for f in os.listdir(tmp_path) if f.startswith("mnist_model-")}
    proc = run_script("mnist_backward.py", "--steps", 600, "--log-every", 100, "--model-dir", tmp_path,
                      "--data-dir", mnist_dir)
    assert proc.returncode == 0, proc.stderr
    assert "resuming from step 500" in proc.stdout
    assert [checkpoint_step(p) for p in list_checkpoints(str(tmp_path))] == [600, 501, 500, 401, 301]
    kept = [f for f in before if checkpoint_step(f.split(".")[0]) in (301, 401, 500)]
    assert len(kept) == 9 and all((tmp_path / f).read_bytes() == before[f] for f in kept)


@pytest.mark.parametrize("args, status, message", [
    (["--seed", "-1"], 2, "error: --seed must be a whole number from 0 to 2**63 - 1, got -1"),
    (["--seed", str(2 ** 63)], 2, "error: --seed must be a whole number from 0 to 2**63 - 1, got %d" % 2 ** 63),
    (["--steps", "0"], 2, "error: --steps must be a positive whole number, got 0"),
    (["--batch-size", "0"], 2, "error: --batch-size must be a positive whole number, got 0"),
    (["--log-every", "0"], 2, "error: --log-every must be a positive whole number, got 0"),
    (["--batch-size", "100000"], 1, "error: --batch-size 100000 is larger than the 55000 training images in "),
    (["--model-dir", "{file}"], 1, "error: model directory {file} is not a directory"),
    (["--model-dir", ""], 1, "error: the model directory must not be an empty path"),
    (["--model-dir", "{file}/sub"], 1, "error: model directory {file}/sub is not a directory (a part of its path is "
                                       "a file)"),
    # TensorFlow fails on such a path only at the first save, with "Unable to convert element to UTF-8"
    (["--model-dir", "{tmp}/lat\udce9"], 1, "error: model directory {tmp}/lat\\xe9: TensorFlow takes only paths in "
                                            "UTF-8; rename it, or use another --model-dir"),
])
def test_bad_arguments_are_one_line_errors(mnist_dir, tmp_path, args, status, message, capsys):
    # In-process (TensorFlow is loaded once), through the script's own run_main.
    import mnist_backward
    from mnist_common import run_main
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    args = [a.format(file=a_file, tmp=tmp_path) for a in args]
    with pytest.raises(SystemExit) as exit:
        run_main(lambda: mnist_backward.main(["--steps", "5", "--data-dir", mnist_dir] + args))
    out, err = capsys.readouterr()
    assert exit.value.code == status
    assert message.format(file=a_file, tmp=tmp_path) in err.strip().splitlines()[-1], err
    if status == 2:  # a usage error: argparse's usage, then the one line saying what is wrong
        assert err.startswith("usage: ") and err.count("error: ") == 1, err
    assert "Traceback" not in err and "Training on MNIST" not in out  # refused before anything started
    assert sorted(os.listdir(tmp_path)) == ["a_file"]  # and nothing created


def test_steps_beyond_the_32_bit_global_step_are_refused(mnist_dir, tmp_path):
    # The global step is an int32 variable (the course's checkpoints hold one): past 2**31 - 1 it wrapped round
    # to negative steps, checkpoints named mnist_model--2147483596 with NaN weights, and "Finished", status 0.
    # The evaluator's --until-step beyond it would wait for ever.
    for script, flag, what in (("mnist_backward.py", "--steps", "the global step"),
                               ("mnist_test.py", "--until-step", "a checkpoint's step")):
        proc = run_script(script, flag, 2 ** 31, "--model-dir", tmp_path / "m", "--data-dir", mnist_dir)
        assert proc.returncode == 2 and proc.stdout == ""
        assert proc.stderr.splitlines()[-1].endswith(
            "error: %s must be at most 2147483647 (%s is a 32-bit integer), got 2147483648" % (flag, what))
    assert not os.path.exists(tmp_path / "m")
    import mnist_backward
    assert mnist_backward.MAX_STEP == np.iinfo(np.int32).max


def test_largest_seed_is_taken(mnist_dir, tmp_path, capsys):
    import mnist_backward
    seed = 2 ** 63 - 1  # the largest the flag takes: TensorFlow's and NumPy's seeding must take it too
    assert mnist_backward.main(["--steps", "1", "--seed", str(seed), "--model-dir", str(tmp_path),
                                "--data-dir", mnist_dir]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("Finished at step 1: 1 steps in ")
    assert [checkpoint_step(p) for p in list_checkpoints(str(tmp_path))] == [1]


def _no_downloads(monkeypatch):
    """Makes a download fail at once (a data directory taken wrongly would otherwise be fetched into)."""
    import input_data

    def refuse(*args, **kwargs):
        raise OSError("no downloads in this test")

    monkeypatch.setattr(input_data.urllib.request, "urlopen", refuse)


def test_trainer_takes_the_data_dir_from_the_environment_and_the_flag_before_it(mnist_dir, tmp_path, monkeypatch,
                                                                               capsys):
    # In-process, as `python mnist_backward.py` in a folder without ./data: $MNIST_DATA_DIR is used, and
    # nothing is downloaded or made in ./data. --data-dir comes before the variable.
    import mnist_backward
    _no_downloads(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MNIST_DATA_DIR", mnist_dir)
    assert mnist_backward.main(["--steps", "1", "--model-dir", "m1"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == ("Training on MNIST from %s: model m1, steps 1, batch size "
                                                       "200, fresh start." % mnist_dir)
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path / "nowhere"))
    assert mnist_backward.main(["--steps", "1", "--model-dir", "m2", "--data-dir", mnist_dir]) == 0
    assert capsys.readouterr().out.splitlines()[1] == ("Training on MNIST from %s: model m2, steps 1, batch size "
                                                       "200, fresh start." % mnist_dir)
    assert sorted(os.listdir(tmp_path)) == ["m1", "m2"]  # no ./data, no nowhere/
    assert [checkpoint_step(p) for p in list_checkpoints(str(tmp_path / "m2"))] == [1]


def test_a_leading_tilde_in_a_model_or_data_dir_is_the_home_folder(mnist_dir, tmp_path, monkeypatch, capsys):
    # Quoted, or after an = (--model-dir=~/model, MNIST_DATA_DIR="~/mnist"), the shell leaves ~ as it is: the
    # trainer wrote into a folder "~" of the working directory, which the other scripts, given ~/model by the
    # shell, did not find, and the data files in ~/mnist were called missing from "~/mnist".
    import mnist_app
    import mnist_backward
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    (home / "mnist").symlink_to(mnist_dir)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MNIST_DATA_DIR", "~/mnist")
    monkeypatch.chdir(cwd)
    assert mnist_backward.main(["--steps", "1", "--model-dir=~/model"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == ("Training on MNIST from %s/mnist: model %s/model, steps 1, "
                                                       "batch size 200, fresh start." % (home, home))
    assert os.listdir(cwd) == [] and [checkpoint_step(p) for p in list_checkpoints(str(home / "model"))] == [1]
    assert mnist_test.main(["--once", "--model-dir=~/model"]) == 0
    assert capsys.readouterr().out.startswith("After 1 training step(s), test accuracy = ")
    (home / "blank.png").write_bytes(b"not a picture")
    assert mnist_app.main(["--model-dir=~/model", str(home / "blank.png")]) == 1
    assert capsys.readouterr().err == "%s/blank.png: error: not a picture (Pillow cannot identify it)\n" % home
    assert os.listdir(cwd) == []


def test_module_constants_set_by_code_are_followed(mnist, tmp_path, monkeypatch, capsys):
    # The course's code read STEPS, MODEL_SAVE_PATH & co. when it ran, so code setting them first was followed;
    # backward(), test() and restore_model() took the values they had at import: 50,000 steps into ./model/.
    import mnist_app
    import mnist_backward
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model").write_text("")  # ./model/, the default, unusable: taken, it fails at once
    for name, value in (("STEPS", 2), ("BATCH_SIZE", 100), ("LOG_EVERY", 1), ("MODEL_SAVE_PATH", "set/")):
        monkeypatch.setattr(mnist_backward, name, value)
    assert mnist_backward.backward(mnist) == 2
    assert capsys.readouterr().out.splitlines()[0] == ("Training on MNIST from memory: model set/, steps 2, "
                                                       "batch size 100, fresh start.")
    assert [checkpoint_step(p) for p in list_checkpoints("set")] == [2, 1]
    assert mnist_test.test(mnist, once=True) == 0
    assert capsys.readouterr().out.startswith("After 2 training step(s), test accuracy = ")
    assert mnist_app.restore_model(mnist.test.images[:3]).shape == (3,)


def test_main_called_from_code_takes_no_flags_from_its_program(mnist_dir, tmp_path, monkeypatch, capsys):
    # A notebook calling mnist_backward.main(), as the course's main() was called: the kernel's own arguments
    # (-f FILE) were parsed as the trainer's flags ("error: unrecognized arguments", SystemExit 2); so for the
    # evaluator, the app and the loader.
    import io
    import input_data
    import mnist_app
    import mnist_backward
    monkeypatch.setattr(sys, "argv", ["ipykernel_launcher.py", "-f", str(tmp_path / "kernel.json")])
    monkeypatch.setenv("MNIST_DATA_DIR", mnist_dir)
    monkeypatch.setattr(mnist_backward, "STEPS", 1)
    monkeypatch.setattr(mnist_backward, "MODEL_SAVE_PATH", str(tmp_path / "model"))
    assert mnist_backward.main() == 0
    assert [checkpoint_step(p) for p in list_checkpoints(str(tmp_path / "model"))] == [1]
    assert input_data.main() == 0
    called = []
    monkeypatch.setattr(mnist_test, "test", lambda *args: called.append(args[1:]) or 0)
    assert mnist_test.main() == 0 and called == [(str(tmp_path / "model"), 5, False, None)]
    monkeypatch.setattr(sys, "stdin", io.StringIO("1\n%s\n" % (tmp_path / "missing.png")))
    assert mnist_app.main() == 1  # the prompt, then the picture that is not there
    assert capsys.readouterr().err == "%s: error: no such file\n" % (tmp_path / "missing.png")


def _numpy_loss(prefix, images, labels):
    """The training loss of a batch under checkpoint prefix's raw weights, in NumPy (float64): mean
    cross-entropy + 0.0001 * (sum w1^2 + sum w2^2) / 2, as test_core.py's test_loss_and_one_step_match_numpy
    checks it against TensorFlow."""
    reader = tf.train.load_checkpoint(prefix)
    w1, b1, w2, b2 = (reader.get_tensor(n).astype(np.float64)
                      for n in ("Variable", "Variable_1", "Variable_2", "Variable_3"))
    logits = np.maximum(images.astype(np.float64) @ w1 + b1, 0) @ w2 + b2
    shifted = logits - logits.max(1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    ce = -np.mean(log_p[np.arange(len(labels)), labels.argmax(1)])
    return ce + 0.0001 * ((w1 ** 2).sum() + (w2 ** 2).sum()) / 2


def test_first_and_progress_lines_of_a_fresh_and_a_resumed_run(mnist, mnist_dir, tmp_path, capsys):
    # In-process on 3,000 real images, batches of 50: the first line says where the data came from (or
    # "memory"), the model directory, the flags' values and how training starts; each progress line's loss is
    # the batch's, printed with %g (six significant digits), as a NumPy computation from the checkpoint
    # before that step and the batch the data set gives shows.
    import input_data
    import mnist_backward
    model_dir = str(tmp_path / "m")

    def data(seed):
        return types.SimpleNamespace(train=input_data.DataSet(mnist.train.images[:3000], mnist.train.labels[:3000],
                                                              seed=seed))

    def loss_printed(line, step):
        m = re.fullmatch(r"After %d training step\(s\), loss on training batch is (\S+)\." % step, line)
        assert m, line
        return m.group(1)

    def check_loss(printed, prefix, seed, nth_batch):
        batches = data(seed).train
        for _ in range(nth_batch):
            idx = batches.next_batch_indices(50)
        expected = _numpy_loss(prefix, mnist.train.images[idx], mnist.train.labels[idx])
        assert printed == "%g" % float(printed)  # %g's own form
        assert abs(float(printed) - expected) <= 1e-5 * expected, (printed, expected)  # 6 digits: %.3f has 4

    assert mnist_backward.backward(data(7), steps=2, batch_size=50, model_dir=model_dir, log_every=100, seed=7,
                                   data_dir=mnist_dir) == 2
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Training on MNIST from %s: model %s, steps 2, batch size 50, fresh start." % (mnist_dir,
                                                                                                    model_dir)
    assert [line.split(",")[0] for line in lines[1:3]] == ["After 1 training step(s)", "After 2 training step(s)"]
    check_loss(loss_printed(lines[2], 2), os.path.join(model_dir, "mnist_model-1"), 7, 2)

    assert mnist_backward.backward(data(8), steps=3, batch_size=50, model_dir=model_dir, log_every=100) == 3
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Training on MNIST from memory: model %s, steps 3, batch size 50, resuming from step 2." \
        % model_dir
    check_loss(loss_printed(lines[1], 3), os.path.join(model_dir, "mnist_model-2"), 8, 1)
    assert lines[2].startswith("Finished at step 3: 1 steps in ") and len(lines) == 3


def test_signal_handlers_are_given_back(mnist, tmp_path, monkeypatch):
    # backward() handles SIGINT, SIGTERM and SIGHUP while it trains; after it returns, or stops on a signal, the
    # handlers are the caller's again.
    import input_data
    import mnist_backward
    data = types.SimpleNamespace(train=input_data.DataSet(mnist.train.images[:3000], mnist.train.labels[:3000],
                                                          seed=3))
    handlers = {s: lambda signum, frame: None for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    saved = {s: signal.signal(s, h) for s, h in handlers.items()}
    try:
        assert mnist_backward.backward(data, steps=2, model_dir=str(tmp_path), log_every=100, seed=3) == 2
        assert {s: signal.getsignal(s) for s in handlers} == handlers
        _signal_during_a_save(monkeypatch, signal.SIGINT, 3)  # Ctrl+C during the save of step 3 (the first)
        with pytest.raises(mnist_backward.TrainingInterrupted) as e:
            mnist_backward.backward(data, steps=10, model_dir=str(tmp_path), log_every=1)
        assert (e.value.step, e.value.signum) == (3, signal.SIGINT)
        assert {s: signal.getsignal(s) for s in handlers} == handlers
    finally:
        for s, h in saved.items():
            signal.signal(s, h)


def test_the_claim_on_the_model_dir_is_exclusive(mnist, tmp_path, monkeypatch):
    # While backward() trains, the directory's lock keeps out even a reader's shared lock: it is an
    # exclusive one (a shared one would let a second trainer that took a shared lock in too).
    import fcntl
    import input_data
    import mnist_backward
    tried = []
    restore_newest = mnist_backward.restore_newest

    def try_a_shared_lock(*args):
        fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            tried.append("taken")
        except BlockingIOError:
            tried.append("refused")
        finally:
            os.close(fd)
        return restore_newest(*args)

    monkeypatch.setattr(mnist_backward, "restore_newest", try_a_shared_lock)
    data = types.SimpleNamespace(train=input_data.DataSet(mnist.train.images[:3000], mnist.train.labels[:3000],
                                                          seed=3))
    assert mnist_backward.backward(data, steps=1, model_dir=str(tmp_path), seed=3) == 1
    assert tried == ["refused"]
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:  # and let go after
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    finally:
        os.close(fd)


def test_a_model_dir_named_outside_ascii_on_an_ascii_stream_or_locale(mnist_dir, tmp_path):
    # On an ASCII output stream the trainer's first lines, which name the model directory, were a traceback
    # (UnicodeEncodeError); the name is written as the file system's bytes. With PYTHONUTF8=0 in the C locale,
    # Python reads the UTF-8 name as ASCII plus escapes, which TensorFlow cannot take: it was called "not UTF-8"
    # and that message itself was a traceback; it says what is wrong instead.
    model = os.path.join(tmp_path, "mod\u00e8le")
    proc = run_script("mnist_backward.py", "--steps", 1, "--model-dir", model, "--data-dir", mnist_dir,
                      env={"PYTHONIOENCODING": "ascii"})
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.splitlines()[1].startswith("Training on MNIST from %s: model %s, steps 1," % (mnist_dir, model))
    assert os.path.exists(os.path.join(model, "mnist_model-1.index"))
    proc = run_script("mnist_backward.py", "--steps", 1, "--model-dir", model + "2", "--data-dir", mnist_dir,
                      env={"LC_ALL": "C", "PYTHONUTF8": "0"})
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == ("error: model directory %s2: Python reads file names here as ascii, not UTF-8, so "
                           "TensorFlow cannot be given this one; set PYTHONUTF8=1 (or a UTF-8 locale), or use "
                           "another --model-dir\n" % model)


def test_a_model_dir_through_a_link_to_nothing_is_one_line_error(mnist_dir, tmp_path, capsys):
    # It was taken for a directory to be made: "error: DIR: File exists" once the data had loaded.
    import mnist_backward
    from mnist_common import run_main
    os.symlink(tmp_path / "gone", tmp_path / "link")
    through = ": %s" % (tmp_path / "link")
    for model_dir, where in ((tmp_path / "link", ""), (tmp_path / "link" / "sub", through),
                             (str(tmp_path / "link") + "/../m", through)):  # ("..": after following the link)
        with pytest.raises(SystemExit) as exit:
            run_main(lambda: mnist_backward.main(["--steps", "5", "--model-dir", str(model_dir),
                                                  "--data-dir", mnist_dir]))
        out, err = capsys.readouterr()
        assert (exit.value.code, out) == (1, "")
        assert err == "error: model directory %s%s is a symbolic link to %s, which leads nowhere\n" % (
            model_dir, where, tmp_path / "gone")
    assert sorted(os.listdir(tmp_path)) == ["link"]


def start_trainer(mnist_dir, model_dir, *args):
    # Far more steps than a test waits for, but few enough that a trainer which never prints the line awaited
    # ends, and read_until fails, in a minute or two rather than hanging.
    return start_script("mnist_backward.py", "--steps", 3000, "--model-dir", model_dir, "--data-dir", mnist_dir,
                        *args)


def read_until(proc, prefix):
    """Reads proc's stdout until a line starting with prefix; returns the lines read."""
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith(prefix):
            return lines
    raise AssertionError("ended before %r: %s%s" % (prefix, "".join(lines), proc.stderr.read()))


@pytest.mark.parametrize("signum, status, word", [(signal.SIGINT, 130, "Interrupted"),
                                                  (signal.SIGTERM, 143, "Terminated"),
                                                  (signal.SIGHUP, 129, "Hung up")])
def test_a_stopping_signal_saves_and_exits(mnist_dir, tmp_path, signum, status, word):
    proc = start_trainer(mnist_dir, tmp_path, "--log-every", 100, "--seed", 3)
    read_until(proc, "After 101 training step(s)")
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == status
    assert "Traceback" not in err
    last = out.strip().splitlines()[-1]
    assert last.startswith("%s at step " % word)
    step = int(last[len(word):].split()[2].rstrip(";"))
    assert step >= 101
    assert last == "%s at step %d; checkpoint saved to %s-%d." % (word, step, tmp_path / "mnist_model", step)
    assert os.path.isfile(tmp_path / ("mnist_model-%d.index" % step))
    assert checkpoint_step(list_checkpoints(str(tmp_path))[0]) == step
    assert tf.train.load_checkpoint(list_checkpoints(str(tmp_path))[0]).get_tensor("Variable_4") == step


@pytest.mark.parametrize("how", ["dropped", "printed", "turned"])
def test_a_ctrl_c_lost_before_training_still_stops_the_trainer(mnist_dir, tmp_path, lose_a_signal, capsys, how):
    # Python raises KeyboardInterrupt in whatever code runs, and TensorFlow's C++ code calling back into Python
    # can print it and carry on (seen in CI): the trainer then trained on as if no Ctrl+C had come. Or its
    # pybind11 layer turns it into a RuntimeError (seen here, 1 in 400 while the graph was built): a traceback.
    import mnist_backward
    from mnist_common import run_main
    lose_a_signal(signal.SIGINT, how)
    with pytest.raises(SystemExit) as e:
        run_main(lambda: mnist_backward.main(["--steps", "300", "--model-dir", str(tmp_path), "--data-dir", mnist_dir]))
    out, err = capsys.readouterr()
    assert e.value.code == 130, out + err
    if how != "turned":  # trained on to its first step: the usual line (and not the lost exception), a checkpoint
        assert err == "", err
        assert out.splitlines()[-1] == "Interrupted at step 0; checkpoint saved to %s-0." % (tmp_path / "mnist_model")
        assert [checkpoint_step(p) for p in list_checkpoints(str(tmp_path))] == [0]
    else:  # as Ctrl+C before training: one line, nothing saved
        assert err == "Interrupted.\n" and "Interrupted at" not in out
        assert list_checkpoints(str(tmp_path)) == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back by run_main


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_the_trainer_was_started_with_ignored_stays_ignored(mnist_dir, tmp_path, signum):
    # A shell script's `python mnist_backward.py &` starts it with Ctrl+C ignored (`trap '' TERM` does so with
    # SIGTERM): ignored while TensorFlow loaded, the signal then stopped training ("Interrupted at step 2", 130).
    proc = popen([sys.executable, os.path.join(ROOT, "mnist_backward.py"), "--steps", "300",
                  "--log-every", "100", "--model-dir", str(tmp_path), "--data-dir", mnist_dir],
                 cwd=ROOT, env=_env(),
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                 preexec_fn=lambda: signal.signal(signum, signal.SIG_IGN))
    read_until(proc, "After 1 training step(s)")
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=300)
    assert (proc.returncode, err) == (0, "")
    assert out.splitlines()[-1].startswith("Finished at step 300: 300 steps in ")


# Runs the trainer, killed with SIGKILL at a chosen point inside TensorFlow's Saver.save: argv is ROOT, the
# point, which call to kill at, then the trainer's flags. Points: "delete" kills once that many files of old
# checkpoints are deleted; "checkpoint.tmp" (the state file) or ".meta.tmp" kills just before the temporary
# file of that name is renamed into place, that many times over; "tempstate" kills as soon as a thread
# watching the model directory sees a file that TensorFlow's C++ writer has open under its temporary name (it
# writes without holding Python's lock), or at the latest once step 20 is saved; "none" never kills.
KILLED_TRAINER = r"""
import os, signal, sys
sys.path.insert(0, sys.argv[1])
point, count = sys.argv[2], int(sys.argv[3])
import mnist_common, mnist_backward
from tensorflow.python.checkpoint import checkpoint_management
from tensorflow.python.lib.io import file_io
calls = []

def count_call():
    calls.append(1)
    if len(calls) == count:
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)

delete_file, rename = checkpoint_management._delete_file_if_exists, file_io.rename

def deleting(spec):
    delete_file(spec)
    if point == "delete":
        count_call()

def renaming(src, dst, overwrite=False):
    if point in os.path.basename(src):
        count_call()
    return rename(src, dst, overwrite)

checkpoint_management._delete_file_if_exists, file_io.rename = deleting, renaming

if point == "tempstate":
    import threading
    model_dir = sys.argv[sys.argv.index("--model-dir") + 1]

    def watch():
        # a new file under a temporary name of TensorFlow's C++ writer (the data's, then the .index's); or, should
        # this thread not be given a core in those moments (a busy machine), step 20's data file in place
        there = set(os.listdir(model_dir))
        while not any(".tempstate" in name or name.startswith("mnist_model-20.data-")
                      for name in set(os.listdir(model_dir)) - there):
            pass
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, daemon=True).start()
mnist_common.run_main(lambda: mnist_backward.main(sys.argv[4:]))
"""


def test_sigkill_at_each_point_of_a_save_then_resume(mnist_dir, tmp_path):
    # TensorFlow saves a checkpoint as: data and .index (each written under a temporary name, then renamed),
    # the state file "checkpoint" (the same), deletion of the oldest beyond five (.meta, .index, data), then
    # the .meta (the same). Killed at each stage, the checkpoints before it stay loadable, the next run resumes
    # from the newest complete one and clears what the cut-short save left.
    script = tmp_path / "killed_trainer.py"
    script.write_text(KILLED_TRAINER)
    model_dir = tmp_path / "model"

    def train(point, count, *args):
        proc = subprocess.run([sys.executable, str(script), ROOT, point, str(count), "--model-dir", str(model_dir),
                               "--data-dir", mnist_dir, *map(str, args)],
                              cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
        assert_no_traceback(proc)
        return proc

    def steps(own=False):
        return [checkpoint_step(p) for p in list_checkpoints(str(model_dir), "mnist_model" if own else None)]

    def files():
        return sorted(os.listdir(model_dir))

    # 1. Killed as the third save's state file is put in place: checkpoint 3 is complete, the state file still
    #    lists 1 and 2 (readers such as mnist_test.py see 3 all the same, as the trainer does), and its
    #    temporary is left behind.
    first = train("checkpoint.tmp", 3, "--steps", 100, "--log-every", 1, "--seed", 4)
    assert first.returncode == -signal.SIGKILL, first.stderr
    listed = tf.train.get_checkpoint_state(str(model_dir)).all_model_checkpoint_paths
    assert [os.path.basename(p) for p in listed] == ["mnist_model-1", "mnist_model-2"]
    assert steps() == steps(own=True) == [3, 2, 1]
    state_tmp = [f for f in files() if f.startswith("checkpoint.tmp")]
    assert len(state_tmp) == 1

    # 2. Resumes from 3, clears the temporary; in the save of 6, killed while deleting checkpoint 1 (the oldest
    #    of six) after its .meta and .index went: its data file is left, and the state file lists 2 to 6.
    second = train("delete", 2, "--steps", 100, "--log-every", 1)
    assert second.returncode == -signal.SIGKILL, second.stderr
    assert "resuming from step 3." in second.stdout
    assert "Removed 1 file(s) left in %s by a save that was cut short: %s." % (model_dir, state_tmp[0]) \
        in second.stdout
    assert steps() == [6, 5, 4, 3, 2]
    assert "mnist_model-1.data-00000-of-00001" in files() and "mnist_model-1.index" not in files()

    # 3. Resumes from 6; killed as the .meta of its first save (7) is put in place, after 2 was deleted.
    third = train(".meta.tmp", 1, "--steps", 100, "--log-every", 1)
    assert third.returncode == -signal.SIGKILL, third.stderr
    assert "resuming from step 6." in third.stdout
    assert "by a save that was cut short: mnist_model-1.data-00000-of-00001." in third.stdout
    assert steps() == [7, 6, 5, 4, 3]
    meta_tmp = [f for f in files() if f.startswith("mnist_model-7.meta.tmp")]
    assert len(meta_tmp) == 1 and "mnist_model-7.meta" not in files()
    # 4. Resumes from 7; killed while TensorFlow's C++ writer has a data file open under its temporary name
    #    (or a moment after: the kill may land anywhere in the save; and the watching thread, not always given
    #    a core in that moment, may catch only a later save, when 7 may have been deleted). Besides what that
    #    leaves, recreate what such a kill leaves when it lands while the .index is written: the data renamed
    #    into place, the .index still under its temporary name, half written.
    fourth = train("tempstate", 0, "--steps", 100, "--log-every", 1)
    assert fourth.returncode == -signal.SIGKILL, fourth.stderr
    assert "resuming from step 7." in fourth.stdout
    # the kill came in a save after 7: its data file is there, under its temporary name or its own
    assert max(int(m.group(1)) for m in map(re.compile(r"mnist_model-(\d+)\.data-").match, files()) if m) > 7
    newest = steps(own=True)[0]
    complete = {"mnist_model-%d.%s" % (n, ext) for n in steps(own=True)
                for ext in ("index", "data-00000-of-00001", "meta")} & set(files())
    left_by_kill = set(files()) - complete - {"checkpoint"}
    shutil.copy(model_dir / ("mnist_model-%d.data-00000-of-00001" % newest),
                model_dir / "mnist_model-98.data-00000-of-00001")
    index = (model_dir / ("mnist_model-%d.index" % newest)).read_bytes()
    (model_dir / "mnist_model-98.index.tempstate5550123").write_bytes(index[:len(index) // 2])
    assert steps(own=True)[0] == newest >= 7  # neither of those makes a checkpoint
    leftovers = sorted(left_by_kill | {"mnist_model-98.data-00000-of-00001", "mnist_model-98.index.tempstate5550123"})

    # 5. Resumes from the newest complete checkpoint, clears every leftover, finishes: five complete
    #    checkpoints and nothing else, each restorable.
    last = train("none", 0, "--steps", newest + 5, "--log-every", 1000)
    assert last.returncode == 0, last.stderr
    assert "resuming from step %d." % newest in last.stdout
    assert "Removed %d file(s) left in %s by a save that was cut short: %s." % (
        len(leftovers), model_dir, ", ".join(leftovers)) in last.stdout
    assert "Finished at step %d: 5 steps" % (newest + 5) in last.stdout
    kept = steps()
    assert kept == [newest + 5] + steps(own=True)[1:] and len(kept) == 5 and kept[1] == newest
    for n in kept:
        assert {"mnist_model-%d.index" % n, "mnist_model-%d.data-00000-of-00001" % n} <= set(files())
    # Nothing else: a .meta is there unless its save was cut short before it (not needed to restore).
    assert set(files()) <= {"checkpoint"} | {"mnist_model-%d.%s" % (n, ext) for n in kept
                                             for ext in ("index", "data-00000-of-00001", "meta")}
    model = EmaModel()
    try:
        for prefix in list_checkpoints(str(model_dir)):
            model.restore(prefix)
    finally:
        model.close()


def test_leftover_removal_touches_only_tensorflows_own_files(tmp_path, monkeypatch, capsys):
    from mnist_common import remove_save_leftovers
    hexa = "0123456789abcdef" * 2
    leftovers = ["mnist_model-8.data-00000-of-00001.tempstate123", "mnist_model-8.index.tempstate9",
                 "checkpoint.tmp" + hexa, "mnist_model-7.meta.tmp" + hexa,
                 "mnist_model-6.data-00000-of-00001", "mnist_model-6.meta"]
    kept = ["checkpoint", "notes.txt", "mnist_model-5.index", "mnist_model-5.data-00000-of-00001", "mnist_model-5.meta",
            "mnist_model-5.index.tempstate", "checkpoint.tmp" + hexa.upper(), "mnist_model-7.meta.tmp123",
            "other_model-6.data-00000-of-00001", "mnist_model-x.meta",
            "mnist_model-\u0663.meta",  # digits of other scripts: \d would take them, TensorFlow never writes them
            "mnist_model-\uff15.data-" + "\uff10" * 5 + "-of-" + "\uff10" * 4 + "\uff11"]
    for name in leftovers + kept:
        (tmp_path / name).write_text(name)
    (tmp_path / "mnist_model-3.meta").mkdir()  # not a file TensorFlow left: kept, as is a symlink
    (tmp_path / "mnist_model-4.meta").symlink_to(tmp_path / "notes.txt")
    kept += ["mnist_model-3.meta", "mnist_model-4.meta"]
    # One leftover cannot be deleted: said on stderr, the rest still go, nothing raised.
    remove = os.remove
    monkeypatch.setattr(os, "remove", lambda path: (_ for _ in ()).throw(PermissionError(1, "Operation not "
                        "permitted")) if path.endswith("mnist_model-6.meta") else remove(path))
    assert remove_save_leftovers(str(tmp_path), "mnist_model") == sorted(set(leftovers) - {"mnist_model-6.meta"})
    assert sorted(os.listdir(tmp_path)) == sorted(kept + ["mnist_model-6.meta"])
    assert capsys.readouterr().err == ("warning: cannot remove %s, left by a save that was cut short (Operation "
                                       "not permitted)\n" % (tmp_path / "mnist_model-6.meta"))


def test_readers_fall_back_to_any_checkpoint_the_trainer_to_its_own(tmp_path):
    # Only a checkpoint of another name, no state file: the evaluator and the app use it; the trainer starts
    # afresh rather than fail on (or resume from) someone else's network.
    (tmp_path / "other_net.index").write_text("")
    assert list_checkpoints(str(tmp_path)) == [str(tmp_path / "other_net")]
    assert list_checkpoints(str(tmp_path), "mnist_model") == []
    (tmp_path / "mnist_model-7.index").write_text("")
    assert list_checkpoints(str(tmp_path), "mnist_model") == [str(tmp_path / "mnist_model-7")]
    assert list_checkpoints(str(tmp_path / "missing")) == list_checkpoints(str(tmp_path / "missing"), "m") == []
    assert checkpoint_step("mnist_model-\u0663") is None and checkpoint_step("mnist_model-12") == 12


def second_save_failing(monkeypatch, mnist, model_dir, action):
    """Trains 150 steps into model_dir, saving every 100, with action(checkpoint path) called as the second save
    begins (step 101). Returns the UserError's message that ends the training."""
    from mnist_common import UserError
    import mnist_backward
    real_save, calls = tf.train.Saver.save, []

    def save(self, sess, path, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            action(path)
        return real_save(self, sess, path, **kwargs)

    monkeypatch.setattr(tf.train.Saver, "save", save)
    with pytest.raises(UserError) as e:
        mnist_backward.backward(mnist, steps=150, model_dir=str(model_dir), log_every=100, seed=3)
    return str(e.value)


def test_a_save_that_fails_stops_training_with_one_line_and_keeps_the_checkpoints_before(tmp_path, mnist,
                                                                                        monkeypatch):
    # The second save fails as on a full disk (the real message is in test_error_reason_of_a_full_disk).
    def full_disk(path):
        raise tf.errors.ResourceExhaustedError(None, None, "Graph execution error:\n%s-101.data-00000-of-00001."
                                               "tempstate123; No space left on device\nHint: If you want "
                                               "to see a list of allocated tensors" % path)

    message = second_save_failing(monkeypatch, mnist, tmp_path, full_disk)
    assert message == ("saving the checkpoint of step 101 failed (%s-101.data-00000-of-00001; No space left on "
                       "device); training stopped, and a rerun resumes from the newest complete checkpoint"
                       % (tmp_path / "mnist_model"))
    assert [checkpoint_step(p) for p in list_checkpoints(str(tmp_path))] == [1]
    assert ema_accuracy(str(tmp_path), mnist) > 0  # still restores


def test_a_model_dir_replaced_by_a_file_during_training_is_one_line(tmp_path, mnist, monkeypatch):
    # rm -r model; touch model, while the trainer runs: TensorFlow's Saver raised a ValueError ("Parent directory
    # of ... doesn't exist") over its own error, and the trainer ended in a traceback.
    model_dir = tmp_path / "m"

    def replace_by_a_file(path):
        shutil.rmtree(model_dir)
        model_dir.write_text("")

    message = second_save_failing(monkeypatch, mnist, model_dir, replace_by_a_file)
    assert message == ("saving the checkpoint of step 101 failed (%s-101.data-00000-of-00001; Not a directory); "
                       "training stopped, and a rerun resumes from the newest complete checkpoint"
                       % (model_dir / "mnist_model"))


def test_a_reader_that_goes_away_loses_no_step(tmp_path, mnist_dir):
    # `mnist_backward.py | head -3`: the progress line that finds the pipe closed comes after its checkpoint
    # is saved, so the run ends quietly (status 1) with every step up to that line kept.
    trainer = start_script("mnist_backward.py", "--steps", 1500, "--seed", 2, "--model-dir", tmp_path,
                           "--data-dir", mnist_dir)
    read_until(trainer, "After 1 training step(s)")
    trainer.stdout.close()  # 1000 steps before the next line: it is written to a pipe with no reader
    trainer.wait(timeout=300)
    err = trainer.stderr.read()
    trainer.stderr.close()
    assert trainer.returncode == 1 and err == "", err
    assert [checkpoint_step(p) for p in list_checkpoints(str(tmp_path))] == [1001, 1]


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_after_the_reader_went_away_still_ends_with_its_status(tmp_path, mnist_dir, signum, status):
    # `mnist_backward.py | head -3`, then Ctrl+C (or SIGTERM, SIGHUP): the line saying so found the pipe closed, and
    # the run ended with status 1, as if something had gone wrong, though its checkpoint was saved.
    trainer = start_script("mnist_backward.py", "--steps", 10 ** 6, "--log-every", 10 ** 5, "--model-dir", tmp_path,
                           "--data-dir", mnist_dir)
    read_until(trainer, "After 1 training step(s)")
    trainer.stdout.close()
    trainer.send_signal(signum)
    trainer.wait(timeout=300)
    err = trainer.stderr.read()
    trainer.stderr.close()
    assert (trainer.returncode, err) == (status, "")
    step = checkpoint_step(list_checkpoints(str(tmp_path))[0])
    assert tf.train.load_checkpoint(os.path.join(tmp_path, "mnist_model-%d" % step)).get_tensor("Variable_4") == step


def _signal_during_a_save(monkeypatch, signum, step):
    """Makes every Saver.save first note its global step in the list returned, and the save of step also send
    signum to this process (handled by backward(): it only sets a flag)."""
    real_save, saved = tf.train.Saver.save, []

    def save(self, sess, path, global_step=None, **kwargs):
        saved.append(int(sess.run(global_step)))
        if saved[-1] == step:
            os.kill(os.getpid(), signum)
        return real_save(self, sess, path, global_step=global_step, **kwargs)

    monkeypatch.setattr(tf.train.Saver, "save", save)
    return saved


@pytest.mark.parametrize("steps", [150, 101])
def test_a_signal_during_a_save_saves_once(tmp_path, mnist, monkeypatch, capsys, steps):
    # SIGTERM arrives while the checkpoint of step 101 is being saved. With --steps 150 the run stops there,
    # without saving step 101 a second time; with --steps 101 that save was the last: the run is complete.
    import mnist_backward
    saved = _signal_during_a_save(monkeypatch, signal.SIGTERM, 101)
    if steps == 150:
        with pytest.raises(mnist_backward.TrainingInterrupted) as e:
            mnist_backward.backward(mnist, steps=steps, model_dir=str(tmp_path), log_every=100, seed=3)
        assert (e.value.step, e.value.signum) == (101, signal.SIGTERM)
        assert capsys.readouterr().out.splitlines()[-1].startswith("Terminated at step 101; checkpoint saved to ")
    else:
        assert mnist_backward.backward(mnist, steps=steps, model_dir=str(tmp_path), log_every=100, seed=3) == 101
        assert capsys.readouterr().out.splitlines()[-1].startswith("Finished at step 101: ")
    assert saved == [1, 101]


def test_a_hangup_during_a_save_then_the_line_failing_ends_as_the_hangup(tmp_path, mnist, monkeypatch):
    # The terminal closes while the checkpoint of step 101 is saved: SIGHUP, then its progress line cannot be
    # written (EIO). The run ended with status 1, as for a failed write, not 129, as for the hangup.
    import errno
    import io
    import mnist_backward
    saved = _signal_during_a_save(monkeypatch, signal.SIGHUP, 101)

    class Terminal(io.StringIO):  # gone from the hangup on
        def write(self, text):
            if len(saved) > 1:
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            return super().write(text)

    monkeypatch.setattr(sys, "stdout", Terminal())
    with pytest.raises(mnist_backward.TrainingInterrupted) as e:
        mnist_backward.backward(mnist, steps=150, model_dir=str(tmp_path), log_every=100, seed=3)
    assert (e.value.step, e.value.signum, saved) == (101, signal.SIGHUP, [1, 101])
    assert checkpoint_step(list_checkpoints(str(tmp_path))[0]) == 101
    assert sys.stdout.getvalue().splitlines()[-1].startswith("After 1 training step(s), loss on training batch is ")


def test_trainer_refuses_a_directory_whose_state_file_lists_a_foreign_network(tmp_path, mnist, capsys):
    # Another program's checkpoint, listed by its own state file: resuming from it fails, and a fresh start
    # would rewrite that state file, so the trainer stops and the directory is left exactly as it was.
    from mnist_common import UserError
    import mnist_backward
    with tf.Graph().as_default():
        other = tf.Variable(tf.zeros([3]), name="other")
        with tf.Session() as sess:
            sess.run(other.initializer)
            tf.train.Saver().save(sess, str(tmp_path / "net"), global_step=7)
    before = {f: (tmp_path / f).read_bytes() for f in os.listdir(tmp_path)}
    assert "checkpoint" in before and "net-7.index" in before
    with pytest.raises(UserError, match="^%s: none of its checkpoints could be restored into this network; move "
                                        "them away or use another --model-dir$"
                       % re.escape(str(tmp_path))):
        mnist_backward.backward(mnist, steps=5, model_dir=str(tmp_path))
    assert {f: (tmp_path / f).read_bytes() for f in os.listdir(tmp_path)} == before
    err = capsys.readouterr().err  # the only checkpoint there: no "trying an older one" (there is none)
    assert err.startswith("warning: cannot read checkpoint %s (Key Variable" % (tmp_path / "net-7")), err
    assert err.count("\n") == 1 and err.endswith(")\n"), err


def test_checkpoints_this_user_may_not_read_are_not_blamed_on_the_network(tmp_path, trained_model):
    # Another user's model directory whose checkpoints only their owner may read: after a warning for each, the
    # app ended with "none of its checkpoints could be restored into this network; move them away".
    shutil.copytree(trained_model, tmp_path / "m")
    for name in os.listdir(tmp_path / "m"):
        if ".data-" in name:
            (tmp_path / "m" / name).chmod(0)
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    proc = subprocess.run(drop + [sys.executable, os.path.join(ROOT, "mnist_app.py"), "--model-dir",
                                  str(tmp_path / "m"), str(tmp_path / "x.png")],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert_no_traceback(proc)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr.count("Permission denied); trying an older one\n") == 4  # not after the oldest
    oldest = tmp_path / "m" / "mnist_model-101"
    assert proc.stderr.splitlines()[-2] == "warning: cannot read checkpoint %s (%s.data-00000-of-00001; Permission " \
                                           "denied)" % (oldest, oldest)
    assert proc.stderr.splitlines()[-1] == ("error: %s: none of its checkpoints may be read by this user (Permission "
                                            "denied); ask their owner for read permission, or use another --model-dir"
                                            % (tmp_path / "m"))


def test_readers_report_a_model_dir_they_cannot_reach(tmp_path, trained_model):
    # Not "No checkpoint file found": the directory's checkpoints are there, but permissions hide them.
    parent = tmp_path / "locked"
    shutil.copytree(trained_model, parent / "m")
    parent.chmod(0o600)  # readable, not searchable
    try:
        drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
        proc = subprocess.run(drop + [sys.executable, os.path.join(ROOT, "mnist_app.py"), "--model-dir",
                                      str(parent / "m"), "any.png"],
                              cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    finally:
        parent.chmod(0o700)
    assert_no_traceback(proc)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == "error: %s: Permission denied\n" % (parent / "m" / "checkpoint")


def test_a_second_trainer_in_the_same_model_dir_is_refused(mnist_dir, tmp_path, capsys):
    import fcntl
    import mnist_backward
    from mnist_common import run_main
    held = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running trainer holds its model directory
    try:
        with pytest.raises(SystemExit) as exit:
            run_main(lambda: mnist_backward.main(["--steps", "5", "--model-dir", str(tmp_path),
                                                  "--data-dir", mnist_dir]))
    finally:
        os.close(held)
    out, err = capsys.readouterr()
    assert exit.value.code == 1
    assert err == ("error: model directory %s is being trained by another process; wait for it to end, or use "
                   "another --model-dir\n" % tmp_path)
    assert "Training on MNIST" not in out and os.listdir(tmp_path) == []


def test_a_second_trainer_is_refused_while_the_first_loads_into_a_new_model_dir(mnist_dir, tmp_path, monkeypatch):
    # The first trainer made and claimed a model directory that did not exist only once it had loaded the data
    # and TensorFlow: a second one started meanwhile loaded everything too before it was refused (or trained).
    import mnist_backward
    model_dir, seen = tmp_path / "new" / "model", []

    def second_trainer(args):  # runs while the first trainer (this process) would be loading the data
        seen.append(run_script("mnist_backward.py", "--steps", 5, "--model-dir", model_dir, "--data-dir", mnist_dir))
        return 0

    monkeypatch.setattr(mnist_backward, "_load_and_train", second_trainer)
    assert mnist_backward.main(["--model-dir", str(model_dir)]) == 0
    assert seen[0].returncode == 1 and "Training" not in seen[0].stdout
    assert seen[0].stderr == ("error: model directory %s is being trained by another process; wait for it to end, "
                              "or use another --model-dir\n" % model_dir)
    assert os.listdir(tmp_path) == []  # nothing was written: the directories made for the run are gone again


@pytest.mark.parametrize("model_dir, left", [
    ("old/a/b", ["data", "old"]), ("new/../old", ["data", "old"]), ("m2/..", ["data", "old"]),
    ("new/./a/", ["data", "old"]), ("new/" + "x" * 300, ["data", "old"])])
def test_a_run_that_fails_before_training_leaves_no_model_dir_it_made(tmp_path, model_dir, left):
    # The trainer makes its model directory before it reads the data: when the run ends having written nothing
    # there, the directories it made are removed, and only those ("new/../old" is the user's empty old, kept;
    # a name too long is made in part before it fails).
    (tmp_path / "old").mkdir()
    (tmp_path / "data").write_text("")  # a file, not a folder: the data cannot be read
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "mnist_backward.py"), "--model-dir", model_dir,
                           "--data-dir", "data"], cwd=str(tmp_path), env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert_no_traceback(proc)
    assert proc.returncode == 1 and proc.stderr.startswith("error: "), proc.stderr
    assert sorted(os.listdir(tmp_path)) == left and os.listdir(tmp_path / "old") == []


@pytest.mark.parametrize("held", ["input_data.read_data_sets", "mnist_common.claim_model_dir"])
@pytest.mark.parametrize("signum, said", [(signal.SIGTERM, ""), (signal.SIGHUP, ""), (signal.SIGINT, "Interrupted.\n")])
def test_a_stop_signal_while_the_data_loads_leaves_no_model_dir_it_made(tmp_path, signum, said, held):
    # `timeout 10 python mnist_backward.py --model-dir new/model` (or the terminal closed) while the data loaded
    # ended the trainer where it stood, leaving the directories it had made for the run behind, empty. It ends
    # with 143 (129) as before, and removes them first, as Ctrl+C did. So too when the signal comes as the
    # trainer claims the directory, just after its first line (it was left there, 3 or 4 times in 6). The
    # script runs as itself, held open in that step.
    script = os.path.join(ROOT, "mnist_backward.py")
    module, name = held.split(".")
    code = ("import runpy, sys\nsys.path.insert(0, %r)\nimport %s\n"
            "def holding(*args, **kwargs):\n"
            "    print('held', flush=True)\n"
            "    sys.stdin.readline()  # until the signal (or, were it to do nothing, the test's end)\n"
            "    raise SystemExit('went on after the signal')\n"
            "%s = holding\n"
            "sys.argv = [%r, '--model-dir', 'new/model']\n"
            "runpy.run_path(%r, run_name='__main__')\n" % (ROOT, module, held, script, script))
    proc = popen([sys.executable, "-c", code], cwd=str(tmp_path), env=_env(), stdin=subprocess.PIPE,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert [proc.stdout.readline() for _ in range(2)] == ["Overriding: MODEL_SAVE_PATH = new/model\n", "held\n"]
    assert os.listdir(tmp_path) == ["new"] and os.listdir(tmp_path / "new") == ["model"]  # made before the load
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=300)
    assert (proc.returncode, out, err) == (128 + signum, "", said)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name, taken", [("m", False), ("m", True), ("m[1]", False)])
def test_a_model_dir_replaced_during_training_is_claimed_again(mnist, tmp_path, monkeypatch, name, taken):
    # `mv m m.old` (or rm -r m) while the trainer runs, then perhaps a second trainer on m: the first one's lock
    # stayed on m.old while it went on saving into the new m, beside (and over) the second one's checkpoints.
    # (A name that TensorFlow reads as a pattern is reached through its directory's descriptor: its checkpoints
    # went on into m.old; then they went into the new m, and the five-kept rule deleted m.old's.)
    import fcntl
    from mnist_common import UserError
    import mnist_backward
    model_dir = tmp_path / name
    real_save, calls, other = tf.train.Saver.save, [], []

    def save(self, sess, path, **kwargs):
        calls.append(path)
        if len(calls) == 2:  # the trainer holds the directory there now, and no one else can take it
            fd = os.open(model_dir, os.O_RDONLY | os.O_DIRECTORY)
            try:
                with pytest.raises(BlockingIOError):
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            finally:
                os.close(fd)
        result = real_save(self, sess, path, **kwargs)
        if len(calls) == 1:
            os.rename(model_dir, tmp_path / "m.old")
            if taken:  # a second trainer starts on m, and claims it
                model_dir.mkdir()
                other.append(os.open(model_dir, os.O_RDONLY | os.O_DIRECTORY))
                fcntl.flock(other[0], fcntl.LOCK_EX | fcntl.LOCK_NB)
        return result

    monkeypatch.setattr(tf.train.Saver, "save", save)
    try:
        if taken:
            with pytest.raises(UserError) as e:
                mnist_backward.backward(mnist, steps=150, model_dir=str(model_dir), log_every=100, seed=3)
            assert str(e.value) == ("model directory %s was replaced during training, and the one there now is being "
                                    "trained by another process; training stopped at step 101, not saved" % model_dir)
            assert os.listdir(model_dir) == []  # nothing written into the other trainer's directory
        else:  # nine saves: the five newest are kept
            assert mnist_backward.backward(mnist, steps=150, model_dir=str(model_dir), log_every=20, seed=3) == 150
            assert [checkpoint_step(p) for p in list_checkpoints(str(model_dir))] == [150, 141, 121, 101, 81]
        assert [checkpoint_step(p) for p in list_checkpoints(str(tmp_path / "m.old"))] == [1]
    finally:
        for fd in other:
            os.close(fd)


def test_backward_called_from_code_lets_go_of_its_model_dir(mnist, tmp_path):
    import fcntl
    import threading
    import mnist_backward
    model_dir = tmp_path / "m"
    result = []
    # From a thread other than the main one, where Python lets no signal handler be set (was a ValueError).
    worker = threading.Thread(target=lambda: result.append(
        mnist_backward.backward(mnist, steps=2, model_dir=str(model_dir), seed=3)))
    worker.start()
    worker.join()
    assert result == [2]
    fd = os.open(model_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:  # another trainer may now take the directory (was BlockingIOError: the claim outlived backward())
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
    assert mnist_backward.backward(mnist, steps=3, model_dir=str(model_dir), seed=3) == 3  # and so may this one


def test_main_called_from_code_lets_go_of_its_model_dir(mnist_dir, tmp_path, capsys):
    # main() claims an existing model directory before the data load; called in a notebook, whose kernel goes on,
    # it held it until the kernel was restarted: `python mnist_backward.py` there was refused ("being trained by
    # another process"), with nothing training. So too when it stops early (a bad --batch-size).
    import fcntl
    import mnist_backward
    from mnist_common import UserError
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    for args, done in ((["--steps", "2"], 0), (["--steps", "3", "--batch-size", "60000"], UserError)):
        argv = args + ["--model-dir", str(model_dir), "--data-dir", mnist_dir]
        if done == 0:
            assert mnist_backward.main(argv) == 0
        else:
            with pytest.raises(done):
                mnist_backward.main(argv)
        fd = os.open(model_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:  # another trainer may now take the directory
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    assert [checkpoint_step(p) for p in list_checkpoints(str(model_dir))] == [2, 1]


def test_two_threads_cannot_train_one_model_dir(mnist, tmp_path, monkeypatch):
    import threading
    import mnist_backward
    from mnist_common import UserError
    inside, tried = threading.Event(), threading.Event()
    restore_newest = mnist_backward.restore_newest

    def restore_and_wait(*args):  # the first trainer holds the directory here until the second has tried
        inside.set()
        tried.wait(300)
        return restore_newest(*args)

    monkeypatch.setattr(mnist_backward, "restore_newest", restore_and_wait)
    result = []
    first = threading.Thread(target=lambda: result.append(
        mnist_backward.backward(mnist, steps=2, model_dir=str(tmp_path), seed=3)))
    first.start()
    try:
        assert inside.wait(300)
        # Was let in: the lock is the process's, so both trained the directory, writing the same files.
        with pytest.raises(UserError, match="being trained by another thread of this process"):
            mnist_backward.backward(mnist, steps=2, model_dir=str(tmp_path), seed=3)
    finally:
        tried.set()
        first.join()
    assert result == [2]


def _course_style_graph():
    """The course's own graph, written independently of this package: unnamed variables w1, b1, w2, b2,
    then the global step, then the EMA of the trainable variables."""
    x = tf.placeholder(tf.float32, [None, 784])
    w1 = tf.Variable(tf.truncated_normal([784, 500], stddev=0.1))
    b1 = tf.Variable(tf.zeros([500]))
    w2 = tf.Variable(tf.truncated_normal([500, 10], stddev=0.1))
    b2 = tf.Variable(tf.zeros([10]))
    logits = tf.matmul(tf.nn.relu(tf.matmul(x, w1) + b1), w2) + b2
    return x, logits


def test_checkpoints_move_both_ways_with_course_code(tmp_path, mnist_dir, mnist, trained_model):
    # 1. The course's evaluation graph restores this package's checkpoint (EMA shadows into the variables).
    with tf.Graph().as_default():
        x, logits = _course_style_graph()
        saver = tf.train.Saver(tf.train.ExponentialMovingAverage(0.99).variables_to_restore())
        with tf.Session() as sess:
            saver.restore(sess, tf.train.get_checkpoint_state(trained_model).model_checkpoint_path)
            acc = np.mean(sess.run(logits, {x: mnist.test.images}).argmax(1) == mnist.test.labels.argmax(1))
    assert acc == pytest.approx(ema_accuracy(trained_model, mnist), abs=1e-4)

    # 2. A checkpoint the course's training code writes (its Saver() defaults, a path relative to the
    #    working directory) is resumed by this package's trainer.
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with tf.Graph().as_default():
            _course_style_graph()
            global_step = tf.Variable(0, trainable=False)
            ema_op = tf.train.ExponentialMovingAverage(0.99, global_step).apply(tf.trainable_variables())
            saver = tf.train.Saver()
            with tf.Session() as sess:
                sess.run(tf.global_variables_initializer())
                sess.run([ema_op, tf.assign(global_step, 7)])
                saver.save(sess, "./model/mnist_model", global_step=global_step)
    finally:
        os.chdir(cwd)
    proc = run_script("mnist_backward.py", "--steps", 10, "--model-dir", tmp_path / "model",
                      "--data-dir", mnist_dir)
    assert proc.returncode == 0, proc.stderr
    assert "resuming from step 7" in proc.stdout and "After 10 training step(s)" in proc.stdout

    # 3. The evaluator reads the course-written checkpoint too (the newest, step 10, is this package's).
    os.remove(tmp_path / "model" / "mnist_model-10.index")
    tf.train.update_checkpoint_state(str(tmp_path / "model"), "./model/mnist_model-7")
    proc = run_script("mnist_test.py", "--once", "--model-dir", tmp_path / "model", "--data-dir", mnist_dir)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("After 7 training step(s), test accuracy = ")


def test_seed_makes_training_reproducible(tmp_path, mnist):
    # The same --seed gives the same initial weights and batch order, hence the same checkpoint, bit for bit;
    # another seed gives other weights. (In-process on 3,000 real images, 40 steps, to stay quick.)
    import types
    import input_data
    import mnist_backward

    def train(seed, name):
        data = types.SimpleNamespace(train=input_data.DataSet(mnist.train.images[:3000],
                                                              mnist.train.labels[:3000], seed=seed))
        mnist_backward.backward(data, steps=40, model_dir=str(tmp_path / name), log_every=100, seed=seed)
        reader = tf.train.load_checkpoint(list_checkpoints(str(tmp_path / name))[0])
        return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}

    first, again, other = train(5, "a"), train(5, "b"), train(6, "c")
    assert sorted(first) == sorted(again) == sorted(other)
    assert first["Variable_4"] == 40
    for name in first:
        np.testing.assert_array_equal(first[name], again[name], err_msg=name)
    for name in ("Variable", "Variable_2", "Variable/ExponentialMovingAverage"):
        assert not np.array_equal(first[name], other[name]), name


def test_unwritable_model_dir_is_refused_before_training(mnist_dir, tmp_path):
    model_dir = tmp_path / "read_only"
    model_dir.mkdir()
    model_dir.chmod(0o555)
    # As root, permissions bind only without the capability to override them: drop it for this one command.
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    proc = subprocess.run(drop + [sys.executable, os.path.join(ROOT, "mnist_backward.py"), "--steps", "3",
                                  "--model-dir", str(model_dir), "--data-dir", mnist_dir],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert_no_traceback(proc)
    assert proc.returncode == 1
    assert proc.stderr == "error: cannot write checkpoints in %s (Permission denied)\n" % model_dir
    assert "Training on MNIST" not in proc.stdout and os.listdir(model_dir) == []
