"""The fast training path against the course's feeding, and smoke runs of the benchmarks.

Nothing here is timed: the benchmarks run a handful of steps and are checked to finish and print figures.
"""
import os
import re
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, run_script, assert_no_traceback, _env, popen, fake_optional_extras
from mnist_common import tf, session_config
import input_data
import mnist_backward


def _train(train, batch_size, steps, initial, **graph_options):
    """Runs `steps` training steps from the variable values `initial` (None: draw them); returns the
    per-step losses, the final values of every global variable (by name) and the initial values."""
    with tf.Graph().as_default():
        graph = mnist_backward.TrainingGraph(train, batch_size, **graph_options)
        variables = tf.global_variables()
        with tf.Session(config=session_config()) as sess:
            sess.run(tf.global_variables_initializer())
            if initial is None:
                initial = {v.op.name: sess.run(v) for v in variables}
            else:
                for v in variables:
                    v.load(initial[v.op.name], sess)
            graph.initialize(sess)
            graph.prepare(sess, steps)
            losses = [sess.run([graph.train_op, graph.loss], graph.feed())[1] for _ in range(steps)]
            final = {v.op.name: sess.run(v) for v in variables}
    return losses, final, initial


def test_fast_path_computes_what_the_course_graph_computes(mnist):
    # The trainer's graph fed the course's way (placeholders, next_batch) against its resident data.
    # 1,100 real images in batches of 200: a batch straddles two epochs at step 6, and the learning rate
    # decays every 5.5 steps (staircase), so 23 steps cross several epochs, reshuffles and decays.
    images, labels = mnist.train.images[:1100], mnist.train.labels[:1100]
    steps = 23
    course = input_data.DataSet(images, labels, seed=11)
    fast = input_data.DataSet(images, labels, seed=11)
    course_losses, course_final, initial = _train(course, 200, steps, None, resident=False)
    fast_losses, fast_final, _ = _train(fast, 200, steps, initial, resident=True)

    assert sorted(course_final) == sorted(fast_final) == [
        "Variable", "Variable/ExponentialMovingAverage", "Variable_1", "Variable_1/ExponentialMovingAverage",
        "Variable_2", "Variable_2/ExponentialMovingAverage", "Variable_3", "Variable_3/ExponentialMovingAverage",
        "Variable_4"]
    assert course_final["Variable_4"] == fast_final["Variable_4"] == steps
    np.testing.assert_allclose(fast_losses, course_losses, rtol=1e-5)
    for name in course_final:
        assert not np.array_equal(course_final[name], initial[name])  # training moved every variable
        # Shadows too: both feedings order the moving average after the step (test_ema_follows_the_gradient_step)
        np.testing.assert_allclose(fast_final[name], course_final[name], rtol=1e-4, atol=1e-6, err_msg=name)
    # Both DataSets were asked for the same batches: they are left in the same state.
    np.testing.assert_array_equal(course.next_batch_indices(200), fast.next_batch_indices(200))


def test_ema_follows_the_gradient_step(mnist):
    # Every step, each shadow moves towards the weight *after* that step's update, with the decay
    # min(0.99, (1 + n) / (10 + n)) of the *new* global step n; recomputed here in NumPy from the weights
    # fetched after every step, bit for bit. (Averaging the weights from before the update would be off by
    # about (1 - decay) * one step's change, ~1e-4 here.) The 0.99 is written out here, from SPEC.md.
    train = input_data.DataSet(mnist.train.images[:1000], mnist.train.labels[:1000], seed=3)
    steps = 12
    with tf.Graph().as_default():
        graph = mnist_backward.TrainingGraph(train, 200, resident=True)
        weights = tf.trainable_variables()
        by_name = {v.op.name: v for v in tf.global_variables()}
        averages = [by_name[v.op.name + "/ExponentialMovingAverage"] for v in weights]
        with tf.Session(config=session_config()) as sess:
            sess.run(tf.global_variables_initializer())
            graph.initialize(sess)
            shadows = [np.array(v) for v in sess.run(weights)]  # a shadow starts at its weight's value
            # Steps 1-12, where (1 + n) / (10 + n) sets the decay; then 2001-2004, where it is capped at 0.99.
            for n in list(range(1, steps + 1)) + list(range(2001, 2005)):
                if graph.pending == 0:
                    sess.run(tf.assign(graph.global_step, n - 1))
                    graph.prepare(sess, steps if n == 1 else 4)
                sess.run(graph.train_op, graph.feed())
                # In float32 throughout, as the graph computes it: (1 + n) / (10 + n) and 1 - decay rounded
                # to float32, then (shadow - w), its product with 1 - decay and the difference each rounded.
                n32 = np.float32(n)
                decay = min(np.float32(0.99), (np.float32(1) + n32) / (np.float32(10) + n32))
                for shadow, w in zip(shadows, sess.run(weights)):
                    shadow -= (shadow - w) * (np.float32(1) - decay)
            got = sess.run(averages)
    for name, mine, theirs in zip(["w1", "b1", "w2", "b2"], shadows, got):
        np.testing.assert_array_equal(theirs, mine, err_msg=name)


