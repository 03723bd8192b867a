"""mnist_app.py and mnist_picture.py: batch mode over more pictures than one network run takes, and the
thickening of thin pen strokes. (Kept apart from test_app.py, to be folded into it.)"""
import os

import numpy as np
from PIL import Image, ImageDraw

import mnist_app
import mnist_picture
from mnist_common import EmaModel, list_checkpoints


def _digit_picture(image, path):
    """Saves MNIST image float32 [784] as dark ink on light paper, enlarged 4x on a 160x140 canvas."""
    ink = np.asarray(Image.fromarray(image.reshape(28, 28)).resize((112, 112), Image.BICUBIC))
    grey = np.full((140, 160), 0.95, np.float32)
    grey[14:126, 24:136] = 0.95 * (1 - np.clip(ink, 0, 1)) + 0.1 * np.clip(ink, 0, 1)
    Image.fromarray((grey * 255 + 0.5).astype(np.uint8)).save(str(path))
    return str(path)


def test_batch_of_more_pictures_than_one_chunk(trained_model, mnist, tmp_path, capsys):
    # 300 pictures (links to three, in turn), more than the CHUNK of 256 prepared and run through the
    # network at a time: one line each, in name order, each copy read as its picture is read on its own.
    sources = [_digit_picture(mnist.test.images[i], tmp_path / ("source%d.png" % i)) for i in range(3)]
    model = EmaModel()  # independently: each picture alone, through the model restored here
    try:
        model.restore(list_checkpoints(trained_model)[0])
        alone = [model.probabilities_of(mnist_picture.mnist_input(p)[None])[0] for p in sources]
    finally:
        model.close()
    digits = [int(np.argmax(p)) for p in alone]
    assert len(set(digits)) == 3  # three different readings: a line paired with the wrong picture shows
    assert 300 > mnist_app.CHUNK
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(300):
        os.symlink(sources[i % 3], folder / ("%03d.png" % i))
    assert mnist_app.main([str(folder), "--model-dir", trained_model]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = [line.split("\t") for line in out.splitlines()]
    assert [path for path, _, _ in lines] == [str(folder / ("%03d.png" % i)) for i in range(300)]
    for i, (_, digit, probability) in enumerate(lines):
        assert int(digit) == digits[i % 3], i
        assert abs(float(probability) - alone[i % 3][digits[i % 3]]) <= 0.0015, i


def test_thin_pen_strokes_are_thickened_to_mnists_width(mnist, tmp_path):
    # A 7 and a 0 drawn with a 2-pixel pen on a 300x300 canvas: the digit is ~200 pixels tall, so the pen is
    # about 0.2 of a field pixel wide once the digit is scaled to 20. Thin strokes are thickened to MNIST's
    # width (STROKE, 2 field pixels) before scaling: the field's strokes are then as wide as those of most
    # MNIST digits (at least the test set's 25th percentile, ~1.7; its median is ~2.0), where unthickened
    # (or thickened to 1) they would be about 1 pixel wide. Widths as mnist_picture.stroke_width defines
    # them (ink mass over half the total variation), computed here for the test set.
    digits = mnist.test.images.reshape(-1, 28, 28).astype(np.float64)
    variation = np.abs(np.diff(digits, axis=1)).sum(axis=(1, 2)) + np.abs(np.diff(digits, axis=2)).sum(axis=(1, 2))
    low, high = np.percentile(2 * digits.sum(axis=(1, 2)) / variation, [25, 90])
    assert 1.6 < low < 1.8 and 2.0 < high < 3
    seven = Image.new("L", (300, 300), 255)
    draw = ImageDraw.Draw(seven)
    draw.line([(90, 60), (210, 60), (128, 248)], fill=0, width=2)
    draw.line([(112, 150), (188, 150)], fill=0, width=2)
    zero = Image.new("L", (300, 300), 255)
    ImageDraw.Draw(zero).ellipse([105, 52, 195, 248], outline=0, width=2)
    for name, img in (("seven", seven), ("zero", zero)):
        path = str(tmp_path / (name + ".png"))
        img.save(path)
        pen = (np.asarray(img) < 128).astype(np.float64)
        rows = np.flatnonzero(pen.any(axis=1))
        pen_width = 2 * pen.sum() / (np.abs(np.diff(pen, axis=0)).sum() + np.abs(np.diff(pen, axis=1)).sum())
        assert pen_width * mnist_picture.BOX / (rows[-1] - rows[0] + 1) < 0.3  # thin in field pixels, as drawn
        field = mnist_picture.mnist_input(path).reshape(28, 28)
        assert low <= mnist_picture.stroke_width(field) <= high, name
