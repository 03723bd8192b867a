"""The course's network, 784-500-10 with ReLU, and nothing else; imported, not run.

Variables are created unnamed, in the order w1, b1, w2, b2, so a checkpoint names them ``Variable`` ..
``Variable_3`` exactly as the course code did, and checkpoints move both ways between the two.
"""
from mnist_common import tf  # tensorflow.compat.v1 in graph mode, imported quietly (see mnist_common)

INPUT_NODE = 784   # 28x28 pixels, flattened
OUTPUT_NODE = 10   # one logit per digit
LAYER1_NODE = 500  # hidden ReLU units


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
      x: float32 [N, 784] images.
      regularizer: L2 weight, or None for no regularisation term.
    Returns:
      logits float32 [N, 10] (no softmax).
    """
    w1 = get_weight([INPUT_NODE, LAYER1_NODE], regularizer)
    b1 = get_bias([LAYER1_NODE])
    y1 = tf.nn.relu(tf.matmul(x, w1) + b1)
    w2 = get_weight([LAYER1_NODE, OUTPUT_NODE], regularizer)
    b2 = get_bias([OUTPUT_NODE])
    return tf.matmul(y1, w2) + b2