def test_next_log_step():
    f = mnist_backward._next_log_step
    assert [f(s, 300, 100) for s in (0, 1, 100, 101, 201, 299)] == [1, 101, 101, 201, 300, 300]
    assert f(7, 10, 1000) == 10 and f(0, 5, 1) == 1 and f(3, 5, 1) == 4


def test_train_speed_smoke(mnist_dir):
    proc = run_script("bench/train_speed.py", "--steps", 50, "--variants", "--data-dir", mnist_dir)
    assert_no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for label in ("course loop", "package", "package, course feeding"):
        assert re.search(r"%s.*\d+\.\d steps/s" % label, out), out
    assert re.search(r"package.*x the course loop", out), out
    assert re.search(r"matmul peak.*GFLOP/s", out), out
    # the two again as whole processes, the package's ratio against the course's script
    whole = out.split("whole processes (Python, TensorFlow import and MNIST loading included), "
                      "best of 2 round(s):\n")
    assert len(whole) == 2, out
    assert re.match(r"course loop as a script +50 steps in +\d+\.\d s +\d+\.\d steps/s\n"
                    r"package \(python mnist_backward.py\) +50 steps in +\d+\.\d s +\d+\.\d steps/s "
                    r"+\d\.\d\dx the course loop\n", whole[1]), out


def test_startup_smoke(tmp_path):
    # with a stand-in for each optional extra on the path (each fails as not installed once tried)
    fake_optional_extras(tmp_path)
    proc = run_script("bench/startup.py", "--rounds", 1, env={"PYTHONPATH": str(tmp_path)})
    assert_no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"Loading TensorFlow [0-9][^ ]*, whole processes, best of 1 round\(s\); of the optional "
                        r"extras \(sklearn, IPython, scipy, pandas\) this Python has: sklearn, IPython, scipy, pandas\n"
                        r"plain `import tensorflow.compat.v1` +\d+\.\d\d s\n"
                        r"as the package's programs load it +\d+\.\d\d s  \d+\.\d\dx as fast as the plain import\n",
                        proc.stdout), proc.stdout
    bad = run_script("bench/startup.py", "--rounds", 0)
    assert bad.returncode == 2 and "--rounds must be positive" in bad.stderr


def test_train_speed_ctrl_c_is_one_line(mnist_dir):
    import signal
    from conftest import start_script
    proc = start_script("bench/train_speed.py", "--steps", 10 ** 7, "--rounds", 1, "--no-keras", "--no-torch",
                        "--data-dir", mnist_dir)
    assert proc.stdout.readline().startswith("Training speed, ")  # the course loop is timing now
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert (proc.returncode, err) == (130, "Interrupted.\n")


