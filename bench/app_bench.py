"""The app on photo-like pictures:  python bench/app_bench.py [--model-dir DIR] [--data-dir DIR] [--count 600]

1. Accuracy. Draws a seeded set of photo-like pictures from MNIST *test* digits (never trained on): random
   canvas sizes and aspect ratios, margins and offsets, grey, tinted or unevenly lit paper, pen, pencil and
   chalk ink tones, noise and dust, white on black, transparent PNG, JPEG, palette, 16-bit, EXIF-rotated,
   small digits in a corner of a large canvas. Reads every picture with `--preprocess seed` (the course's
   pre_pic) and `--preprocess mnist` (the default) and prints the accuracy of each, per kind and overall,
   beside the model's accuracy on the same digits as plain 28x28 MNIST images (the ceiling). Then digits
   framed otherwise (`--framing-count`): cut out to their ink, about 40 pixels tall in a 12-megapixel
   photo, written on ruled and on squared notebook paper, level and turned by up to MAX_TURN degrees, and on
   plain paper in a dark frame, beside a scan's dark margin, as a sheet on a table or under a hard-edged
   shadow. If scikit-learn is importable, its 8x8 handwritten digits (other writers than MNIST's) are drawn
   the same way and scored too.
2. Speed. Writes `--speed-count` pictures to a folder and times, as whole processes, `python mnist_app.py
   FOLDER` (one graph, one restore, one sess.run per 256 pictures) against the course's approach: per
   picture a fresh tf.Graph, forward(x, None), the EMA Saver, a new session, the checkpoint state read and
   the checkpoint restored, as its restore_model did (this file run with --baseline). Both use the same
   preprocessing, so the ratio measures what restoring once and reading in batch save.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import input_data  # noqa: E402 (first: a Python without NumPy gets one line, not a traceback)
import numpy as np  # noqa: E402
try:
    from PIL import Image
except ModuleNotFoundError as e:
    input_data.missing_requirement(e, "PIL", "Pillow")

KINDS = ("clean", "thin pen", "grey paper", "tinted", "uneven light", "noisy", "chalk", "transparent", "jpeg",
         "palette", "16-bit", "exif rotated", "small in corner")


# ----------------------------------------------------------------------------------------------------------
# Photo-like pictures

def digit_alpha(image28, height, rng, side=28, thin=False):
    """An MNIST digit as ink coverage at a new size.

    Args:
      image28: float32 [side*side] in [0, 1] (ink bright).
      height: the digit's height in pixels in the picture.
      thin: keep only the middle of the strokes (a fine pen on a large digit).
    Returns:
      float32 [height, w] in [0, 1]: 1 where the ink covers the paper.
    """
    a = image28.reshape(side, side)
    rows, cols = np.flatnonzero(a.any(axis=1)), np.flatnonzero(a.any(axis=0))
    a = a[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    width = max(1, round(a.shape[1] * height / a.shape[0] * rng.uniform(0.85, 1.15)))  # a little slant of hand
    big = np.asarray(Image.fromarray(a.astype(np.float32)).resize((width, height), Image.BICUBIC))
    if thin:
        big = (big - 0.8) / 0.1
    elif rng.random() < 0.6:  # a pen: crisp stroke edges instead of the upscaled blur
        big = (big - 0.35) / 0.3
    return np.clip(big, 0, 1).astype(np.float32)


def photo_like(image28, kind, rng, side=28):
    """A picture of one digit.

    Args:
      image28: float32 [side*side] ink in [0, 1].
      kind: one of KINDS.
    Returns:
      (PIL.Image, file extension, save options).
    """
    if kind == "small in corner":
        height = int(rng.integers(28, 70))
    elif kind == "thin pen":
        height = int(rng.integers(80, 260))
    else:
        height = int(rng.integers(24, 260))
    alpha = digit_alpha(image28, height, rng, side, thin=kind == "thin pen")
    h, w = alpha.shape
    if kind == "small in corner":
        ch, cw = int(rng.integers(500, 1000)), int(rng.integers(500, 1000))
        top = int(rng.integers(5, 40)) if rng.random() < 0.5 else ch - h - int(rng.integers(5, 40))
        left = int(rng.integers(5, 40)) if rng.random() < 0.5 else cw - w - int(rng.integers(5, 40))
    else:
        # margins from tight to generous, different on each side: random aspect and offset
        ch = h + int(h * rng.uniform(0.15, 2.0)) + 4
        cw = w + int(max(h, w) * rng.uniform(0.15, 2.5)) + 4
        top, left = int(rng.integers(2, ch - h - 1)), int(rng.integers(2, cw - w - 1))
    cover = np.zeros((ch, cw), np.float32)
    cover[top:top + h, left:left + w] = alpha

    paper, ink = np.array([1.0, 1.0, 1.0]), np.array([0.0, 0.0, 0.0]) + rng.uniform(0, 0.25)
    light = np.ones((ch, cw), np.float32)
    noise = rng.uniform(0, 0.015)
    if kind in ("grey paper", "jpeg", "palette", "16-bit", "exif rotated"):
        paper = np.full(3, rng.uniform(0.45, 0.85))
        ink = np.full(3, rng.uniform(0.0, paper[0] - 0.3))
    if kind == "tinted":
        paper = rng.uniform(0.6, 1.0, 3)
        ink = rng.choice([[0.1, 0.15, 0.55], [0.6, 0.1, 0.1], [0.15, 0.15, 0.15], [0.1, 0.4, 0.15]])
    if kind in ("uneven light", "jpeg", "exif rotated"):
        y, x = np.mgrid[0:ch, 0:cw].astype(np.float32)
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(angle) * x / cw + np.sin(angle) * y / ch)
        light = 1 - rng.uniform(0.2, 0.5) * (ramp - ramp.min()) / max(1e-6, np.ptp(ramp))
        if rng.random() < 0.5:  # a soft shadow across part of the sheet
            edge = rng.uniform(0.2, 0.8) * cw
            light = light * (1 - 0.25 / (1 + np.exp(-(x - edge) / (0.05 * cw))))
    if kind == "noisy":
        noise = rng.uniform(0.03, 0.08)
    if kind == "chalk":
        paper = np.array([0.08, 0.15, 0.1]) + rng.uniform(0, 0.15)
        ink = np.full(3, rng.uniform(0.75, 0.95))
        noise = rng.uniform(0.01, 0.04)

    rgb = paper * (1 - cover[..., None]) + ink * cover[..., None]
    rgb = rgb * light[..., None] + rng.normal(0, noise, (ch, cw, 1))
    if kind == "noisy":  # dust: a few dark specks
        for _ in range(int(rng.integers(3, 12))):
            y0, x0 = int(rng.integers(0, ch - 3)), int(rng.integers(0, cw - 3))
            rgb[y0:y0 + 2, x0:x0 + 2] *= 0.5
    if kind == "chalk":  # smudges of old chalk
        y, x = np.mgrid[0:ch, 0:cw].astype(np.float32)
        for _ in range(3):
            cy, cx, r = rng.uniform(0, ch), rng.uniform(0, cw), rng.uniform(0.1, 0.4) * max(ch, cw)
            rgb += 0.06 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))[..., None]
    rgb8 = (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)

    if kind == "transparent":
        colour = rng.choice([[0, 0, 0], [20, 20, 120], [255, 255, 255]]) if rng.random() < 0.3 else [0, 0, 0]
        rgba = np.zeros((ch, cw, 4), np.uint8)
        rgba[..., :3] = np.array(colour, np.uint8)
        rgba[..., 3] = (cover * 255 + 0.5).astype(np.uint8)
        return Image.fromarray(rgba, "RGBA"), ".png", {}
    if kind == "jpeg":
        return Image.fromarray(rgb8), ".jpg", {"quality": int(rng.integers(25, 90))}
    if kind == "palette":
        img = Image.fromarray(rgb8).quantize(colors=int(rng.integers(8, 64)))
        return img, (".gif" if rng.random() < 0.5 else ".png"), {}
    if kind == "16-bit":
        grey16 = (np.clip(rgb.mean(axis=2), 0, 1) * 65535 + 0.5).astype(np.uint16)
        return Image.fromarray(grey16), ".png", {}
    if kind == "exif rotated":
        # A camera stores the sensor's pixels and records the turn in EXIF: orientation 6 means the stored
        # picture must be turned 90 degrees clockwise to be upright, so store it turned counter-clockwise.
        img = Image.fromarray(rgb8).transpose(Image.Transpose.ROTATE_90)
        exif = Image.Exif()
        exif[0x0112] = 6
        return img, ".jpg", {"quality": 90, "exif": exif.tobytes()}
    if kind in ("clean", "thin pen", "small in corner", "grey paper", "noisy", "uneven light") and rng.random() < 0.5:
        return Image.fromarray(rgb8).convert("L"), ".png", {}
    return Image.fromarray(rgb8), ".png", {}


def write_set(images, labels, folder, rng, kinds=KINDS, side=28):
    """Writes one photo-like picture per digit, cycling through kinds. Returns [(path, label, kind)]."""
    from mnist_common import check_stop
    written = []
    for i, (image, label) in enumerate(zip(images, labels)):
        check_stop()  # (a stop signal whose exception TensorFlow lost)
        kind = kinds[i % len(kinds)]
        img, ext, options = photo_like(image, kind, rng, side)
        path = os.path.join(folder, "%05d_%s%s" % (i, kind.replace(" ", "-"), ext))
        img.save(path, **options)
        written.append((path, int(label), kind))
    return written


# ----------------------------------------------------------------------------------------------------------
# Accuracy

def score(model, pictures, preprocess):
    """Reads [(path, label, kind)] with one preprocessing.

    Returns:
      (accuracy, {kind: accuracy}, number unreadable or blank, predicted digits [N] with -1 for those);
      an unreadable picture counts as wrong.
    """
    import mnist_app
    from mnist_common import check_stop
    arrays, ok = [], []
    for path, _, _ in pictures:
        check_stop()  # (a stop signal whose exception TensorFlow lost: mnist_common._stop_handler)
        array, error = mnist_app.try_prepare((path, None), preprocess)
        arrays.append(array if error is None else np.zeros(784, np.float32))
        ok.append(error is None)
    predicted = model.probabilities_of(np.stack(arrays)).argmax(axis=1)
    right = (predicted == np.array([p[1] for p in pictures])) & np.array(ok)
    kinds = np.array([p[2] for p in pictures])
    per_kind = {k: float(right[kinds == k].mean()) for k in dict.fromkeys(kinds)}
    return float(right.mean()), per_kind, len(ok) - sum(ok), np.where(ok, predicted, -1)


def accuracy_report(model, mnist, count, seed):
    """Prints the accuracy table for `count` photo-like pictures of MNIST test digits."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(mnist.test.num_examples, size=count, replace=False)
    images, labels = mnist.test.images[chosen], mnist.test.labels[chosen]
    ceiling = float(np.mean(model.probabilities_of(images).argmax(axis=1) == labels))
    with tempfile.TemporaryDirectory() as folder:
        t = time.time()
        pictures = write_set(images, labels, folder, rng)
        print("accuracy: %d photo-like pictures of MNIST test digits (seed %d), written in %.1f s"
              % (count, seed, time.time() - t))
        results = {p: score(model, pictures, p) for p in ("seed", "mnist")}
    print("  %-16s %6s %14s %14s" % ("kind", "count", "seed pre_pic", "mnist (default)"))
    kinds = np.array([p[2] for p in pictures])
    for kind in (k for k in KINDS if k in results["mnist"][1]):
        print("  %-16s %6d %14.3f %14.3f" % (kind, np.sum(kinds == kind), results["seed"][1][kind],
                                             results["mnist"][1][kind]))
    print("  %-16s %6d %14.3f %14.3f" % ("all", count, results["seed"][0], results["mnist"][0]))
    print("  unreadable or called blank: seed %d, mnist %d" % (results["seed"][2], results["mnist"][2]))
    print("  the same digits as plain 28x28 MNIST images: %.3f (the model's ceiling)" % ceiling)
    return results


