"""Trains the course's MNIST network; run it:  python mnist_backward.py [--steps N] [--model-dir DIR] ...

Mini-batch gradient descent on cross-entropy + L2, with a learning rate that decays once per epoch and an
exponential moving average (EMA) of the weights, which is what mnist_test.py and mnist_app.py use. Every
--log-every steps it prints the course's progress line and saves a checkpoint MODEL_SAVE_PATH/MODEL_NAME-<step>;
it also saves at the last step and on Ctrl+C. A rerun resumes from the newest checkpoint and finishes the
schedule (training stops when the global step reaches --steps).
"""
import argparse
import os
import signal
import sys
import tempfile
import threading
import time

# python -I or -P: the folder of the script (as Python finds it, links resolved), which holds our modules,
# is not on the module path.
if __name__ == "__main__" and (sys.flags.isolated or getattr(sys.flags, "safe_path", False)):
    sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

# mnist_common first: it readies the standard streams and quiets TensorFlow, which loads when first used.
from mnist_common import (tf, run_main, check_model_dir, claim_model_dir, error_reason, exit_on_stop_signals,
                          holding_model_dir, own_checkpoints, release_model_dir, remove_save_leftovers, restore_newest,
                          session_config, stop_signal, tf_path, UserError)
import numpy as np
import input_data
import mnist_forward

BATCH_SIZE = 200             # images per step
LEARNING_RATE_BASE = 0.1     # learning rate at step 0
LEARNING_RATE_DECAY = 0.99   # multiplied in once per epoch (staircase)
REGULARIZER = 0.0001         # L2 weight on w1 and w2
STEPS = 50000                # train until the global step reaches this
MOVING_AVERAGE_DECAY = 0.99  # EMA decay (capped early on by (1 + step) / (10 + step))
MODEL_SAVE_PATH = "./model/"
MODEL_NAME = "mnist_model"
LOG_EVERY = 1000             # progress line + checkpoint every this many steps
MAX_STEP = 2 ** 31 - 1       # the global step is a 32-bit integer variable, as in the course's checkpoints


class TrainingInterrupted(Exception):
    """Ctrl+C (SIGINT), SIGTERM or SIGHUP during training: .signum is which; a checkpoint at .step has been saved."""

    def __init__(self, step, signum):
        super().__init__(step, signum)
        self.step, self.signum = step, signum


# The first word of the line that says a signal stopped training (SIGTERM's, "Terminated", for any other).
SIGNAL_WORDS = {signal.SIGINT: "Interrupted", getattr(signal, "SIGHUP", None): "Hung up"}


def learning_rate(global_step, num_examples, batch_size=None):
    """LEARNING_RATE_BASE * LEARNING_RATE_DECAY ** floor(global_step / (num_examples / batch_size)).

    With 55,000 training images and batches of 200 the rate drops once every 275 steps (one epoch).
    batch_size: BATCH_SIZE when None (as the module has it at the call).
    """
    batch_size = BATCH_SIZE if batch_size is None else batch_size
    return tf.train.exponential_decay(LEARNING_RATE_BASE, global_step, num_examples / batch_size,
                                      LEARNING_RATE_DECAY, staircase=True)


def moving_average(global_step):
    """The EMA of the weights; passing global_step makes its decay min(0.99, (1 + step) / (10 + step))."""
    return tf.train.ExponentialMovingAverage(MOVING_AVERAGE_DECAY, global_step)