def test_full_run_smoke(mnist_dir):
    proc = run_script("bench/full_run.py", "--steps", 50, "--data-dir", mnist_dir)
    assert_no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "After 50 training step(s)" in out
    assert re.search(r"steps/s", out), out
    m = re.search(r"test accuracy[^0-9]*([0-9.]+)", out)
    assert m and 0.5 < float(m.group(1)) <= 1.0, out
    assert re.search(r"^evaluate one checkpoint on 10000 test images: \d+ ms \(EmaModel restore \+ probabilities_of\), "
                     r"after building the graph once in \d+ ms$", out, re.M), out
    assert re.search(r"^earlier checkpoints kept, step: test accuracy: 1: [0-9.]+$", out, re.M), out


def test_step_variants_smoke(mnist_dir):
    # spaces after the commas, a name given twice and a trailing comma are taken as meant (they were refused as
    # "unknown variant(s)  resident_ema, ", and a name given twice was timed and printed twice)
    proc = run_script("bench/step_variants.py", "--rounds", 1, "--block", 3, "--variants",
                      "course, resident_ema,xla,course,", "--data-dir", mnist_dir)
    assert_no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    for name in ("course", "resident_ema", "xla"):
        assert len(re.findall(r"^%s +best +\d+\.\d+ +median +\d+\.\d+ ms/step +\d\.\d\dx course$" % name,
                              proc.stdout, re.M)) == 1, proc.stdout
    assert len(proc.stdout.splitlines()) == 4, proc.stdout
    bad = run_script("bench/step_variants.py", "--variants", "course,warp", "--data-dir", mnist_dir)
    assert bad.returncode == 2 and "unknown variant(s) warp" in bad.stderr


def test_full_run_refuses_a_model_dir_holding_checkpoints(trained_model, tmp_path):
    # also when the state file is gone: mnist_backward.py would resume from its mnist_model-<step> files
    kept = tmp_path / "kept"
    shutil.copytree(trained_model, kept)
    for state_file in (True, False):
        if not state_file:
            os.remove(kept / "checkpoint")
        proc = run_script("bench/full_run.py", "--steps", 600, "--model-dir", kept)
        assert (proc.returncode, proc.stdout) == (1, ""), proc.stdout
        assert proc.stderr == "error: %s already holds checkpoints; a full run starts fresh\n" % kept


def test_full_run_course_loop_smoke(mnist_dir):
    proc = run_script("bench/full_run.py", "--steps", 30, "--course", "--data-dir", mnist_dir)
    assert_no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    # The course's loop saves at loop index 0 only in 30 steps (global step 1); full_run adds one at step 30.
    assert re.search(r"^After 30 training step\(s\), test accuracy = [0-9.]+$", proc.stdout, re.M), proc.stdout
    assert re.search(r"^earlier checkpoints kept, step: test accuracy: 1: [0-9.]+$", proc.stdout, re.M), proc.stdout
    assert "course loop, data loading and import left out" in proc.stdout


def test_course_loop_pairs_with_a_seeded_package_run(mnist, tmp_path):
    # full_run.py --course --seed N starts the course's loop from mnist_backward.py --seed N's initial weights
    # and batch order: after the same steps both hold the same weights (the shadows differ a little, as the
    # course's graph orders its moving average by chance) and have drawn the same batches.
    import types
    from full_run import package_initial_values
    from train_speed import course_loop
    from mnist_common import list_checkpoints

    images, labels, steps = mnist.train.images[:2000], mnist.train.labels[:2000], 25
    package = types.SimpleNamespace(train=input_data.DataSet(images, labels, seed=9))
    mnist_backward.backward(package, steps=steps, model_dir=str(tmp_path / "package"), seed=9)
    course = types.SimpleNamespace(train=input_data.DataSet(images, labels, seed=9))
    initial = package_initial_values(course.train, 9)
    course_loop(course, steps, str(tmp_path / "course"), final_save=True, initial=initial)

    ours, theirs = (tf.train.load_checkpoint(list_checkpoints(str(tmp_path / d))[0]) for d in ("package", "course"))
    assert ours.get_tensor("Variable_4") == theirs.get_tensor("Variable_4") == steps
    for name in ("Variable", "Variable_1", "Variable_2", "Variable_3"):
        assert not np.array_equal(ours.get_tensor(name), initial[name])
        np.testing.assert_allclose(ours.get_tensor(name), theirs.get_tensor(name), rtol=1e-4, atol=1e-6,
                                   err_msg=name)
    np.testing.assert_array_equal(package.train.next_batch_indices(200), course.train.next_batch_indices(200))


