"""Reads handwritten digits from picture files with the trained network (moving-average weights).

    python mnist_app.py                        # the course's prompt: a count, then that many paths
    python mnist_app.py PATH... [--preprocess mnist|seed] [--model-dir DIR]
                                               # batch: PATH<TAB>DIGIT<TAB>PROBABILITY per picture

A PATH may be a folder: its pictures are read in name order. The model is restored once per run and the
pictures go through the network together. `--preprocess mnist` (the default, mnist_picture.py) prepares any
photo or drawing the way MNIST's digits were made; `--preprocess seed` is the course's pre_pic (its arithmetic
unchanged; the file opened safely, and a picture it leaves blank is an error).
A picture that cannot be read gets one line `PATH: error: <reason>` on stderr and the others are still read;
the exit status is 1 if any picture failed.
"""
import argparse
import builtins
import os
import shlex
import sys
import types
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

# python -I or -P: the folder of the script (as Python finds it, links resolved), which holds our modules,
# is not on the module path.
if __name__ == "__main__" and (sys.flags.isolated or getattr(sys.flags, "safe_path", False)):
    sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

# mnist_common first: it readies the standard streams and quiets TensorFlow, which loads when first used.
from mnist_common import (run_main, restore_newest, check_model_dir, check_stop, checkpoint_identity,
                          list_checkpoints, no_checkpoint, UserError, EmaModel)
import numpy as np
import input_data
try:
    from PIL import Image
except ModuleNotFoundError as e:  # Pillow not installed: one line, from the app (the trainer does not need it)
    input_data.missing_requirement(e, "PIL", "Pillow")
import mnist_backward
import mnist_picture
from mnist_picture import PictureError

PREPROCESSING = ("mnist", "seed")
# the pictures of a folder: every kind Pillow reads, by its usual names (not Pillow's stubs for video or data
# files, .mpg, .h5, nor EPS, which needs Ghostscript), and HEIF and JPEG XL, which it does not: each is named so
PICTURE_EXTENSIONS = (".png", ".apng", ".jpg", ".jpeg", ".jpe", ".jfif", ".mpo", ".bmp", ".dib", ".gif", ".tif",
                      ".tiff", ".webp", ".pbm", ".pgm", ".ppm", ".pnm", ".pfm", ".tga", ".ico", ".cur", ".icns",
                      ".qoi", ".pcx", ".dcx", ".avif", ".avifs", ".jp2", ".j2k", ".j2c", ".jpc", ".jpf", ".jpx",
                      ".psd", ".dds", ".sgi", ".rgb", ".rgba", ".bw", ".ras", ".xbm", ".xpm", ".msp", ".blp",
                      ".fits", ".fit", ".heic", ".heif", ".hif", ".jxl")
CHUNK = 256        # pictures prepared, then predicted in one sess.run, at a time in batch mode
MAX_LINE = 1 << 16  # characters in a line read at the prompt (a path holds at most 4096 bytes)

_models = {}       # model_dir -> restored EmaModel: built once per run, reused by restore_model
_newest_seen = {}  # model_dir -> _newest(model_dir) when its model was last restored: see restore_model


def pre_pic(picName):
    """The course's preprocessing: resize to 28x28 (Lanczos), grey, invert, threshold at 50.

    Only the file is opened safely (one-line errors, pixel limit); the arithmetic is the course's.
    Args:
      picName: path of a picture.
    Returns:
      float32 [1, 784], each pixel 0.0 or 1.0.
    """
    img = mnist_picture.open_picture(picName, transpose=False)
    reIm = img.resize((28, 28), Image.LANCZOS)  # Pillow 10 removed Image.ANTIALIAS, the same filter
    im_arr = np.array(reIm.convert('L'))
    threshold = 50
    im_arr = 255 - im_arr                       # MNIST is white ink on black
    im_arr = np.where(im_arr < threshold, 0, 255).astype(np.uint8)
    nm_arr = im_arr.reshape([1, 784]).astype(np.float32)
    return np.multiply(nm_arr, 1.0 / 255.0)


def prepare(path, preprocess="mnist"):
    """Reads one picture for the network.

    Args:
      path: a picture file.
      preprocess: "mnist" (mnist_picture.mnist_input) or "seed" (pre_pic).
    Returns:
      float32 [784] in [0, 1].
    Raises:
      PictureError: the picture cannot be read, or holds no ink.
    """
    if preprocess != "seed":
        return mnist_picture.mnist_input(path)
    try:
        arr = pre_pic(path).reshape(784)
    except PictureError:
        raise
    except Exception as e:  # Pillow cannot resize or convert this kind of picture
        raise PictureError("cannot process the picture: %s" % (str(e).strip() or type(e).__name__))
    if not arr.any():
        raise PictureError("no ink found: the picture looks blank" + mnist_picture.first_frame_note(path))
    return arr


