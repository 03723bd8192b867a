"""Training speed, back to back in one run:  python bench/train_speed.py [--steps 6000] [--data-dir DIR]

1. course loop: the course's mnist_backward loop as written (placeholders and feed_dict, one
   mnist.train.next_batch per step, loss and global step fetched every step, a save every 1000; its progress
   line is left out).
2. package: mnist_backward.backward() as the script runs it (its default, fast training path).
   --variants adds the package trainer with the course's feeding in place of the resident data.
3. Keras 3 model.fit on the same model and schedule, in a separate process (Keras needs TF2 behaviour,
   which this process has switched off), when Keras is importable.
4. PyTorch eager on the same model, schedule, batches and EMA, in a separate process, when torch is
   importable (it is not a requirement of the package: `pip install torch` to include it).

(1) and (2) run --rounds times, alternating, and the best round of each is reported, so that a moment of
load from something else on the machine does not decide the ratio.

Each figure covers graph building, session start, checkpointing and the training itself (data loading and
`import tensorflow` are common to all and left out). Then (1) and (2) again as whole processes, timed from
their start to their end (Python, `import tensorflow`, loading MNIST included), also alternating, best of
--rounds: (1) a process running the course's loop (this file with --course-worker), (2) `python
mnist_backward.py`. The matmul peak is measured here too, for the step's own shapes, to show how close a
step comes to what the machine can do.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# The dense-equivalent work of one step at batch 200: forward x@w1, h@w2; backward x^T@dh, h^T@dy, dy@w2^T.
B, I, H, O = 200, 784, 500, 10
STEP_FLOP = 2 * (B * I * H + B * H * O) + 2 * (I * B * H + H * B * O + B * O * H)
STEPS_PER_EPOCH = 275


def keras_worker(steps, data_dir):
    """Keras 3 model.fit on the same model and schedule; prints one JSON line {"steps", "seconds"}."""
    import input_data
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    mnist = input_data.read_data_sets(data_dir, one_hot=True, seed=0)
    x, y = mnist.train.images, mnist.train.labels.argmax(axis=1)
    start = time.time()
    init = keras.initializers.TruncatedNormal(stddev=0.1)
    reg = keras.regularizers.L2(0.0001 / 2)  # Keras's L2 is l2 * sum(w**2); the course's is 1e-4 * sum(w**2) / 2
    model = keras.Sequential([keras.Input((I,)),
                              keras.layers.Dense(H, "relu", kernel_initializer=init, kernel_regularizer=reg),
                              keras.layers.Dense(O, kernel_initializer=init, kernel_regularizer=reg)])
    lr = keras.optimizers.schedules.ExponentialDecay(0.1, STEPS_PER_EPOCH, 0.99, staircase=True)
    model.compile(optimizer=keras.optimizers.SGD(lr, use_ema=True, ema_momentum=0.99),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    per_epoch = min(steps, STEPS_PER_EPOCH)
    epochs = -(-steps // per_epoch)
    model.fit(x, y, batch_size=B, epochs=epochs, steps_per_epoch=per_epoch, shuffle=True, verbose=0)
    print(json.dumps({"steps": epochs * per_epoch, "seconds": time.time() - start}))


def torch_worker(steps, data_dir):
    """PyTorch eager on the same model, schedule, batches and EMA; prints one JSON line {"steps", "seconds"}."""
    import numpy as np
    import torch
    import input_data
    torch.set_num_threads(os.cpu_count() or 1)
    mnist = input_data.read_data_sets(data_dir, one_hot=False, seed=0)
    start = time.time()
    w1 = torch.nn.init.trunc_normal_(torch.empty(I, H), std=0.1, a=-0.2, b=0.2).requires_grad_()
    b1 = torch.zeros(H, requires_grad=True)
    w2 = torch.nn.init.trunc_normal_(torch.empty(H, O), std=0.1, a=-0.2, b=0.2).requires_grad_()
    b2 = torch.zeros(O, requires_grad=True)
    params = [w1, b1, w2, b2]
    shadows = [p.detach().clone() for p in params]
    for step in range(steps):
        xs, ys = mnist.train.next_batch(B)
        x, y = torch.from_numpy(xs), torch.from_numpy(ys.astype(np.int64))
        logits = torch.relu(x @ w1 + b1) @ w2 + b2
        loss = torch.nn.functional.cross_entropy(logits, y) + 0.0001 * ((w1 ** 2).sum() + (w2 ** 2).sum()) / 2
        for p in params:
            p.grad = None
        loss.backward()
        lr = 0.1 * 0.99 ** (step // STEPS_PER_EPOCH)
        decay = min(0.99, (1 + step) / (10 + step))
        with torch.no_grad():
            for p, s in zip(params, shadows):
                p -= lr * p.grad
                s -= (1 - decay) * (s - p)
    print(json.dumps({"steps": steps, "seconds": time.time() - start}))


def course_loop(mnist, steps, model_dir, final_save=False, initial=None):
    """The course's training loop, as written; returns (steps, seconds).

    For bench/full_run.py: final_save=True also saves after the last step, which the course's loop does not
    (its last checkpoint is step 49001 of 50000), so that its state after `steps` steps can be scored too;
    initial ({variable name: value}) replaces the random initial values.
    """
    from mnist_common import tf, session_config, load_tf, check_stop
    import mnist_backward as mb
    import mnist_forward
    load_tf()  # (TensorFlow loads at its first use: its import is not the loop's time)
    start = time.time()
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [None, mnist_forward.INPUT_NODE])
        y_ = tf.placeholder(tf.float32, [None, mnist_forward.OUTPUT_NODE])
        y = mnist_forward.forward(x, mb.REGULARIZER)
        global_step = tf.Variable(0, trainable=False)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(logits=y, labels=tf.argmax(y_, 1))
        loss = tf.reduce_mean(ce) + tf.add_n(tf.get_collection("losses"))
        learning_rate = tf.train.exponential_decay(mb.LEARNING_RATE_BASE, global_step,
                                                   mnist.train.num_examples / B, mb.LEARNING_RATE_DECAY,
                                                   staircase=True)
        train_step = tf.train.GradientDescentOptimizer(learning_rate).minimize(loss, global_step=global_step)
        ema = tf.train.ExponentialMovingAverage(mb.MOVING_AVERAGE_DECAY, global_step)
        ema_op = ema.apply(tf.trainable_variables())
        with tf.control_dependencies([train_step, ema_op]):
            train_op = tf.no_op(name="train")
        saver = tf.train.Saver()
        with tf.Session(config=session_config()) as sess:
            sess.run(tf.global_variables_initializer())
            for v in tf.global_variables() if initial else []:
                v.load(initial[v.op.name], sess)
            for i in range(steps):
                check_stop()  # (a stop signal whose exception TensorFlow lost; well under a microsecond)
                xs, ys = mnist.train.next_batch(B)
                _, loss_value, step = sess.run([train_op, loss, global_step], feed_dict={x: xs, y_: ys})
                if i % 1000 == 0:
                    saver.save(sess, os.path.join(model_dir, mb.MODEL_NAME), global_step=global_step)
            if final_save and (steps - 1) % 1000 != 0:
                saver.save(sess, os.path.join(model_dir, mb.MODEL_NAME), global_step=global_step)
    return steps, time.time() - start


def course_worker(steps, data_dir, model_dir):
    """The course's script in a process of its own: TensorFlow loaded, MNIST read, course_loop trained."""
    import input_data
    mnist = input_data.read_data_sets(data_dir, one_hot=True)
    course_loop(mnist, steps, model_dir)


