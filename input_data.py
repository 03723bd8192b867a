"""MNIST loader: the TF1 tutorial's ``input_data.read_data_sets``, rewritten for today's NumPy.

Imported by the training, evaluation and app scripts; also run directly to fetch and check the data:

    python input_data.py [--data-dir DIR]

The four IDX files are looked for in the data directory, chosen (here and in every script of the package) as
the ``--data-dir`` flag, else the ``MNIST_DATA_DIR`` environment variable, else ``./data/``; gzipped under their
own names, or uncompressed under those or the names gunzip and other copies leave (``other_names``). Missing files are
downloaded from the CVDF mirror the tutorial used and checked against the published MD5 sums. Files found on
disk are checked structurally (gzip, IDX magic, dimensions, sizes), so a damaged file is named, not guessed at.
"""
import argparse
import codecs
import contextlib
import gzip
import hashlib
import http.client
import io
import os
import signal
import stat
import sys
import tempfile
import threading
import time
import urllib.request
import zlib


def program_of_ours():
    """Whether the program running is one of the package's scripts or benchmarks (python SCRIPT, python -m)."""
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if not path:
        return False
    here = os.path.dirname(os.path.realpath(__file__))
    folder, name = os.path.split(os.path.realpath(path))
    return (folder == here and name in ("input_data.py", "mnist_backward.py", "mnist_test.py", "mnist_app.py")
            or folder == os.path.join(here, "bench"))


def not_installed(what):
    """The line that says a requirement (what: "NumPy", say) is missing, and how to install the requirements."""
    return ("%s is not installed for this Python (%s); install the requirements: %s -m pip install -r "
            "requirements.txt" % (what, sys.executable, os.path.basename(sys.executable)))


def missing_requirement(error, module, what):
    """Called for an import of a requirement that failed (error); module is its top-level name ("PIL"), what
    the project's ("Pillow"). In the package's programs: one line and status 1, as a fresh Python without
    the requirements would otherwise end in a traceback. Elsewhere (code of one's own), and for a module
    missing inside an installed requirement, the error is raised as it is."""
    if (error.name or "").partition(".")[0] != module or not program_of_ours():
        raise error
    print("error: " + not_installed(what), file=sys.stderr)
    sys.exit(1)


def say_interrupted():
    """Prints `Interrupted.` on stderr after a Ctrl+C: on a line of its own at a terminal, which shows ^C
    where the cursor was; nothing more in a file or a pipe."""
    try:
        at_terminal = sys.stderr.isatty()
    except (AttributeError, ValueError):  # no stderr, or closed
        at_terminal = False
    print("\nInterrupted." if at_terminal else "Interrupted.", file=sys.stderr)


try:
    import numpy as np
except KeyboardInterrupt:  # Ctrl+C while NumPy loads, when run as a script: no traceback
    say_interrupted()
    sys.exit(130)
except ModuleNotFoundError as e:
    missing_requirement(e, "numpy", "NumPy")

DEFAULT_SOURCE_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
DEFAULT_DATA_DIR = "./data/"
DATA_DIR_ENV = "MNIST_DATA_DIR"

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"

# Published MD5 sums of the four downloads (checked only on files this module downloads).
MD5 = {
    TRAIN_IMAGES: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    TRAIN_LABELS: "d53e105ee54ea40749a09fcbcd1e9432",
    TEST_IMAGES: "9fb629c4189551a2d022fa330f9573f3",
    TEST_LABELS: "ec29112dd5afa0611ce80d1b7f02629c",
}

IMAGE_MAGIC = 2051  # IDX: unsigned bytes, 3 dimensions (count, rows, cols)
IMAGE_SIZE = 28     # MNIST's images are IMAGE_SIZE x IMAGE_SIZE pixels: the network's 784 inputs
LABEL_MAGIC = 2049  # IDX: unsigned bytes, 1 dimension (count)
NUM_CLASSES = 10
VALIDATION_SIZE = 5000  # the first 5,000 training images are held out

