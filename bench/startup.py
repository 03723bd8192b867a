"""How long the package's programs take to load TensorFlow:  python bench/startup.py [--rounds 5]

Times whole processes, alternating, and reports the best of --rounds for each:
1. plain: `python -c "import tensorflow.compat.v1"`, what any program pays for the import;
2. ours: this file with --worker, which loads TensorFlow as the package's programs do (mnist_common.load_tf:
   quietly, and without the optional packages mnist_common.OPTIONAL_EXTRAS that TensorFlow's import tries).
It also names which of those packages this Python has: with none of them installed there is nothing to leave
out, and the two take about as long.
"""
import argparse
import importlib.metadata
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(1, os.path.dirname(os.path.abspath(__file__)))

from mnist_common import OPTIONAL_EXTRAS, load_tf  # noqa: E402
from train_speed import importable, process_seconds  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds of (1) and (2); the best counts")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        load_tf()
        return 0
    if args.rounds < 1:
        p.error("--rounds must be positive")

    extras = [name for name in OPTIONAL_EXTRAS if importable(name)]
    print("Loading TensorFlow %s, whole processes, best of %d round(s); of the optional extras (%s) this "
          "Python has: %s" % (importlib.metadata.version("tensorflow"), args.rounds, ", ".join(OPTIONAL_EXTRAS),
                              ", ".join(extras) or "none"), flush=True)
    commands = {"plain `import tensorflow.compat.v1`": [sys.executable, "-c", "import tensorflow.compat.v1"],
                "as the package's programs load it": [sys.executable, os.path.abspath(__file__), "--worker"]}
    best = {}
    for _ in range(args.rounds):
        for label, command in commands.items():
            seconds = process_seconds(command)
            if isinstance(seconds, str):
                print("error: %s: %s" % (label, seconds), file=sys.stderr)
                return 1
            best[label] = min(seconds, best.get(label, seconds))
    (plain_label, plain), (ours_label, ours) = best.items()
    print("%-36s %5.2f s" % (plain_label, plain))
    print("%-36s %5.2f s  %.2fx as fast as the plain import" % (ours_label, ours, plain / ours))
    return 0


if __name__ == "__main__":
    from mnist_common import run_main, exit_on_stop_signals  # Ctrl+C, SIGTERM, SIGHUP: one line or none
    exit_on_stop_signals()
    run_main(main)
