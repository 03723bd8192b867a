"""The default training run, start to finish:  python bench/full_run.py [--steps 50000] [--seed N] [--course]

Runs `python mnist_backward.py` (the whole process, as a user runs it) into a temporary model directory,
then evaluates the last checkpoint once on the 10,000 test images with the moving-average weights
(mnist_common.EmaModel, what mnist_test.py and mnist_app.py use), and prints the wall time, steps/s, the
test accuracy and how long evaluating one checkpoint takes; then the accuracy of the earlier checkpoints
kept. --course trains with the course's own loop instead, to compare the accuracy the two reach; it also
saves after the last step, so both are scored after the same number of steps (the course's own last
checkpoint, 49001, is among the earlier ones). With --seed N, --course starts from the very initial weights
and batch order that `mnist_backward.py --seed N` starts from, so the two runs can be compared one to one.
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(1, os.path.dirname(os.path.abspath(__file__)))  # train_speed, for --course


def package_initial_values(train, seed):
    """{variable name: value} that mnist_backward.backward(..., seed=seed) initialises its variables to.

    It builds the trainer's graph the way backward() does (graph seed, then TrainingGraph), so every random
    op gets the same seed and draws the same values.
    """
    from mnist_common import tf
    import mnist_backward
    with tf.Graph().as_default():
        tf.set_random_seed(seed)
        mnist_backward.TrainingGraph(train, mnist_backward.BATCH_SIZE)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            return {v.op.name: sess.run(v) for v in tf.global_variables()}


def run_trainer(command):
    """Runs the trainer in this working directory (the paths given are relative to it) and returns its status.

    SIGTERM or SIGHUP meanwhile (a SystemExit: exit_on_stop_signals) is passed on to the trainer, which saves and
    ends, and is raised again here once it has: the temporary model directory is neither removed under a trainer
    still writing to it nor left behind. Ctrl+C, which the terminal sends the trainer too, ends it as
    subprocess.call does.
    """
    with subprocess.Popen(command) as trainer:
        try:
            return trainer.wait()
        except SystemExit as e:  # SIGTERM or SIGHUP, its status 128 + the signal's number
            trainer.send_signal(signal.Signals(e.code - 128))  # (again if `timeout` signalled it too: a flag it sets)
            trainer.wait()
            raise
        except BaseException:  # Ctrl+C: wait() gave it a quarter of a second to end on its own
            trainer.kill()
            raise


def score(model_dir, data_dir):
    """Prints the test accuracy of the newest checkpoint in model_dir (the evaluator's own line), how long
    restoring and scoring it took, and the accuracy of the earlier checkpoints kept."""
    import input_data
    from mnist_common import EmaModel, list_checkpoints, checkpoint_step, load_tf
    from mnist_test import accuracy, evaluate  # the evaluator's own scoring and printed line
    mnist = input_data.read_test_set(data_dir, one_hot=True)  # as mnist_test.main
    load_tf()  # (TensorFlow loads at its first use: its import is not the graph's time)
    t = time.time()
    model = EmaModel()
    built = time.time() - t
    try:
        checkpoints = list_checkpoints(model_dir)
        t = time.time()
        evaluate(model, mnist, checkpoints[0])
        evaluated = time.time() - t
        print("evaluate one checkpoint on %d test images: %.0f ms (EmaModel restore + probabilities_of), "
              "after building the graph once in %.0f ms" % (mnist.test.num_examples, evaluated * 1e3, built * 1e3))
        earlier = []
        for prefix in checkpoints[1:]:
            model.restore(prefix)
            earlier.append("%d: %g" % (checkpoint_step(prefix), accuracy(model, mnist)))
        if earlier:
            print("earlier checkpoints kept, step: test accuracy: " + ", ".join(earlier))
    finally:
        model.close()


def main(argv=None):
    import input_data  # numpy only: light enough for --help
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=input_data.HelpFormatter)
    p.add_argument("--steps", type=int, default=50000, help="training steps")
    p.add_argument("--data-dir", default=None, help=input_data.DATA_DIR_HELP)
    p.add_argument("--model-dir", default=None, type=input_data.expand_user,
                   help="keep the trained model here (default: a temporary directory, removed at the end); "
                        "it must not hold a checkpoint already")
    p.add_argument("--seed", type=int, default=None,
                   help="passed to mnist_backward.py; with --course, the course's loop starts from the same "
                        "initial weights and batch order as mnist_backward.py --seed N (default: none, a random start)")
    p.add_argument("--course", action="store_true",
                   help="train with the course's own loop as written (bench/train_speed.py's course_loop: "
                        "checkpoints at steps 1, 1001, 2001, ..., plus one after the last step; a random start "
                        "unless --seed) instead of mnist_backward.py")
    args = p.parse_args(argv)
    if args.steps < 1:
        p.error("--steps must be positive")
    if args.seed is not None and not 0 <= args.seed < 2 ** 63:  # as mnist_backward.py takes it
        p.error("--seed must be a whole number from 0 to 2**63 - 1, got %d" % args.seed)

    data_dir = input_data.resolve_data_dir(args.data_dir)
    if args.model_dir is not None:  # (mnist_backward.py checks it too, but the course's loop would train first)
        from mnist_common import check_model_dir
        check_model_dir(args.model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model_dir or tmp
        # A state file, or checkpoints without one (the trainer resumes from its own mnist_model-<step> files)
        if os.path.exists(os.path.join(model_dir, "checkpoint")) or (
                os.path.isdir(model_dir) and any(n.endswith(".index") for n in os.listdir(model_dir))):
            sys.exit("error: %s already holds checkpoints; a full run starts fresh" % model_dir)
        command = [sys.executable, os.path.join(ROOT, "mnist_backward.py"), "--model-dir", model_dir,
                   "--data-dir", data_dir]
        if args.steps != 50000:
            command += ["--steps", str(args.steps)]
        if args.seed is not None:
            command += ["--seed", str(args.seed)]
        if args.course:
            from train_speed import course_loop
            mnist = input_data.read_data_sets(data_dir, one_hot=True, seed=args.seed)  # as mnist_backward.main
            initial = None if args.seed is None else package_initial_values(mnist.train, args.seed)
            print("course loop: %d steps into %s%s" % (args.steps, model_dir, "" if initial is None else
                  ", from mnist_backward.py --seed %d's initial weights and batch order" % args.seed), flush=True)
            _, seconds = course_loop(mnist, args.steps, model_dir, final_save=True, initial=initial)
            print("training: %d steps in %.1f s (course loop, data loading and import left out), %.1f steps/s"
                  % (args.steps, seconds, args.steps / seconds), flush=True)
        else:
            print("$ " + " ".join(command), flush=True)
            start = time.time()
            status = run_trainer(command)
            wall = time.time() - start
            if status != 0:
                print("training failed with status %d" % status)
                return 1
            print("training: %d steps in %.1f s wall time (whole process, TensorFlow import included), "
                  "%.1f steps/s" % (args.steps, wall, args.steps / wall), flush=True)

        score(model_dir, data_dir)
    return 0


if __name__ == "__main__":
    from mnist_common import run_main, exit_on_stop_signals  # bad input (missing MNIST, ...): one line, no traceback
    exit_on_stop_signals()  # SIGTERM, SIGHUP: 143, 129 through the clean-up of its model directory, trainer ended first
    run_main(main)