def importable(module):
    """Whether this Python can import the top-level package `module` (found, not imported)."""
    import importlib.util
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:  # (a module of that name imported already, without a spec)
        return False


def process_seconds(command):
    """Wall time of a whole process running command (its output discarded), or a reason string if it failed."""
    start = time.time()
    proc = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.time() - start
    if proc.returncode != 0:
        return "failed with status %d (%s)" % (proc.returncode, (proc.stderr.strip().splitlines() or ["?"])[-1])
    return seconds


def package(mnist, steps, model_dir, **switches):
    """mnist_backward.backward() with its printed lines silenced; returns (steps, seconds)."""
    import contextlib
    import io
    import mnist_backward as mb
    saved = {name: getattr(mb, name) for name in switches}
    try:
        for name, value in switches.items():
            setattr(mb, name, value)
        start = time.time()
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                mb.backward(mnist, steps, B, model_dir)
            except mb.TrainingInterrupted as e:  # Ctrl+C, SIGTERM, SIGHUP: ended as they end the rest of this script
                if e.signum == signal.SIGINT:
                    raise KeyboardInterrupt from None
                raise SystemExit(128 + e.signum) from None
        return steps, time.time() - start
    finally:
        for name, value in saved.items():
            setattr(mb, name, value)


def matmul_peak():
    """Best GFLOP/s of TensorFlow's fp32 matmul for the step's two big products (x@w1 and x^T@dh)."""
    import numpy as np
    from mnist_common import tf, session_config
    rng = np.random.default_rng(0)
    with tf.Graph().as_default():
        x = tf.Variable(rng.random((B, I), dtype=np.float32))
        w = tf.Variable(rng.random((I, H), dtype=np.float32))
        dh = tf.Variable(rng.random((B, H), dtype=np.float32))
        # Summing into a scalar keeps the fetch small; the reductions cost ~1% of a product.
        products = [tf.reduce_sum(tf.matmul(x, w)), tf.reduce_sum(tf.matmul(x, dh, transpose_a=True))]
        with tf.Session(config=session_config()) as sess:
            sess.run(tf.global_variables_initializer())
            best = []
            for p in products:
                for _ in range(10):
                    sess.run(p)
                times = []
                for _ in range(5):
                    t = time.perf_counter()
                    for _ in range(20):
                        sess.run(p)
                    times.append((time.perf_counter() - t) / 20)
                best.append(2 * B * I * H / min(times) / 1e9)
    return max(best)