def apply_moving_average(ema, global_step):
    """ema.apply(tf.trainable_variables()), computed with one pass fewer over each weight; returns the op.

    ema.apply updates a shadow with three element-wise ops: shadow -= (shadow - w) * (1 - decay), a
    difference, a product and an in-place subtraction. A gradient-descent step on the shadow, with rate
    1 - decay and (shadow - w) as its gradient, rounds the same product and the same difference in one
    in-place op, so the shadows come out bit for bit the same (tests/test_bench.py) with one read and one
    write of each weight-sized array fewer: for the 784x500 w1, whose arrays together overflow a core's
    L2 cache here, that is ~0.07 ms of a 2.5 ms step. ema.apply still creates the shadows (names and
    initial values as the course had them); the update op it returns is never run.
    """
    weights = tf.trainable_variables()
    with tf.control_dependencies(None):
        ema.apply(weights)
    with tf.name_scope("MovingAverageUpdate"):
        # The decay exactly as ExponentialMovingAverage computes it, in float32: min(0.99, (1 + n) / (10 + n)).
        n = tf.cast(global_step, tf.float32)
        decay = tf.minimum(tf.constant(MOVING_AVERAGE_DECAY, tf.float32), (1.0 + n) / (10.0 + n))
        rate = 1.0 - decay
        updates = []
        for w in weights:
            shadow = ema.average(w)  # shadow -= rate * (shadow - w), in place
            updates.append(tf.raw_ops.ApplyGradientDescent(var=shadow, alpha=rate, delta=shadow - w).op)
        return tf.group(*updates)


# The fast path: what bench/train_speed.py measured to win on this 2-core machine (README: "Training speed").
RESIDENT_DATA = True  # training set resident in the graph, each step gathers its batch there (no feed_dict)
CHUNK_STEPS = 1000     # batch orders are drawn this many steps ahead at most