def load_model(model_dir):
    """The EmaModel restored from the newest readable checkpoint in model_dir, built and restored once.

    Args:
      model_dir: the checkpoint directory; its model is kept for the rest of the run (_models).
    Returns:
      The model, or None when model_dir holds no checkpoint.
    Raises:
      UserError: checkpoints exist but none can be read.
    """
    if model_dir in _models:
        return _models[model_dir]
    check_model_dir(model_dir)
    if not list_checkpoints(model_dir):  # said before TensorFlow is loaded, which takes seconds
        return None
    model = EmaModel()
    try:
        if restore_newest(model.restore, model_dir) is None:
            model.close()
            return None
    except UserError:
        model.close()
        raise
    _models[model_dir] = model
    _newest_seen[model_dir] = _newest(model_dir)
    return model


def _newest(model_dir):
    """What tells model_dir's newest checkpoint apart: (prefix, checkpoint_identity); None if none."""
    try:
        prefix = list_checkpoints(model_dir)[0]
    except (OSError, IndexError):
        return None
    identity = checkpoint_identity(prefix)
    return None if identity is None else (prefix, identity)


def _restore_newer(model, model_dir):
    """Restores model from model_dir's newest checkpoint if it is not the newest there was when model was last
    restored (a trainer writing beside the app at its prompt, training again in a notebook); if none newer can
    be read, the weights restored before stay."""
    newest = _newest(model_dir)
    if newest is None or newest == _newest_seen.get(model_dir):
        return
    _newest_seen[model_dir] = newest  # tried once: a newest one that cannot be read is not warned of again
    try:
        restore_newest(model.restore, model_dir)
    except UserError:
        pass


def restore_model(testPicArr, model_dir=None):
    """The course's function: predicted digits for prepared pictures.

    Args:
      testPicArr: float32 [N, 784].
      model_dir: mnist_backward.MODEL_SAVE_PATH (as it is at the call) when None.
    Returns:
      int64 [N] digits, or -1 (after printing `No checkpoint file found`) when there is no checkpoint.
    """
    model_dir = mnist_backward.MODEL_SAVE_PATH if model_dir is None else model_dir
    model = load_model(model_dir)
    if model is None:
        print("No checkpoint file found")
        return -1
    _restore_newer(model, model_dir)  # as the course's restored the newest at each call
    return np.argmax(model.probabilities_of(testPicArr), axis=1)


def picture_paths(paths):
    """Expands folders into their pictures (by name; hidden files, subfolders and other files skipped). A path
    that does not exist but names one that does read as a path typed at the prompt is (_typed_path: spaces and
    quotes around it, a file:// address, a leading ~).

    Args:
      paths: files and folders as given.
    Returns:
      [(path, problem)] in order: a picture to read with problem None, or a folder and why it gave none.
    """
    entries = []
    for path in paths:
        if not os.path.lexists(path):
            # a file:// address (copied from a browser, a file manager), a leading ~ the shell left (quoted), a
            # carriage return from a list of Windows lines ($(cat list.txt)), quotes that came with a paste
            typed = _typed_path(path)
            if os.path.lexists(typed):
                path = typed
        if not os.path.isdir(path):
            entries.append((path, None))
            continue
        try:
            names = sorted(os.listdir(path))
        except OSError as e:
            entries.append((path, "cannot list the folder: %s" % e.strerror))
            continue
        found = [os.path.join(path, n) for n in names if not n.startswith(".")
                 and n.lower().endswith(PICTURE_EXTENSIONS) and not os.path.isdir(os.path.join(path, n))]
        entries.extend((p, None) for p in found)
        if not found:
            entries.append((path, "no pictures in this folder"))
    return entries


def try_prepare(entry, preprocess):
    """prepare() for a (path, problem) entry of picture_paths: (array [784], None) or (None, what is wrong)."""
    path, problem = entry
    if problem is not None:
        return None, problem
    try:
        return prepare(path, preprocess), None
    except PictureError as e:
        return None, str(e)


_ESCAPED = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"}


def shown(path):
    """path as it starts an output line. A name holding a tab, a line break or a backslash would break the
    line, or be misread: as sha256sum does, those are written \\t, \\n, \\r, \\\\ and the line starts
    with a backslash (and a NUL, which no file name holds but a path typed at the prompt may, \\0). An empty
    path is written ''. Any other name is written as it is."""
    if not path:
        return "''"
    if not any(c in path for c in _ESCAPED):
        return path
    return "\\" + "".join(_ESCAPED.get(c, c) for c in path)


def _quoted(text):
    """text in single quotes, escaped as repr() escapes it, but a byte that is not UTF-8 (a surrogate) as
    \\xNN, not \\udcNN."""
    return "'%s'" % "".join("\\x%02x" % (ord(c) - 0xDC00) if "\udc80" <= c <= "\udcff"
                            else "\\'" if c == "'" else repr(c)[1:-1] for c in text)