def worker_rate(kind, steps, data_dir):
    """Runs keras_worker or torch_worker in a fresh process; returns (steps, seconds), or a reason string."""
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--%s-worker" % kind, "--steps",
                           str(steps), "--data-dir", data_dir], capture_output=True, text=True)
    try:
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        return r["steps"], r["seconds"]
    except (ValueError, IndexError, KeyError):
        return "failed (%s)" % (proc.stderr.strip().splitlines() or ["?"])[-1]


def main(argv=None):
    import input_data  # numpy only: light enough for --help
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=input_data.HelpFormatter)
    p.add_argument("--steps", type=int, default=6000, help="training steps for each contender")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds of (1) and (2); the best counts")
    p.add_argument("--data-dir", default=None, help=input_data.DATA_DIR_HELP)
    p.add_argument("--no-keras", action="store_true", help="skip Keras")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    p.add_argument("--variants", action="store_true",
                   help="also time the package trainer with the course's feeding (no resident data)")
    p.add_argument("--no-processes", action="store_true",
                   help="skip the whole-process timing of the course loop and the package")
    p.add_argument("--keras-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--course-worker", metavar="MODEL_DIR", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.steps < 1 or args.rounds < 1:
        p.error("--steps and --rounds must be positive")

    data_dir = input_data.resolve_data_dir(args.data_dir)
    if args.keras_worker:
        keras_worker(args.steps, data_dir)
        return 0
    if args.torch_worker:
        torch_worker(args.steps, data_dir)
        return 0
    if args.course_worker:
        course_worker(args.steps, data_dir, args.course_worker)
        return 0

    from mnist_common import tf
    # (The trainers' modules are imported before the first line, not at their first run: a SIGTERM sent on
    # seeing that line landed while Python compiled mnist_backward.py for its import, as it does at every run
    # under PYTHONDONTWRITEBYTECODE, and its SystemExit was lost there: the course loop trained on.)
    __import__("mnist_backward")
    mnist = input_data.read_data_sets(data_dir, one_hot=True, seed=0)
    contenders = [("course loop (feed_dict, fetch every step)", course_loop, {}),
                  ("package (mnist_backward.backward)", package, {})]
    if args.variants:
        contenders.append(("package, course feeding", package, {"RESIDENT_DATA": False}))
    best = {}
    with tempfile.TemporaryDirectory() as tmp:
        # (the first line once the directory is there: a SIGTERM or Ctrl+C on seeing it ends the run through
        # the directory's clean-up, not inside tempfile's making of it, which would leave it behind)
        print("Training speed, %d steps each, batch %d, %d CPU cores, TensorFlow %s, best of %d round(s)" %
              (args.steps, B, os.cpu_count(), tf.__version__, args.rounds), flush=True)
        for r in range(args.rounds):
            for i, (label, run, switches) in enumerate(contenders):
                steps, seconds = run(mnist, args.steps, os.path.join(tmp, "%d-%d" % (r, i)), **switches)
                if label not in best or seconds < best[label][1]:
                    best[label] = (steps, seconds)
    results = []

    def report(label, steps, seconds, baseline):
        """Prints a contender's line, with its ratio to the baseline steps/s (None: the baseline itself)."""
        rate = steps / seconds
        line = "%-44s %6d steps in %6.1f s  %7.1f steps/s" % (label, steps, seconds, rate)
        if baseline:
            line += "  %.2fx the course loop" % (rate / baseline)
        print(line, flush=True)
        return rate

    def add(label, steps, seconds):
        results.append((label, report(label, steps, seconds, results[0][1] if results else None)))

    for label, _, _ in contenders:
        add(label, *best[label])
    for kind, label, module, skip in (("keras", "Keras 3 model.fit (separate process)", "keras", args.no_keras),
                                      ("torch", "PyTorch eager (separate process)", "torch", args.no_torch)):
        if skip:
            continue
        outcome = worker_rate(kind, args.steps, data_dir) if importable(module) else "not importable, skipped"
        if isinstance(outcome, str):
            print("%s: %s" % (label, outcome))
        else:
            add(label, *outcome)

    if not args.no_processes:
        whole = {"course loop as a script": [sys.executable, os.path.abspath(__file__), "--course-worker"],
                 "package (python mnist_backward.py)": [sys.executable, os.path.join(ROOT, "mnist_backward.py"),
                                                         "--model-dir"]}
        seconds = {}
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.rounds):
                for i, (label, command) in enumerate(whole.items()):
                    model_dir = os.path.join(tmp, "process-%d-%d" % (r, i))
                    t = process_seconds(command + [model_dir, "--steps", str(args.steps), "--data-dir", data_dir])
                    if isinstance(t, str):
                        print("error: %s (whole process): %s" % (label, t), file=sys.stderr)
                        return 1
                    seconds[label] = min(t, seconds.get(label, t))
        print("whole processes (Python, TensorFlow import and MNIST loading included), best of %d round(s):"
              % args.rounds)
        course_rate = None
        for label in whole:
            rate = report(label, args.steps, seconds[label], course_rate)
            course_rate = course_rate or rate

    peak = matmul_peak()
    print("matmul peak for the step's shapes (TensorFlow fp32, %dx%d @ %dx%d): %.1f GFLOP/s -> dense limit "
          "%.0f steps/s at %.0f MFLOP a step" % (B, I, I, H, peak, peak * 1e9 / STEP_FLOP, STEP_FLOP / 1e6))
    for label, rate in results:
        achieved = rate * STEP_FLOP / 1e9
        print("%-44s %5.1f GFLOP/s dense-equivalent, %3.0f%% of the matmul peak"
              % (label, achieved, 100 * achieved / peak))
    return 0


if __name__ == "__main__":
    if {"--keras-worker", "--torch-worker"} & set(sys.argv):  # a contender's process: no TensorFlow of ours
        sys.exit(main())
    from mnist_common import run_main, exit_on_stop_signals  # bad input (missing MNIST, ...) and Ctrl+C: one line
    # SIGTERM, SIGHUP: 143, 129 through the clean-up of its temporary model directories (a process it runs
    # meanwhile is killed by subprocess.run, as on Ctrl+C)
    exit_on_stop_signals()
    run_main(main)