class TrainingGraph:
    """The course's training graph, fed either the course's way or from a copy of the data in the graph.

    Both compute the same thing: loss = mean sparse softmax cross-entropy + L2 of w1 and w2; gradient
    descent with the staircase learning rate; the EMA of every trainable variable, with num_updates the
    global step. The batches are the ones train.next_batch(batch_size) would give, in the same order.

    Course feeding (resident=False): placeholders x [None, 784], y_ [None, 10] one-hot; each step feeds
    next_batch's arrays and the labels are argmax(y_).
    Resident feeding (resident=True, needs train.next_batch_indices): the training images and their integer
    labels are copied once into local variables (never saved in checkpoints). prepare(sess, n) draws the
    index rows of the next n batches from train.next_batch_indices (the very method next_batch uses) into a
    [CHUNK_STEPS, batch_size] local variable; each run of train_op gathers the next row's images and labels
    and advances a position counter, so a step is a sess.run with nothing fed. (A sess.run that feeds a
    200x784 batch costs about 0.25 ms here against 0.1 ms for one that feeds nothing, in a ~2.5 ms step.)
    """

    def __init__(self, train, batch_size, resident=None):
        """Builds the graph in the default graph.

        Args:
          train: the DataSet trained on: images float32 [N, 784], labels one-hot [N, 10] (resident feeding
            also takes integer labels [N]).
          batch_size: images per step.
          resident: True for resident feeding, False for the course's; None: RESIDENT_DATA. Resident feeding
            falls back to the course's for a DataSet without next_batch_indices.
        """
        resident = RESIDENT_DATA if resident is None else resident
        self.train, self.batch_size = train, batch_size
        self.resident = resident and hasattr(train, "next_batch_indices")
        self._pending = 0
        if self.resident:
            x, labels = self._resident_batches()
        else:
            self.x = tf.placeholder(tf.float32, [None, mnist_forward.INPUT_NODE])
            self.y_ = tf.placeholder(tf.float32, [None, mnist_forward.OUTPUT_NODE])
            x, labels = self.x, tf.argmax(self.y_, 1)
        y = mnist_forward.forward(x, REGULARIZER)
        self.global_step = tf.Variable(0, trainable=False)  # created after w1..b2: checkpoint name "Variable_4"
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(logits=y, labels=labels)
        self.loss = tf.reduce_mean(ce) + tf.add_n(tf.get_collection("losses"))
        lr = learning_rate(self.global_step, train.num_examples, batch_size)
        train_step = tf.train.GradientDescentOptimizer(lr).minimize(self.loss, global_step=self.global_step)
        # The course grouped train_step and ema_op side by side, so each shadow update read its weight (and the
        # global step) before or after that step's update as the scheduler happened to order them: the same
        # --seed gave other EMA weights from run to run. Here the average always follows the step (TF's own
        # recipe for ExponentialMovingAverage): it averages the updated weights, with num_updates the new
        # global step, one of the orders the course's graph could take, now every time.
        with tf.control_dependencies([train_step]):
            ema_op = apply_moving_average(moving_average(self.global_step), self.global_step)
        with tf.control_dependencies([train_step, ema_op]):
            self.train_op = tf.no_op(name="train")

    def _resident_batches(self):
        """Returns (x float32 [batch, 784], labels int32 [batch]) of the next prepared batch."""
        images, labels = self.train.images, self.train.labels
        if labels.ndim == 2:  # one-hot: the integer label is where the 1 is, as argmax(y_) gave it
            labels = labels.argmax(axis=1)
        self._images_in = tf.placeholder(tf.float32, images.shape)
        self._labels_in = tf.placeholder(tf.int32, labels.shape)
        self._order_in = tf.placeholder(tf.int32, [CHUNK_STEPS, self.batch_size])
        self._arrays = {self._images_in: images, self._labels_in: labels.astype("int32")}

        def local(initial, name):
            # Named, so that the unnamed network variables keep the course's names Variable .. Variable_4;
            # local, so that the Saver leaves them out of checkpoints.
            return tf.Variable(initial, trainable=False, collections=[tf.GraphKeys.LOCAL_VARIABLES],
                               use_resource=True, name=name)

        all_images = local(self._images_in, "train_images")
        all_labels = local(self._labels_in, "train_labels")
        order = local(tf.zeros([CHUNK_STEPS, self.batch_size], tf.int32), "batch_order")
        position = local(0, "batch_position")
        self._load_order = tf.group(order.assign(self._order_in), position.assign(0))
        indices = tf.gather(order, position.assign_add(1) - 1)  # this step's row; the next step reads the next
        return tf.gather(all_images, indices), tf.gather(all_labels, indices)

    def initialize(self, sess):
        """Loads the resident copies of the training set (resident feeding); call once per session."""
        if self.resident:
            sess.run(tf.local_variables_initializer(), self._arrays)

    def prepare(self, sess, n):
        """Readies the batches of the next n <= CHUNK_STEPS steps (their order drawn now from train)."""
        if self.resident:
            if not 0 < n <= CHUNK_STEPS:
                raise ValueError("prepare(n=%d): n must be in 1..%d" % (n, CHUNK_STEPS))
            order = np.zeros([CHUNK_STEPS, self.batch_size], np.int32)  # rows past n are never reached
            for row in order[:n]:
                row[:] = self.train.next_batch_indices(self.batch_size)
            sess.run(self._load_order, {self._order_in: order})
        self._pending = n

    def feed(self):
        """The feed_dict of the next step; prepare() must have readied it."""
        if self._pending <= 0:
            raise RuntimeError("TrainingGraph.feed() called with no step prepared")
        self._pending -= 1
        if self.resident:
            return None
        xs, ys = self.train.next_batch(self.batch_size)
        return {self.x: xs, self.y_: ys}

    @property
    def pending(self):
        """How many steps prepare() readied that feed() has not yet given out."""
        return self._pending

    def step_runner(self, sess):
        """Returns run(feed), which runs train_op once with the feed_dict feed() gave and fetches nothing.

        It is sess.make_callable's function, which does once what sess.run does at every call (sorting out
        fetches and feeds): about 0.1 ms of a 2.5 ms step here.
        """
        if self.resident:
            step = sess.make_callable(self.train_op)
            return lambda feed: step()
        step = sess.make_callable(self.train_op, feed_list=[self.x, self.y_])
        return lambda feed: step(feed[self.x], feed[self.y_])


def _next_log_step(step, steps, log_every):
    """The first global step after `step` that prints and saves: 1, 1 + log_every, ..., or `steps`."""
    nxt = step + 1 + (-step) % log_every  # smallest s > step with (s - 1) % log_every == 0
    return min(nxt, steps)


