"""Per-step cost of ways to feed and run the training step:  python bench/step_variants.py [--rounds 10]

Not the package's trainer: small graphs built here, one per variant, each the course's mathematics (same
network, loss, schedule, gradient descent and EMA), differing only in how a batch reaches the graph and how
the step is run. The variants are timed in interleaved blocks of --block steps for --rounds rounds, so that
load from elsewhere on the machine hits every variant alike, and the best block of each is reported as
ms/step and as a ratio to the first variant's (the course's own loop unless --variants names another
first). This is how the choices in mnist_backward.TrainingGraph were made; bench/train_speed.py measures
the result end to end.

  course      placeholders, next_batch + feed_dict, loss and global step fetched every step (the course)
  feed        the same, fetching only train_op
  xla         feed, with XLA auto-clustering (global_jit_level ON_1)
  index_feed  training set resident in the graph; each step feeds only the batch's 200 indices
  resident    resident training set and a chunk of 1000 batch orders in the graph; a step feeds nothing
              (the package's feeding)
  resident_ema      resident, the moving average after the step and updated by one descent step per shadow
                    (mnist_backward.apply_moving_average): what the package does
  resident_xla      resident, with XLA auto-clustering
  resident_columns  resident, first layer multiplying only the batch's non-zero pixel columns (81% of
                    MNIST pixels are zero, ~30% of columns in a batch of 200): x[:, cols] @ w1[cols]
"""
import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import input_data  # noqa: E402 (first: a Python without NumPy gets one line, not a traceback)
import numpy as np  # noqa: E402

VARIANTS = ["course", "feed", "xla", "index_feed", "resident", "resident_ema", "resident_xla", "resident_columns"]
B = 200      # batch size
CHUNK = 1000  # batch orders loaded at a time (resident variants)


def first_layer_on_columns(x):
    """relu(x @ w1 + b1) over only the pixel columns that are non-zero somewhere in the batch x [B, 784]."""
    from mnist_common import tf
    import mnist_forward
    w1 = mnist_forward.get_weight([784, 500], 0.0001)
    b1 = mnist_forward.get_bias([500])
    cols = tf.reshape(tf.where(tf.reduce_any(tf.not_equal(x, 0.0), axis=0)), [-1])

    @tf.custom_gradient
    def rows(w):  # gather whose gradient is one dense scatter (rows are distinct)
        def grad(dy):
            return tf.scatter_nd(tf.expand_dims(cols, 1), dy, tf.shape(w, out_type=cols.dtype))
        return tf.gather(w, cols), grad
    return tf.nn.relu(tf.matmul(tf.gather(x, cols, axis=1), rows(w1)) + b1)


