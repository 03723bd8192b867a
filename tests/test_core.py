"""Unit tests of the loader, the network and the training schedule, on synthetic data."""
import atexit
import functools
import gzip
import hashlib
import http.server
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conftest import ROOT, run_script, run_script_redirected, assert_no_traceback, _env, fake_optional_extras
import input_data
from mnist_common import tf
import mnist_backward
import mnist_forward

# An unreachable mirror stands in for being offline: a port this process holds bound without listening on it,
# so that nothing else can take it and a connection to it is refused at once.
_REFUSING = socket.socket()
_REFUSING.bind(("127.0.0.1", 0))
OFFLINE_URL = "http://127.0.0.1:%d/" % _REFUSING.getsockname()[1]
atexit.register(_REFUSING.close)  # held to the end of the run (left open, Python warned of it)


# ---------------------------------------------------------------------------------------------------------
# Synthetic IDX files

def idx_bytes(magic, array):
    """An IDX file's bytes: big-endian magic and dimensions, then the uint8 payload."""
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_gz(path, data):
    with gzip.open(path, "wb") as f:
        f.write(data)


def make_mnist(directory, n_train=30, n_test=8, seed=0):
    """Writes four small IDX .gz files; returns (train_images, train_labels, test_images, test_labels)."""
    rng = np.random.default_rng(seed)
    arrays = (rng.integers(0, 256, (n_train, 28, 28)), rng.integers(0, 10, n_train),
              rng.integers(0, 256, (n_test, 28, 28)), rng.integers(0, 10, n_test))
    names = (input_data.TRAIN_IMAGES, input_data.TRAIN_LABELS, input_data.TEST_IMAGES, input_data.TEST_LABELS)
    for name, arr in zip(names, arrays):
        write_gz(os.path.join(directory, name), idx_bytes(2051 if arr.ndim == 3 else 2049, arr))
    return arrays


def test_loader_shapes_scaling_split_one_hot(tmp_path):
    tr_x, tr_y, te_x, te_y = make_mnist(tmp_path)
    ds = input_data.read_data_sets(str(tmp_path), one_hot=True, validation_size=10)
    assert ds.train.images.shape == (20, 784) and ds.train.images.dtype == np.float32
    assert ds.validation.num_examples == 10 and ds.test.num_examples == 8
    # The first validation_size training images are the validation set, the rest the training set.
    np.testing.assert_allclose(ds.validation.images, tr_x[:10].reshape(10, 784) / 255.0, rtol=1e-6)
    np.testing.assert_allclose(ds.train.images, tr_x[10:].reshape(20, 784) / 255.0, rtol=1e-6)
    assert ds.train.images.min() >= 0.0 and ds.train.images.max() <= 1.0
    assert ds.train.labels.shape == (20, 10) and ds.train.labels.dtype == np.float32
    assert (ds.train.labels.sum(axis=1) == 1).all()
    assert (ds.train.labels.argmax(axis=1) == tr_y[10:]).all()
    dense = input_data.read_data_sets(str(tmp_path), one_hot=False, validation_size=10)
    assert dense.test.labels.dtype == np.uint8 and (dense.test.labels == te_y).all()


def test_importing_mnist_forward_from_ones_own_code_is_quiet_and_builds_a_graph():
    # The network is the piece to import from code of one's own (as the course's scripts did): TensorFlow's
    # start-up notices stay off the screen, and the graph-mode API it is written for is on, for one's own
    # `import tensorflow.compat.v1` after it as for mnist_forward.tf. (The package's scripts load TensorFlow
    # only when they build a graph; code of one's own gets it with the import.)
    code = ("import mnist_forward; import tensorflow.compat.v1 as tf; ours = mnist_forward.tf; "
            "print(tf.executing_eagerly(), ours.placeholder is tf.placeholder, "
            "mnist_forward.forward(tf.placeholder(tf.float32, [None, 784]), 1e-4).shape)")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "False True (?, 10)\n", "")


def test_our_programs_load_tensorflow_without_its_optional_extras(tmp_path, trained_model):
    # TensorFlow's import tries scikit-learn, IPython, SciPy and pandas for things our programs never use, and
    # with them installed took a second longer. Code of one's own gets TensorFlow's import as it is.
    tried = fake_optional_extras(tmp_path / "site")
    env = {"PYTHONPATH": str(tmp_path / "site")}
    proc = run_script("mnist_test.py", "--once", "--model-dir", trained_model, env=env)
    assert proc.returncode == 0 and "test accuracy = " in proc.stdout, proc.stdout + proc.stderr
    assert not tried.exists()
    own = subprocess.run([sys.executable, "-c", "import mnist_forward"], cwd=ROOT, env=_env(env),
                         capture_output=True, text=True, timeout=600)
    assert own.returncode == 0, own.stderr
    assert sorted(set(tried.read_text().split())) == ["IPython", "pandas", "scipy", "sklearn"]


