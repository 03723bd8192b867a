"""Evaluates checkpoints beside training; run it:  python mnist_test.py [--once] [--until-step N] ...

Polls the model directory every --interval seconds (TEST_INTERVAL_SECS, 5). Each new checkpoint is restored with its
exponential-moving-average (shadow) weights and scored on the 10,000 test images, printing the course's
`After <step> training step(s), test accuracy = <accuracy>` once per checkpoint. It can start before the
trainer: it then says `No checkpoint file found` once and waits.
"""
import argparse
import os
import sys
import time

# python -I or -P: the folder of the script (as Python finds it, links resolved), which holds our modules,
# is not on the module path.
if __name__ == "__main__" and (sys.flags.isolated or getattr(sys.flags, "safe_path", False)):
    sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

# mnist_common first: it readies the standard streams and quiets TensorFlow, which loads when first used.
from mnist_common import (tf, run_main, check_stop, list_checkpoints, checkpoint_identity, checkpoint_order,
                          step_of, check_model_dir, no_checkpoint, EmaModel, error_reason)
import numpy as np
import input_data
import mnist_backward

TEST_INTERVAL_SECS = 5
MAX_INTERVAL_SECS = 86400  # a day between polls at most


def accuracy(model, mnist):
    """Fraction of mnist.test whose most probable digit (under the restored weights) is the label.

    Args:
      model: an EmaModel with a checkpoint restored.
      mnist: its .test has images float32 [N, 784] and labels one-hot [N, 10] or integer [N].
    Returns:
      float in [0, 1].
    """
    predicted = np.argmax(model.probabilities_of(mnist.test.images), axis=1)
    labels = mnist.test.labels
    if labels.ndim == 2:  # one-hot
        labels = np.argmax(labels, axis=1)
    return float(np.mean(predicted == labels))


def evaluate(model, mnist, prefix):
    """Restores checkpoint prefix into model and prints the course's accuracy line. Returns (step, accuracy)."""
    model.restore(prefix)
    acc, step = accuracy(model, mnist), step_of(prefix)
    print("After %s training step(s), test accuracy = %g" % ("?" if step is None else step, acc))
    sys.stdout.flush()
    return step, acc


def test(mnist, model_dir=None, interval=None, once=False, until_step=None):
    """Evaluates each new checkpoint in model_dir as it appears.

    Args:
      mnist: read_data_sets(...) or read_test_set(...) result; mnist.test is scored.
      model_dir: the checkpoint directory watched; mnist_backward.MODEL_SAVE_PATH (as it is at the call)
        when None.
      interval: seconds between polls; TEST_INTERVAL_SECS (as it is at the call) when None.
      once: evaluate the newest readable checkpoint and return instead of polling.
      until_step: return after evaluating a checkpoint whose step is >= this.
    Returns:
      Exit status: 0, or 1 when once is set and no checkpoint could be evaluated.
    """
    model_dir = mnist_backward.MODEL_SAVE_PATH if model_dir is None else model_dir
    interval = TEST_INTERVAL_SECS if interval is None else interval
    model = None  # built at the first checkpoint to score: "No checkpoint file found" comes before TensorFlow loads
    printed, said_none, warned = {}, False, set()  # printed: checkpoint -> checkpoint_identity when printed
    while True:
        check_stop()  # (a Ctrl+C whose exception TensorFlow lost while the model was built: mnist_common)
        prefixes = list_checkpoints(model_dir)  # newest first
        # Forget the printed checkpoints that are gone (the trainer keeps five) or were written again.
        printed = {p: identity for p, identity in printed.items() if checkpoint_identity(p) == identity}
        if not prefixes and not said_none:
            no_checkpoint(model_dir, waiting=not once)
            said_none = True
        if once:
            candidates = prefixes  # the newest that can be read
        else:
            # Every checkpoint newer than the newest printed one still there, oldest first. Checkpoints deleted
            # by hand are not printed again; with none of the printed ones left (the directory emptied and
            # training started again), every checkpoint there is new.
            base = max(printed, key=checkpoint_order, default=None)
            candidates = [p for p in reversed(prefixes) if base is None or checkpoint_order(p) > checkpoint_order(base)]
        for prefix in candidates:
            identity = checkpoint_identity(prefix)
            model = model or EmaModel()
            try:
                step, _ = evaluate(model, mnist, prefix)
            except (tf.errors.OpError, ValueError) as e:
                # Deleted by the trainer's max_to_keep after it was listed, or damaged: skipped; a damaged
                # newest one is tried again next poll.
                if os.path.exists(prefix + ".index") and prefix not in warned:
                    warned.add(prefix)
                    print("warning: skipping checkpoint %s: %s" % (prefix, error_reason(e)), file=sys.stderr)
                continue
            printed[prefix] = identity
            if once or (until_step is not None and (step or 0) >= until_step):
                return 0
        if once:
            if prefixes:
                print("error: no readable checkpoint in %s" % model_dir, file=sys.stderr)
            return 1
        time.sleep(interval)


def main(argv=None):
    """Evaluates as the command line argv says. argv None, from code of one's own (as the course's
    main() was called), is no flag: the process's own arguments are its program's (a notebook kernel's
    -f FILE), not this one's."""
    p = argparse.ArgumentParser(description="Evaluate MNIST checkpoints (EMA weights) as training writes them.",
                                formatter_class=input_data.HelpFormatter)
    p.add_argument("--interval", type=float, default=TEST_INTERVAL_SECS, help="seconds between polls")
    p.add_argument("--model-dir", default=mnist_backward.MODEL_SAVE_PATH, type=input_data.expand_user,
                   help="checkpoint directory")
    p.add_argument("--data-dir", default=None,
                   help=input_data.DATA_DIR_HELP)
    p.add_argument("--once", action="store_true",
                   help="evaluate the newest readable checkpoint and exit (status 1 if there is none)")
    p.add_argument("--until-step", type=int, default=None, metavar="N",
                   help="exit after evaluating a checkpoint of step >= N (default: poll until Ctrl+C)")
    args = p.parse_args([] if argv is None else argv)
    if args.once and args.until_step is not None:  # --once would return after one checkpoint, whatever its step
        p.error("--once and --until-step cannot be used together")
    if args.until_step is not None and args.until_step > mnist_backward.MAX_STEP:  # no checkpoint gets there
        p.error("--until-step must be at most %d (a checkpoint's step is a 32-bit integer), got %d"
                % (mnist_backward.MAX_STEP, args.until_step))
    if not 0 <= args.interval <= MAX_INTERVAL_SECS:  # also refuses nan and inf, which time.sleep cannot take
        p.error("--interval must be from 0 to %d seconds, got %g" % (MAX_INTERVAL_SECS, args.interval))
    check_model_dir(args.model_dir)
    mnist = input_data.read_test_set(args.data_dir, one_hot=True)  # only the split it scores
    return test(mnist, args.model_dir, args.interval, args.once, args.until_step)


if __name__ == "__main__":
    run_main(lambda: main(sys.argv[1:]), exit_now=True)