def build(variant, train):
    """Builds variant's graph and session; returns a function that runs one training step."""
    from mnist_common import tf, session_config
    import mnist_backward as mb
    import mnist_forward
    graph = tf.Graph()
    with graph.as_default():
        resident = variant.startswith("resident") or variant == "index_feed"
        if resident:
            labels_np = train.labels.argmax(axis=1).astype(np.int32)
            local = dict(trainable=False, collections=[tf.GraphKeys.LOCAL_VARIABLES], use_resource=True)
            images_in = tf.placeholder(tf.float32, train.images.shape)
            labels_in = tf.placeholder(tf.int32, labels_np.shape)
            images = tf.Variable(images_in, name="images", **local)
            labels_all = tf.Variable(labels_in, name="labels", **local)
            if variant == "index_feed":
                indices = tf.placeholder(tf.int32, [B])
            else:
                order_in = tf.placeholder(tf.int32, [CHUNK, B])
                order = tf.Variable(tf.zeros([CHUNK, B], tf.int32), name="order", **local)
                position = tf.Variable(0, name="position", **local)
                load = tf.group(order.assign(order_in), position.assign(0))
                indices = tf.gather(order, position.assign_add(1) - 1)
            x, labels = tf.gather(images, indices), tf.gather(labels_all, indices)
        else:
            x = tf.placeholder(tf.float32, [None, 784])
            y_ = tf.placeholder(tf.float32, [None, 10])
            labels = tf.argmax(y_, 1)
        if variant == "resident_columns":
            h = first_layer_on_columns(x)
            logits = tf.matmul(h, mnist_forward.get_weight([500, 10], mb.REGULARIZER)) + \
                mnist_forward.get_bias([10])
        else:
            logits = mnist_forward.forward(x, mb.REGULARIZER)
        global_step = tf.Variable(0, trainable=False)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(logits=logits, labels=labels)
        loss = tf.reduce_mean(ce) + tf.add_n(tf.get_collection("losses"))
        lr = mb.learning_rate(global_step, train.num_examples, B)
        train_step = tf.train.GradientDescentOptimizer(lr).minimize(loss, global_step=global_step)
        if variant == "resident_ema":
            with tf.control_dependencies([train_step]):
                ema_op = mb.apply_moving_average(mb.moving_average(global_step), global_step)
        else:
            ema_op = mb.moving_average(global_step).apply(tf.trainable_variables())
        with tf.control_dependencies([train_step, ema_op]):
            train_op = tf.no_op()
        config = session_config()
        if variant.endswith("xla"):
            config.graph_options.optimizer_options.global_jit_level = tf.OptimizerOptions.ON_1
        sess = tf.Session(graph=graph, config=config)
        sess.run(tf.global_variables_initializer())
        if resident:
            sess.run(tf.local_variables_initializer(), {images_in: train.images, labels_in: labels_np})

    if variant == "course":
        def step():
            xs, ys = train.next_batch(B)
            sess.run([train_op, loss, global_step], {x: xs, y_: ys})
    elif variant in ("feed", "xla"):
        def step():
            xs, ys = train.next_batch(B)
            sess.run(train_op, {x: xs, y_: ys})
    elif variant == "index_feed":
        def step():
            sess.run(train_op, {indices: train.next_batch_indices(B)})
    else:
        left = [0]

        def step():
            if left[0] == 0:
                sess.run(load, {order_in: np.stack([train.next_batch_indices(B) for _ in range(CHUNK)])})
                left[0] = CHUNK
            left[0] -= 1
            sess.run(train_op)
    for _ in range(50):  # warm up (first runs allocate, XLA compiles)
        step()
    return step


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=input_data.HelpFormatter)
    p.add_argument("--rounds", type=int, default=10, help="interleaved rounds")
    p.add_argument("--block", type=int, default=200, help="steps per variant per round")
    p.add_argument("--variants", default=None,
                   help="comma-separated, the first is the baseline (default: all: %s)" % ", ".join(VARIANTS))
    p.add_argument("--data-dir", default=None, help=input_data.DATA_DIR_HELP)
    args = p.parse_args(argv)
    # "a, b", a name given twice or a trailing comma: each variant once, in the order first given
    given = ",".join(VARIANTS) if args.variants is None else args.variants  # ("": a list of none, not all)
    variants = list(dict.fromkeys(v.strip() for v in given.split(",") if v.strip()))
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown or not variants or args.rounds < 1 or args.block < 1:
        p.error("unknown variant(s) %s; known: %s" % (", ".join(unknown), ", ".join(VARIANTS)) if unknown
                else "--variants names no variant" if not variants else "--rounds and --block must be positive")
    mnist = input_data.read_data_sets(input_data.resolve_data_dir(args.data_dir), one_hot=True, seed=0)
    steps = {v: build(v, mnist.train) for v in variants}
    times = {v: [] for v in variants}
    for _ in range(args.rounds):
        for v in variants:
            start = time.perf_counter()
            for _ in range(args.block):
                steps[v]()
            times[v].append((time.perf_counter() - start) / args.block * 1e3)
    print("ms per step, best and median of %d interleaved blocks of %d steps" % (args.rounds, args.block))
    base = min(times[variants[0]])
    for v in variants:
        t = sorted(times[v])
        print("%-18s best %6.3f  median %6.3f ms/step  %.2fx %s"
              % (v, t[0], t[len(t) // 2], base / t[0], variants[0]))
    return 0


if __name__ == "__main__":
    from mnist_common import run_main
    run_main(main)