def test_optional_extras_are_kept_out_of_the_tensorflow_import_only(tmp_path, monkeypatch):
    # ... while TensorFlow loads, in our programs, and only those not yet imported
    import importlib
    import mnist_common
    tried = fake_optional_extras(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(mnist_common, "OPTIONAL_EXTRAS", ("sklearn", "pandas"))
    for name in mnist_common.OPTIONAL_EXTRAS:
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setitem(sys.modules, "pandas", "imported before")
    monkeypatch.setattr(input_data, "program_of_ours", lambda: True)
    with mnist_common._without_optional_extras():
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module("sklearn")
        assert sys.modules["pandas"] == "imported before"
    assert not tried.exists()  # the block left nothing behind, and the package can be imported again
    with pytest.raises(ImportError, match="not here"):
        importlib.import_module("sklearn")
    assert tried.read_text() == "sklearn\n"
    monkeypatch.setattr(input_data, "program_of_ours", lambda: False)  # code of one's own: nothing kept out
    with mnist_common._without_optional_extras():
        with pytest.raises(ImportError, match="not here"):
            importlib.import_module("sklearn")
    assert tried.read_text() == "sklearn\nsklearn\n"


def test_read_test_set_reads_the_test_split_alone(tmp_path):
    tr_x, tr_y, te_x, te_y = make_mnist(tmp_path)
    full = input_data.read_data_sets(str(tmp_path), one_hot=True, validation_size=10)
    for name in (input_data.TRAIN_IMAGES, input_data.TRAIN_LABELS):  # not needed, not downloaded
        os.remove(os.path.join(str(tmp_path), name))
    alone = input_data.read_test_set(str(tmp_path), one_hot=True, source_url=OFFLINE_URL)
    assert alone.train is None and alone.validation is None
    np.testing.assert_array_equal(alone.test.images, full.test.images)
    np.testing.assert_array_equal(alone.test.labels, full.test.labels)
    assert (input_data.read_test_set(str(tmp_path)).test.labels == te_y).all()
    os.remove(os.path.join(str(tmp_path), input_data.TEST_LABELS))
    with pytest.raises(input_data.DataError, match=input_data.TEST_LABELS + " is missing from"):
        input_data.read_test_set(str(tmp_path), source_url=OFFLINE_URL)


@pytest.mark.parametrize("layout", ["gunzipped", "dotted", "unpacked under the .gz name"])
def test_uncompressed_data_files_are_read(tmp_path, layout):
    # gunzip leaves train-images-idx3-ubyte, other copies of MNIST are named train-images.idx3-ubyte, and a browser
    # may unpack a download but keep its .gz name: each was "missing" (and, offline, not downloaded) or "not a
    # readable gzip file"
    tr_x, tr_y, te_x, te_y = make_mnist(tmp_path)
    for name in input_data.MD5:
        with gzip.open(tmp_path / name) as f:
            data = f.read()
        if layout != "unpacked under the .gz name":
            os.remove(tmp_path / name)
            name = name[:-3] if layout == "gunzipped" else name[:-3].replace("-idx", ".idx")
        (tmp_path / name).write_bytes(data)
    ds = input_data.read_data_sets(str(tmp_path), validation_size=10, source_url=OFFLINE_URL)
    np.testing.assert_array_equal(ds.train.images, tr_x[10:].reshape(20, 784).astype(np.float32) * np.float32(1 / 255))
    assert (ds.train.labels == tr_y[10:]).all() and (ds.test.labels == te_y).all()
    assert (input_data.read_test_set(str(tmp_path), source_url=OFFLINE_URL).test.labels == te_y).all()
    path = input_data.data_file(str(tmp_path), input_data.TRAIN_IMAGES)
    assert os.path.exists(path)
    with pytest.raises(input_data.DataError, match="^%s holds 30 images, fewer than" % re.escape(path)):
        input_data.read_data_sets(str(tmp_path), source_url=OFFLINE_URL)  # the file there is named


def test_a_gz_data_file_is_taken_before_an_uncompressed_one(tmp_path):
    tr_x, _, _, _ = make_mnist(tmp_path)
    (tmp_path / input_data.TRAIN_IMAGES[:-3]).write_bytes(idx_bytes(2051, np.zeros((30, 28, 28))))
    ds = input_data.read_data_sets(str(tmp_path), validation_size=10)
    expected = tr_x[:10].reshape(10, 784).astype(np.float32) * np.float32(1 / 255)
    np.testing.assert_array_equal(ds.validation.images, expected)


def test_a_folder_named_as_an_uncompressed_data_file_is_passed_over(tmp_path):
    # Kaggle's copy of MNIST holds train-images.idx3-ubyte beside a folder train-images-idx3-ubyte (with the file
    # in it): the folder was taken for the file ("not a regular file")
    tr_x, _, _, _ = make_mnist(tmp_path)
    with gzip.open(tmp_path / input_data.TRAIN_IMAGES) as f:
        (tmp_path / "train-images.idx3-ubyte").write_bytes(f.read())
    os.remove(tmp_path / input_data.TRAIN_IMAGES)
    (tmp_path / "train-images-idx3-ubyte").mkdir()
    ds = input_data.read_data_sets(str(tmp_path), validation_size=10, source_url=OFFLINE_URL)
    expected = tr_x[:10].reshape(10, 784).astype(np.float32) * np.float32(1 / 255)
    np.testing.assert_array_equal(ds.validation.images, expected)


def test_next_batch_straddles_epochs_and_drops_nothing():
    images = np.arange(7 * 784, dtype=np.float32).reshape(7, 784)
    labels = np.arange(7, dtype=np.uint8)
    ds = input_data.DataSet(images, labels, seed=3)
    seen = []
    for _ in range(7):  # 7 batches of 3 = exactly 3 epochs of 7
        x, y = ds.next_batch(3)
        assert x.shape == (3, 784)
        np.testing.assert_array_equal(x[:, 0], y.astype(np.float32) * 784)  # images stay with their labels
        seen.extend(y.tolist())
    assert ds.epochs_completed == 2  # the third epoch ended exactly with the last batch, not yet rolled
    for epoch in range(3):
        assert sorted(seen[7 * epoch:7 * epoch + 7]) == list(range(7))
    assert seen[:7] != seen[7:14] or seen[7:14] != seen[14:]  # reshuffled between epochs


def test_next_batch_seed_is_reproducible_and_private():
    images, labels = np.zeros((50, 784), np.float32), np.arange(50)
    np.random.seed(123)
    state = np.random.get_state()[1].copy()
    a = [input_data.DataSet(images, labels, seed=5).next_batch(20)[1] for _ in range(2)]
    assert (a[0] == a[1]).all()
    assert (np.random.get_state()[1] == state).all()  # NumPy's global generator untouched


def test_next_batch_shuffles_the_first_epoch_unless_told_not_to():
    # Labels 0..99 tell the order. Shuffled, the first epoch is already a permutation (not 0..99 in order), and
    # another seed gives another one; shuffle=False serves 0..99 in order, epoch after epoch.
    images, labels = np.zeros((100, 784), np.float32), np.arange(100)
    first = input_data.DataSet(images, labels, seed=1).next_batch(100)[1]
    assert sorted(first.tolist()) == list(range(100))
    assert not np.array_equal(first, np.arange(100))
    other = input_data.DataSet(images, labels, seed=2).next_batch(100)[1]
    assert sorted(other.tolist()) == list(range(100)) and not np.array_equal(first, other)
    in_order = input_data.DataSet(images, labels, seed=1)
    batches = [in_order.next_batch(30, shuffle=False)[1].tolist() for _ in range(4)]
    assert batches == [list(range(0, 30)), list(range(30, 60)), list(range(60, 90)),
                       list(range(90, 100)) + list(range(0, 20))]


@pytest.mark.parametrize("damage, message", [
    ("missing", "train-images-idx3-ubyte.gz is missing"),
    ("magic", "bad magic number 2049 (expected 2051)"),
    ("truncated", "not a readable gzip file"),
    ("short_payload", "header says 30x28x28"),
    # data running on past what the header says is not decompressed to the end (a 9 MB file can hold 2 GB)
    ("long_payload", "header says 30x28x28 = 23520 bytes of data, file has more"),
    ("huge_header", "header says 100000x100000x28 = 280000000000 bytes of data, more than the 268435456"),
    ("counts", "has 30 images but"),
    ("dims", "images are 28x27 pixels, MNIST's are 28x28"),
    ("label_range", "train-labels-idx1-ubyte.gz: label 10 out of range 0-9"),
    ("no_images", "train-images-idx3-ubyte.gz: holds no images"),
    ("no_labels", "train-labels-idx1-ubyte.gz: holds no labels"),
    ("fifo", "train-images-idx3-ubyte.gz: not a regular file"),  # a pipe no one writes to: opening it would hang
    ("few", "train-images-idx3-ubyte.gz holds 30 images, fewer than the 5000 held out for validation"),
])
def test_loader_errors_name_the_file(tmp_path, damage, message):
    make_mnist(tmp_path)
    path = tmp_path / input_data.TRAIN_IMAGES
    if damage == "missing":
        path.unlink()
    elif damage == "magic":
        write_gz(path, idx_bytes(2049, np.zeros((30, 28, 28))))
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "short_payload":
        write_gz(path, idx_bytes(2051, np.zeros((30, 28, 28)))[:-5])
    elif damage == "long_payload":
        write_gz(path, idx_bytes(2051, np.zeros((30, 28, 28))) + bytes(50_000_000))
    elif damage == "huge_header":
        write_gz(path, idx_bytes(2051, np.zeros((0, 28, 28)))[:4] + (100000).to_bytes(4, "big") * 2
                 + (28).to_bytes(4, "big"))
    elif damage == "counts":
        write_gz(tmp_path / input_data.TRAIN_LABELS, idx_bytes(2049, np.zeros(29)))
    elif damage == "dims":
        write_gz(path, idx_bytes(2051, np.zeros((30, 28, 27))))
    elif damage == "label_range":
        write_gz(tmp_path / input_data.TRAIN_LABELS, idx_bytes(2049, np.arange(30) % 11))
    elif damage == "no_images":
        write_gz(path, idx_bytes(2051, np.zeros((0, 28, 28))))
    elif damage == "no_labels":
        write_gz(tmp_path / input_data.TRAIN_LABELS, idx_bytes(2049, np.zeros(0)))
    elif damage == "fifo":
        path.unlink()
        os.mkfifo(path)
    with pytest.raises(input_data.DataError, match="^.*" + message.replace("(", r"\(").replace(")", r"\)")) as e:
        input_data.read_data_sets(str(tmp_path), source_url=OFFLINE_URL,
                                  validation_size=5000 if damage == "few" else 10)
    assert ("train-labels" if damage in ("label_range", "no_labels") else "train-images-idx3-ubyte.gz") in str(e.value)
    if damage == "missing":
        assert str(tmp_path) in str(e.value) and OFFLINE_URL in str(e.value)
        assert os.listdir(tmp_path) and not [f for f in os.listdir(tmp_path) if f.endswith(".part")]


def test_idx_payload_without_memory_for_it_is_one_line(tmp_path, monkeypatch):
    path = tmp_path / input_data.TRAIN_LABELS
    write_gz(path, idx_bytes(2049, np.zeros(30)))
    monkeypatch.setattr(input_data.np, "empty", lambda *a, **k: (_ for _ in ()).throw(MemoryError()))
    with pytest.raises(input_data.DataError, match=r"header says 30 = 30 bytes of data, more than there is memory"):
        input_data.extract_labels(str(path))


def test_batch_larger_than_the_data_set_is_refused():
    ds = input_data.DataSet(np.zeros((7, 784), np.float32), np.arange(7, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"batch_size 8 is not in 1\.\.7"):
        ds.next_batch(8)
    assert ds.next_batch(7)[0].shape == (7, 784)


@pytest.mark.parametrize("where, message", [
    ("file", "error: data directory {d} is not a directory"),
    ("under_file", "error: train-images-idx3-ubyte.gz is missing from {d}, where it cannot be downloaded to "
                   "(Not a directory); put the file there or download it from " + input_data.DEFAULT_SOURCE_URL
                   + "train-images-idx3-ubyte.gz"),
    # A link to nothing, or a path under one, was "... where it cannot be downloaded to (File exists)".
    ("link", "error: data directory {d} is a symbolic link to {gone}, which leads nowhere"),
    ("under_link", "error: data directory {d}: {link} is a symbolic link to {gone}, which leads nowhere"),
])
def test_input_data_cli_unusable_data_dir_is_one_line(tmp_path, where, message):
    (tmp_path / "file").write_text("")
    os.symlink(tmp_path / "gone", tmp_path / "link")
    d = {"file": tmp_path / "file", "under_file": tmp_path / "file" / "sub", "link": tmp_path / "link",
         "under_link": tmp_path / "link" / "sub"}[where]
    proc = run_script("input_data.py", "--data-dir", d)  # fails before any download is tried
    assert_no_traceback(proc)
    assert proc.returncode == 1
    assert proc.stderr == message.format(d=d, link=tmp_path / "link", gone=tmp_path / "gone") + "\n"
    assert sorted(os.listdir(tmp_path)) == ["file", "link"]


def test_input_data_cli_names_a_data_dir_that_is_not_utf8(tmp_path):
    # Printed as the bytes it is, even where stderr's encoding is strict UTF-8 (was a UnicodeEncodeError).
    bad = os.fsencode(tmp_path) + b"/d\xe9"
    with open(bad, "w"):
        pass  # a file, not a directory
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "input_data.py"), "--data-dir", bad], cwd=ROOT,
                          env=dict(_env(), PYTHONIOENCODING="utf-8:strict"), capture_output=True)
    assert (proc.returncode, proc.stderr) == (1, b"error: data directory %s is not a directory\n" % bad)