# A download waits up to READ_TIMEOUT seconds for each piece, and is given up if it brings fewer than
# SLOW_SPEED bytes a second over a whole SLOW_SECONDS window (at 1 kB/s the 9.9 MB of training images would
# take almost 3 hours: a server trickling a byte every few seconds meets every read's timeout but never ends).
READ_TIMEOUT = 30
SLOW_SPEED = 1000
SLOW_SECONDS = 60
STALE_AFTER = 5  # seconds: a download's temporary file untouched this long and not held is left from a killed one


class DataError(Exception):
    """A data file is missing, unreachable or malformed; the message names it and says what is wrong."""


def expand_user(path):
    """path with a leading ~ or ~user taken for that home folder, as the shell takes it where it is not quoted.
    Given in quotes or after an = (--model-dir=~/model, MNIST_DATA_DIR="~/mnist"), it reaches us as it is,
    and would name a folder "~" in the working directory."""
    return os.path.expanduser(path) if path.startswith("~") else path


def resolve_data_dir(flag_value=None):
    """The data directory: the flag, else $MNIST_DATA_DIR (unless empty), else ./data/; a leading ~ is the home
    folder (expand_user).

    Raises:
      DataError: the flag was given as an empty path.
    """
    if flag_value == "":
        raise DataError("the data directory must not be an empty path")
    return expand_user(flag_value or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


# ----------------------------------------------------------------------------------------------------------
# Reading IDX files

MAX_IDX_BYTES = 1 << 28    # an IDX header announcing over 256 MiB is damage (MNIST's largest file holds 47 MB)
_READ_CHUNK = 1 << 24      # bytes decompressed per read


def _read_idx(path, magic, ndim):
    """Reads a gzipped IDX file: its header, then exactly the payload the header announces.

    Never more than that is decompressed or held, so a damaged (or hostile) file whose data runs on for
    gigabytes costs no more memory than a good one.

    Args:
      path: the .gz file.
      magic: the IDX magic number expected (IMAGE_MAGIC or LABEL_MAGIC).
      ndim: the number of dimensions that magic number stands for.
    Returns:
      uint8 array shaped as the header's dimensions.
    Raises:
      DataError naming path and what is wrong.
    """
    header_len = 4 + 4 * ndim
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a pipe would block the open below until written to
            raise DataError("%s: not a regular file" % path)
        with open(path, "rb") as file, _idx_reader(file) as f:
            header = f.read(header_len)
            if len(header) < header_len:
                raise DataError("%s: truncated IDX header (%d bytes)" % (path, len(header)))
            found = int.from_bytes(header[0:4], "big")
            if found != magic:
                raise DataError("%s: bad magic number %d (expected %d)" % (path, found, magic))
            dims = [int.from_bytes(header[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
            expected = 1
            for d in dims:
                expected *= d
            shape = "x".join(map(str, dims))
            if expected > MAX_IDX_BYTES:
                raise DataError("%s: header says %s = %d bytes of data, more than the %d this loader reads"
                                % (path, shape, expected, MAX_IDX_BYTES))
            try:
                data = np.empty(expected, np.uint8)
            except MemoryError:
                raise DataError("%s: header says %s = %d bytes of data, more than there is memory for"
                                % (path, shape, expected)) from None
            view, have = memoryview(data), 0
            while have < expected:
                n = f.readinto(view[have:have + _READ_CHUNK])
                if not n:
                    break
                have += n
            if have < expected or f.read(1):
                raise DataError("%s: header says %s = %d bytes of data, file has %s"
                                % (path, shape, expected, have if have < expected else "more"))
    except FileNotFoundError:
        raise DataError("%s: file not found" % path) from None
    except OSError as e:
        if e.errno is not None:  # the file itself cannot be opened or read: Permission denied, I/O error, ...
            raise DataError("%s: cannot be read (%s)" % (path, e.strerror or e)) from None
        raise DataError("%s: not a readable gzip file (%s)" % (path, e or type(e).__name__)) from None
    except (EOFError, zlib.error) as e:
        raise DataError("%s: not a readable gzip file (%s)" % (path, e or type(e).__name__)) from None
    return data.reshape(dims)


def _idx_reader(file):
    """A reader of the IDX bytes in file (opened "rb"): the file itself when it holds them uncompressed (an IDX
    file starts with two zero bytes; a gzip file with 1f 8b), as gunzip or a browser leaves a download, under
    its .gz name or not; else its gzip decompression, which says so if the file is not gzip either."""
    if file.peek(2)[:2] == b"\0\0":
        return contextlib.nullcontext(file)
    return gzip.GzipFile(fileobj=file, mode="rb")


def extract_images(path):
    """Reads an IDX image file.

    Returns:
      uint8 array [N, rows * cols].
    """
    images = _read_idx(path, IMAGE_MAGIC, 3)
    if not images.shape[0]:
        raise DataError("%s: holds no images" % path)
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError("%s: images are %dx%d pixels, MNIST's are %dx%d"
                        % (path, images.shape[1], images.shape[2], IMAGE_SIZE, IMAGE_SIZE))
    return images.reshape(images.shape[0], -1)


def extract_labels(path, one_hot=False):
    """Reads an IDX label file.

    Returns:
      uint8 array [N], or float32 one-hot array [N, 10] when one_hot.
    """
    labels = _read_idx(path, LABEL_MAGIC, 1)
    if not labels.size:
        raise DataError("%s: holds no labels" % path)
    if labels.max() >= NUM_CLASSES:
        raise DataError("%s: label %d out of range 0-9" % (path, labels.max()))
    return dense_to_one_hot(labels) if one_hot else labels


def dense_to_one_hot(labels, num_classes=NUM_CLASSES):
    """[N] integer labels -> [N, num_classes] float32 one-hot rows."""
    return np.eye(num_classes, dtype=np.float32)[labels]


# ----------------------------------------------------------------------------------------------------------
# Downloading

def _progress(name, done, total, end=""):
    """Writes the progress line of a download (end="\n": its last); a stderr that cannot be written (full,
    a closed pipe) stops neither the download nor what follows."""
    if total > 0:
        text = "\rDownloading %s: %3d%%" % (name, 100 * done // total)
    else:
        text = "\rDownloading %s: %d bytes" % (name, done)
    try:
        sys.stderr.write(text + end)
        sys.stderr.flush()
    except OSError:
        pass


def _download_failure(error, done, total):
    """What went wrong in a download that had received done of total bytes (0: unknown), on one line."""
    if isinstance(error, http.client.IncompleteRead):  # the connection ended before the announced length
        # (Only a length announced up front tells how much is missing; a chunked reply cut in a chunk has
        # lost that chunk's bytes to http.client.)
        return "the transfer was cut short" + (" after %d of %d bytes" % (done, total) if total else "")
    if isinstance(error, http.client.HTTPException) and not isinstance(error, OSError):
        return "the server's reply is not valid HTTP: %s" % type(error).__name__
    return " ".join(str(getattr(error, "reason", error)).split())


class _TooSlow(OSError):
    """A download that brought fewer than SLOW_SPEED bytes a second over SLOW_SECONDS."""


class _NotWritten(Exception):
    """Writing a download's temporary file failed (a full disk, say); args[0] is the OSError. Not an OSError
    itself, so that it is not taken for a failure of the transfer."""


class _Terminated(BaseException):
    """SIGTERM, raised where it would have ended the process at once (see _cleaning_up_on_sigterm)."""


def _raise_terminated(signum, frame):
    raise _Terminated


@contextlib.contextmanager
def _cleaning_up_on_sigterm():
    """SIGTERM (kill, timeout) in the block, which would end the process where it stands, still ends it, by the
    same signal, but after the block's own clean-up (its finally clauses) has run. Only where SIGTERM has its
    default action, in the main thread (the only one Python runs handlers in); elsewhere nothing changes."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL):
        yield
        return
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    except _Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGTERM)
        raise SystemExit(128 + signal.SIGTERM) from None  # (not reached: the signal ends the process)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@_cleaning_up_on_sigterm()
def download(filename, directory, source_url=DEFAULT_SOURCE_URL, md5=None):
    """Downloads source_url + filename into directory, atomically, checking its MD5 when one is given.

    The bytes go to a temporary file in the same directory, renamed into place only once complete and
    verified, so an interrupted or bad download never leaves a file under the real name; nor, interrupted by
    Ctrl+C or SIGTERM, its temporary file or the directories it made.

    Returns:
      The path of the downloaded file.
    """
    path = os.path.join(directory, filename)
    url = source_url + filename
    created = []  # the directories made here: removed again if they stay empty
    try:
        make_dirs(directory, created)
        _remove_stale_parts(directory, filename)
        fd, tmp = tempfile.mkstemp(prefix="." + filename + ".", suffix=".part", dir=directory)
        _hold(fd)  # while the download runs: its file is not stale
    except OSError as e:
        remove_empty(created)
        raise DataError("%s is missing from %s, where it cannot be downloaded to (%s); put the file there "
                        "or download it from %s" % (filename, directory, e.strerror or e, url)) from None
    try:
        umask = os.umask(0o22)
        os.umask(umask)
        try:  # mkstemp's file is private (0600): the data file gets the mode any new file would, for other users too
            os.fchmod(fd, 0o666 & ~umask)
        except OSError:  # a file system without modes: as it is
            pass
        digest = hashlib.md5()
        done = total = 0
        with os.fdopen(fd, "wb", buffering=0) as out:  # (unbuffered: a write that fails, fails in _write)
            try:
                with urllib.request.urlopen(url, timeout=READ_TIMEOUT) as response:
                    total = response.length or 0  # Content-Length, None when chunked (which overrides it)
                    window_start, window_done = time.monotonic(), 0  # the speed is judged per window
                    while True:
                        chunk = response.read1(1 << 16)  # what has come (read() would wait for all 64 KiB)
                        if not chunk:
                            break
                        now = time.monotonic()
                        if now - window_start >= SLOW_SECONDS:
                            if done + len(chunk) - window_done < SLOW_SPEED * (now - window_start):
                                raise _TooSlow("the transfer was slower than %d bytes/s for %g s, after %d%s bytes"
                                               % (SLOW_SPEED, SLOW_SECONDS, done, " of %d" % total if total else ""))
                            window_start, window_done = now, done + len(chunk)
                        _write(out, chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        _progress(filename, done, total)
                    if done < total:  # http.client ends the body quietly when the connection closes early
                        raise http.client.IncompleteRead(b"", total - done)
            except _NotWritten as e:  # a full disk, a quota: not a failure of the transfer
                if done:
                    _progress(filename, done, total, "\n")
                reason = e.args[0].strerror or e.args[0]
                raise DataError("%s is missing from %s, where it cannot be downloaded to (%s); put the file there "
                                "or download it from %s" % (filename, directory, reason, url)) from None
            except (OSError, ValueError, http.client.HTTPException) as e:  # URLError, HTTPError, timeouts: OSErrors
                if done:
                    _progress(filename, done, total, "\n")
                raise DataError("%s is missing from %s and could not be downloaded (%s); "
                                "put the file in %s or download it from %s"
                                % (filename, directory, _download_failure(e, done, total), directory, url)) from None
        _progress(filename, done, total, "\n")
        if md5 and digest.hexdigest() != md5:
            raise DataError("%s: downloaded from %s with MD5 %s, expected %s; file discarded"
                            % (filename, url, digest.hexdigest(), md5))
        os.replace(tmp, path)
        return path
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
        remove_empty(created)  # a failed first download leaves no empty data directory behind


def _write(out, data):
    """Writes all of data (bytes) to the unbuffered file out; raises _NotWritten if that fails."""
    view = memoryview(data)
    try:
        while view:
            view = view[out.write(view):]
    except OSError as e:
        raise _NotWritten(e) from None


def _hold(fd):
    """Takes an exclusive flock on the open file fd, which the kernel releases when the process ends, however
    it ends; a download holds one on its temporary file (nothing, where there is no flock)."""
    try:
        import fcntl
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (ImportError, OSError):  # (a file system without locks: the file is then kept while it is written to)
        pass


def _remove_stale_parts(directory, filename):
    """Removes the temporary files of earlier downloads of filename into directory (.FILENAME.*.part) that no
    process holds any more: a download killed outright (SIGKILL, a power cut) could not remove its own, and
    nothing else would. One held (_hold), or written in the last STALE_AFTER seconds (just made, not yet
    held), is in use and stays."""
    try:
        import fcntl
        names = os.listdir(directory)
    except (ImportError, OSError):
        return
    for name in names:
        if not (name.startswith("." + filename + ".") and name.endswith(".part")):
            continue
        part = os.path.join(directory, name)
        try:
            fd = os.open(part, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:  # gone meanwhile (renamed into place), or not ours to open
            continue
        try:
            info = os.fstat(fd)
            if stat.S_ISREG(info.st_mode) and time.time() - info.st_mtime >= STALE_AFTER:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: a download holds it
                os.remove(part)
        except OSError:
            pass
        finally:
            os.close(fd)


def make_dirs(path, made):
    """os.makedirs(path, exist_ok=True), one directory at a time, appending each to made as it is made (so
    "new/../old" makes and lists "new" only); remove_empty(made) removes them again."""
    head, tail = os.path.split(path)
    if not tail:
        head, tail = os.path.split(head)
    if head and tail and not os.path.exists(head):
        make_dirs(head, made)
        if tail == os.curdir:  # "new/.": made with new
            return
    try:
        os.mkdir(path)
    except OSError:
        if not os.path.isdir(path):
            raise
    else:
        made.append(path)


def remove_empty(made):
    """Removes the directories make_dirs listed in made, last made first, up to the first that is not empty
    (holds a downloaded file, a checkpoint): rmdir never removes anything else."""
    for d in reversed(made):
        try:
            os.rmdir(d)
        except OSError:
            break


def other_names(filename):
    """The names other than filename (train-images-idx3-ubyte.gz) under which a data file is taken, in order:
    uncompressed (train-images-idx3-ubyte, as gunzip leaves it, or a browser that unpacked the download), and
    so with a dot before "idx" (train-images.idx3-ubyte, as other copies of MNIST are named)."""
    plain = filename[:-len(".gz")] if filename.endswith(".gz") else filename
    dotted = plain.replace("-idx", ".idx", 1)
    return [name for name in dict.fromkeys([plain, dotted]) if name != filename]


def data_file(directory, filename):
    """The path of data file filename in directory: its own, else the first of other_names(filename) that is a
    file there (not a folder of that name, as some unpackers make), if it is missing and one is; else its own."""
    path = os.path.join(directory, filename)
    if not os.path.lexists(path):
        for name in other_names(filename):
            if os.path.isfile(os.path.join(directory, name)):
                return os.path.join(directory, name)
    return path


def maybe_download(filename, directory, source_url=DEFAULT_SOURCE_URL):
    """Returns the path of filename in directory (or of an uncompressed copy: data_file), downloading it first
    if it is not there."""
    path = data_file(directory, filename)
    try:
        os.stat(path)
        return path
    except (FileNotFoundError, NotADirectoryError):
        nowhere = leads_nowhere("data file", path)  # not missing: a link to data on a disk not mounted, say
        if nowhere:
            raise DataError(nowhere) from None
    except OSError as e:  # there, perhaps, but out of reach: a directory that cannot be searched, say
        raise DataError("%s: cannot be read (%s)" % (path, e.strerror or e)) from None
    return download(filename, directory, source_url, MD5.get(filename))


# ----------------------------------------------------------------------------------------------------------
# Data sets

class DataSet:
    """Images and labels of one split, served in shuffled mini-batches like the TF1 tutorial's DataSet."""

    def __init__(self, images, labels, seed=None):
        """Args:
          images: uint8 [N, 784] (scaled here to float32 in [0, 1]) or float32 [N, 784] already scaled.
          labels: uint8 [N] or float32 one-hot [N, 10].
          seed: seeds this data set's own random generator (NumPy's global state is left alone).
        """
        if images.shape[0] != labels.shape[0]:
            raise ValueError("images.shape[0] %d != labels.shape[0] %d" % (images.shape[0], labels.shape[0]))
        if images.dtype == np.uint8:
            images = images.astype(np.float32) * np.float32(1.0 / 255.0)
        self._images = images
        self._labels = labels
        self._num_examples = images.shape[0]
        self._rng = np.random.default_rng(seed)
        self._epochs_completed = 0
        self._index_in_epoch = 0
        self._order = None  # permutation of the current epoch; None until the first batch

    images = property(lambda self: self._images)
    labels = property(lambda self: self._labels)
    num_examples = property(lambda self: self._num_examples)
    epochs_completed = property(lambda self: self._epochs_completed)

    def _new_order(self, shuffle):
        """The order of a new epoch: a fresh permutation of the examples, or 0..N-1 when not shuffle."""
        n = self._num_examples
        return self._rng.permutation(n) if shuffle else np.arange(n)

    def next_batch_indices(self, batch_size, shuffle=True):
        """Indices [batch_size] of the next batch; a batch may straddle two epochs, nothing is dropped."""
        if not 0 < batch_size <= self._num_examples:
            raise ValueError("batch_size %d is not in 1..%d (the number of examples)"
                             % (batch_size, self._num_examples))
        if self._order is None:
            self._order = self._new_order(shuffle)
        start = self._index_in_epoch
        if start + batch_size <= self._num_examples:
            self._index_in_epoch += batch_size
            return self._order[start:self._index_in_epoch]
        # Finish this epoch with what is left, then start a freshly shuffled one.
        rest = self._order[start:]
        self._epochs_completed += 1
        self._order = self._new_order(shuffle)
        self._index_in_epoch = batch_size - len(rest)
        return np.concatenate([rest, self._order[:self._index_in_epoch]])

    def next_batch(self, batch_size, shuffle=True):
        """Returns the next (images [batch_size, 784], labels [batch_size, ...]) batch."""
        idx = self.next_batch_indices(batch_size, shuffle)
        return self._images[idx], self._labels[idx]


class Datasets:
    """The three splits: .train, .validation and .test, each a DataSet (or None, from read_test_set)."""

    def __init__(self, train, validation, test):
        self.train, self.validation, self.test = train, validation, test


def leads_nowhere(what, path):
    """Why path, which does not exist, cannot be made either: "<what> PATH[: LINK] is a symbolic link to TARGET,
    which leads nowhere" when it is, or lies under, a symbolic link to nothing; else None (it can be made,
    or fails to for another reason). The path is followed as given: "link/../x" goes through link."""
    link = path.rstrip(os.sep) or os.sep
    while link and not os.path.lexists(link) and os.path.dirname(link) != link:
        link = os.path.dirname(link)
    if not (link and os.path.islink(link) and not os.path.exists(link)):
        return None
    where = "" if link == path.rstrip(os.sep) else ": " + link
    return "%s %s%s is a symbolic link to %s, which leads nowhere" % (what, path, where, os.readlink(link))


def _data_dir(train_dir):
    """train_dir resolved (resolve_data_dir), refused when it is there but not a directory, or is (or lies
    under) a symbolic link to nothing, where no directory can be made for a download."""
    train_dir = resolve_data_dir(train_dir)
    if os.path.exists(train_dir):
        if not os.path.isdir(train_dir):
            raise DataError("data directory %s is not a directory" % train_dir)
    else:
        nowhere = leads_nowhere("data directory", train_dir)
        if nowhere:
            raise DataError(nowhere)
    return train_dir


def _read_pair(ipath, lpath, one_hot):
    """Reads an image file and its label file, which must hold as many.

    Returns:
      (uint8 images [N, 784], labels: uint8 [N] or one-hot float32 [N, 10]).
    """
    images, labels = extract_images(ipath), extract_labels(lpath, one_hot)
    if len(images) != len(labels):
        raise DataError("%s has %d images but %s has %d labels" % (ipath, len(images), lpath, len(labels)))
    return images, labels


def read_data_sets(train_dir=None, one_hot=False, validation_size=VALIDATION_SIZE, seed=None,
                   source_url=DEFAULT_SOURCE_URL):
    """Loads MNIST from train_dir (downloading missing files).

    Returns:
      Datasets with .train (55,000 by default), .validation (5,000) and .test (10,000) DataSets.
    """
    train_dir = _data_dir(train_dir)
    paths = [maybe_download(name, train_dir, source_url)  # every download before any reading
             for name in (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)]
    train_images, train_labels = _read_pair(paths[0], paths[1], one_hot)
    test_images, test_labels = _read_pair(paths[2], paths[3], one_hot)
    if validation_size < 0:
        raise DataError("validation_size %d is negative" % validation_size)
    if validation_size > len(train_images):
        raise DataError("%s holds %d images, fewer than the %d held out for validation (validation_size)"
                        % (paths[0], len(train_images), validation_size))
    seeds = np.random.SeedSequence(seed).spawn(3) if seed is not None else [None] * 3
    return Datasets(
        train=DataSet(train_images[validation_size:], train_labels[validation_size:], seed=seeds[0]),
        validation=DataSet(train_images[:validation_size], train_labels[:validation_size], seed=seeds[1]),
        test=DataSet(test_images, test_labels, seed=seeds[2]))


def read_test_set(train_dir=None, one_hot=False, source_url=DEFAULT_SOURCE_URL):
    """Loads only MNIST's test split, for what scores and never trains (the evaluator, the app's benchmark):
    a seventh of read_data_sets' data, read in 0.05 s instead of 0.7 s; the training files need not be there.

    Returns:
      Datasets whose .test is the 10,000-image DataSet (.train and .validation are None).
    """
    train_dir = _data_dir(train_dir)
    images, labels = _read_pair(*(maybe_download(name, train_dir, source_url) for name in (TEST_IMAGES, TEST_LABELS)),
                                one_hot)
    return Datasets(train=None, validation=None, test=DataSet(images, labels))


STDOUT = "standard output"  # how an error writing to stdout names it

DATA_DIR_HELP = "MNIST directory (default: $%s, else %s)" % (DATA_DIR_ENV, DEFAULT_DATA_DIR)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """The package's --help: each option's default is shown, except None, which the option's help explains,
    and that of a flag taking no value (off unless given)."""

    def _get_help_string(self, action):
        if action.default is None or action.nargs == 0:
            return action.help
        return super()._get_help_string(action)


# ----------------------------------------------------------------------------------------------------------
# Command line (also for the scripts that load TensorFlow, through mnist_common)

def prepare_std_streams():
    """Standard streams fit for file names, and /dev/null where the caller closed one (`<&-`, `>&-`).

    File names are bytes: one that is not valid UTF-8 reaches Python with "surrogate" characters, which a
    UTF-8 terminal stream refuses (a traceback for printing a path); they pass through as the bytes they are,
    as does any name on a stream of an encoding that cannot write it (PYTHONIOENCODING=ascii).
    Python leaves a closed stream None (sys.stdout.flush() then fails), and its descriptor free: the next file
    opened (a checkpoint TensorFlow writes) would take it, and whatever then went to stdout would land in
    the file. Output to a closed stream goes nowhere, and a closed input is at its end.
    """
    for fd, name, flags in ((0, "stdin", os.O_RDONLY), (1, "stdout", os.O_WRONLY), (2, "stderr", os.O_WRONLY)):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, flags)  # the lowest free descriptor: fd itself
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, "r" if fd == 0 else "w", closefd=False))
        stream = getattr(sys, name)
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape" if fd == 0 else "file_system_bytes")
    for fd, name, kind in ((1, "stdout", _Stdout), (2, "stderr", _Stderr)):
        stream = getattr(sys, name)
        try:
            plain = type(stream) is io.TextIOWrapper and stream.fileno() == fd  # not a test's capture
        except (OSError, ValueError):
            plain = False
        if plain:
            _replaced.append(stream)  # kept: it shares its buffer with ours, which its closing would close
            try:
                stream.flush()
            except OSError:
                pass
            setattr(sys, name, kind(stream.buffer, encoding=stream.encoding, errors=stream.errors,
                                    line_buffering=stream.line_buffering, write_through=stream.write_through))
            _replaced.append(getattr(sys, name))  # (the same for ours, should it be set back)


_replaced = []


class _Stdout(io.TextIOWrapper):
    """sys.stdout whose write errors name it: `> /dev/full` ends in "standard output: No space left on device"
    rather than in an error that names no file (Python's own stdout raises OSErrors without a file name).
    It also keeps the error (.failure) for flush_stdout, where a caller swallowed it (argparse's --help)."""

    failure = None

    def write(self, text):
        try:
            return super().write(text)
        except OSError as e:
            raise self._failed(e)

    def flush(self):
        try:
            return super().flush()
        except OSError as e:
            raise self._failed(e)

    def _failed(self, error):
        if error.filename is None:
            error.filename = STDOUT
        self.failure = error
        return error


class _Stderr(io.TextIOWrapper):
    """sys.stderr that drops what cannot be written (2>/dev/full, a pipe whose reader left) instead of raising:
    a warning or a progress line that cannot be said must not stop the program, and an error that cannot be
    said is still told by the exit status."""

    def write(self, text):
        try:
            return super().write(text)
        except OSError:
            return len(text)

    def flush(self):
        try:
            return super().flush()
        except OSError:
            pass


def _file_system_bytes(error):
    """Encoding error handler for the output streams: what the stream's encoding cannot write (a name that is
    not valid UTF-8, or any name on an ASCII stream, PYTHONIOENCODING=ascii say) is written as the bytes the
    file system names it with."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    text = error.object[error.start:error.end]
    if "a".encode(error.encoding) != b"a":  # UTF-16 or such: raw bytes would not fit in; escaped instead
        return text.encode("ascii", "backslashreplace").decode("ascii"), error.end
    try:
        return os.fsencode(text), error.end
    except UnicodeError:  # not from a file name: as Python would escape it
        return text.encode("ascii", "backslashreplace"), error.end


codecs.register_error("file_system_bytes", _file_system_bytes)


def flush_stdout(status):
    """Flushes stdout at the end of a command and returns its exit status, at least 1 if that failed
    (stdout_failed)."""
    try:
        sys.stdout.flush()
    except OSError as e:
        return stdout_failed(e, status)
    failure = getattr(sys.stdout, "failure", None)  # an error a caller swallowed, not yet said
    return status if failure is None else stdout_failed(failure, status)


def os_error_line(error):
    """The line an OSError ends a command with: "error: FILE: reason" ("error: FILE -> FILE2: reason" for a
    rename's), or "error: <error>" when it names no file."""
    if not error.filename:
        return "error: %s" % error
    reason = error.strerror or (str(error.args[0]) if error.args else type(error).__name__)
    files = "%s -> %s" % (error.filename, error.filename2) if error.filename2 else error.filename
    return "error: %s: %s" % (files, reason)


def stdout_failed(error, status=1):
    """After OSError error writing to stdout: says so, in one line, unless the reader has gone (`| head`), and
    points stdout at /dev/null, so that it is not said again as Python exits. Returns status, at least 1."""
    if not isinstance(error, BrokenPipeError):
        print("error: %s: %s" % (STDOUT, error.strerror or error), file=sys.stderr)
    drop_stdout()
    return status or 1


def drop_stdout():
    """Points stdout at /dev/null, so that a closed pipe (`... | head`) fails no further write or flush (and
    forgets its failure, said by then)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    if isinstance(sys.stdout, _Stdout):
        sys.stdout.failure = None


def main(argv=None):
    """Downloads and checks the data as the command line argv says. argv None, from code of one's own (as the course's
    main() was called), is no flag: the process's own arguments are its program's (a notebook kernel's
    -f FILE), not this one's."""
    prepare_std_streams()
    parser = argparse.ArgumentParser(description="Download (if needed) and verify the MNIST files.")
    parser.add_argument("--data-dir", default=None,
                        help="where the four MNIST files live, gzipped or not (default: $%s, else %s)"
                        % (DATA_DIR_ENV, DEFAULT_DATA_DIR))
    args = parser.parse_args([] if argv is None else argv)
    try:
        data_dir = resolve_data_dir(args.data_dir)
        ds = read_data_sets(data_dir, one_hot=False)
    except DataError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    except OSError as e:  # e.g. a data file that cannot be read
        print(os_error_line(e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        say_interrupted()
        return 130
    try:
        print("MNIST in %s: %d train, %d validation, %d test images, %dx%d, all files valid"
              % (data_dir, ds.train.num_examples, ds.validation.num_examples, ds.test.num_examples,
                 IMAGE_SIZE, IMAGE_SIZE))
    except OSError as e:  # `| head -c0`, `> /dev/full` (unbuffered, the line itself fails)
        return stdout_failed(e)
    return flush_stdout(0)


if __name__ == "__main__":
    try:
        exit_status = main(sys.argv[1:])
    except SystemExit as e:  # --help and usage errors, whose output is flushed below too
        exit_status = e.code
    sys.exit(flush_stdout(exit_status))