def _error(path, reason):
    print("%s: error: %s" % (shown(path), reason), file=sys.stderr)
    sys.stderr.flush()


def batch(paths, model_dir, preprocess):
    """Batch mode: prints PATH<TAB>DIGIT<TAB>PROBABILITY for each picture in order.

    Args:
      paths: pictures and folders, as given on the command line.
      model_dir: the checkpoint directory.
      preprocess: "mnist" or "seed" (see prepare).
    Returns:
      The exit status: 0, or 1 if there is no checkpoint or a picture could not be read.
    """
    model = load_model(model_dir)
    if model is None:
        no_checkpoint(model_dir)
        return 1
    entries, failed = picture_paths(paths), 0
    # Pillow and NumPy release the GIL while decoding and computing, so threads prepare pictures in
    # parallel; pool.map keeps the order.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for start in range(0, len(entries), CHUNK):
            check_stop()  # (a Ctrl+C whose exception TensorFlow lost while the model was built: mnist_common)
            chunk = entries[start:start + CHUNK]
            ready, arrays = [], []
            results = pool.map(lambda entry: try_prepare(entry, preprocess), chunk)
            for (path, _), (array, error) in zip(chunk, results):
                if error is None:
                    ready.append(path)
                    arrays.append(array)
                else:
                    _error(path, error)
                    failed += 1
            if arrays:
                probabilities = model.probabilities_of(np.stack(arrays))
                for path, p in zip(ready, probabilities):
                    digit = int(np.argmax(p))
                    print("%s\t%d\t%.3f" % (shown(path), digit, p[digit]))
                sys.stdout.flush()
    return 1 if failed else 0


def _edit_lines():
    """Line editing (arrow keys, history) and Tab completing file names at a terminal's prompt: input() has
    them only once readline is loaded (without, the arrow keys typed to mend a path came in as escape codes)."""
    try:
        import readline
    except ImportError:  # (a Python built without it, Windows': its console edits lines itself)
        return
    if "libedit" in (readline.__doc__ or ""):  # macOS's Python: libedit's syntax
        readline.parse_and_bind("bind ^I rl_complete")
    else:
        readline.parse_and_bind("tab: complete")
    # With no completer set, readline completes file names. Python 3.13's pdb, which TensorFlow loads (through
    # absl.app), imports rlcompleter, which sets one of Python names: Tab completed no file name. It is taken
    # off, unless this is an interactive session (python -i), whose completer and word breaks are Python's.
    # An answer is one path, so the whole line is completed: with Python's word breaks, "/" and " " among
    # them, Tab after "digits/se" looked for "se" in the current folder, and rang the bell.
    if not hasattr(sys, "ps1"):
        readline.set_completer(None)
        readline.set_completer_delims("")


def _asking():
    """Where the prompt's questions and replies to what is typed go: stdout, as the course had them, but for a
    person typing at a terminal whose output goes to a file or a pipe (`> predictions.txt`): there they were
    written in the file, out of sight, and the predictions ran on after them; they go to the terminal (stderr)."""
    if sys.stdin.isatty() and not sys.stdout.isatty() and sys.stderr.isatty():
        return sys.stderr
    return sys.stdout


def _input_of_its_own():
    """Whether input() is not Python's own but one the program running us put in: a Jupyter notebook's kernel
    asks in the notebook through it, and leaves sys.stdin as it was (a pipe no one writes to, or nothing)."""
    return not isinstance(builtins.input, types.BuiltinFunctionType)


def _ask(prompt):
    """input(prompt), or None at end of input (Ctrl+D, a closed pipe).

    Raises:
      UserError: a line of more than MAX_LINE characters from a pipe or a file (endless input, /dev/zero,
        would otherwise be held in memory until there is none left).
    """
    if sys.stdin.isatty() or _input_of_its_own():  # a person typing: input()'s line editing; the terminal (or
        asking = _asking()                           # the notebook) bounds the line
        if asking is not sys.stdout:
            asking.write(prompt)
            asking.flush()
            prompt = ""
        try:
            return input(prompt)
        except EOFError:
            print(file=asking)
            return None
    sys.stdout.write(prompt)
    sys.stdout.flush()
    line = sys.stdin.readline(MAX_LINE + 1)
    if not line:
        print()
        return None
    if len(line) > MAX_LINE and not line.endswith("\n"):  # (MAX_LINE characters and the newline will do)
        print()
        raise UserError("standard input: a line of more than %d characters" % MAX_LINE)
    return line[:-1] if line.endswith("\n") else line