def test_input_data_cli_reports_bad_file_in_one_line(tmp_path):
    make_mnist(tmp_path)
    (tmp_path / input_data.TEST_LABELS).write_bytes(b"not gzip at all")
    proc = run_script("input_data.py", "--data-dir", tmp_path)
    assert proc.returncode == 1
    assert_no_traceback(proc)
    assert proc.stderr.count("\n") == 1 and input_data.TEST_LABELS in proc.stderr


def test_input_data_cli_output_that_cannot_be_written(mnist_dir):
    command = [sys.executable, os.path.join(ROOT, "input_data.py"), "--data-dir", str(mnist_dir)]
    with open("/dev/full", "w") as full:  # every write fails with ENOSPC
        proc = subprocess.run(command, cwd=ROOT, env=_env(), stdout=full, stderr=subprocess.PIPE, text=True)
    assert (proc.returncode, proc.stderr) == (1, "error: standard output: No space left on device\n")
    env = _env()
    env.pop("PYTHONUNBUFFERED", None)  # --help's text waits in the buffer: it was "Exception ignored ...", 120
    with open("/dev/full", "w") as full:
        proc = subprocess.run(command + ["--help"], cwd=ROOT, env=env, stdout=full, stderr=subprocess.PIPE,
                              text=True)
    assert (proc.returncode, proc.stderr) == (1, "error: standard output: No space left on device\n")
    closed = run_script_redirected(">&-", "input_data.py", "--data-dir", mnist_dir)  # nothing to write to: fine
    assert (closed.returncode, closed.stderr) == (0, "")


def test_standard_output_set_back_still_writes():
    # The stream prepare_std_streams puts in place shares its buffer with Python's: if sys.stdout is set back (a
    # test harness, a library), it is not collected and closing that buffer (a ValueError at the next print).
    code = ("import gc, sys, input_data; input_data.prepare_std_streams(); print('a'); sys.stdout = sys.__stdout__; "
            "gc.collect(); print('b')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "a\nb\n", "")


@pytest.mark.parametrize("script, args, unbuffered", [
    ("mnist_app.py", ["--model-dir", "{empty}", "{empty}/w.png"], ""),  # "No checkpoint file found": at exit
    ("mnist_test.py", ["--model-dir", "{model}", "--once"], "1"),       # the accuracy line, as it is printed
    ("mnist_backward.py", ["--model-dir", "{model}", "--steps", "2"], ""),  # "already at step": at exit
    ("mnist_app.py", ["--help"], "1"),  # argparse swallows the error writing its help: it was status 0, silent
])
def test_output_that_cannot_be_written_is_named(tmp_path, trained_model, mnist_dir, script, args, unbuffered):
    """`> /dev/full`: one line naming standard output, status 1, whether Python buffers stdout or not (before:
    a nameless "[Errno 28]", or a traceback and status 120 when the failure came at the exit's flush)."""
    from PIL import Image
    Image.new("L", (28, 28), 255).save(tmp_path / "w.png")
    shutil.copytree(trained_model, tmp_path / "model")  # the shared model stays as it is
    args = [a.format(empty=tmp_path, model=tmp_path / "model") for a in args]
    env = _env({input_data.DATA_DIR_ENV: mnist_dir})
    env.pop("PYTHONUNBUFFERED", None)
    if unbuffered:
        env["PYTHONUNBUFFERED"] = unbuffered
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, os.path.join(ROOT, script), *args], cwd=ROOT, env=env, stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=300)
    assert (proc.returncode, proc.stderr) == (1, "error: standard output: No space left on device\n")


def _serve_in_background(server):
    # polled every 20 ms for shutdown() (the default 0.5 s made each test's teardown wait half a second)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()