def test_full_run_refuses_a_seed_the_trainer_cannot_take(tmp_path, mnist_dir):
    # --course used the seed in this process (NumPy's SeedSequence: a traceback for -1); without it the trainer
    # refused it, after full_run had started it. Both are one usage error now, before anything runs.
    for args in (["--course", "--seed", -1], ["--seed", 2 ** 63]):
        proc = run_script("bench/full_run.py", "--steps", 2, "--model-dir", tmp_path / "m", "--data-dir", mnist_dir,
                          *args)
        assert_no_traceback(proc)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.splitlines()[-1] == ("full_run.py: error: --seed must be a whole number from 0 to "
                                                "2**63 - 1, got %d" % args[-1]), proc.stderr
        assert proc.stdout == "" and not (tmp_path / "m").exists()


def test_full_run_course_refuses_a_model_dir_that_is_a_file(tmp_path, mnist_dir):
    # the course's loop trained first, then its Saver failed with a traceback
    path = tmp_path / "file"
    path.write_text("")
    proc = run_script("bench/full_run.py", "--steps", 2, "--course", "--model-dir", path, "--data-dir", mnist_dir)
    assert_no_traceback(proc)
    assert (proc.returncode, proc.stdout) == (1, ""), proc.stdout
    assert proc.stderr == "error: model directory %s is not a directory\n" % path


def test_app_bench_refuses_a_negative_seed(trained_model, mnist_dir):
    proc = run_script("bench/app_bench.py", "--model-dir", trained_model, "--data-dir", mnist_dir, "--count", 1,
                      "--framing-count", 0, "--sklearn-count", 0, "--speed-count", 1, "--seed", -1)
    assert_no_traceback(proc)
    assert (proc.returncode, proc.stdout) == (2, ""), proc.stdout
    assert proc.stderr.splitlines()[-1] == "app_bench.py: error: --seed must not be negative, got -1"


def _run_bench_in(directory, script, *args):
    """Runs `python bench/script args...` from directory (not the checkout); returns the CompletedProcess."""
    return subprocess.run([sys.executable, os.path.join(ROOT, "bench", script), *map(str, args)], cwd=directory,
                          env=_env(), capture_output=True, text=True, timeout=600)


def test_full_run_takes_relative_paths_from_where_it_is_run(tmp_path, mnist_dir):
    # The trainer ran in the checkout: it read the data and wrote the model there, and full_run then found no
    # checkpoint where it had been told (an IndexError's traceback).
    os.symlink(mnist_dir, tmp_path / "mnist")
    name = "full_run_model_%d" % os.getpid()
    try:
        proc = _run_bench_in(tmp_path, "full_run.py", "--steps", 2, "--model-dir", name, "--data-dir", "mnist")
    finally:
        shutil.rmtree(os.path.join(ROOT, name), ignore_errors=True)
    assert_no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^After 2 training step\(s\), test accuracy = [0-9.]+$", proc.stdout, re.M), proc.stdout
    assert (tmp_path / name / "mnist_model-2.index").exists()