FRAMINGS = ("close crop, dark ink", "close crop, light ink", "40 px in 12 MP photo", "ruled paper", "squared paper",
            "ruled, turned", "squared, turned", "dark frame", "scan margin", "sheet on a table", "hard shadow")
MAX_TURN = 4.0  # degrees: the turned notebook pictures' lines are at up to this angle to the picture's rows


def framing_report(model, mnist, count, seed):
    """Prints how the preprocessings read digits framed unlike the photo-like set: `count` cut out to their
    ink (no margin at all: the digit fills the picture), dark on light and light on dark; count // 15 about
    40 pixels tall in a 4000x3000 JPEG photo of a sheet (3 pixels tall once reduced to WORK_SIZE); and
    count // 3 on ruled and on squared notebook paper, with printed lines from faint to half as bright as
    the paper, level, then the same again turned (anti-aliased, as a photo taken a little askew); and the same
    count // 3 on plain paper, with what may lie around it: a dark frame, a scan's margin, a table; and the same
    count // 3 on plain paper under a hard-edged shadow (a straight edge through the digit's box)."""
    rng = np.random.default_rng(seed + 3)
    turns = np.random.default_rng(seed + 4)  # (its own generator: the other pictures stay as they were)
    around = np.random.default_rng(seed + 5)  # (and one for what lies around the sheet)
    shade = np.random.default_rng(seed + 6)  # (and one for the hard shadows)
    chosen = rng.choice(mnist.test.num_examples, size=count, replace=False)
    images, labels = mnist.test.images[chosen], mnist.test.labels[chosen]
    from mnist_common import check_stop
    pictures = []
    with tempfile.TemporaryDirectory() as folder:
        def write(grey, kind, label, **options):
            check_stop()  # (as write_set: a stop signal whose exception TensorFlow lost ends the run here)
            path = os.path.join(folder, "%05d%s" % (len(pictures), ".jpg" if options else ".png"))
            Image.fromarray((np.clip(grey, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path, **options)
            pictures.append((path, int(label), kind))

        for image, label in zip(images, labels):
            cover = digit_alpha(image, int(rng.integers(60, 200)), rng)  # cut to its ink by digit_alpha
            write(1 - cover, FRAMINGS[0], label)
            write(cover, FRAMINGS[1], label)
        for image, label in zip(images[:max(1, count // 15)], labels):
            sheet = np.full((3000, 4000), rng.uniform(0.75, 0.95), np.float32)
            cover = digit_alpha(image, int(rng.integers(36, 46)), rng)
            top, left = int(rng.integers(100, 2800)), int(rng.integers(100, 3800))
            sheet[top:top + cover.shape[0], left:left + cover.shape[1]] *= 1 - 0.8 * cover
            write(sheet, FRAMINGS[2], label, quality=int(rng.integers(70, 95)))
        for image, label in zip(images[:max(1, count // 3)], labels):
            cover = digit_alpha(image, int(rng.integers(60, 240)), rng)
            h, w = cover.shape
            ch, cw = h + int(h * rng.uniform(0.4, 1.5)) + 4, w + int(h * rng.uniform(0.6, 2.0)) + 4
            top, left = int(rng.integers(2, ch - h - 1)), int(rng.integers(2, cw - w - 1))
            page = np.zeros((ch, cw), np.float32)
            page[top:top + h, left:left + w] = cover
            spacing, thick, offset = rng.uniform(0.3, 0.6) * h, int(rng.integers(1, 4)), rng.uniform(0, 100)
            rows, cols = np.indices(page.shape)
            ruled = (rows + offset) % spacing < thick
            paper, line, ink = rng.uniform(0.8, 1.0), rng.uniform(0.5, 0.9), rng.uniform(0.0, 0.25)
            for kind, lines in ((FRAMINGS[3], ruled), (FRAMINGS[4], ruled | ((cols + offset) % spacing < thick))):
                sheet = paper * np.where(lines, line, 1.0) * (1 - page) + ink * page
                write(sheet + rng.normal(0, 0.01, sheet.shape), kind, label)
            # the same digit and paper photographed a little askew: the lines turned, drawn anti-aliased
            turn = np.tan(np.radians(turns.uniform(-MAX_TURN, MAX_TURN)))
            across = ((rows - turn * (cols - cw / 2)) + offset) % spacing  # from a line's top edge, along a column
            down = ((cols + turn * (rows - ch / 2)) + offset) % spacing
            def covered(d):  # how much of a pixel at d the line [0, thick) covers (and the next, from spacing)
                return (np.clip(np.minimum(d + 0.5, thick) - np.maximum(d - 0.5, 0), 0, 1)
                        + np.clip(d + 0.5 - spacing, 0, 1))
            ruled = covered(across)
            for kind, lines in ((FRAMINGS[5], ruled), (FRAMINGS[6], np.maximum(ruled, covered(down)))):
                sheet = paper * (1 - (1 - line) * lines) * (1 - page) + ink * page
                write(sheet + turns.normal(0, 0.01, sheet.shape), kind, label)
            # the same digit on plain paper, with what may lie around it: a dark frame round the picture (on all
            # four sides or two), a scan's dark margin along one side, a table around the photographed sheet
            sheet = paper * (1 - page) + ink * page + around.normal(0, 0.01, page.shape)
            framed, frame, dark = sheet.copy(), int(around.integers(1, 4)), around.uniform(0.0, 0.3)
            framed[:frame], framed[:, :frame] = dark, dark
            if around.random() < 0.5:
                framed[-frame:], framed[:, -frame:] = dark, dark
            write(framed, FRAMINGS[7], label)
            side, width = int(around.integers(4)), max(2, int(around.uniform(0.04, 0.15) * min(ch, cw)))
            turned = np.rot90(sheet, side)
            band = around.uniform(0.05, 0.35) + around.normal(0, 0.02, (turned.shape[0], width))
            write(np.rot90(np.concatenate([band, turned], axis=1), -side), FRAMINGS[8], label)
            th, tw = int(ch * around.uniform(1.15, 1.5)), int(cw * around.uniform(1.15, 1.5))
            table = around.uniform(0.1, 0.45) + around.normal(0, 0.03, (th, tw))
            y, x = int(around.integers(0, th - ch + 1)), int(around.integers(0, tw - cw + 1))
            table[y:y + ch, x:x + cw] = sheet
            write(table, FRAMINGS[9], label)
            # the same digit on plain paper under a hard-edged shadow: a straight edge at any angle through a
            # point of the digit's box, the dark side at 40% to 75% of the light, the edge a ramp 1 to 4 pixels
            # wide (a pixel's own anti-aliasing, then 0 to 3 pixels of blur)
            angle, dim, ramp = shade.uniform(0, 2 * np.pi), shade.uniform(0.4, 0.75), 1 + shade.uniform(0, 3)
            py, px = top + shade.uniform(0, h), left + shade.uniform(0, w)
            across = (cols - px) * np.cos(angle) + (rows - py) * np.sin(angle)  # signed distance from the edge
            light = dim + (1 - dim) * np.clip(across / ramp + 0.5, 0, 1)
            shaded = (paper * (1 - page) + ink * page) * light + shade.normal(0, 0.01, page.shape)
            write(shaded, FRAMINGS[10], label)
        results = {p: score(model, pictures, p) for p in ("seed", "mnist")}
    kinds = np.array([p[2] for p in pictures])
    print("framing: MNIST test digits (seed %d) cut out to their ink, small in a large photo, on notebook paper, "
          "with dark surroundings, under a hard shadow" % seed)
    print("  %-22s %6s %14s %14s" % ("kind", "count", "seed pre_pic", "mnist (default)"))
    for kind in FRAMINGS:
        print("  %-22s %6d %14.3f %14.3f" % (kind, np.sum(kinds == kind), results["seed"][1][kind],
                                             results["mnist"][1][kind]))
    print("  unreadable or called blank: seed %d, mnist %d" % (results["seed"][2], results["mnist"][2]))
    return results


def sklearn_report(model, seed, count=550):
    """scikit-learn's 8x8 digits (UCI: 43 writers, none of them MNIST's), enlarged and drawn photo-like the
    same way; skipped without scikit-learn (an optional extra, not in requirements.txt)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        print("scikit-learn 8x8 digits: skipped (scikit-learn is not installed; it is optional)")
        return
    digits = load_digits()
    rng = np.random.default_rng(seed + 1)
    chosen = rng.choice(len(digits.target), size=min(count, len(digits.target)), replace=False)
    images, labels = (digits.data[chosen] / 16.0).astype(np.float32), digits.target[chosen]
    with tempfile.TemporaryDirectory() as folder:
        # every kind but "thin pen": an enlarged 8x8 digit has no thin stroke core to keep
        pictures = write_set(images, labels, folder, rng, [k for k in KINDS if k != "thin pen"], side=8)
        results = {p: score(model, pictures, p) for p in ("seed", "mnist")}
        predicted = {p: results[p][3] for p in results}
    # For comparison: each digit put straight into MNIST's format (ink already known: no picture, no photo).
    import mnist_picture
    clean = np.stack([mnist_picture.to_mnist_field(digit_alpha(image, 160, np.random.default_rng(0), side=8))
                      .reshape(784) for image in images])
    ceiling = float(np.mean(model.probabilities_of(clean).argmax(axis=1) == labels))
    print("scikit-learn 8x8 digits (writers outside MNIST), %d photo-like pictures: seed pre_pic %.3f, "
          "mnist (default) %.3f; the same digits put straight into MNIST's format (no picture): %.3f"
          % (len(pictures), results["seed"][0], results["mnist"][0], ceiling))
    print("  mnist (default) by digit: " + ", ".join(  # a small --sklearn-count may draw no picture of a digit
        "%d: %s" % (d, "%.2f" % np.mean(predicted["mnist"][labels == d] == d) if np.any(labels == d) else "none")
        for d in range(10)))


# ----------------------------------------------------------------------------------------------------------
# Speed

def baseline(folder, model_dir, preprocess):
    """The course's app: for every picture a fresh graph, Saver and session, the checkpoint state read and
    the checkpoint restored (its restore_model). Returns 0."""
    from mnist_common import tf
    import mnist_app
    import mnist_backward
    import mnist_forward
    for path, problem in mnist_app.picture_paths([folder]):
        array, error = mnist_app.try_prepare((path, problem), preprocess)
        if error is not None:
            print("%s: error: %s" % (path, error), file=sys.stderr)
            continue
        testPicArr = array.reshape(1, 784)
        with tf.Graph().as_default():
            x = tf.placeholder(tf.float32, [None, mnist_forward.INPUT_NODE])
            y = mnist_forward.forward(x, None)
            preValue = tf.argmax(y, 1)
            variable_averages = tf.train.ExponentialMovingAverage(mnist_backward.MOVING_AVERAGE_DECAY)
            saver = tf.train.Saver(variable_averages.variables_to_restore())
            with tf.Session() as sess:
                ckpt = tf.train.get_checkpoint_state(model_dir)
                # by base name, as list_checkpoints does, so a moved model directory works too
                saver.restore(sess, os.path.join(model_dir, os.path.basename(ckpt.model_checkpoint_path)))
                print("%s\t%d" % (path, sess.run(preValue, feed_dict={x: testPicArr})[0]))
    return 0


def timed(command):
    start = time.time()
    proc = subprocess.run(command, capture_output=True, text=True)  # here: --model-dir is relative to here
    return time.time() - start, proc


def speed_report(model_dir, mnist, count, seed, preprocess):
    """Times mnist_app.py against the course's per-picture restore on `count` pictures; returns a status."""
    rng = np.random.default_rng(seed + 2)
    chosen = rng.choice(mnist.test.num_examples, size=count, replace=False)
    with tempfile.TemporaryDirectory() as folder:
        write_set(mnist.test.images[chosen], mnist.test.labels[chosen], folder, rng)
        sizes = [Image.open(os.path.join(folder, n)).size for n in os.listdir(folder)]
        megapixels = np.mean([w * h for w, h in sizes]) / 1e6
        print("speed: %d pictures (mean %.2f megapixels, up to %dx%d), --preprocess %s, whole processes"
              % (count, megapixels, *max(sizes, key=lambda s: s[0] * s[1]), preprocess))
        app = [sys.executable, os.path.join(ROOT, "mnist_app.py"), folder, "--model-dir", model_dir,
               "--preprocess", preprocess]
        course = [sys.executable, os.path.abspath(__file__), "--baseline", folder, "--model-dir", model_dir,
                  "--preprocess", preprocess]
        app_time, app_proc = timed(app)
        course_time, course_proc = timed(course)
    for name, proc in (("mnist_app.py", app_proc), ("baseline", course_proc)):
        lines = proc.stdout.strip().splitlines()
        if len(lines) != count:
            print("  %s printed %d lines for %d pictures: %s" % (name, len(lines), count, proc.stderr[-500:]))
            return 1
    # Same pictures, same weights: the two must agree digit for digit.
    agree = np.mean([a.split("\t")[1] == b.split("\t")[1] for a, b in
                     zip(app_proc.stdout.splitlines(), course_proc.stdout.splitlines())])
    print("  %-58s %6.1f s  %5.1f ms a picture" % ("mnist_app.py FOLDER (restore once, batched)", app_time,
                                                   app_time / count * 1e3))
    print("  %-58s %6.1f s  %5.1f ms a picture" % ("course's approach (graph + restore per picture)",
                                                   course_time, course_time / count * 1e3))
    print("  mnist_app.py is %.1fx faster (same predictions: %.0f%%)" % (course_time / app_time, agree * 100))
    if agree < 1:
        print("  error: the two disagree on %d of %d pictures" % (round((1 - agree) * count), count))
        return 1
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=input_data.HelpFormatter)
    p.add_argument("--model-dir", default="./model/", type=input_data.expand_user, help="checkpoint directory")
    p.add_argument("--data-dir", default=None, help=input_data.DATA_DIR_HELP)
    p.add_argument("--count", type=int, default=600, help="photo-like pictures for the accuracy figures")
    p.add_argument("--framing-count", type=int, default=300,
                   help="digits cut out to their ink for the framing figures (a fifteenth of that many in "
                        "large photos; 0: skip)")
    p.add_argument("--sklearn-count", type=int, default=550,
                   help="scikit-learn digits for the out-of-MNIST figures, if scikit-learn is installed (0: skip)")
    p.add_argument("--speed-count", type=int, default=300, help="pictures for the speed figures")
    p.add_argument("--preprocess", choices=("mnist", "seed"), default="mnist",
                   help="preprocessing for the speed figures")
    p.add_argument("--seed", type=int, default=2026, help="seed of the picture generator")
    p.add_argument("--baseline", metavar="FOLDER", help=argparse.SUPPRESS)  # internal: the course's app (baseline)
    args = p.parse_args(argv)
    if args.count < 1 or args.speed_count < 1 or args.sklearn_count < 0 or args.framing_count < 0:
        p.error("--count and --speed-count must be positive, --framing-count and --sklearn-count not negative")
    if args.seed < 0:  # NumPy's generators take no negative seed
        p.error("--seed must not be negative, got %d" % args.seed)

    from mnist_common import list_checkpoints
    if not list_checkpoints(args.model_dir):
        print("No checkpoint file found in %s (train one: python mnist_backward.py --model-dir %s)"
              % (args.model_dir, args.model_dir))
        return 1
    if args.baseline:
        return baseline(args.baseline, args.model_dir, args.preprocess)
    mnist = input_data.read_test_set(args.data_dir, one_hot=False)
    for flag in ("--count", "--framing-count", "--speed-count"):  # a test digit of its own for each picture
        count = getattr(args, flag[2:].replace("-", "_"))
        if count > mnist.test.num_examples:
            from mnist_common import UserError
            raise UserError("%s %d is more than the %d test images in %s"
                            % (flag, count, mnist.test.num_examples, input_data.resolve_data_dir(args.data_dir)))
    import mnist_app
    model = mnist_app.load_model(args.model_dir)
    print("model: %s" % model.checkpoint)
    accuracy_report(model, mnist, args.count, args.seed)
    if args.framing_count:
        framing_report(model, mnist, args.framing_count, args.seed)
    if args.sklearn_count:
        sklearn_report(model, args.seed, args.sklearn_count)
    return speed_report(args.model_dir, mnist, args.speed_count, args.seed, args.preprocess)


if __name__ == "__main__":
    from mnist_common import run_main, exit_on_stop_signals  # bad input (missing MNIST, ...) and Ctrl+C: one line
    # SIGTERM, SIGHUP: 143, 129 through the clean-up of its temporary folders of pictures (a process it runs
    # meanwhile is killed by subprocess.run, as on Ctrl+C)
    exit_on_stop_signals()
    run_main(main)