@pytest.fixture
def http_dir(tmp_path):
    """Serves a folder over HTTP on 127.0.0.1; yields (folder, base URL)."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    _serve_in_background(server)
    yield served, "http://127.0.0.1:%d/" % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_download_checks_md5_and_is_atomic(tmp_path, http_dir):
    served, url = http_dir
    payload = os.urandom(200000)
    (served / "x.gz").write_bytes(payload)
    dest = tmp_path / "dest"
    good = hashlib.md5(payload).hexdigest()
    path = input_data.download("x.gz", str(dest), url, md5=good)
    assert open(path, "rb").read() == payload
    os.remove(path)
    with pytest.raises(input_data.DataError, match="x.gz: downloaded .* with MD5 %s, expected 0+" % good):
        input_data.download("x.gz", str(dest), url, md5="0" * 32)
    assert os.listdir(dest) == []  # neither the file nor a partial one


@pytest.mark.parametrize("size", [200000, 5000])  # (5000: the whole file is written only as it is closed)
def test_a_download_that_cannot_be_written_is_named_as_such(tmp_path, http_dir, size):
    # A full disk (here a file-size limit, EFBIG) while the file is written was "could not be downloaded
    # ([Errno 28] ...)", as if the transfer had failed; when the file's closing wrote it, an OSError escaped
    served, url = http_dir
    (served / "x.gz").write_bytes(os.urandom(size))
    dest = tmp_path / "dest"

    def limited():
        import resource
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # (a write past the limit then fails with EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    code = ("import sys, input_data\ntry: input_data.download('x.gz', sys.argv[1], sys.argv[2])\n"
            "except input_data.DataError as e: print(e)")
    proc = subprocess.run([sys.executable, "-c", code, str(dest), url], cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=300, preexec_fn=limited)
    assert proc.stdout == ("x.gz is missing from %s, where it cannot be downloaded to (File too large); put the "
                           "file there or download it from %sx.gz\n" % (dest, url)), proc.stderr
    assert proc.returncode == 0
    assert not dest.exists()  # made for the download, and removed with its partial file


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_downloaded_file_has_the_mode_of_any_new_file(tmp_path, http_dir, umask):
    # It was always 0600 (mkstemp's), so a shared data directory's files could not be read by other users.
    served, url = http_dir
    (served / "x.gz").write_bytes(b"data")
    before = os.umask(umask)
    try:
        path = input_data.download("x.gz", str(tmp_path), url)
    finally:
        os.umask(before)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


@pytest.fixture
def raw_http(tmp_path):
    """A server on 127.0.0.1 that answers every connection with the bytes put in the list it yields."""
    import socketserver
    reply = []

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            self.rfile.readline()  # the request line is enough
            self.wfile.write(reply[0])

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    _serve_in_background(server)
    yield reply, "http://127.0.0.1:%d/" % server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("answer, reason", [
    (b"HELLO THERE\r\n", "the server's reply is not valid HTTP: BadStatusLine"),  # was a traceback
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n" + b"x" * 100,  # was a traceback
     "the transfer was cut short"),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 100,  # was kept as if complete
     "the transfer was cut short after 100 of 5000 bytes"),
])
def test_download_of_a_broken_reply_is_one_line(tmp_path, raw_http, answer, reason):
    reply, url = raw_http
    reply.append(answer)
    with pytest.raises(input_data.DataError) as e:  # was http.client.BadStatusLine / IncompleteRead
        input_data.download("x.gz", str(tmp_path), url)
    assert str(e.value) == ("x.gz is missing from %s and could not be downloaded (%s); put the file in %s or "
                            "download it from %sx.gz" % (tmp_path, reason, tmp_path, url))
    assert os.listdir(tmp_path) == []


@pytest.fixture
def stalled_download(tmp_path):
    """Yields start(directory): a process downloading MNIST's first file into directory from a server on
    127.0.0.1 that sends a tenth of it and then nothing more; it returns once the first bytes are on disk.
    Returns the Popen (stderr piped)."""
    import socketserver
    stop = threading.Event()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            self.rfile.readline()
            self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 100000)
            self.wfile.flush()
            stop.wait()  # and the rest never comes (until the test ends)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    _serve_in_background(server)
    procs = []

    def start(directory):
        # (no 30 s read timeout: the download stays stalled, holding its file, however slowly the test goes on)
        code = ("import sys; sys.path.insert(0, %r); import input_data; input_data.READ_TIMEOUT = 3600; "
                "input_data.read_data_sets(%r, source_url=%r)"
                % (ROOT, str(directory), "http://127.0.0.1:%d/" % server.server_address[1]))
        procs.append(subprocess.Popen([sys.executable, "-c", code], env=_env(), stderr=subprocess.PIPE))
        assert procs[-1].stderr.read(len(b"\rDownloading")) == b"\rDownloading"  # the first bytes are on disk
        return procs[-1]

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    stop.set()
    server.shutdown()
    server.server_close()


def test_sigterm_during_a_download_leaves_nothing_behind(tmp_path, stalled_download):
    # `timeout 60 python mnist_backward.py` on a slow line: SIGTERM ended the process at once, leaving the
    # partial download (.<name>.<random>.part) and the data directory made for it.
    proc = stalled_download(tmp_path / "d" / "e")
    assert [name.endswith(".part") for name in os.listdir(tmp_path / "d" / "e")] == [True]
    proc.terminate()
    assert proc.wait(timeout=300) == -signal.SIGTERM  # still ended by the signal, as before
    assert os.listdir(tmp_path) == []


def test_a_download_killed_outright_leaves_nothing_behind_the_next_one(tmp_path, stalled_download, http_dir,
                                                                      monkeypatch):
    # SIGKILL (or a power cut) gives a download no chance to remove its temporary file: it stayed, hidden, for
    # good. The next download of that file removes it, but not one another download is writing.
    served, url = http_dir
    (served / input_data.TRAIN_IMAGES).write_bytes(b"data")
    data = tmp_path / "d"
    killed = stalled_download(data)
    [stale] = os.listdir(data)
    killed.kill()
    killed.wait()
    running = stalled_download(data)  # beside it, a download still running, silent for a while
    [live] = set(os.listdir(data)) - {stale}
    monkeypatch.setattr(input_data, "STALE_AFTER", 3600)  # "just made" however long until download() looks
    fresh = data / ("." + input_data.TRAIN_IMAGES + ".just-made.part")  # made, but not yet held
    fresh.write_bytes(b"")
    old = time.time() - 2 * input_data.STALE_AFTER
    for name in (stale, live):
        os.utime(data / name, (old, old))
    input_data.download(input_data.TRAIN_IMAGES, str(data), url)
    assert sorted(os.listdir(data)) == sorted([input_data.TRAIN_IMAGES, live, fresh.name])
    assert running.poll() is None


@pytest.mark.parametrize("length", [b"Content-Length: 100000\r\n", b""])
def test_a_download_that_only_trickles_is_given_up(tmp_path, monkeypatch, length):
    # A server sending a byte now and then met every read's timeout, so the download never ended (hours for
    # MNIST at a few bytes a second). Here the window is shortened, and the server brings about 100 bytes/s,
    # 1,000 bytes in all (10 s or more): a download that is not given up ends when they are sent (cut short, or
    # complete without a length), not never.
    import socketserver
    stop = threading.Event()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            self.rfile.readline()
            self.wfile.write(b"HTTP/1.0 200 OK\r\n" + length + b"\r\n")
            for _ in range(1000):
                if stop.wait(0.01):  # the pace of the trickle, not a synchronisation
                    break
                self.wfile.write(b"x")
                self.wfile.flush()

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    _serve_in_background(server)
    monkeypatch.setattr(input_data, "SLOW_SECONDS", 0.5)
    monkeypatch.setattr(input_data, "SLOW_SPEED", 5000)  # 2,500 bytes a window: 25 times the trickle
    url = "http://127.0.0.1:%d/" % server.server_address[1]
    try:
        with pytest.raises(input_data.DataError) as e:
            input_data.download("x.gz", str(tmp_path / "d"), url)
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
    reason = re.fullmatch(r"x\.gz is missing from (.*) and could not be downloaded \((.*)\); put the file in "
                          r"\1 or download it from (.*)", str(e.value))
    assert reason and reason.group(1) == str(tmp_path / "d") and reason.group(3) == url + "x.gz", str(e.value)
    received = re.fullmatch(r"the transfer was slower than 5000 bytes/s for 0\.5 s, after (\d+)%s bytes"
                            % (" of 100000" if length else ""), reason.group(2))
    assert received and 0 < int(received.group(1)) < 1000, reason.group(2)
    assert not os.path.exists(tmp_path / "d")  # no partial file, nor the directory made for it


def test_a_download_goes_on_when_its_progress_cannot_be_written(tmp_path, raw_http, monkeypatch):
    # stderr on a full disk (2>/dev/full, a log on another file system) or a pipe whose reader left: the
    # progress line's write failed, and that was taken for the download failing ("could not be downloaded
    # (No space left on device)"), or once complete, the file was thrown away.
    reply, url = raw_http
    reply.append(b"HTTP/1.0 200 OK\r\nContent-Length: 200000\r\n\r\n" + b"data" * 50000)

    class Full:
        def write(self, text):
            raise OSError(28, "No space left on device")

        flush = write

    monkeypatch.setattr(sys, "stderr", Full())
    path = input_data.download("x.gz", str(tmp_path / "d"), url, md5=hashlib.md5(b"data" * 50000).hexdigest())
    assert open(path, "rb").read() == b"data" * 50000


def test_download_of_a_chunked_reply_ignores_its_content_length(tmp_path, raw_http):
    reply, url = raw_http  # HTTP says a Content-Length beside chunked encoding is to be ignored
    reply.append(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5000\r\n\r\n"
                 b"64\r\n" + b"x" * 100 + b"\r\n0\r\n\r\n")
    path = input_data.download("x.gz", str(tmp_path), url)  # was "cut short after 100 of 5000 bytes"
    assert open(path, "rb").read() == b"x" * 100


def test_data_files_out_of_reach_are_not_called_missing(tmp_path):
    make_mnist(tmp_path)
    (tmp_path / input_data.TEST_LABELS).chmod(0)
    command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",  # root would read them anyway
               sys.executable, os.path.join(ROOT, "input_data.py"), "--data-dir", str(tmp_path)]
    proc = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True)
    assert (proc.returncode, proc.stderr) == (1, "error: %s/%s: cannot be read (Permission denied)\n"
                                              % (tmp_path, input_data.TEST_LABELS))  # was "not a readable gzip file"
    tmp_path.chmod(0o600)  # the files are there, but the directory cannot be searched
    try:
        proc = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True)
    finally:
        tmp_path.chmod(0o700)
    assert (proc.returncode, proc.stderr) == (1, "error: %s/%s: cannot be read (Permission denied)\n"
                                              % (tmp_path, input_data.TRAIN_IMAGES))  # was "is missing from"


def test_a_data_file_that_is_a_link_to_nothing_is_named_as_such(tmp_path):
    # it was called missing (and a download was tried, which would have replaced the link with a file)
    make_mnist(tmp_path)
    link = tmp_path / input_data.TEST_LABELS
    link.unlink()
    link.symlink_to(tmp_path / "unmounted" / input_data.TEST_LABELS)
    with pytest.raises(input_data.DataError) as e:
        input_data.read_test_set(str(tmp_path), source_url=OFFLINE_URL)
    assert str(e.value) == "data file %s is a symbolic link to %s/unmounted/%s, which leads nowhere" % (
        link, tmp_path, input_data.TEST_LABELS)
    assert link.is_symlink()


def test_read_data_sets_downloads_missing_files(tmp_path, http_dir, monkeypatch):
    served, url = http_dir
    make_mnist(served)
    md5 = {name: hashlib.md5((served / name).read_bytes()).hexdigest() for name in input_data.MD5}
    monkeypatch.setattr(input_data, "MD5", md5)
    ds = input_data.read_data_sets(str(tmp_path / "d"), source_url=url, validation_size=5)
    assert ds.train.num_examples == 25 and sorted(os.listdir(tmp_path / "d")) == sorted(md5)


def test_read_data_sets_checks_downloads_against_the_published_md5s(tmp_path, http_dir):
    served, url = http_dir
    make_mnist(served)  # synthetic files: their MD5s are not the published ones
    with pytest.raises(input_data.DataError, match="train-images-idx3-ubyte.gz: downloaded from .* expected "
                                                   "f68b3c2dcbeaaa9fbdd348bbdeb94873; file discarded"):
        input_data.read_data_sets(str(tmp_path / "d" / "e"), source_url=url)
    assert os.listdir(tmp_path) == ["served"]  # no file, no partial file, no empty directory made for them


def test_failed_download_keeps_what_was_downloaded_and_what_was_there(tmp_path, http_dir, monkeypatch):
    served, url = http_dir
    make_mnist(served)
    os.remove(served / input_data.TRAIN_LABELS)  # the second download fails (404)
    monkeypatch.setattr(input_data, "MD5", {})
    with pytest.raises(input_data.DataError, match=r"train-labels-idx1-ubyte.gz is missing from .* \(File not found\)"):
        input_data.read_data_sets(str(tmp_path / "d"), source_url=url)
    assert os.listdir(tmp_path / "d") == [input_data.TRAIN_IMAGES]
    (tmp_path / "empty").mkdir()  # a data directory that was there stays, though empty
    with pytest.raises(input_data.DataError, match="train-labels-idx1-ubyte.gz is missing from"):
        input_data.download(input_data.TRAIN_LABELS, str(tmp_path / "empty"), url)
    assert os.listdir(tmp_path / "empty") == []
    # made, but no file can be created in it (a full disk): not left behind either
    monkeypatch.setattr(input_data.tempfile, "mkstemp", lambda **kw: (_ for _ in ()).throw(OSError(28, "Disk full")))
    with pytest.raises(input_data.DataError, match=r"where it cannot be downloaded to \(Disk full\)"):
        input_data.download(input_data.TRAIN_LABELS, str(tmp_path / "x" / "y"), url)
    assert not (tmp_path / "x").exists()


def test_published_md5s_match_the_real_files(mnist_dir):
    # SPEC.md's sums, written out here; ../shared/mnist's train-images file was recompressed (same content,
    # other bytes), so its sum is checked on the decompressed content's size instead.
    published = {"train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
                 "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
                 "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}
    assert input_data.MD5 == dict(published, **{"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873"})
    for name, md5 in published.items():
        with open(os.path.join(mnist_dir, name), "rb") as f:
            assert hashlib.md5(f.read()).hexdigest() == md5, name
    with gzip.open(os.path.join(mnist_dir, "train-images-idx3-ubyte.gz")) as f:
        assert len(f.read()) == 16 + 60000 * 28 * 28


def test_data_dir_rule(monkeypatch):
    monkeypatch.delenv(input_data.DATA_DIR_ENV, raising=False)
    assert input_data.resolve_data_dir(None) == "./data/"
    monkeypatch.setenv(input_data.DATA_DIR_ENV, "/env/dir")
    assert input_data.resolve_data_dir(None) == "/env/dir"
    assert input_data.resolve_data_dir("/flag/dir") == "/flag/dir"
    monkeypatch.setenv(input_data.DATA_DIR_ENV, "")  # set but empty: as if unset
    assert input_data.resolve_data_dir(None) == "./data/"
    with pytest.raises(input_data.DataError, match="^the data directory must not be an empty path$"):
        input_data.resolve_data_dir("")  # --data-dir '': refused, as --model-dir '' is (it meant the default)
    monkeypatch.setenv("HOME", "/home/me")  # a leading ~ left by the shell (quoted, after =) is the home folder
    monkeypatch.setenv(input_data.DATA_DIR_ENV, "~/mnist")
    assert input_data.resolve_data_dir(None) == "/home/me/mnist"
    assert input_data.resolve_data_dir("~") == "/home/me" and input_data.resolve_data_dir("./~") == "./~"


# ---------------------------------------------------------------------------------------------------------
# Network, schedule, EMA

def test_forward_shape_and_l2_collection():
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [None, 784])
        y = mnist_forward.forward(x, 1e-4)
        losses = tf.get_collection("losses")
        assert len(losses) == 2  # w1 and w2 only: biases are not regularised
        names = [v.op.name for v in tf.global_variables()]
        assert names == ["Variable", "Variable_1", "Variable_2", "Variable_3"]
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            out, reg, (w1, b1, w2, b2) = sess.run([y, tf.add_n(losses), tf.global_variables()],
                                                  {x: np.ones((3, 784), np.float32)})
    assert out.shape == (3, 10)
    assert w1.shape == (784, 500) and b1.shape == (500,) and w2.shape == (500, 10) and b2.shape == (10,)
    assert np.abs(w1).max() <= 0.2 + 1e-6  # truncated normal, stddev 0.1: within two stddevs
    expected = 1e-4 * (np.sum(w1.astype(np.float64) ** 2) + np.sum(w2.astype(np.float64) ** 2)) / 2
    assert reg == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose(out, np.maximum(np.ones((3, 784)) @ w1 + b1, 0) @ w2 + b2, rtol=1e-4, atol=1e-4)


def test_initial_biases_are_zero_and_weights_truncated_normal():
    # truncated_normal(stddev=0.1) cuts at two standard deviations; the standard deviation that leaves,
    # written out from the normal density: 0.1 * sqrt(1 - 2 * 2 * phi(2) / (2 * Phi(2) - 1)), about 0.088.
    import math
    phi2 = math.exp(-2) / math.sqrt(2 * math.pi)
    expected_std = 0.1 * math.sqrt(1 - 4 * phi2 / math.erf(2 / math.sqrt(2)))
    assert 0.087 < expected_std < 0.089
    with tf.Graph().as_default():
        tf.set_random_seed(3)
        mnist_forward.forward(tf.placeholder(tf.float32, [None, 784]), None)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            w1, b1, w2, b2 = sess.run(tf.global_variables())
    np.testing.assert_array_equal(b1, np.zeros(500, np.float32))
    np.testing.assert_array_equal(b2, np.zeros(10, np.float32))
    for w in (w1, w2):
        assert abs(w.mean()) < 0.005
        assert abs(w.std() - expected_std) <= 0.005, w.std()


def test_no_regularizer_no_collection():
    with tf.Graph().as_default():
        mnist_forward.forward(tf.placeholder(tf.float32, [None, 784]), None)
        assert tf.get_collection("losses") == []


def test_loss_and_one_step_match_numpy():
    # The course's loss and update, recomputed in NumPy from the weights and the batch the step used, with the
    # constants written out from SPEC.md: loss = mean cross-entropy + 0.0001 * (sum w1^2 + sum w2^2) / 2, then
    # w -= 0.1 * dloss/dw (the rate at step 0) for w1, b1, w2, b2.
    rng = np.random.default_rng(0)
    images = rng.random((40, 784), dtype=np.float32)
    labels = input_data.dense_to_one_hot(rng.integers(0, 10, 40))
    with tf.Graph().as_default():
        tf.set_random_seed(1)
        graph = mnist_backward.TrainingGraph(input_data.DataSet(images, labels, seed=2), 16, resident=False)
        weights = tf.trainable_variables()
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            graph.prepare(sess, 1)
            feed = graph.feed()
            w1, b1, w2, b2 = [w.astype(np.float64) for w in sess.run(weights)]
            loss, _ = sess.run([graph.loss, graph.train_op], feed)
            after = sess.run(weights)
    x, y = feed[graph.x].astype(np.float64), feed[graph.y_]
    pre = x @ w1 + b1
    hidden = np.maximum(pre, 0)
    logits = hidden @ w2 + b2
    shifted = logits - logits.max(1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(1, keepdims=True)
    ce = -np.mean(np.log(p[np.arange(16), y.argmax(1)]))
    l2 = 0.0001 * ((w1 ** 2).sum() + (w2 ** 2).sum()) / 2
    assert l2 > 0.1  # large enough that a wrong factor shows
    np.testing.assert_allclose(loss, ce + l2, rtol=1e-5)
    d_logits = (p - y) / 16
    d_pre = (d_logits @ w2.T) * (pre > 0)
    grads = [x.T @ d_pre + 0.0001 * w1, d_pre.sum(0), hidden.T @ d_logits + 0.0001 * w2, d_logits.sum(0)]
    for name, w, g, got in zip(["w1", "b1", "w2", "b2"], [w1, b1, w2, b2], grads, after):
        np.testing.assert_allclose(got, w - 0.1 * g, rtol=0, atol=2e-7, err_msg=name)


def test_learning_rate_schedule():
    with tf.Graph().as_default():
        step = tf.placeholder(tf.int64, [])
        lr = mnist_backward.learning_rate(step, 55000, 200)
        with tf.Session() as sess:
            got = [sess.run(lr, {step: s}) for s in (0, 274, 275, 550)]
    np.testing.assert_allclose(got, [0.1, 0.1, 0.099, 0.09801], rtol=1e-6)


@pytest.mark.parametrize("update", ["package", "course"])
def test_ema_worked_example(update):
    # "package": the trainer's update (one descent step per shadow); "course": TF's ema.apply, as the course ran it.
    with tf.Graph().as_default():
        w1 = tf.Variable(0, dtype=tf.float32)
        global_step = tf.Variable(0, trainable=False)
        ema = mnist_backward.moving_average(global_step)
        if update == "package":
            apply = mnist_backward.apply_moving_average(ema, global_step)
        else:
            apply = ema.apply([w1])
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            assert sess.run(ema.average(w1)) == 0.0
            sess.run(tf.assign(w1, 1))
            sess.run(apply)
            shadows = [sess.run(ema.average(w1))]
            sess.run([tf.assign(global_step, 100), tf.assign(w1, 10)])
            for _ in range(3):
                sess.run(apply)
                shadows.append(sess.run(ema.average(w1)))
    np.testing.assert_allclose(shadows, [0.9, 1.644, 2.328, 2.956], atol=1e-3)


# A Ctrl+C that lands while `module` is first imported, simulated by an import hook raising KeyboardInterrupt
# there (as Python's SIGINT handler would), then the script run as `python script`.
_INTERRUPT_AT_IMPORT = """
import runpy, sys
module, script = sys.argv[1:3]
class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == module:
            raise KeyboardInterrupt