def test_app_bench_takes_relative_paths_from_where_it_is_run(tmp_path, trained_model, mnist_dir):
    # Its speed part ran the app in the checkout, where a relative --model-dir named no model (or another one).
    shutil.copytree(trained_model, tmp_path / "model")
    proc = _run_bench_in(tmp_path, "app_bench.py", "--model-dir", "model", "--data-dir", mnist_dir, "--count", 1,
                         "--framing-count", 0, "--sklearn-count", 0, "--speed-count", 2)
    assert_no_traceback(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "mnist_app.py is" in proc.stdout and "(same predictions: 100%)" in proc.stdout, proc.stdout


@pytest.mark.parametrize("signum, status, err", [(signal.SIGINT, 130, "Interrupted.\n"), (signal.SIGTERM, 143, "")])
def test_train_speed_signal_while_the_package_trains_ends_as_elsewhere(mnist_dir, monkeypatch, capsys, signum,
                                                                        status, err):
    # backward() turns Ctrl+C and SIGTERM into a checkpoint and a TrainingInterrupted, which reached the user
    # as a traceback when it came while train_speed.py was timing the package in its own process.
    import train_speed
    from mnist_common import run_main
    prepare = mnist_backward.TrainingGraph.prepare

    def prepare_then_signal(self, sess, n):
        os.kill(os.getpid(), signum)  # handled by backward(): it only sets a flag
        return prepare(self, sess, n)

    monkeypatch.setattr(mnist_backward.TrainingGraph, "prepare", prepare_then_signal)
    with pytest.raises(SystemExit) as e:
        run_main(lambda: train_speed.main(["--steps", "5", "--rounds", "1", "--no-keras", "--no-torch",
                                           "--no-processes", "--data-dir", mnist_dir]))
    assert e.value.code == status
    out, error = capsys.readouterr()
    assert error == err and out.startswith("Training speed, 5 steps each") and "package" not in out, out


@pytest.mark.parametrize("flag", ["--count", "--framing-count", "--speed-count"])
def test_app_bench_refuses_more_pictures_than_test_digits(trained_model, mnist_dir, flag):
    # each picture is drawn from a test digit of its own: NumPy's "Cannot take a larger sample than population"
    # came as a traceback, for --speed-count after the other parts had run
    counts = {"--count": 1, "--framing-count": 0, "--sklearn-count": 0, "--speed-count": 1, flag: 10001}
    proc = run_script("bench/app_bench.py", "--model-dir", trained_model, "--data-dir", mnist_dir,
                      *[str(a) for item in counts.items() for a in item])
    assert_no_traceback(proc)
    assert (proc.returncode, proc.stdout) == (1, ""), proc.stdout
    assert proc.stderr == "error: %s 10001 is more than the 10000 test images in %s\n" % (flag, mnist_dir)


def _kill_processes_naming(text):
    """SIGKILLs the processes whose command line holds text (a test's own children, left running by a failure)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                named = text.encode() in f.read()
            if named:
                os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass


@pytest.mark.parametrize("signum, whole_group", [(signal.SIGTERM, False), (signal.SIGTERM, True),
                                                 (signal.SIGHUP, False)])
def test_full_run_sigterm_leaves_no_trainer_and_no_temporary_directory(mnist_dir, signum, whole_group):
    # `kill PID` (full_run alone) or `timeout` (its whole process group): full_run died at once and left its
    # temporary model directory behind, with the trainer, unless signalled too, training on in it
    proc = popen([sys.executable, os.path.join(ROOT, "bench", "full_run.py"), "--steps", str(10 ** 6),
                  "--data-dir", mnist_dir], cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, text=True, start_new_session=True)
    command = proc.stdout.readline()
    assert command.startswith("$ "), command + proc.stderr.read()
    model_dir = command.split(" --model-dir ")[1].split(" --data-dir ")[0]
    try:
        for line in proc.stdout:
            if line.startswith("After 1 training step(s)"):
                break
        if whole_group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 128 + signum, err
        assert out.startswith(mnist_backward.SIGNAL_WORDS.get(signum, "Terminated") + " at step "), out
        assert out.count("\n") == 1, out
        assert not os.path.exists(model_dir)
    finally:
        _kill_processes_naming(model_dir)
        shutil.rmtree(model_dir, ignore_errors=True)


@pytest.mark.parametrize("signum, status, err", [(signal.SIGTERM, 143, ""), (signal.SIGINT, 130, "Interrupted.\n"),
                                                 (signal.SIGHUP, 129, "")])
@pytest.mark.parametrize("how", ["dropped", "printed", "turned"])
def test_train_speed_stops_on_a_signal_whose_exception_was_lost(mnist_dir, lose_a_signal, capsys, signum, status, err,
                                                                how):
    # Python raises the signal's exception in whatever code runs, and TensorFlow's C++ code calling back into
    # Python can print it and carry on (seen in CI, a Ctrl+C while the course loop built its graph): it trained on;
    # or its pybind11 layer turns it into a RuntimeError: a traceback and status 1
    import train_speed
    from mnist_common import run_main, exit_on_stop_signals
    lose_a_signal(signum, how)
    exit_on_stop_signals()
    with pytest.raises(SystemExit) as e:
        run_main(lambda: train_speed.main(["--steps", "300", "--rounds", "1", "--no-keras", "--no-torch",
                                           "--no-processes", "--data-dir", mnist_dir]))
    out, error = capsys.readouterr()
    assert e.value.code == status, out + error
    assert error == err and out.startswith("Training speed, 300 steps each") and "course loop" not in out, out


@pytest.mark.parametrize("signum, status, err", [(signal.SIGTERM, 143, ""), (signal.SIGINT, 130, "Interrupted.\n"),
                                                 (signal.SIGHUP, 129, "")])
def test_train_speed_sigterm_removes_its_temporary_directories(mnist_dir, tmp_path, signum, status, err):
    # it died at once, leaving the model directories of its rounds behind in $TMPDIR; and a signal sent on its
    # first line (as here) came while tempfile was making the directory, which was left behind
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    proc = popen([sys.executable, os.path.join(ROOT, "bench", "train_speed.py"), "--steps", str(10 ** 7),
                  "--rounds", "1", "--no-keras", "--no-torch", "--no-processes", "--data-dir", mnist_dir],
                 cwd=ROOT, env=_env({"TMPDIR": str(temporary)}), stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("Training speed, ")  # the course loop is timing now
        proc.send_signal(signum)
        out, said = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert (proc.returncode, out, said) == (status, "", err)
    assert os.listdir(temporary) == []


@pytest.mark.parametrize("how", ["dropped", "printed"])
def test_app_bench_stops_on_a_signal_whose_exception_was_lost(trained_model, mnist_dir, tmp_path, lose_a_signal,
                                                              monkeypatch, capsys, how):
    # lost while the model's graph was built (mnist_forward.forward), it read and scored its pictures on
    import app_bench
    import mnist_app
    import tempfile
    from mnist_common import run_main, exit_on_stop_signals
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(mnist_app, "_models", {})  # (a model this process built before: its graph is built again)
    lose_a_signal(signal.SIGTERM, how)
    exit_on_stop_signals()
    with pytest.raises(SystemExit) as e:
        run_main(lambda: app_bench.main(["--model-dir", trained_model, "--data-dir", mnist_dir, "--count", "30",
                                         "--framing-count", "0", "--sklearn-count", "0", "--speed-count", "1"]))
    out, err = capsys.readouterr()
    assert (e.value.code, err) == (143, ""), out + err
    assert out.startswith("model: ") and "accuracy" not in out, out
    assert os.listdir(tmp_path) == []  # its folder of pictures removed


def test_app_bench_stops_drawing_framed_pictures_on_a_signal_whose_exception_was_lost(trained_model, mnist_dir,
                                                                                       tmp_path, monkeypatch):
    # a stop signal lost just before the framing part: it drew every framed picture (1,420 at the default
    # count, twenty of them 12-megapixel JPEGs) before its scoring stopped the run
    import app_bench
    import mnist_common
    import tempfile
    from PIL import Image
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(mnist_common, "_stop_signals", [])
    accuracy_report = app_bench.accuracy_report

    def then_a_lost_signal(*args):
        accuracy_report(*args)
        mnist_common._stop_signals.append(signal.SIGTERM)  # noted by the handler, its SystemExit lost
    monkeypatch.setattr(app_bench, "accuracy_report", then_a_lost_signal)
    saved, save = [], Image.Image.save
    monkeypatch.setattr(Image.Image, "save",
                        lambda self, path, *a, **k: saved.append(path) or save(self, path, *a, **k))
    with pytest.raises(SystemExit) as e:
        app_bench.main(["--model-dir", trained_model, "--data-dir", mnist_dir, "--count", "2", "--framing-count", "30",
                        "--sklearn-count", "0", "--speed-count", "1"])
    assert e.value.code == 143
    assert len(saved) == 2  # the accuracy part's two pictures; no framed one
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_app_bench_sigterm_removes_its_pictures(trained_model, mnist_dir, tmp_path, signum):
    # it died at once, leaving the folder of pictures it was reading behind in $TMPDIR
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    proc = popen([sys.executable, os.path.join(ROOT, "bench", "app_bench.py"), "--model-dir", trained_model,
                  "--data-dir", mnist_dir, "--count", "100", "--framing-count", "0", "--sklearn-count",
                  "0", "--speed-count", "1"], cwd=ROOT,
                 env=_env({"TMPDIR": str(temporary), "PYTHONUNBUFFERED": "1"}), stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if line.startswith("accuracy: "):  # written, being read now
                break
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert (proc.returncode, err) == (128 + signum, "")
    assert os.listdir(temporary) == []


def test_course_loop_leaves_the_tensorflow_import_out_of_its_time(tmp_path, monkeypatch):
    # Its time leaves `import tensorflow` out (full_run.py --course prints so). The benchmarks load TensorFlow
    # at its first use, which for full_run.py --course without --seed was inside that time: 3 s of import.
    import types
    import mnist_common
    import train_speed
    events = []
    load_tf = mnist_common.load_tf
    monkeypatch.setattr(mnist_common, "tf", mnist_common._TensorFlow("tensorflow.compat.v1"))  # nothing looked up
    monkeypatch.setattr(mnist_common, "load_tf", lambda: events.append("load") or load_tf())
    monkeypatch.setattr(train_speed, "time", types.SimpleNamespace(time=lambda: events.append("clock") or 0.0))
    labels = np.eye(10, dtype=np.float32)
    train = types.SimpleNamespace(num_examples=1000, next_batch=lambda n: (np.zeros((n, 784), np.float32),
                                                                           labels[np.arange(n) % 10]))
    train_speed.course_loop(types.SimpleNamespace(train=train), 1, str(tmp_path))
    assert events[0] == "load" and "clock" in events, events


def test_full_run_leaves_the_tensorflow_import_out_of_the_evaluation_times(trained_model, mnist_dir, monkeypatch,
                                                                           capsys):
    # "after building the graph once in N ms" is the graph's own time, not TensorFlow's import (3 s), which the
    # scripts and the benchmarks do at their first use of it: the import comes before the first clock reading.
    import types
    import mnist_common
    import full_run
    events = []
    load_tf = mnist_common.load_tf
    monkeypatch.setattr(mnist_common, "tf", mnist_common._TensorFlow("tensorflow.compat.v1"))  # nothing looked up
    monkeypatch.setattr(mnist_common, "load_tf", lambda: events.append("load") or load_tf())
    monkeypatch.setattr(full_run, "time", types.SimpleNamespace(time=lambda: events.append("clock") or 0.0))
    full_run.score(trained_model, mnist_dir)
    assert events[0] == "load" and events.count("clock") == 4, events
    out = capsys.readouterr().out
    assert re.match(r"After 500 training step\(s\), test accuracy = 0\.\d+\n"
                    r"evaluate one checkpoint on 10000 test images: 0 ms .*, after building the graph once in 0 ms\n"
                    r"earlier checkpoints kept, step: test accuracy: 401: 0\.\d+, 301: 0\.\d+, 201: 0\.\d+, "
                    r"101: 0\.\d+\n$", out), out


@pytest.mark.parametrize("variants", ["", ",", " , "])
def test_step_variants_refuses_a_list_of_no_variant(variants, tmp_path, capsys):
    # "" (an empty shell variable, say) ran all eight variants, the benchmark's longest run, as if none were given
    import step_variants
    (tmp_path / "file").write_text("")  # a data directory that fails at once, should the list be taken
    with pytest.raises(SystemExit) as e:
        step_variants.main(["--variants", variants, "--data-dir", str(tmp_path / "file")])
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(" error: --variants names no variant")