def backward(mnist, steps=None, batch_size=None, model_dir=None, log_every=None, seed=None, data_dir=None):
    """Trains on mnist.train until the global step reaches `steps`, resuming from model_dir.

    Args:
      mnist: read_data_sets(..., one_hot=True) result; mnist.train.next_batch gives the batches (through
        next_batch_indices when the DataSet has it, which lets the graph gather them from its resident copy).
      steps, batch_size, model_dir, log_every, seed: see the command-line flags. Each of the first four left
        None is the module constant (STEPS, BATCH_SIZE, MODEL_SAVE_PATH, LOG_EVERY) as it is at the call, so
        that code setting them first (mnist_backward.STEPS = 3000), as the course's could, is followed.
      data_dir: shown in the first line only.
    Returns:
      The global step reached.
    Raises:
      TrainingInterrupted: Ctrl+C, SIGTERM or SIGHUP, after saving a checkpoint.
      UserError: another trainer holds model_dir, none of its checkpoints can be restored, it cannot be
        written to, or a save failed.
    """
    steps = STEPS if steps is None else steps
    batch_size = BATCH_SIZE if batch_size is None else batch_size
    model_dir = MODEL_SAVE_PATH if model_dir is None else model_dir
    log_every = LOG_EVERY if log_every is None else log_every
    with tf.Graph().as_default():
        if seed is not None:
            tf.set_random_seed(seed)
        graph = TrainingGraph(mnist.train, batch_size)
        global_step, loss, train_op = graph.global_step, graph.loss, graph.train_op
        saver = tf.train.Saver(save_relative_paths=True)

        os.makedirs(model_dir, exist_ok=True)
        # One trainer per directory, until backward() returns (or the process ends, when main() claimed it).
        with tf.Session(config=session_config()) as sess, holding_model_dir(model_dir):
            # Checkpoints named MODEL_NAME-<step> count even when the state file lost track of them: they are
            # resumed from, never overwritten by a fresh start, and counted towards the five kept.
            restored = restore_newest(lambda prefix: saver.restore(sess, tf_path(prefix)), model_dir, MODEL_NAME)
            if restored is None:
                sess.run(tf.global_variables_initializer())
            # The Saver deletes one old checkpoint per save, of those it knows: it is given the newest it keeps
            # (max_to_keep, five), and older ones of ours (left by the course's loop, say) go after the first save.
            own = own_checkpoints(model_dir, MODEL_NAME)
            keep = saver.saver_def.max_to_keep
            saver.recover_last_checkpoints([tf_path(p) for p in reversed(own[:keep])])
            stale = own[keep:]
            step = int(sess.run(global_step))
            if step >= steps:
                print("Model in %s is already at step %d (--steps %d): nothing to do." % (model_dir, step, steps))
                return step
            try:  # find out now, not at the first checkpoint, if checkpoints cannot be written there
                tempfile.TemporaryFile(dir=model_dir).close()
            except OSError as e:
                raise UserError("cannot write checkpoints in %s (%s)" % (model_dir, e.strerror or e)) from None
            leftovers = remove_save_leftovers(model_dir, MODEL_NAME)
            print("Training on MNIST from %s: model %s, steps %d, batch size %d, %s."
                  % (data_dir or "memory", model_dir, steps, batch_size,
                     "resuming from step %d" % step if restored else "fresh start"))
            if leftovers:
                print("Removed %d file(s) left in %s by a save that was cut short: %s."
                      % (len(leftovers), model_dir, ", ".join(leftovers)))
            sys.stdout.flush()
            save_path = os.path.join(model_dir, MODEL_NAME)  # as printed; TensorFlow is given tf_path(save_path)
            graph.initialize(sess)
            run_step = graph.step_runner(sess)

            def save(step):
                # A model directory deleted, moved aside or replaced meanwhile: TensorFlow would write into whatever
                # directory is there now (making it if need be), so that one is made and claimed first.
                try:
                    os.makedirs(model_dir, exist_ok=True)
                    if claim_model_dir(model_dir):  # a new directory: the old one's checkpoints are left alone
                        saver.set_last_checkpoints_with_time([])
                        del stale[:]
                except UserError:
                    raise UserError("model directory %s was replaced during training, and the one there now is "
                                    "being trained by another process; training stopped at step %d, not saved"
                                    % (model_dir, step)) from None
                except OSError:  # a file there now, say: the save fails below, and says so
                    pass
                try:
                    saver.save(sess, tf_path(save_path), global_step=global_step)
                except (tf.errors.OpError, OSError, ValueError) as e:  # a full disk, say: the checkpoints before stay
                    # (ValueError: the Saver's "Parent directory ... doesn't exist", raised over TensorFlow's own
                    # error when the model directory was replaced meanwhile; that error says what is wrong.)
                    if isinstance(e, ValueError) and isinstance(e.__context__, tf.errors.OpError):
                        e = e.__context__
                    raise UserError("saving the checkpoint of step %d failed (%s); training stopped, and a rerun "
                                    "resumes from the newest complete checkpoint" % (step, error_reason(e))) from None
                while stale:
                    old = stale.pop()
                    try:
                        tf.train.remove_checkpoint(tf_path(old))
                    except (tf.errors.OpError, OSError) as e:  # left there: training goes on
                        print("warning: cannot remove old checkpoint %s (%s)" % (old, error_reason(e)), file=sys.stderr)

            # Ctrl+C, SIGTERM (kill, timeout, a service manager stopping us) and SIGHUP (the terminal closed) end
            # the run at the next step, with a checkpoint. (Python lets only the main thread set handlers:
            # elsewhere they stay as they are. A signal ignored when we were started stays ignored, as a shell
            # script's `&` does with Ctrl+C and `nohup` with SIGHUP. Windows has no SIGHUP.)
            # (A stop signal that came before, and whose exception TensorFlow lost on the way: stop_signal.)
            interrupted = [signum for signum in (stop_signal(),) if signum]
            previous = {s: signal.signal(s, lambda signum, frame: interrupted.append(signum))
                        for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None
                        if threading.current_thread() is threading.main_thread()
                        and signal.getsignal(s) != signal.SIG_IGN}
            try:
                start_step, start_time = step, time.time()
                log_step = _next_log_step(step, steps, log_every)
                while step < steps and not interrupted:
                    if graph.pending == 0:
                        if step >= log_step:
                            log_step = _next_log_step(step, steps, log_every)
                        graph.prepare(sess, min(log_step - step, CHUNK_STEPS))
                    feed = graph.feed()
                    step += 1
                    # The course printed and saved at loop indices 0, 1000, ...: global steps 1, 1001, ...
                    if step == log_step:
                        _, loss_value = sess.run([train_op, loss], feed)
                        save(step)  # before the line: a reader gone (`| head`) ends the run with nothing lost
                        try:
                            print("After %d training step(s), loss on training batch is %g." % (step, loss_value))
                            sys.stdout.flush()
                        except OSError:
                            if not interrupted:
                                raise
                            # A signal came during the save, and the line cannot be written (the terminal that
                            # hung up): the run ends as that signal asks, not as a failed write; this step is saved.
                            raise TrainingInterrupted(step, interrupted[0]) from None
                    else:
                        run_step(feed)
                if interrupted and step < steps:  # (a signal during the last step's save: the run is complete)
                    if step != log_step:  # (a signal during a log step's save: that step is saved already)
                        save(step)
                    try:
                        print("%s at step %d; checkpoint saved to %s-%d." % (
                            SIGNAL_WORDS.get(interrupted[0], "Terminated"), step, save_path, step))
                    except OSError:  # a reader gone (`| head`), a full disk: the run still ends as the signal asked
                        pass         # (run_main says what went wrong with the output, if need be)
                    raise TrainingInterrupted(step, interrupted[0])
            finally:
                for s, handler in previous.items():
                    signal.signal(s, handler)
            elapsed = time.time() - start_time
            print("Finished at step %d: %d steps in %.1f s, %.1f steps/s."
                  % (step, step - start_step, elapsed, (step - start_step) / max(elapsed, 1e-9)))
            return step