sys.meta_path.insert(0, Interrupt())
sys.argv = sys.argv[2:]
runpy.run_path(script, run_name="__main__")
"""


@pytest.mark.parametrize("script, module", [(s, m) for s in ("mnist_backward.py", "mnist_test.py", "mnist_app.py")
                                            for m in ("numpy", "tensorflow")] + [("input_data.py", "numpy")])
def test_ctrl_c_while_loading_is_one_line_and_130(script, module, tmp_path):
    args = []
    if script == "mnist_backward.py":  # it loads TensorFlow once the data is read: data and model of the test's own
        (tmp_path / "data").mkdir()
        make_mnist(tmp_path / "data", n_train=input_data.VALIDATION_SIZE + 1)
        args = ["--model-dir", str(tmp_path / "model"), "--data-dir", str(tmp_path / "data"), "--batch-size", "1"]
    elif script in ("mnist_test.py", "mnist_app.py"):  # they load TensorFlow only for a checkpoint to restore
        (tmp_path / "mnist_model-1.index").write_bytes(b"")
        (tmp_path / "data").mkdir()
        make_mnist(tmp_path / "data")
        args = ["--model-dir", str(tmp_path)] + (["--data-dir", str(tmp_path / "data")] if script == "mnist_test.py"
                                                 else [])
    proc = subprocess.run([sys.executable, "-c", _INTERRUPT_AT_IMPORT, module, os.path.join(ROOT, script)] + args,
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert_no_traceback(proc)
    assert proc.returncode == 130 and proc.stderr.strip() == "Interrupted.", proc.stderr


@pytest.mark.parametrize("script", ["input_data.py", "mnist_backward.py", "mnist_test.py", "mnist_app.py",
                                    "bench/train_speed.py", "bench/full_run.py", "bench/step_variants.py",
                                    "bench/app_bench.py"])
def test_help_shows_each_default(script, capsys):
    # In-process: the script's main() with --help, as `python SCRIPT --help` runs it.
    import importlib.util
    spec = importlib.util.spec_from_file_location("help_of_" + script.replace("/", "_")[:-3],
                                                  os.path.join(ROOT, script))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit) as exit:
        module.main(["--help"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    text = " ".join(out.split())  # argparse wraps lines
    assert "(default: None)" not in text
    assert "--data-dir DATA_DIR" not in text or "(default: $MNIST_DATA_DIR, else ./data/)" in text
    # Each option taking a value (from its "  --flag VALUE" line to the next option) says its default once;
    # flags taking none (off unless given) say nothing of a default.
    entries = re.split(r"\n  (?=-)", out.split("options:\n")[1])
    assert len(entries) >= 2, out
    for entry in entries:
        takes_value = re.match(r"--[a-z-]+ ([A-Z_]+|{)", entry)
        assert " ".join(entry.split()).count("(default: ") == (1 if takes_value else 0), entry


# Runs a script as `python script ARGS` and reports on stderr, as "<tensorflow imported>", whether anything
# imported TensorFlow (a meta-path hook sees every import; it lets the import go on).
_TELL_TF_IMPORT = """
import os, runpy, sys
class Tell:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow":
            os.write(2, b"<tensorflow imported>\\n")