def _typed_path(typed):
    """The path in a line typed or pasted at the prompt: without the spaces around it, or the quotes a path
    dragged into a terminal may come in; as typed if that names a file (a name with a space at its end).
    A path found neither way is also read as a shell would read it (a file dragged into a terminal may come
    escaped, my\\ digit.png, or quoted, 'it'\\''s.png; ~ is the home folder) and as a file:// address."""
    path = typed.strip()
    if len(path) >= 2 and path[0] == path[-1] and path[0] in "'\"":
        path = path[1:-1]
    for found in (path, typed, *_pasted_forms(typed.strip())):
        if os.path.lexists(found):
            return found
    return path


def _pasted_forms(text):
    """Other readings of a path pasted at the prompt: as one word of the shell's, as a file:// address, and
    either with a leading ~ as the home folder."""
    try:
        words = shlex.split(text)
    except ValueError:  # a quote left open
        words = []
    forms = words[:1] if len(words) == 1 else []
    forms += [local for local in map(_local_path, forms + [text]) if local is not None]
    return forms + [os.path.expanduser(form) for form in forms + [text] if form.startswith("~")]


def _local_path(text):
    """The path a file:// address of this machine names (file:///home/me/my%20digit.png), or None."""
    if not text.startswith("file://"):
        return None
    try:
        address = urllib.parse.urlsplit(text)
    except ValueError:  # not an address after all (file://[x)
        return None
    if address.netloc not in ("", "localhost"):
        return None
    return urllib.parse.unquote(address.path, errors="surrogateescape")


def application(model_dir=None, preprocess="mnist"):
    """The course's prompt: a count, then that many paths, a prediction for each.

    Args:
      model_dir: the checkpoint directory; mnist_backward.MODEL_SAVE_PATH (as it is at the call) when None.
      preprocess: "mnist" or "seed", as --preprocess.
    Returns:
      The exit status: 0, or 1 if there is no checkpoint or a picture could not be read.
    Raises:
      UserError: standard input is UTF-16, or holds a line longer than MAX_LINE.
    """
    model_dir = mnist_backward.MODEL_SAVE_PATH if model_dir is None else model_dir
    if load_model(model_dir) is None:
        no_checkpoint(model_dir)
        return 1
    if sys.stdin.isatty() and sys.stdout.isatty():  # (input() uses readline only then)
        _edit_lines()
    while True:
        check_stop()  # (as in batch mode)
        answer = _ask("input the number of test pictures:")
        if answer is None:
            return 0
        if answer.startswith(("\udcff\udcfe", "\udcfe\udcff")):  # (its byte-order mark, not UTF-8: surrogates)
            raise UserError("standard input is UTF-16 text (as PowerShell's > writes it): save the answers as UTF-8")
        answer = answer.lstrip("\ufeff")  # the byte-order mark a file of answers saved by Windows' Notepad starts with
        try:
            testNum = int(answer.strip())
        except ValueError:
            testNum = 0
        if testNum > 0:
            break
        print("Please enter a positive whole number (got %s)." % _quoted(answer.strip()), file=_asking())
    failed = 0
    for _ in range(testNum):
        check_stop()
        testPic = _ask("the path of test picture:")
        if testPic is None:  # input ended early: the status still says whether a picture failed
            break
        testPic = _typed_path(testPic)
        try:
            testPicArr = prepare(testPic, preprocess).reshape(1, 784)
        except PictureError as e:
            _error(testPic, e)
            failed += 1
            continue
        preValue = restore_model(testPicArr, model_dir)
        print("The prediction number is:", int(preValue[0]))
        sys.stdout.flush()
    return 1 if failed else 0


def main(argv=None):
    """Reads pictures as the command line argv says. argv None, from code of one's own (as the course's
    main() was called), is no flag: the process's own arguments are its program's (a notebook kernel's
    -f FILE), not this one's."""
    p = argparse.ArgumentParser(description="Read handwritten digits from pictures: at the course's prompt "
                                            "(no PATH) or in batch (PATH<TAB>DIGIT<TAB>PROBABILITY).",
                                formatter_class=input_data.HelpFormatter)
    p.add_argument("paths", nargs="*", metavar="PATH", help="pictures or folders of pictures (none: prompt)")
    p.add_argument("--model-dir", default=mnist_backward.MODEL_SAVE_PATH, type=input_data.expand_user,
                   help="checkpoint directory")
    p.add_argument("--preprocess", choices=PREPROCESSING, default="mnist",
                   help="mnist: find the ink, crop, scale to 20 px, centre by mass (reads real photos); "
                        "seed: the course's pre_pic (resize, invert, threshold)")
    args = p.parse_args([] if argv is None else argv)
    if args.paths:
        return batch(args.paths, args.model_dir, args.preprocess)
    return application(args.model_dir, args.preprocess)


if __name__ == "__main__":
    run_main(lambda: main(sys.argv[1:]), exit_now=True)