def parse_args(argv=None):
    """The trainer's flags from argv (None: none; see main)."""
    p = argparse.ArgumentParser(description="Train the course's 784-500-10 MNIST network.",
                                formatter_class=input_data.HelpFormatter)
    p.add_argument("--steps", type=int, default=STEPS, help="train until the global step reaches this")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="images per step")
    p.add_argument("--model-dir", default=MODEL_SAVE_PATH, type=input_data.expand_user,
                   help="checkpoint directory (resumed from)")
    p.add_argument("--data-dir", default=None,
                   help=input_data.DATA_DIR_HELP)
    p.add_argument("--log-every", type=int, default=LOG_EVERY, help="progress line and checkpoint interval")
    p.add_argument("--seed", type=int, default=None,
                   help="seed for initialisation and batch order (default: none, a random start)")
    args = p.parse_args([] if argv is None else argv)
    for name in ("steps", "batch_size", "log_every"):
        if getattr(args, name) < 1:
            p.error("--%s must be a positive whole number, got %d" % (name.replace("_", "-"), getattr(args, name)))
    if args.steps > MAX_STEP:  # beyond it the global step would wrap round to negative numbers
        p.error("--steps must be at most %d (the global step is a 32-bit integer), got %d" % (MAX_STEP, args.steps))
    if args.seed is not None and not 0 <= args.seed < 2 ** 63:
        p.error("--seed must be a whole number from 0 to 2**63 - 1, got %d" % args.seed)
    return args