sys.meta_path.insert(0, Tell())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.parametrize("script, args, status", [
    ("mnist_backward.py", ["--help"], 0), ("mnist_test.py", ["--help"], 0), ("mnist_app.py", ["--help"], 0),
    ("mnist_backward.py", ["--steps", "x"], 2), ("mnist_test.py", ["--interval", "-1"], 2),
    ("mnist_app.py", ["--preprocess", "x"], 2),
    ("mnist_backward.py", ["--model-dir", "{file}"], 1), ("mnist_test.py", ["--model-dir", "{file}"], 1),
    ("mnist_app.py", ["--model-dir", "{file}", "x.png"], 1),
    ("mnist_backward.py", ["--data-dir", "{file}", "--model-dir", "{empty}"], 1),
    ("mnist_app.py", ["--model-dir", "{empty}", "x.png"], 1), ("mnist_app.py", ["--model-dir", "{empty}"], 1),
    ("mnist_test.py", ["--once", "--model-dir", "{empty}", "--data-dir", "{data}"], 1),
    # a state file left beside no checkpoint (they were deleted): it names none there, and is not parsed
    ("mnist_app.py", ["--model-dir", "{stale}", "x.png"], 1),
    ("mnist_test.py", ["--once", "--model-dir", "{stale}", "--data-dir", "{data}"], 1),
    ("mnist_app.py", ["--model-dir", "{fake}", "x.png"], "tensorflow")])
