"""The course's network, 784-500-10 with ReLU, and nothing else; imported, not run.

Variables are created unnamed, in the order w1, b1, w2, b2, so a checkpoint names them ``Variable`` ..
``Variable_3`` exactly as the course code did, and checkpoints move both ways between the two.
"""
import collections

import tensorflow.compat.v1 as tf

INPUT_NODE = 784   # 28x28 pixels, flattened
OUTPUT_NODE = 10   # one logit per digit
LAYER1_NODE = 500  # hidden ReLU units


class ColumnSubset(collections.namedtuple("ColumnSubset", ["values", "columns"])):
    """A batch of images given by its non-zero pixel columns only (a zero column adds nothing to x @ w1).

    values: float32 [N, K], the images' pixels in `columns`; columns: int [K], pixel indices in 0..783. Every
    pixel outside `columns` must be zero in every image of the batch; forward() then computes exactly the
    dense network's products, over K instead of 784 pixels (and the w1 gradient touches only those K rows).
    """
    __slots__ = ()

    @classmethod
    def of(cls, x):
        """The ColumnSubset of a dense float32 [N, 784] batch: the pixel columns with any non-zero value."""
        columns = tf.reshape(tf.where(tf.reduce_any(tf.not_equal(x, 0.0), axis=0)), [-1])
        return cls(tf.gather(x, columns, axis=1), columns)


def _rows(w, rows):
    """tf.gather(w, rows) whose gradient with respect to w is a dense tensor built by one scatter.

    tf.gather's own gradient is an IndexedSlices, which TensorFlow turns dense (it must be added to the L2
    term's dense gradient) with a slow UnsortedSegmentSum; the rows are distinct, so a scatter is enough.
    """
    @tf.custom_gradient
    def gather(w):
        def grad(dy):
            return tf.scatter_nd(tf.expand_dims(rows, 1), dy, tf.shape(w, out_type=rows.dtype))
        return tf.gather(w, rows), grad
    return gather(w)


def get_weight(shape, regularizer):
    """A weight matrix initialised from truncated_normal(stddev=0.1).

    When regularizer is not None, regularizer * l2_loss(w) = regularizer * sum(w**2) / 2 (what the course's
    tf.contrib.layers.l2_regularizer returned) is added to the graph collection 'losses'.
    """
    w = tf.Variable(tf.truncated_normal(shape, stddev=0.1))
    if regularizer is not None:
        tf.add_to_collection("losses", regularizer * tf.nn.l2_loss(w))
    return w


def get_bias(shape):
    """A bias vector of zeros (not regularised)."""
    return tf.Variable(tf.zeros(shape))


def forward(x, regularizer):
    """Builds the network.

    Args:
      x: float32 [N, 784] images, or a ColumnSubset of such a batch (the first layer then multiplies only
        the pixel columns that are non-zero somewhere in the batch, with the same result), or a
        SparseTensor of that shape (skips every zero pixel; same result, but TensorFlow's CPU sparse
        kernels make it several times slower than the dense product).
      regularizer: L2 weight, or None for no regularisation term.
    Returns:
      logits float32 [N, 10] (no softmax).
    """
    w1 = get_weight([INPUT_NODE, LAYER1_NODE], regularizer)
    b1 = get_bias([LAYER1_NODE])
    if isinstance(x, ColumnSubset):
        y1 = tf.nn.relu(tf.matmul(x.values, _rows(w1, x.columns)) + b1)
    elif isinstance(x, tf.SparseTensor):
        y1 = tf.nn.relu(tf.sparse.sparse_dense_matmul(x, w1) + b1)
    else:
        y1 = tf.nn.relu(tf.matmul(x, w1) + b1)
    w2 = get_weight([LAYER1_NODE, OUTPUT_NODE], regularizer)
    b2 = get_bias([OUTPUT_NODE])
    return tf.matmul(y1, w2) + b2