def main(argv=None):
    """Trains as the command line argv says. argv None, from code of one's own (as the course's
    main() was called), is no flag: the process's own arguments are its program's (a notebook kernel's
    -f FILE), not this one's."""
    args = parse_args(argv)
    overrides = {"STEPS": args.steps, "BATCH_SIZE": args.batch_size, "MODEL_SAVE_PATH": args.model_dir,
                 "LOG_EVERY": args.log_every}  # the module constants the flags stand in for
    changed = ["%s = %s" % (name, value) for name, value in overrides.items() if value != globals()[name]]
    check_model_dir(args.model_dir)
    if changed:
        print("Overriding: " + ", ".join(changed))
    # Made and claimed before the data load, so that a second trainer is told at once, and one that cannot be
    # made is said before TensorFlow loads; let go at the end, for main() called from code whose process goes
    # on (a notebook's kernel held it until restarted). The directories made are removed again if the run
    # wrote nothing in them (the data could not be read, say).
    # (All in one try: a stop signal that comes while they are made or claimed still has them removed.)
    made, claimed = [], False
    try:
        input_data.make_dirs(args.model_dir, made)
        claimed = claim_model_dir(args.model_dir)  # (held by another trainer: UserError, and nothing was made)
        return _load_and_train(args)
    finally:
        input_data.remove_empty(made)
        if claimed:
            release_model_dir(args.model_dir)


def _load_and_train(args):
    """main() once the model directory is claimed: reads MNIST and trains. Returns the exit status."""
    data_dir = input_data.resolve_data_dir(args.data_dir)
    mnist = input_data.read_data_sets(data_dir, one_hot=True, seed=args.seed)
    if mnist.train.num_examples == 0:
        raise UserError("%s holds %d images, all held out for validation: none left to train on"
                        % (input_data.data_file(data_dir, input_data.TRAIN_IMAGES), mnist.validation.num_examples))
    if args.batch_size > mnist.train.num_examples:
        raise UserError("--batch-size %d is larger than the %d training images in %s"
                        % (args.batch_size, mnist.train.num_examples, data_dir))
    try:
        backward(mnist, args.steps, args.batch_size, args.model_dir, args.log_every, args.seed, data_dir)
    except TrainingInterrupted as e:
        return 128 + e.signum  # 130 after Ctrl+C, 143 after SIGTERM, 129 after SIGHUP, as the shell reports them
    return 0


if __name__ == "__main__":
    # SIGTERM and SIGHUP before training (while the data or TensorFlow loads) end the run with 143 and 129 through
    # main()'s clean-up, which removes the model directories it made; training then sets handlers of its own.
    exit_on_stop_signals()
    run_main(lambda: main(sys.argv[1:]), exit_now=True)