def test_help_and_bad_input_are_answered_before_tensorflow_loads(script, args, status, tmp_path):
    # TensorFlow takes seconds to load: --help, a bad flag, a model or data directory that is a file, and the
    # app's and the evaluator's "No checkpoint file found" (beside a state file too) come without it. The last
    # case is the control: the app with a checkpoint (an empty, unreadable one) loads TensorFlow to restore it,
    # and the hook says so.
    (tmp_path / "file").write_text("")
    (tmp_path / "empty").mkdir()
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "mnist_model-1.index").write_bytes(b"")
    (tmp_path / "stale").mkdir()
    (tmp_path / "stale" / "checkpoint").write_text('model_checkpoint_path: "mnist_model-1"\n'
                                                   'all_model_checkpoint_paths: "mnist_model-1"\n')
    args_given = args
    (tmp_path / "data").mkdir()
    make_mnist(tmp_path / "data")
    args = [a.format(file=tmp_path / "file", empty=tmp_path / "empty", fake=tmp_path / "fake", data=tmp_path / "data",
                     stale=tmp_path / "stale") for a in args]
    proc = subprocess.run([sys.executable, "-c", _TELL_TF_IMPORT, os.path.join(ROOT, script)] + args,
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert_no_traceback(proc)
    if status == "tensorflow":
        assert "<tensorflow imported>" in proc.stderr and proc.returncode == 1, proc.stderr
        return
    assert "<tensorflow imported>" not in proc.stderr
    assert proc.returncode == status, proc.stderr
    # the app and the evaluator find no checkpoint in an empty directory, or beside a stale state file
    none_found = script != "mnist_backward.py" and ("{empty}" in args_given or "{stale}" in args_given)
    assert (proc.stdout == "No checkpoint file found\n") == none_found, (proc.stdout, proc.stderr)
    if status == 0:
        assert proc.stdout.startswith("usage: ") and proc.stderr == ""
    elif none_found:  # as the course said it, and where it looked
        looked = args[args.index("--model-dir") + 1]
        assert proc.stderr.startswith("note: no checkpoint in %s; train one first: " % looked)
        assert proc.stderr.count("\n") == 1
    else:  # argparse's usage and its error, or our one line
        assert "error: " in proc.stderr.strip().splitlines()[-1] and "Training" not in proc.stdout, proc.stderr


@pytest.mark.parametrize("script", ["mnist_test.py", "mnist_app.py"])
def test_a_state_file_that_cannot_be_read_is_answered_before_tensorflow_loads(script, tmp_path):
    # A model directory whose 'checkpoint' state file cannot be read is one that cannot be used: said without
    # loading TensorFlow, as a directory that cannot be read is. (It was read with TensorFlow first, 3 s.)
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    (model_dir / "checkpoint").write_text('model_checkpoint_path: "mnist_model-1"\n')
    (model_dir / "checkpoint").chmod(0o000)
    (tmp_path / "data").mkdir()
    make_mnist(tmp_path / "data")
    # As root, permissions bind only without the capability to override them: drop it for this one command.
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    args = ["--once", "--data-dir", str(tmp_path / "data")] if script == "mnist_test.py" else ["x.png"]
    proc = subprocess.run(drop + [sys.executable, "-c", _TELL_TF_IMPORT, os.path.join(ROOT, script), "--model-dir",
                                  str(model_dir)] + args, cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert_no_traceback(proc)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == "error: %s: Permission denied\n" % (model_dir / "checkpoint")


def test_a_model_dir_that_cannot_be_made_is_answered_before_tensorflow_loads(tmp_path):
    # It was made after the data and TensorFlow had loaded (4 s): "error: DIR: Permission denied" came then.
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    # As root, permissions bind only without the capability to override them: drop it for this one command.
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    model_dir = tmp_path / "ro" / "model"
    proc = subprocess.run(drop + [sys.executable, "-c", _TELL_TF_IMPORT, os.path.join(ROOT, "mnist_backward.py"),
                                  "--model-dir", str(model_dir), "--data-dir", str(tmp_path)],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert_no_traceback(proc)
    assert proc.returncode == 1 and proc.stdout == "Overriding: MODEL_SAVE_PATH = %s\n" % model_dir
    assert proc.stderr == "error: %s: Permission denied\n" % model_dir


def test_training_files_with_only_the_validation_images_are_one_line_error(tmp_path, capsys):
    # 5,000 training images are all held out for validation: the trainer blamed --batch-size ("larger than the 0
    # training images"), whatever its value.
    import mnist_backward
    from mnist_common import run_main
    make_mnist(tmp_path, n_train=5000)
    with pytest.raises(SystemExit) as exit:
        run_main(lambda: mnist_backward.main(["--steps", "5", "--batch-size", "1", "--data-dir", str(tmp_path),
                                              "--model-dir", str(tmp_path / "model")]))
    out, err = capsys.readouterr()
    assert exit.value.code == 1 and "Training on MNIST" not in out
    assert err == "error: %s holds 5000 images, all held out for validation: none left to train on\n" % (
        tmp_path / input_data.TRAIN_IMAGES)


def test_output_streams_write_file_names_as_their_bytes():
    # The output streams' error handler: what the encoding cannot write is the file system's bytes for it (a name
    # that is not UTF-8, or any name on an ASCII stream); on a stream that is not ASCII-compatible (UTF-16),
    # where raw bytes would not fit in, an escape instead of a traceback.
    input_data.prepare_std_streams()  # registers the handler
    assert "x\udcff".encode("utf-8", "file_system_bytes") == b"x\xff"
    assert "caf\u00e9".encode("ascii", "file_system_bytes") == "caf\u00e9".encode("utf-8")
    assert "x\udcff".encode("utf-16-le", "file_system_bytes").decode("utf-16-le") == "x\\udcff"


@pytest.mark.parametrize("stderr", ["full", "closed pipe"])
def test_standard_error_that_cannot_be_written_stops_nothing(stderr):
    # A warning on stderr (2>/dev/full, a pipe whose reader left) raised OSError: the evaluator and the trainer
    # stopped at their first warning (status 1, nothing said), and a broken pipe on stderr was even taken for
    # one on stdout. What cannot be said there is dropped; the program goes on.
    code = ("import sys, input_data; input_data.prepare_std_streams(); print('warning: a', file=sys.stderr); "
            "print('out'); sys.stderr.write('b' * 100000); sys.stderr.flush(); print('end')")
    if stderr == "full":
        with open("/dev/full", "w") as err:
            proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                                  stderr=err, text=True)
    else:
        read, write = os.pipe()
        os.close(read)
        try:
            proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                                  stderr=write, text=True)
        finally:
            os.close(write)
    assert (proc.returncode, proc.stdout) == (0, "out\nend\n")


def test_os_error_line_names_the_files_and_the_reason():
    # An OSError with a file but no reason said "FILE: None"; a rename's named only its first file.
    assert input_data.os_error_line(OSError(13, "Permission denied", "a/b")) == "error: a/b: Permission denied"
    assert input_data.os_error_line(OSError(18, "Invalid cross-device link", "x", None, "y")) == \
        "error: x -> y: Invalid cross-device link"
    no_reason = OSError("cannot map the file")
    no_reason.filename = "big.gz"
    assert input_data.os_error_line(no_reason) == "error: big.gz: cannot map the file"
    assert input_data.os_error_line(OSError(28, "No space left on device")) == \
        "error: [Errno 28] No space left on device"


@pytest.mark.parametrize("script", ["mnist_backward.py", "mnist_test.py", "mnist_app.py", "input_data.py"])
def test_tensorflow_not_installed_is_one_line(script, trained_model, mnist_dir, tmp_path):
    # a Python without the requirements: "ModuleNotFoundError: No module named 'tensorflow'" came as a traceback
    args = {"mnist_backward.py": ["--steps", "5", "--model-dir", str(tmp_path / "m"), "--data-dir", mnist_dir],
            "mnist_test.py": ["--once", "--model-dir", trained_model, "--data-dir", mnist_dir],
            "mnist_app.py": ["--model-dir", trained_model, os.path.join(ROOT, "tests", "no-such-picture.png")],
            "input_data.py": ["--data-dir", mnist_dir]}[script]
    hidden = ("import runpy, sys; sys.modules['tensorflow'] = None; sys.argv = sys.argv[1:]; "
              "runpy.run_path(sys.argv[0], run_name='__main__')")  # (None there: `import tensorflow` fails)
    proc = subprocess.run([sys.executable, "-c", hidden, os.path.join(ROOT, script), *args], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=300)
    if script == "input_data.py":  # the loader needs NumPy only
        assert proc.returncode == 0 and proc.stderr == "" and "55000" in proc.stdout, proc.stdout + proc.stderr
        return
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines()[-1] == ("error: TensorFlow is not installed for this Python (%s); install the "
                                            "requirements: %s -m pip install -r requirements.txt"
                                            % (sys.executable, os.path.basename(sys.executable))), proc.stderr
    assert "Traceback" not in proc.stderr and not os.path.exists(tmp_path / "m" / "checkpoint")


@pytest.mark.parametrize("module, what, script", [
    ("numpy", "NumPy", "input_data.py"), ("numpy", "NumPy", "mnist_backward.py"), ("numpy", "NumPy", "mnist_test.py"),
    ("numpy", "NumPy", "mnist_app.py"), ("numpy", "NumPy", "bench/train_speed.py"),
    ("numpy", "NumPy", "bench/app_bench.py"), ("PIL", "Pillow", "mnist_app.py"),
    ("PIL", "Pillow", "bench/app_bench.py")])
def test_numpy_or_pillow_not_installed_is_one_line(module, what, script, tmp_path):
    # A fresh Python without the requirements lacks NumPy first (TensorFlow needs it too): its import, before
    # any flag is read, came as a "ModuleNotFoundError: No module named 'numpy'" traceback.
    hidden = ("import runpy, sys; sys.modules[%r] = None; sys.argv = sys.argv[1:]; "
              "runpy.run_path(sys.argv[0], run_name='__main__')" % module)
    proc = subprocess.run([sys.executable, "-c", hidden, os.path.join(ROOT, script), "--data-dir", str(tmp_path)],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and proc.stdout == "", proc.stdout + proc.stderr
    assert proc.stderr == ("error: %s is not installed for this Python (%s); install the requirements: %s -m pip "
                           "install -r requirements.txt\n" % (what, sys.executable, os.path.basename(sys.executable)))


@pytest.mark.parametrize("module", ["numpy", "PIL", "tensorflow"])
def test_requirement_missing_in_code_of_ones_own_is_the_import_error(module):
    # (TensorFlow, loaded as the modules are imported in code of one's own: a NameError, UserError undefined yet)
    # code importing the package's modules gets the ImportError, to handle as it likes: no exit from an import
    code = ("import sys; sys.modules[%r] = None\ntry:\n    import mnist_app\nexcept ModuleNotFoundError as e:\n"
            "    print('caught', e.name)" % module)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and proc.stdout.split(".")[0] in ("caught %s\n" % module, "caught %s" % module), \
        proc.stdout + proc.stderr  # (tensorflow.compat for TensorFlow)


# -P came in Python 3.11 (3.10 says "Unknown option: -P"): there, -I alone
SAFE_PATH_FLAGS = ["-I", "-P"] if sys.version_info >= (3, 11) else ["-I"]


@pytest.mark.parametrize("flag", SAFE_PATH_FLAGS)
@pytest.mark.parametrize("script", ["mnist_backward.py", "mnist_test.py", "mnist_app.py"])
def test_scripts_run_with_the_safe_path_flags(flag, script, tmp_path):
    # python -I (isolated) and -P leave the script's folder off sys.path: "No module named 'mnist_common'"
    proc = subprocess.run([sys.executable, flag, os.path.join(ROOT, script), "--help"], cwd=str(tmp_path),
                          env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: ") and proc.stderr == "", proc.stderr


def test_a_linked_script_runs_with_the_safe_path_flags(tmp_path):
    # Python puts the folder of the linked-to script on the path: the one to put back under -P too
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "evaluate").symlink_to(os.path.join(ROOT, "mnist_test.py"))
    for flags in [[]] + ([["-P"]] if "-P" in SAFE_PATH_FLAGS else []):
        proc = subprocess.run([sys.executable, *flags, str(tmp_path / "bin" / "evaluate"), "--help"],
                              cwd=str(tmp_path), env=_env(), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0 and proc.stdout.startswith("usage: ") and proc.stderr == "", (flags, proc.stderr)


def test_trainer_trains_under_python_isolated_mode(tmp_path, mnist_dir):
    proc = subprocess.run([sys.executable, "-I", os.path.join(ROOT, "mnist_backward.py"), "--steps", "3",
                           "--model-dir", "m", "--data-dir", mnist_dir], cwd=str(tmp_path), env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.splitlines()[-1].startswith("Finished at step 3: 3 steps in ")
    assert (tmp_path / "m" / "mnist_model-3.index").is_file()


@pytest.mark.parametrize("terminal", [True, False])
def test_interrupted_is_on_a_line_of_its_own_at_a_terminal_only(terminal, monkeypatch):
    # A terminal shows ^C where the cursor was: "Interrupted." goes on the next line. In a file or a pipe
    # there is no ^C, and the blank line before it was noise.
    import io
    from mnist_common import run_main

    class Stderr(io.StringIO):
        def isatty(self):
            return terminal

    err = Stderr()
    monkeypatch.setattr(sys, "stderr", err)

    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as e:
        run_main(interrupted)
    assert e.value.code == 130 and err.getvalue() == ("\nInterrupted.\n" if terminal else "Interrupted.\n")
