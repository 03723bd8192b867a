"""mnist_app.py and mnist_picture.py: the course's pre_pic, MNIST-style preprocessing of real-looking pictures,
the prompt flow, batch mode, bad files, and a smoke run of bench/app_bench.py.

Pictures are made here from real MNIST test digits (the `mnist` fixture) drawn onto canvases with Pillow.
"""
import contextlib
import io
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from conftest import ROOT, run_script, run_script_redirected, assert_no_traceback, _env, popen
from mnist_common import tf, list_checkpoints, EmaModel, UserError
import mnist_app
import mnist_picture
from mnist_picture import PictureError

LINE = re.compile(r"^(.+)\t(\d)\t(\d\.\d{3})$")


# ---------------------------------------------------------------------------------------------------------
# Making pictures

def digit_grey(digit, size=(200, 160), box=(40, 20, 120), paper=1.0, ink=0.0):
    """A grey picture of an MNIST digit.

    Args:
      digit: float32 [784] MNIST image (ink bright).
      size: (width, height) of the canvas.
      box: (left, top, side) of the square the 28x28 digit is enlarged into.
      paper, ink: grey levels in [0, 1].
    Returns:
      float32 [height, width] in [0, 1].
    """
    left, top, side = box
    cover = np.clip(np.asarray(Image.fromarray(digit.reshape(28, 28)).resize((side, side), Image.BICUBIC)), 0, 1)
    grey = np.full((size[1], size[0]), paper, np.float32)
    grey[top:top + side, left:left + side] = paper * (1 - cover) + ink * cover
    return grey



def first_digits_grey(digits, *args, **kwargs):
    """(i, digit_grey(the i-th test digit, *args, **kwargs)) for the first four of the digits fixture's."""
    images, _ = digits
    for i, image in enumerate(images[:4]):
        yield i, digit_grey(image, *args, **kwargs)

def to_image(grey):
    """float32 [H, W] in [0, 1] -> 8-bit greyscale PIL image."""
    return Image.fromarray((np.clip(grey, 0, 1) * 255 + 0.5).astype(np.uint8))


def save(img, path, **options):
    img.save(str(path), **options)
    return str(path)


def aligned_difference(a, b):
    """Mean |a - b| of two 28x28 inputs, at the best whole-pixel shift of up to 1 pixel (centring by mass
    rounds to whole pixels, so the same digit can land one pixel apart)."""
    a, b = a.reshape(28, 28), b.reshape(28, 28)
    return min(np.abs(np.roll(a, (dy, dx), (0, 1)) - b).mean() for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def centre_of_mass(field):
    field = field.reshape(28, 28)
    rows, cols = np.indices(field.shape)
    return (rows * field).sum() / field.sum(), (cols * field).sum() / field.sum()


def png_header_only(path, width, height):
    """A PNG whose header claims width x height (8-bit grey) with a token, unusable IDAT: a few dozen bytes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return str(path)


@pytest.fixture(scope="module")
def digits(mnist):
    """The first 10 MNIST test digits: (images float32 [10, 784], labels [10])."""
    return mnist.test.images[:10], mnist.test.labels[:10].argmax(axis=1)


# ---------------------------------------------------------------------------------------------------------
# The course's pre_pic

def test_seed_pre_pic_exact(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)
    path = save(Image.fromarray(rgb), tmp_path / "rgb.png")
    # Independently: Pillow's documented RGB -> L (ITU-R 601-2 luma, 16-bit fixed point, rounded), then
    # 255 - L, then below 50 -> 0 else 255, scaled by 1/255. A 28x28 picture is not resampled.
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    luma = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16
    expected = np.where(255 - luma < 50, 0.0, 1.0).astype(np.float32).reshape(1, 784)
    out = mnist_app.pre_pic(path)
    assert out.shape == (1, 784) and out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)
    assert 0 < expected.mean() < 1  # both branches of the threshold are exercised

    # Larger pictures are resized with Lanczos; a uniform one stays uniform: grey 206 inverts to 49 (paper),
    # grey 205 to 50 (ink: the course's threshold keeps 50).
    for level, value in ((206, 0.0), (205, 1.0)):
        path = save(Image.new("L", (90, 61), level), tmp_path / ("uniform%d.png" % level))
        np.testing.assert_array_equal(mnist_app.pre_pic(path), np.full((1, 784), value, np.float32))


# ---------------------------------------------------------------------------------------------------------
# MNIST-style preprocessing

def test_field_constants_are_mnists(mnist):
    # CENTRE and BOX are what the real test images show: mean centre of mass (row, column), and the longer
    # side of the digit's bounding box in nearly every image.
    images = mnist.test.images.reshape(-1, 28, 28).astype(np.float64)
    rows, cols = np.indices((28, 28))
    mass = images.sum(axis=(1, 2))
    assert abs(((images * rows).sum(axis=(1, 2)) / mass).mean() - mnist_picture.CENTRE) < 0.05
    assert abs(((images * cols).sum(axis=(1, 2)) / mass).mean() - mnist_picture.CENTRE) < 0.05
    def extent(ink):  # [N, 28] bool: from the first to the last True, in pixels
        return 28 - ink.argmax(axis=1) - ink[:, ::-1].argmax(axis=1)
    longer = np.maximum(extent(images.any(axis=2)), extent(images.any(axis=1)))
    assert np.mean(longer == mnist_picture.BOX) > 0.99
    assert mnist_picture.SIZE == 28


def test_mnist_preprocessing_shape_range_centre(tmp_path, digits):
    images, _ = digits
    for i, image in enumerate(images[:5]):
        path = save(to_image(digit_grey(image, box=(10 + 12 * i, 5 + 5 * i, 100 + 8 * i))), tmp_path / ("%d.png" % i))
        field = mnist_picture.mnist_input(path)
        assert field.shape == (784,) and field.dtype == np.float32
        assert field.min() == 0.0 and field.max() <= 1.0 and field.max() > 0.99
        # grey levels kept (anti-aliased edges), not a 0/1 threshold
        assert np.count_nonzero((field > 0.05) & (field < 0.95)) > 20
        cy, cx = centre_of_mass(field)
        assert abs(cy - mnist_picture.CENTRE) <= 1 and abs(cx - mnist_picture.CENTRE) <= 1, (cy, cx)
        # the digit's longer side spans BOX pixels
        rows, cols = np.flatnonzero(field.reshape(28, 28).any(1)), np.flatnonzero(field.reshape(28, 28).any(0))
        assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 in (mnist_picture.BOX, mnist_picture.BOX + 1)
        # and it resembles the MNIST image it was drawn from
        assert aligned_difference(field, image) < 0.06


def test_inverted_twin_and_small_in_corner(tmp_path, digits):
    images, _ = digits
    for i, image in enumerate(images[:4]):
        big = mnist_picture.mnist_input(save(to_image(digit_grey(image, (300, 300), (30, 30, 240))),
                                             tmp_path / ("big%d.png" % i)))
        # small, in a corner of a large grey sheet, grey ink
        small_grey = digit_grey(image, (900, 700), (15, 620, 70), paper=0.6, ink=0.15)
        small = mnist_picture.mnist_input(save(to_image(small_grey), tmp_path / ("small%d.png" % i)))
        # its colour-inverted twin: light ink on dark paper
        twin = mnist_picture.mnist_input(save(ImageOps.invert(to_image(small_grey)), tmp_path / ("inv%d.png" % i)))
        assert aligned_difference(small, big) < 0.06, i
        assert aligned_difference(twin, small) < 0.02, i
        other = images[(i + 1) % len(images)]
        assert aligned_difference(small, other) > 0.08  # the measure does tell digits apart


def test_digit_cropped_close_to_its_ink(tmp_path, digits):
    # A digit cut out to its ink can cover half the picture: its strokes were taken for paper (the picture
    # called blank, or the digit read in part). Dark on light and light on dark, against one with a margin.
    images, _ = digits
    for i, image in enumerate(images):
        a = image.reshape(28, 28)
        rows, cols = np.flatnonzero(a.any(axis=1)), np.flatnonzero(a.any(axis=0))
        crop = a[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        big = np.asarray(Image.fromarray(crop).resize((crop.shape[1] * 6, crop.shape[0] * 6), Image.BILINEAR))
        reference = mnist_picture.mnist_input(save(to_image(digit_grey(image)), tmp_path / ("margin%d.png" % i)))
        for name, grey in (("dark", 1 - big), ("light", big)):
            field = mnist_picture.mnist_input(save(to_image(grey), tmp_path / ("%s%d.png" % (name, i))))
            assert aligned_difference(field, reference) < 0.06, (i, name)


@pytest.mark.parametrize("extension", [".png", ".jpg"])
def test_digit_a_few_pixels_tall_once_the_photo_is_reduced(tmp_path, digits, extension):
    # A 40-pixel digit in a 4000x3000 photo is 3 pixels tall at the working size: it was called blank. (A JPEG
    # is first decoded at an eighth of its size; the digit is read again from the full-size decode.)
    images, _ = digits
    image = images[0]
    sheet = digit_grey(image, (4000, 3000), (2300, 1700, 56), paper=0.92, ink=0.12)  # the digit ~40 px tall
    field = mnist_picture.mnist_input(save(to_image(sheet), tmp_path / ("sheet" + extension), quality=90))
    reference = mnist_picture.mnist_input(save(to_image(digit_grey(image)), tmp_path / "reference.png"))
    assert aligned_difference(field, reference) < 0.06
    with pytest.raises(PictureError, match="looks blank"):  # and a sheet without a digit is still blank
        blank = to_image(np.full((3000, 4000), 0.92, np.float32))
        mnist_picture.mnist_input(save(blank, tmp_path / ("blank" + extension)))


def test_a_phone_photo_with_a_second_picture_is_decoded_at_a_reduced_scale(tmp_path, digits):
    # Many phones add a picture after the photo (a depth or gain map); Pillow then calls the JPEG an MPO, and
    # it was decoded at full size (twice the time of a 12-megapixel JPEG) and read from that.
    sheet = to_image(digit_grey(digits[0][0], (2400, 1800), (700, 300, 1100), paper=0.9, ink=0.15))
    jpeg = save(sheet, tmp_path / "photo.jpg", quality=90)
    mpo = tmp_path / "phone.jpg"
    sheet.convert("RGB").save(mpo, format="MPO", quality=90, save_all=True, append_images=[sheet.resize((240, 180))])
    img = mnist_picture.open_picture(str(mpo), draft=mnist_picture.WORK_SIZE)
    assert img.format == "MPO" and img.info.get("draft_scale") == 4 and img.size == (600, 450)
    assert np.array_equal(mnist_picture.mnist_input(str(mpo)), mnist_picture.mnist_input(jpeg))  # read as the JPEG


def test_uneven_paper_and_noise(tmp_path, digits):
    images, _ = digits
    image = images[0]
    rng = np.random.default_rng(1)
    grey = digit_grey(image, (260, 220), (60, 40, 150), paper=0.8, ink=0.35)
    ramp = np.linspace(1.0, 0.45, grey.shape[1], dtype=np.float32)  # the right side in shadow
    photo = grey * ramp + rng.normal(0, 0.03, grey.shape).astype(np.float32)
    field = mnist_picture.mnist_input(save(to_image(photo), tmp_path / "photo.jpg", quality=60))
    reference = mnist_picture.mnist_input(save(to_image(grey), tmp_path / "clean.png"))
    assert aligned_difference(field, reference) < 0.06
    # the seed's pre_pic turns the shadowed grey paper into ink
    assert mnist_app.pre_pic(str(tmp_path / "photo.jpg")).mean() > 0.3


def test_digit_on_ruled_or_squared_paper(tmp_path, digits):
    # Printed lines of notebook paper were ink to the reader: a digit across dark ruling read as something else.
    images, _ = digits
    for i, image in enumerate(images[:4]):
        grey = digit_grey(image, (260, 220), (60, 40, 150))
        rows, cols = np.indices(grey.shape)
        ruled = (rows + 7 * i) % 38 < 2
        # lines at half the paper's brightness, under the ink
        assert_read_as_on_plain_paper(tmp_path, grey, i, [("ruled", grey * np.where(ruled, 0.5, 1.0)), (
            "squared", grey * np.where(ruled | ((cols + 5 * i) % 38 < 2), 0.5, 1.0))])


def assert_read_as_on_plain_paper(tmp_path, grey, i, pictures):
    """Each of pictures [(name, float32 [H, W])], the digit of grey [H, W] on other paper, reads as grey does."""
    reference = mnist_picture.mnist_input(save(to_image(grey), tmp_path / ("plain%d.png" % i)))
    for name, picture in pictures:
        field = mnist_picture.mnist_input(save(to_image(picture), tmp_path / ("%s%d.png" % (name, i))))
        assert aligned_difference(field, reference) < 0.06, (i, name)


def test_digit_in_a_frame_on_a_scan_margin_or_on_a_table(tmp_path, digits):
    # A dark frame round the picture, a scan's dark margin, a table seen around the photographed sheet: each was
    # taken for the digit's ink (the crop held the frame), and the digit read as something else.
    images, _ = digits
    rng = np.random.default_rng(5)
    for i, image in enumerate(images[:4]):
        grey = digit_grey(image, (260, 220), (60, 40, 150), paper=0.9, ink=0.1)
        framed = grey.copy()
        framed[:3], framed[-3:], framed[:, :3], framed[:, -3:] = 0.0, 0.0, 0.0, 0.0
        two_sides = grey.copy()
        two_sides[:2], two_sides[:, :2] = 0.15, 0.15
        margin = np.concatenate([np.full((220, 30), 0.2, np.float32), grey], axis=1)
        table = np.full((300, 360), 0.3, np.float32) + rng.normal(0, 0.03, (300, 360)).astype(np.float32)
        table[50:270, 70:330] = grey  # the sheet, with the table on all four sides
        assert_read_as_on_plain_paper(tmp_path, grey, i, [("framed", framed), ("two sides", two_sides),
                                                          ("margin", margin), ("table", table)])


def test_small_sheet_on_a_table_that_fills_most_of_the_picture(tmp_path, digits):
    # A sheet photographed from further away: the grey table around it covers 61% to 84% of the picture. Past 60%
    # the table was left as it was, the sheet taken for a light stroke on it, and the digit misread.
    rng = np.random.default_rng(6)
    for i, grey in first_digits_grey(digits, (260, 220), (60, 40, 150), paper=0.9, ink=0.1):
        tables = []
        for scale, level in ((1.6, 0.35), (2.0, 0.45), (2.5, 0.25)):
            h, w = int(220 * scale), int(260 * scale)
            table = np.full((h, w), level, np.float32) + rng.normal(0, 0.03, (h, w)).astype(np.float32)
            top, left = int(rng.integers(2, h - 222)), int(rng.integers(2, w - 262))
            table[top:top + 220, left:left + 260] = grey
            tables.append(("table%g" % scale, table))
        assert_read_as_on_plain_paper(tmp_path, grey, i, tables)


def test_light_digit_on_a_dark_canvas_with_light_surroundings(tmp_path, digits):
    # A screenshot of a drawing canvas, white on black, with the light page or window around it; a board photographed
    # with the wall around it: the light surroundings were taken for the paper and the dark canvas for the ink.
    images, _ = digits
    for i, image in enumerate(images[:4]):
        board = digit_grey(image, (200, 200), (30, 30, 140), paper=0.05, ink=0.95)
        page = np.full((260, 340), 1.0, np.float32)  # the canvas 77% of the height: the page 55% of the picture
        page[30:230, 70:270] = board
        wall = np.full((400, 520), 0.8, np.float32)  # 50%: the wall 81%
        wall[100:300, 160:360] = board
        one_side = np.concatenate([np.full((200, 60), 0.9, np.float32), board], axis=1)
        assert_read_as_on_plain_paper(tmp_path, board, i, [("page", page), ("wall", wall), ("one side", one_side)])


def test_sheet_turned_a_little_on_a_table(tmp_path, digits):
    # A sheet photographed a little turned leaves the table in the four corners of the upright box round the sheet
    # (about a sixth of it at 6 degrees): that was taken for a digit's board showing between its strokes, the table left
    # as it was and the digit misread.
    rng = np.random.default_rng(8)
    for i, grey in first_digits_grey(digits, (260, 220), (60, 40, 150), paper=0.9, ink=0.1):
        tables = []
        for turn in (-6, -4, 3, 5):
            sheet = Image.fromarray(grey).rotate(turn, Image.BILINEAR, expand=True)
            cover = np.asarray(Image.fromarray(np.ones_like(grey)).rotate(turn, Image.BILINEAR, expand=True))
            h, w = cover.shape
            table = np.full((h + 120, w + 160), 0.3, np.float32) + rng.normal(0, 0.02, (h + 120, w + 160))
            table[60:60 + h, 80:80 + w] = table[60:60 + h, 80:80 + w] * (1 - cover) + np.asarray(sheet) * cover
            tables.append(("turned%d" % turn, table.astype(np.float32)))
        assert_read_as_on_plain_paper(tmp_path, grey, i, tables)
    # what a turned sheet leaves of the table in its box, against the board round a light 0, upright or slanted
    rows, cols = np.indices((120, 100))
    for slope in (0.0, 0.1, 0.2):
        across, along = (cols - 50) + slope * (rows - 60), (rows - 60) - slope * (cols - 50)
        sheet = (np.abs(across) < 35) & (np.abs(along) < 50)
        assert mnist_picture._box_share(~sheet) < 0.1, slope
        assert mnist_picture._box_share((along / 50) ** 2 + (across / 35) ** 2 >= 1) > 0.15, slope


def test_dark_mode_canvas_in_a_window_a_little_lighter(tmp_path, digits):
    # A screenshot of a white-on-black canvas in a dark mode's window, 0.1 to 0.2 lighter than the canvas, with a
    # few light labels in it: the window's edge round the canvas was taken for ink and the digit misread.
    rng = np.random.default_rng(7)
    for i, board in first_digits_grey(digits, (200, 200), (30, 30, 140), paper=0.05, ink=0.95):
        shots = []
        for lighter in (0.1, 0.15, 0.2):
            shot = np.full((280, 360), 0.05 + lighter, np.float32)
            for _ in range(3):  # labels and buttons
                top, left = int(rng.integers(0, 270)), int(rng.integers(0, 320))
                shot[top:top + 5, left:left + int(rng.integers(10, 40))] = 0.8
            shot[40:240, 90:290] = board
            shots.append(("window%g" % lighter, shot))
        assert_read_as_on_plain_paper(tmp_path, board, i, shots)


def test_noisy_photo_of_a_board_is_no_canvas_in_a_window(tmp_path, digits):
    # A phone photo of a light digit on a dark board, its noise 0.05: noise alone makes the sides look 0.05 or more
    # lighter than the board (the lightest of their outer pixels), the board was taken for a canvas in a window, and
    # the light "window" reached through the noise into the base of a 2 near the side and painted it over (a 7).
    images, _ = digits
    for i in (1, 2, 3):
        cover = Image.fromarray(images[i].reshape(28, 28)).resize((140, 140), Image.BICUBIC)
        board = 0.1 + 0.8 * np.pad(np.clip(np.asarray(cover.filter(ImageFilter.MaxFilter(5))), 0, 1), 3)
        photos = []
        for seed in (1, 2):
            rng = np.random.default_rng(seed)
            photos.append(("noisy%d" % seed, board + rng.normal(0, 0.05, board.shape).astype(np.float32)))
        assert_read_as_on_plain_paper(tmp_path, board.astype(np.float32), i, photos)


def hard_shadow(shape, point, angle, dim, ramp=1.5):
    """Light [H, W] under a straight shadow edge through point (row, column), the light side towards angle
    (radians, from the columns' direction), the dark side at dim of the light, the edge a ramp `ramp` wide."""
    rows, cols = np.indices(shape)
    across = (cols - point[1]) * np.cos(angle) + (rows - point[0]) * np.sin(angle)
    return (dim + (1 - dim) * np.clip(across / ramp + 0.5, 0, 1)).astype(np.float32)


def test_digit_under_a_hard_shadow(tmp_path, digits):
    # A hard-edged shadow across the digit (a hand's, a phone's): the paper's smooth level left its step as a bar
    # of ink across the digit, which was read as another. The shadow's dark side is lifted to the light's level.
    images, _ = digits
    rng = np.random.default_rng(7)
    for i, image in enumerate(images[:4]):
        grey = digit_grey(image, (260, 220), (60, 40, 150), paper=0.9, ink=0.1)
        shadows = []
        for j, (angle, dim, ramp) in enumerate(((0.3, 0.45, 1.0), (2.0, 0.6, 3.0), (4.2, 0.7, 2.0))):
            light = hard_shadow(grey.shape, (110 + 5 * i, 130), angle + 0.4 * i, dim, ramp)  # through the digit
            shadows.append(("shadow%d" % j, grey * light + rng.normal(0, 0.01, grey.shape).astype(np.float32)))
        assert_read_as_on_plain_paper(tmp_path, grey, i, shadows)


def test_blank_sheet_under_a_hard_shadow_stays_blank(tmp_path):
    # The shadow's step was read as a digit (a bar). Also on a sheet large enough for the second look at
    # FINE_SIZE (the shadow is found on the sheet shrunk, and lifted at that size), and in a JPEG.
    rng = np.random.default_rng(8)
    for i, ((h, w), angle, dim, ramp, ext) in enumerate((((240, 320), 0.5, 0.5, 1.0, ".png"),
                                                         ((300, 200), 2.5, 0.65, 3.0, ".png"),
                                                         ((180, 260), 5.5, 0.4, 2.0, ".jpg"),
                                                         ((900, 1200), 4.0, 0.45, 2.0, ".png"))):
        sheet = 0.85 * hard_shadow((h, w), (0.4 * h, 0.6 * w), angle, dim, ramp) + rng.normal(0, 0.01, (h, w))
        path = save(to_image(sheet), tmp_path / ("shadow%d%s" % (i, ext)), **({"quality": 85} if ext == ".jpg" else {}))
        with pytest.raises(PictureError, match="no ink found"):
            mnist_picture.mnist_input(path)


def test_hard_shadow_beside_a_black_patch(tmp_path, digits):
    # Black (0) all along a piece of the shadow's light side (a patch of black tape or marker beside its edge):
    # that piece's paper level was 0, and the edge's profile was divided by it (NumPy's "divide by zero" warning
    # on stderr, infinities in the profile). Its level is unknown there, as where a piece has no pixels.
    grey = digit_grey(digits[0][0], (270, 220), (20, 20, 110), paper=0.8, ink=0.1)  # in the shadow
    for left in (100, 200):
        sheet = grey.copy()
        sheet[152:192, left:left + 40] = 0.0
        shaded = sheet * hard_shadow(sheet.shape, (150, 135), np.pi / 2 + 0.05, 0.5, 2.0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            lifted = mnist_picture._hard_shadow(shaded)
            mnist_picture.mnist_input(save(to_image(shaded), tmp_path / ("patch%d.png" % left)))
        assert lifted is not None and np.isfinite(lifted).all(), left


def test_thick_strokes_cut_out_close_are_not_taken_for_a_shadow(mnist):
    # In a digit cut out close to its ink, a thick stroke of grey ink has a long straight edge across the picture,
    # with the paper a step darker on one side, as a shadow's edge has, but the paper comes back beyond the
    # stroke. Taken for a shadow, the stroke was lifted away. MNIST test digits 4 to 8 times their size (strokes
    # 10 to 30 pixels wide), soft-edged or crisp like a pen's; the last six were taken for a shadow when its dark
    # side was checked only as far as 15% of the picture's size.
    images = mnist.test.images
    cases = [(i, scale, crisp, paper, ink) for i in range(10) for scale in (4, 8) for crisp in (False, True)
             for paper, ink in ((0.95, 0.5), (0.9, 0.35))]
    cases += [(79, 6, False, 0.9, 0.6), (137, 8, False, 0.95, 0.5), (171, 6, False, 0.95, 0.5),
              (171, 8, True, 0.9, 0.35), (190, 6, False, 0.9, 0.6), (190, 8, False, 0.9, 0.6)]
    for i, scale, crisp, paper, ink in cases:
        a = images[i].reshape(28, 28)
        rows, cols = np.flatnonzero(a.any(axis=1)), np.flatnonzero(a.any(axis=0))
        crop = a[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        big = np.asarray(Image.fromarray(crop).resize((crop.shape[1] * scale, crop.shape[0] * scale), Image.BICUBIC))
        cover = np.clip((big - 0.35) / 0.3 if crisp else big, 0, 1)
        grey = (paper * (1 - cover) + ink * cover).astype(np.float32)
        assert mnist_picture._hard_shadow(grey) is None, (i, scale, crisp, ink)


def test_ink_as_bright_as_its_paper_in_another_hue(tmp_path, digits):
    # A red pen on green paper: the same brightness, so in grey levels the picture looked blank. Blank sheets of
    # one colour, with noise, a colour gradient or a faint stain of another hue, stay blank (a stain that stands
    # out in colour as much as a stroke, as one standing out as much in grey, may be read as a digit).
    images, _ = digits
    rng = np.random.default_rng(4)
    for i, image in enumerate(images[:3]):
        cover = digit_grey(image, paper=0.0, ink=1.0)[..., None]  # 1 where the ink is
        reference = mnist_picture.mnist_input(save(to_image(1 - cover[..., 0]), tmp_path / ("plain%d.png" % i)))
        for name, paper, ink in (("red on green", (0, 153, 0), (255, 0, 0)), ("blue on grey", (80, 80, 80),
                                                                                  (40, 60, 255))):
            rgb = np.array(paper) * (1 - cover) + np.array(ink) * cover + rng.normal(0, 2, cover.shape)
            path = save(Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)), tmp_path / ("c%d.jpg" % i), quality=90)
            assert aligned_difference(mnist_picture.mnist_input(path), reference) < 0.06, (i, name)
    rows, cols = np.indices((160, 200))
    stain = np.exp(-((rows - 80) ** 2 + (cols - 100) ** 2) / 2000.0)[..., None]
    faint = digit_grey(images[0], paper=0.0, ink=1.0)[..., None]  # a 7 drawn 0.07 darker in every channel: as
    for name, rgb in (("faint grey marks", (np.array([0.95, 0.93, 0.85]) - 0.07 * faint) * 255),  # faint as in grey
                      ("noisy green", np.array([0, 153, 0]) + rng.normal(0, 6, (160, 200, 3))),
                      ("gradient", np.stack([cols * 1.2, np.full(cols.shape, 120), 255 - rows * 1.5], axis=-1)),
                      ("stained", np.array([230, 200, 60]) * (1 - 0.1 * stain) + np.array([60, 90, 230]) * 0.1
                       * stain)):
        path = save(Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)), tmp_path / "blank.png")
        with pytest.raises(PictureError, match="looks blank"):
            mnist_picture.mnist_input(path)
            pytest.fail(name)


def test_opaque_picture_with_an_alpha_channel_read_along_its_colours(tmp_path, digits):
    # Drawing programs and screenshots save RGBA (or a palette with a transparent colour) even where nothing is
    # transparent: such a picture is read along its colours as an RGB one is.
    image = digits[0][0]
    cover = digit_grey(image, paper=0.0, ink=1.0)[..., None]
    reference = mnist_picture.mnist_input(save(to_image(1 - cover[..., 0]), tmp_path / "plain.png"))
    rgb = Image.fromarray((np.array((0, 153, 0)) * (1 - cover) + np.array((255, 0, 0)) * cover + 0.5).astype(np.uint8))
    keyed = rgb.quantize(colors=16)
    keyed.info["transparency"] = 255  # a colour the picture does not use
    assert 255 not in np.asarray(keyed)
    for name, img in (("rgba.png", rgb.convert("RGBA")), ("rgba.tif", rgb.convert("RGBA")), ("keyed.gif", keyed)):
        path = save(img, tmp_path / name)
        assert aligned_difference(mnist_picture.mnist_input(path), reference) < 0.06, name
    # with any of it transparent, the picture is laid on paper, not read along its colours (as before)
    see_through = np.asarray(rgb.convert("RGBA")).copy()
    see_through[:5, :5, 3] = 0
    assert mnist_picture.colour_contrast(Image.fromarray(see_through, "RGBA")) is None


def test_what_lies_around_the_sheet_is_told_from_the_digit():
    """surroundings() finds a frame, and leaves alone a digit cut out close whose stroke runs along a side: all
    of one piece (a 7's bar), detached but close (a 5's bar), light on a dark board (a 0's inside)."""
    paper = np.full((100, 80), 0.9, np.float32)
    framed = paper.copy()
    framed[:2], framed[:, -2:] = 0.1, 0.1
    framed[40:60, 30:34] = 0.1  # the digit, apart from the frame
    assert mnist_picture.surroundings(framed)[0].all() and not mnist_picture.surroundings(framed)[50, 31]
    framed[70:90, 30:34] = 0.1  # a part apart (the foot of a 1 written detached, say)...
    framed[2:60, 30:34] = 0.1   # ...and the stroke reaching up to the frame: the frame, not the stroke
    assert mnist_picture.surroundings(framed)[0, 31] and not mnist_picture.surroundings(framed)[20, 31]
    seven = paper.copy()
    seven[:12], seven[:, 60:72] = 0.1, 0.1  # bar along the top, stem joined to it
    assert mnist_picture.surroundings(seven) is None
    five = paper.copy()
    five[:12] = 0.1           # the bar, detached...
    five[15:90, 10:22] = 0.1  # ...but closer to the body than the bar is deep
    assert mnist_picture.surroundings(five) is None
    five[15:30] = 0.9         # the body further away than the bar's depth...
    five[40:90, 70:] = 0.1    # ...but reaching the picture's side, as a digit cut out close does
    assert mnist_picture.surroundings(five) is None
    five[40:90, 70:] = 0.9
    five[:12] = 0.1           # a margin, then
    assert mnist_picture.surroundings(five) is not None
    zero = np.full((100, 80), 0.05, np.float32)
    rows, cols = np.indices(zero.shape)
    ring = ((rows - 50) / 48) ** 2 + ((cols - 40) / 38) ** 2
    zero[(ring < 1) & (ring > 0.45)] = 0.95  # a light ring touching every side, the board dark inside and out
    assert mnist_picture.surroundings(zero) is None
    lined = paper.copy()
    lined[-2] = 0.5  # a printed line 1 pixel thick, next to the edge: no frame (it was an IndexError: the sides
    lined[40:60, 30:34] = 0.1  # were median-filtered on their own, where their inner row kept such a line)
    assert mnist_picture.surroundings(lined) is None


def test_ruled_lines_are_found_only_as_lines():
    g = np.ones((100, 120), np.float32)
    g[20:22] = g[50:52] = g[80] = 0.6  # three printed lines across
    lift = mnist_picture._ruled_lines(g)
    np.testing.assert_allclose(lift[[20, 21, 50, 51, 80]], 1 / 0.6, rtol=1e-5)
    np.testing.assert_allclose(np.delete(lift, [20, 21, 50, 51, 80], axis=0), 1.0)
    bar = np.ones((100, 120), np.float32)
    bar[5:9] = 0.6  # one line alone (a close-cropped 7's bar): not ruling
    assert mnist_picture._ruled_lines(bar) is None
    ink = np.ones((100, 120), np.float32)
    ink[20:22] = ink[50:52] = 0.2  # darker than printed ruling: strokes, not lines
    assert mnist_picture._ruled_lines(ink) is None
    wide = np.ones((100, 120), np.float32)
    wide[10:30] = wide[60:80] = 0.6  # bands wider than 4% of the picture: shading, not lines
    assert mnist_picture._ruled_lines(wide) is None
    soft = np.ones((100, 120), np.float32)
    soft[40:52] = np.array([0.9, 0.75, 0.6, 0.3, 0.2, 0.2, 0.2, 0.2, 0.3, 0.6, 0.75, 0.9])[:, None]  # soft edges
    assert mnist_picture._ruled_lines(soft) is None  # (each edge dips, lighter than ink, beside the bar)
    edge = np.ones(200, np.float32)
    edge[:12] = np.linspace(0.45, 0.95, 12)  # a steep dark end (a vignette): it dips below the closing too
    edge[[80, 81, 140, 141]] = 0.6
    lift = mnist_picture._ruled_lines(np.tile(edge[:, None], (1, 150)))
    assert np.flatnonzero(lift[:, 0] != 1).tolist() == [80, 81, 140, 141]  # the lines, not the dark end
    edge[:12], edge[[0, 1]] = 1.0, 0.6  # a line at the very edge is one
    lift = mnist_picture._ruled_lines(np.tile(edge[:, None], (1, 150)))
    assert np.flatnonzero(lift[:, 0] != 1).tolist() == [0, 1, 80, 81, 140, 141]


def test_a_strip_many_times_wider_than_high(tmp_path, digits):
    # Over 12 times wider than high, the paper grid is one block tall: its plane was fitted with a y that is the
    # same for every block, and the least-squares answer tilted it along y, so white paper looked like dark ink
    # on light paper going black: "no ink found" for a plain digit.
    image = digits[0][0]
    grey = digit_grey(image, (160, 100), (30, 0, 100))
    reference = mnist_picture.mnist_input(save(to_image(grey), tmp_path / "plain.png"))
    for width in (4000, 6000):
        strip = np.ones((100, width), np.float32)
        strip[:, width // 2:width // 2 + 160] = grey
        for name, picture in (("wide", strip), ("tall", strip.T)):
            field = mnist_picture.mnist_input(save(to_image(picture), tmp_path / ("%s%d.png" % (name, width))))
            if name == "tall":
                field = field.reshape(28, 28).T  # the digit on its side, read as such
            assert aligned_difference(field, reference) < 0.06, (name, width)
    coef, _ = mnist_picture._robust_plane(np.arange(12, dtype=np.float32), np.full(12, 5, np.float32),
                                          np.full(12, 0.9, np.float32))
    np.testing.assert_allclose(coef, [0.9, 0, 0], atol=1e-6)  # level paper, one row of blocks: a level plane


def test_a_strip_a_few_pixels_wide(tmp_path):
    """A picture 3 pixels wide and 700 tall is 1 wide once reduced: the small digit read again from the full-size
    picture was cut out with the horizontal scale (3) used down too (for 2.19), past the picture's bottom, and
    Pillow's crop refused it ('cannot process this L picture')."""
    grey = np.ones((700, 3), np.float32)
    grey[346:658, 1] = 0.0  # a stroke down the middle, low in the strip
    field = mnist_picture.mnist_input(save(to_image(grey), tmp_path / "strip.png"))
    assert field.shape == (784,) and field.max() == 1.0


def turned_lines(shape, slope, spacing, thick, offset=0.0):
    """Coverage [H, W] in [0, 1] of printed lines along y = c + slope * (x - W / 2), every `spacing` rows,
    `thick` rows thick, anti-aliased (each pixel's overlap with a line, as a camera would record it)."""
    rows, cols = np.indices(shape)
    d = (rows - slope * (cols - shape[1] / 2) + offset) % spacing  # from the top edge of the line above
    return np.clip(np.minimum(d + 0.5, thick) - np.maximum(d - 0.5, 0), 0, 1) + np.clip(d + 0.5 - spacing, 0, 1)


def test_digit_on_turned_ruled_paper(tmp_path, digits):
    # A photo of a notebook page is rarely square to its lines: lines turned by a degree or more were ink to the
    # reader, which only lifted lines running along the picture's rows and columns.
    images, _ = digits
    for i, degrees in enumerate((1.5, -3.0, 4.5)):
        grey = digit_grey(images[i], (260, 220), (60, 40, 150))
        reference = mnist_picture.mnist_input(save(to_image(grey), tmp_path / ("plain%d.png" % i)))
        slope = np.tan(np.radians(degrees))
        ruled = turned_lines(grey.shape, slope, 31, 2, 5 * i)
        squared = np.maximum(ruled, turned_lines(grey.shape[::-1], -slope, 31, 2, 3 * i).T)
        for name, lines in (("ruled", ruled), ("squared", squared)):
            on_lines = grey * (1 - 0.5 * lines)  # lines at half the paper's brightness, under the ink
            field = mnist_picture.mnist_input(save(to_image(on_lines), tmp_path / ("%s%d.png" % (name, i))))
            assert aligned_difference(field, reference) < 0.06, (degrees, name)


def test_a_faint_slanted_stroke_is_not_taken_for_turned_ruling(monkeypatch):
    # A close-cropped 4 in pencil-grey ink (lighter than LINE_DARKEST), its stem a degree off vertical: along that
    # slope the stem's quarter-pixel lines dipped in six runs, taken for three printed lines or more and lifted
    # to the paper, which erased the lower stem. Ruling is three lines or more seen across at least half the
    # picture, and runs less than a pixel apart are one line.
    h, w, r = 84, 47, 2.5
    y, x = np.indices((h, w)).astype(float)

    def stroke(y0, x0, y1, x1):  # coverage of a segment r pixels thick, anti-aliased
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy), 0, 1)
        return np.clip(r + 0.5 - np.hypot(x - x0 - t * dx, y - y0 - t * dy), 0, 1)

    four = np.maximum.reduce([stroke(4, 14, 50, 5), stroke(50, 5, 50, 42), stroke(2, 33, 82, 34.5)])
    grey = 0.94 * (1 - four) + 0.51 * four + np.random.default_rng(0).normal(0, 0.01, (h, w))
    field = mnist_picture.mnist_array(to_image(grey))
    monkeypatch.setattr(mnist_picture, "_ruled_lines", lambda g: None)  # read as if nothing could be ruling
    assert aligned_difference(field, mnist_picture.mnist_array(to_image(grey))) < 0.01


def test_ruling_slope_is_measured_to_a_fraction_of_a_pixel():
    rng = np.random.default_rng(3)
    shape = (240, 300)
    blob = np.ones(shape, np.float32)
    blob[60:180, 100:130] = blob[60:80, 100:200] = 0.1  # a digit's strokes, dark ink
    for slope in (0.012, -0.035, 0.07, -0.085):
        lines = turned_lines(shape, slope, 23, 1.5, 4)
        g = blob * (1 - 0.35 * lines) + rng.normal(0, 0.01, shape).astype(np.float32)
        found = mnist_picture._ruling_slope(g.astype(np.float32))
        assert abs(found - slope) * shape[1] < 0.5, (slope, found)  # drift across the picture off by < 0.5 px
        lift = mnist_picture._ruled_lines(g.astype(np.float32))
        paper = g[lines == 0]
        lifted = (g * lift)[(lines > 0.5) & (blob == 1)]
        assert np.percentile(lifted, 5) > np.percentile(paper, 5) - 0.05, slope  # the lines brought to the paper
        assert np.all(lift[(blob < 1) & (lines == 0)] == 1)  # the ink off the lines untouched
    level = blob * (1 - 0.35 * turned_lines(shape, 0.0, 23, 1.5, 4))
    assert mnist_picture._ruling_slope(level) == 0.0  # level ruling: the rows themselves
    assert mnist_picture._ruled_lines(level).shape == (shape[0], 1)
    assert mnist_picture._ruling_slope(blob + rng.normal(0, 0.01, shape).astype(np.float32)) == 0.0  # no ruling


@pytest.mark.parametrize("kind", ["rgba-black-bg", "rgba-white-bg", "la", "palette-gif", "palette-png",
                                  "16-bit", "exif-rotated-jpeg", "cmyk-jpeg", "1-bit", "animated-gif", "rgb-tiff"])
def test_picture_modes(tmp_path, digits, kind):
    image = digits[0][1]
    grey = digit_grey(image, (180, 150), (30, 15, 120))
    reference = mnist_picture.mnist_input(save(to_image(grey), tmp_path / "reference.png"))
    cover = 1 - grey  # ink coverage
    if kind.startswith("rgba"):
        # a digit drawn on a transparent layer: colour only where alpha says there is ink
        rgba = np.zeros(grey.shape + (4,), np.uint8)
        rgba[..., :3] = 0 if kind == "rgba-black-bg" else 255
        rgba[cover > 0.5, :3] = 0
        rgba[..., 3] = (cover * 255).astype(np.uint8)
        path = save(Image.fromarray(rgba, "RGBA"), tmp_path / "t.png")
    elif kind == "la":
        path = save(Image.merge("LA", (to_image(grey * 0.2), to_image(cover))), tmp_path / "la.png")
    elif kind.startswith("palette"):
        img = to_image(grey).convert("RGB").quantize(colors=16)
        assert img.mode == "P"
        path = save(img, tmp_path / ("p.gif" if kind.endswith("gif") else "p.png"))
    elif kind == "16-bit":
        img = Image.fromarray((grey * 40000 + 20000).astype(np.uint16))  # paper near 60000, not 255
        path = save(img, tmp_path / "g16.png")
        assert Image.open(path).mode.startswith("I")
    elif kind == "exif-rotated-jpeg":
        # stored turned 90 degrees counter-clockwise, EXIF orientation 6: turn clockwise to view
        exif = Image.Exif()
        exif[0x0112] = 6
        path = save(to_image(grey).transpose(Image.Transpose.ROTATE_90), tmp_path / "r.jpg", quality=92,
                    exif=exif.tobytes())
        unrotated = mnist_picture.mnist_array(Image.open(path).copy())  # ignoring EXIF: a sideways digit
        assert aligned_difference(unrotated, reference) > 0.08
    elif kind == "cmyk-jpeg":
        path = save(to_image(grey).convert("CMYK"), tmp_path / "c.jpg", quality=92)
        assert Image.open(path).mode == "CMYK"
    elif kind == "1-bit":
        path = save(to_image(grey).point(lambda v: 255 if v > 128 else 0).convert("1"), tmp_path / "b.png")
    elif kind == "animated-gif":
        frames = [to_image(grey).convert("P"), Image.new("P", to_image(grey).size, 0)]
        path = save(frames[0], tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=100)
        assert Image.open(path).n_frames == 2
    else:
        path = save(to_image(grey).convert("RGB"), tmp_path / "t.tiff")
    field = mnist_picture.mnist_input(path)
    assert aligned_difference(field, reference) < 0.06, kind


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK"])
def test_uncompressed_tiff_stored_turned(tmp_path, digits, mode):
    """An uncompressed TIFF stored turned (orientation 6): Pillow, given the file's name, mapped it into memory
    at its upright size and garbled it (it turns TIFFs itself)."""
    grey = digit_grey(digits[0][1], (180, 150), (30, 15, 120))
    reference = mnist_picture.mnist_input(save(to_image(grey), tmp_path / "reference.png"))
    exif = Image.Exif()
    exif[0x0112] = 6  # turn 90 degrees clockwise to view: stored turned counter-clockwise
    path = save(to_image(grey).convert(mode).transpose(Image.Transpose.ROTATE_90), tmp_path / "t.tif", exif=exif)
    assert Image.open(path).info.get("compression", "raw") == "raw"
    assert aligned_difference(mnist_picture.mnist_input(path), reference) < 0.06


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_digit_drawn_at_low_opacity_on_a_transparent_layer(tmp_path, digits, mode):
    """A black digit drawn at 40% opacity: no pixel is more than half opaque, and it was called blank."""
    grey = digit_grey(digits[0][1], (180, 150), (30, 15, 120))
    reference = mnist_picture.mnist_input(save(to_image(grey), tmp_path / "reference.png"))
    alpha = to_image((1 - grey) * 0.4)
    path = save(Image.merge(mode, [Image.new("L", alpha.size, 0)] * (len(mode) - 1) + [alpha]), tmp_path / "t.png")
    assert aligned_difference(mnist_picture.mnist_input(path), reference) < 0.06


def test_digit_with_soft_edges_on_a_colour_made_transparent(tmp_path, digits):
    """A GIF's (or PNG's) transparent colour is the paper the digit was drawn on: a 7 and a 1 with MNIST's soft
    edges on white made transparent are mostly light grey, were laid on black and read as 8s (their edges)."""
    for i in (0, 2):
        grey = digit_grey(digits[0][i])
        reference = mnist_picture.mnist_input(save(to_image(grey), tmp_path / "reference.png"))
        white = to_image(grey)
        palette = white.convert("RGB").quantize(32)
        black = to_image(1 - grey)  # chalk with soft edges on black made transparent
        for picture, key, name in ((white, 255, "white.png"), (palette, palette.getpixel((0, 0)), "palette.gif"),
                                   (black, 0, "black.png")):
            path = save(picture, tmp_path / name, transparency=key)
            assert mnist_picture.open_picture(path).info["transparency"] == key
            assert aligned_difference(mnist_picture.mnist_input(path), reference) < 0.03, name
    # a transparent colour that is the ink's own (a black digit without soft edges, on transparent black) is no
    # paper: the digit is still laid on white
    strokes = digit_grey(digits[0][0]) < 0.5
    ink = Image.fromarray(strokes.astype(np.uint8), "P")
    ink.putpalette([0, 0, 0] * 2)
    reference = mnist_picture.mnist_input(save(to_image(1.0 - strokes), tmp_path / "r.png"))
    path = save(ink, tmp_path / "ink.gif", transparency=0)
    assert aligned_difference(mnist_picture.mnist_input(path), reference) < 0.03


def test_a_picture_pillow_cannot_seek_in(tmp_path, digits):
    """A SPIDER picture (a microscope format Pillow reads, 32-bit float) that is not a stack refuses seek(0):
    it was 'cannot decode the picture: attempt to seek in a non-stack file'."""
    grey = digit_grey(digits[0][1], (180, 150), (30, 15, 120))
    reference = mnist_picture.mnist_input(save(to_image(grey), tmp_path / "reference.png"))
    path = save(Image.fromarray(grey), tmp_path / "digit.spi", format="SPIDER")
    assert aligned_difference(mnist_picture.mnist_input(path), reference) < 0.06
    assert mnist_app.prepare(path, "seed").shape == (784,)


def test_blank_pictures_are_reported(tmp_path):
    rng = np.random.default_rng(2)
    pictures = {
        "white.png": Image.new("L", (120, 90), 255),
        "grey.jpg": Image.new("RGB", (300, 200), (120, 130, 110)),
        "noisy-grey.png": to_image(0.5 + rng.normal(0, 0.02, (150, 150))),
        "transparent.png": Image.new("RGBA", (64, 64), (0, 0, 0, 0)),
    }
    # Sheets that the second reading on a margin of paper (for digits cropped close) must not take for a
    # digit: an even light gradient, blotchy paper, heavy noise (each was read as a digit by a first version).
    blotches = np.asarray(Image.fromarray(rng.normal(0, 0.06, (30, 40)).astype(np.float32)).resize((400, 300),
                                                                                                    Image.BICUBIC))
    for ext in (".png", ".jpg"):
        pictures["gradient" + ext] = to_image(np.tile(np.linspace(0.3, 0.9, 400), (300, 1)))
        pictures["blotchy" + ext] = to_image(0.8 + blotches)
        pictures["noise" + ext] = to_image(0.7 + rng.normal(0, 0.1, (240, 320)))
        pictures["large-noise" + ext] = to_image(0.7 + rng.normal(0, 0.1, (600, 800)))
    # Strong lighting gradients, down and across: the paper's level, estimated on blocks, levelled off within
    # half a block of the edge and the opening flattened the edge blocks: the darkest band was read as ink.
    for lo, hi, (h, w) in ((0.2, 0.95, (480, 640)), (0.1, 0.95, (300, 300)), (0.05, 1.0, (640, 480))):
        noise = rng.normal(0, 0.01, (h, w))
        pictures["down-%g.png" % lo] = to_image(np.linspace(lo, hi, h)[:, None] + noise)
        pictures["across-%g.png" % lo] = to_image(np.linspace(lo, hi, w)[None, :] + noise)
    for name, img in pictures.items():
        path = save(img, tmp_path / name)
        with pytest.raises(PictureError, match="no ink"):
            mnist_picture.mnist_input(path)


def test_16_bit_pgm_is_read_on_its_own_scale(tmp_path, digits):
    # A scanner's 16-bit PGM (SANE's scanimage writes them), which Pillow opens as 32-bit "I" scaled to
    # 0..65535, has a fixed range as a 16-bit PNG has: not stretched from its darkest to its lightest pixel,
    # which made a faint smudge or dust on a blank sheet full-contrast ink (read as a digit).
    def pgm16(grey, name):
        path = tmp_path / name
        path.write_bytes(b"P5\n%d %d\n65535\n" % grey.shape[::-1]
                         + (np.clip(grey, 0, 1) * 65535 + 0.5).astype(">u2").tobytes())
        return str(path)
    rng = np.random.default_rng(3)
    rows, cols = np.indices((300, 400))
    smudge = 0.9 - 0.03 * np.exp(-((rows - 150) ** 2 + (cols - 200) ** 2) / 800.0) + rng.normal(0, 0.002, rows.shape)
    path = pgm16(smudge, "smudge.pgm")
    assert Image.open(path).mode == "I"
    for path in (path, save(to_image(smudge), tmp_path / "smudge.png")):
        with pytest.raises(PictureError, match="no ink"):
            mnist_picture.mnist_input(path)
    grey = digit_grey(digits[0][0], paper=0.85, ink=0.2)
    reference = mnist_picture.mnist_input(save(to_image(grey), tmp_path / "digit.png"))
    assert aligned_difference(mnist_picture.mnist_input(pgm16(grey, "digit.pgm")), reference) < 0.03


def test_float_picture_is_read_on_its_own_scale(tmp_path, digits):
    # A 32-bit float picture (a TIFF from scientific or HDR software) whose levels all lie in 0..1, or in 0..255,
    # is on that scale, as a 16-bit one is on 0..65535: not stretched from its darkest to its lightest pixel, which
    # made a faint smudge on a blank sheet full-contrast ink (read as a digit), and a grey sheet's noise too.
    def float_tiff(levels, name):
        path = save(Image.fromarray(levels.astype(np.float32), "F"), tmp_path / name)
        assert Image.open(path).mode == "F"
        return path
    rng = np.random.default_rng(4)
    rows, cols = np.indices((300, 400))
    smudge = 0.9 - 0.03 * np.exp(-((rows - 150) ** 2 + (cols - 200) ** 2) / 800.0) + rng.normal(0, 0.002, rows.shape)
    grey_sheet = 0.6 + rng.normal(0, 0.004, rows.shape)
    for name, sheet in (("smudge", smudge), ("grey", grey_sheet)):
        for scale in (1, 255):
            with pytest.raises(PictureError, match="no ink"):
                mnist_picture.mnist_input(float_tiff(sheet * scale, "%s%d.tif" % (name, scale)))
    grey = digit_grey(digits[0][0], paper=0.85, ink=0.2)
    reference = mnist_picture.mnist_input(save(to_image(grey), tmp_path / "digit.png"))
    # on 0..1, on 0..255, and on no fixed scale (stretched, as before)
    for scale, offset in ((1, 0), (255, 0), (2.0, -1.0), (1000, 0)):
        field = mnist_picture.mnist_input(float_tiff(grey * scale + offset, "digit%g%+g.tif" % (scale, offset)))
        assert aligned_difference(field, reference) < 0.03, (scale, offset)


def test_paper_grid_is_extended_along_a_gradient_not_past_a_bump():
    ramp = np.array([[0.2, 0.3, 0.4, 0.5]] * 3, np.float32)  # a gradient across, level down
    extended = mnist_picture._extended(ramp)
    np.testing.assert_allclose(extended[1], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], atol=1e-6)
    np.testing.assert_allclose(extended[0], extended[1], atol=1e-6)  # level down: repeated
    curved = np.array([[0.9, 0.5, 0.3, 0.2]], np.float32)  # outwards +0.2, +0.4 and -0.2, -0.1: the smaller step
    np.testing.assert_allclose(mnist_picture._extended(curved)[1, [0, -1]], [1.1, 0.1], atol=1e-6)
    bump = np.array([[0.9, 0.2, 0.2, 0.2, 0.5]], np.float32)  # a stroke at one edge, a turn at the other
    np.testing.assert_allclose(mnist_picture._extended(bump)[1, [0, -1]], [0.9, 0.5], atol=1e-6)
    opened = mnist_picture._grid_filter(mnist_picture._grid_filter(ramp, np.min), np.max)
    np.testing.assert_allclose(opened, ramp, atol=1e-6)  # the opening keeps a gradient to its edges


def test_bad_files_raise_one_line_errors(tmp_path, digits):
    good = save(to_image(digit_grey(digits[0][0])), tmp_path / "good.png")
    with open(good, "rb") as f:
        data = f.read()
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not a picture\n")
    (tmp_path / "truncated.png").write_bytes(data[:len(data) // 2])
    png_header_only(tmp_path / "bomb.png", 20000, 20000)   # 400 megapixels: over Pillow's own limit too
    png_header_only(tmp_path / "large.png", 8000, 6000)    # 48: under Pillow's limit, over ours
    (tmp_path / "folder.png").mkdir()
    os.symlink("loop.png", str(tmp_path / "loop.png"))
    os.mkfifo(tmp_path / "fifo.png")  # opening it would wait for a writer
    os.symlink("/dev/zero", str(tmp_path / "zero.png"))  # reading it would never end
    cases = {"empty.png": "empty file", "text.png": "not a picture", "truncated.png": "cannot decode",
             "bomb.png": "decompression bomb", "large.png": "decompression bomb", "folder.png": "is a folder",
             "missing.png": "no such file", "loop.png": "too many levels of symbolic links",
             "good.png/x.png": "not a directory", "fifo.png": "not a regular file", "zero.png": "not a regular file",
             "nul\0.png": "the path holds a NUL character"}
    for name, reason in cases.items():
        for preprocess in ("mnist", "seed"):
            with pytest.raises(PictureError, match=reason) as e:
                mnist_app.prepare(str(tmp_path / name), preprocess)
            assert "\n" not in str(e.value)
    assert "48 megapixels" in str(pytest.raises(PictureError, mnist_picture.open_picture,
                                                str(tmp_path / "large.png")).value)


def test_damaged_compressed_tiff_is_one_line_without_libtiffs_own_messages(tmp_path, digits):
    # libtiff, which decodes compressed TIFFs for Pillow, wrote its own errors on stderr ("LZWDecode: Not enough
    # data at scanline 0 ...", "JPEGLib: Quantization table 0x00 was not defined."), beside the error line, which
    # said only "decoder error -2".
    grey = to_image(digit_grey(digits[0][0]))
    paths = []
    for compression in ("tiff_lzw", "tiff_adobe_deflate", "packbits", "jpeg"):
        path = save(grey, tmp_path / ("%s.tif" % compression), compression=compression)
        with Image.open(path) as img:
            start, length = img.tag_v2[273][0], img.tag_v2[279][0]  # the first strip's offset and byte count
        data = bytearray(open(path, "rb").read())
        data[start:start + length] = bytes(range(256)) * (length // 256) + bytes(length % 256)
        open(path, "wb").write(data)
        paths.append(path)
    code = ("import sys, mnist_picture\n"
            "for path in sys.argv[1:]:\n"
            "    try:\n"
            "        mnist_picture.mnist_input(path)\n"
            "    except mnist_picture.PictureError as e:\n"
            "        print(e)\n")
    proc = subprocess.run([sys.executable, "-c", code, *paths], cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.splitlines() == ["cannot decode the picture: its data is damaged (Pillow's decoder error -2)"
                                        ] * len(paths)


@pytest.mark.filterwarnings("ignore::UserWarning")  # (Pillow's, of a TIFF cut short: the app sets it so itself)
def test_pictures_cut_short_or_of_depths_pillow_cannot_read_are_not_called_no_pictures(tmp_path, digits):
    # A TIFF, a PNG, a GIF cut short (a download or a copy that stopped), so that Pillow cannot even open it, a
    # 12-bit JPEG and a 16-bit Photoshop picture were all "not a picture (Pillow cannot identify it)": the user
    # was told the file is not a picture at all; a WebP or a JPEG so cut short was "could not create decoder
    # object", "Truncated File Read".
    grey = to_image(digit_grey(digits[0][0]))
    cut = {}
    for name, options in (("a.tif", {"compression": "tiff_lzw"}), ("b.png", {}), ("c.gif", {}), ("d.jpg", {}),
                          ("e.webp", {})):
        data = open(save(grey, tmp_path / name, **options), "rb").read()
        cut[name] = data[:len(data) // 2] if name == "a.tif" else data[:40] if name == "b.png" else data[:60]
        # (a TIFF's IFD is at its end; a PNG cut inside its header is found truncated as it is opened, and said so)
    for name, data in cut.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(PictureError) as e:
            mnist_picture.open_picture(str(tmp_path / name))
        kind = {"a.tif": "TIFF", "b.png": "PNG", "c.gif": "GIF", "d.jpg": "JPEG", "e.webp": "WebP"}[name]
        assert str(e.value) == ("cannot decode the picture: it begins as a %s picture, but Pillow cannot open it "
                                "(cut short or damaged)" % kind), name
    jpeg = bytearray(open(save(grey, tmp_path / "f.jpg"), "rb").read())
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 1], jpeg[sof + 4] = 0xC1, 12  # extended sequential, 12 bits a sample (a medical or a raw export)
    (tmp_path / "twelve.jpg").write_bytes(jpeg)
    h, w = grey.height, grey.width
    (tmp_path / "deep.psd").write_bytes(b"8BPS" + struct.pack(">H6xHIIHH", 1, 1, h, w, 16, 1) + bytes(4 * 3 + 2)
                                        + (np.asarray(grey).astype(">u2") * 257).tobytes())
    (tmp_path / "grey.psd").write_bytes(b"8BPS" + struct.pack(">H6xHIIHH", 1, 1, h, w, 8, 1) + bytes(4 * 3 + 2)
                                        + np.asarray(grey).tobytes())  # as a check: 8 bits, which Pillow reads
    assert mnist_picture.open_picture(str(tmp_path / "grey.psd")).size == grey.size
    for name, message in (("twelve.jpg", "a 12-bit JPEG picture, which Pillow cannot read (only 8-bit ones): "
                                         "save it as PNG or as an 8-bit JPEG"),
                          ("deep.psd", "a 16-bit Photoshop picture, which Pillow cannot read (only 8-bit ones): "
                                       "save it as PNG or with 8 bits a channel")):
        with pytest.raises(PictureError) as e:
            mnist_picture.open_picture(str(tmp_path / name))
        assert str(e.value) == message
    # a PNG whose text chunk (a comment, XMP) decompresses to more than Pillow's limit keeps Pillow's reason
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    png = open(save(grey, tmp_path / "g.png"), "rb").read()
    comment = chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"x" * 3_000_000))
    (tmp_path / "commented.png").write_bytes(png[:33] + comment + png[33:])  # (after the 33 bytes to IHDR's end)
    with pytest.raises(PictureError, match=r"^cannot decode the picture: Decompressed data too large"):
        mnist_picture.open_picture(str(tmp_path / "commented.png"))
    # a TIFF of pixels Pillow does not read (32-bit floats in colour: HDR software's) is not called damaged
    float_rgb = tmp_path / "hdr.tif"
    h, w = grey.height, grey.width
    entries = [(256, 3, w), (257, 3, h), (258, 3, 32), (259, 3, 1), (262, 3, 2), (273, 4, 8 + 2 + 12 * 10 + 4),
               (277, 3, 3), (278, 3, h), (279, 4, 12 * w * h), (339, 3, 3)]  # (339: floating point samples)
    float_rgb.write_bytes(b"II*\0" + struct.pack("<IH", 8, len(entries))
                          + b"".join(struct.pack("<HHI" + ("I" if kind == 4 else "HH"), tag, kind, 1, value,
                                                 *([] if kind == 4 else [0])) for tag, kind, value in entries)
                          + struct.pack("<I", 0) + np.repeat(np.asarray(grey, "<f4") / 255, 3).tobytes())
    with pytest.raises(PictureError) as e:
        mnist_picture.open_picture(str(float_rgb))
    assert str(e.value) == ("a TIFF picture whose pixels, as its header gives them (bits and samples a pixel, "
                            "floating point or not), Pillow cannot read: save it as PNG or as an 8- or 16-bit TIFF")
    (tmp_path / "text.png").write_text("not a picture\n")
    with pytest.raises(PictureError, match=r"^not a picture \(Pillow cannot identify it\)$"):
        mnist_picture.open_picture(str(tmp_path / "text.png"))
    (tmp_path / "notes.bmp").write_text("BMW service notes: oil changed at 60,000 km\n")  # (as a BMP begins)
    with pytest.raises(PictureError) as e:
        mnist_picture.open_picture(str(tmp_path / "notes.bmp"))
    assert "BMP" not in str(e.value)


def test_a_blank_first_frame_of_an_animation_or_page_of_a_tiff_is_said_so(tmp_path, digits):
    # Only the first frame of an animation (a GIF, an APNG, a WebP) or the first page of a TIFF is read; one whose
    # first frame is blank (an animation of the digit being written, a scan's blank cover page) was "the picture
    # looks blank", which the user, seeing the digit in a viewer, could not make sense of.
    digit = to_image(digit_grey(digits[0][0]))
    blank = Image.new("L", digit.size, 255)
    cases = {"written.gif": "frames", "written.png": "frames", "written.webp": "frames", "scan.tif": "pages"}
    for name, unit in cases.items():
        frames = [blank.convert("RGB"), digit.convert("RGB")] if name != "written.gif" else [blank, digit]
        path = save(frames[0], tmp_path / name, save_all=True, append_images=frames[1:], duration=100)
        for preprocess in ("mnist", "seed"):
            with pytest.raises(PictureError) as e:
                mnist_app.prepare(path, preprocess)
            assert str(e.value) == ("no ink found: the picture looks blank (the first of its 2 %s, the only one "
                                    "read)" % unit), (name, preprocess)
    # one frame: as before
    with pytest.raises(PictureError, match=r"^no ink found: the picture looks blank$"):
        mnist_app.prepare(save(blank, tmp_path / "blank.gif"), "mnist")


def test_a_damaged_plain_text_pnm_picture_is_said_so_in_words(tmp_path):
    # A plain (text) PGM or PBM with a stray character among its numbers was "b'Invalid token for this mode: x'"
    # (a bytes object's repr) or "invalid literal for int() with base 10: b'2x5'" (Python's own words).
    (tmp_path / "a.pgm").write_text("P2\n4 2\n255\n255 255 2x5 255\n255 255 255 255\n")
    (tmp_path / "b.pbm").write_text("P1\n4 2\n0 0 1 0\n0 x 0 0\n")
    for name, reason in (("a.pgm", "a value that is not a whole number: '2x5'"),
                         ("b.pbm", "Invalid token for this mode: x")):
        with pytest.raises(PictureError) as e:
            mnist_picture.open_picture(str(tmp_path / name))
        assert str(e.value) == "cannot decode the picture: " + reason


def test_batch_takes_a_file_address_as_the_prompt_does(tmp_path, digits):
    # A picture's file:// address (a browser's, a file manager's Copy) given on the command line was "no such file",
    # where the prompt takes it.
    folder = tmp_path / "my digits"
    folder.mkdir()
    path = save(to_image(digit_grey(digits[0][0])), folder / "seven one.png")
    address = "file://" + str(folder).replace(" ", "%20")
    entries = mnist_app.picture_paths([address + "/seven%20one.png", address, "file://localhost" + path,
                                       address + "/missing.png"])
    assert entries == [(path, None), (path, None), (path, None), (address + "/missing.png", None)]
    # nor were a path ending in a carriage return (python mnist_app.py $(cat list.txt), a list of Windows lines) or
    # one in quotes that came with a paste (a path that does exist is taken as it is)
    assert mnist_app.picture_paths([path + "\r", "'%s'" % path]) == [(path, None), (path, None)]
    _, error = mnist_app.try_prepare(entries[-1], "mnist")
    assert error == "no such file"


def test_batch_takes_a_leading_tilde_the_shell_left_as_the_home_folder(tmp_path, digits, monkeypatch):
    # "~/Pictures/my digit.png" (quoted for its space: the shell leaves the ~) was "no such file", where the
    # prompt and --model-dir take ~ as the home folder; a file or folder named ~ in the working directory is still
    # what such a path names first.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home" / "Pictures").mkdir(parents=True)
    path = save(to_image(digit_grey(digits[0][0])), tmp_path / "home" / "Pictures" / "my digit.png")
    monkeypatch.chdir(tmp_path)
    assert mnist_app.picture_paths(["~/Pictures/my digit.png", "~/Pictures"]) == [(path, None), (path, None)]
    (tmp_path / "~").mkdir()
    own = save(to_image(digit_grey(digits[0][0])), tmp_path / "~" / "my digit.png")
    assert mnist_app.picture_paths(["~/my digit.png"]) == [("~/my digit.png", None)]
    assert os.path.samefile("~/my digit.png", own)


def test_a_picture_that_is_a_symbolic_link_to_nothing_is_named_so(tmp_path):
    # A picture that is a symbolic link whose target was moved or deleted (a folder of links into a data set)
    # was "no such file", though ls lists it.
    os.symlink("../moved/seven.png", str(tmp_path / "seven.png"))
    for preprocess in ("mnist", "seed"):
        with pytest.raises(PictureError) as e:
            mnist_app.prepare(str(tmp_path / "seven.png"), preprocess)
        assert str(e.value) == "a symbolic link to ../moved/seven.png, which leads nowhere"
    assert mnist_app.picture_paths([str(tmp_path)]) == [(str(tmp_path / "seven.png"), None)]
    with pytest.raises(PictureError, match="^no such file$"):
        mnist_picture.open_picture(str(tmp_path / "missing.png"))


def test_pictures_of_kinds_pillow_cannot_read_are_named_as_such(trained_model, tmp_path, capsys):
    # An iPhone's photo (HEIC) or a JPEG XL picture was "not a picture (Pillow cannot identify it)", and a folder
    # of iPhone photos "no pictures in this folder".
    def box(kind, data):
        return struct.pack(">I", 8 + len(data)) + kind + data
    (tmp_path / "IMG_0001.HEIC").write_bytes(box(b"ftyp", b"heic\0\0\0\0mif1heic") + box(b"meta", bytes(64)))
    (tmp_path / "photo.heif").write_bytes(box(b"ftyp", b"mif1\0\0\0\0mif1heix") + box(b"meta", bytes(64)))
    (tmp_path / "scan.jxl").write_bytes(b"\xff\x0a" + bytes(64))
    (tmp_path / "boxed.jxl").write_bytes(b"\0\0\0\x0cJXL \r\n\x87\n" + bytes(64))
    # a scanner's PDF, a drawing program's SVG (Pillow reads neither; given by name: not a folder's pictures)
    (tmp_path / "scan.pdf").write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n")
    (tmp_path / "drawing.svg").write_bytes(b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>\n<!-- Inkscape -->\n'
                                          b'<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"/>\n')
    # an AVIF (HEIF too) that is damaged, where Pillow reads AVIF, and a video, are not called so
    (tmp_path / "x.avif").write_bytes(box(b"ftyp", b"avif\0\0\0\0mif1miaf") + box(b"meta", bytes(64)))
    (tmp_path / "x.jpg").write_bytes(box(b"ftyp", b"isom\0\0\0\0isommp41") + bytes(64))
    paths = [str(tmp_path), str(tmp_path / "scan.pdf"), str(tmp_path / "drawing.svg")]
    assert mnist_app.main(paths + ["--model-dir", trained_model]) == 1
    out, err = capsys.readouterr()
    def unread(kinds):
        return ["%s: error: %s, a kind Pillow cannot read: save it as PNG or JPEG" % (tmp_path / name, kind)
                for name, kind in kinds.items()]
    expected = unread({"IMG_0001.HEIC": "a HEIC/HEIF picture", "boxed.jxl": "a JPEG XL picture",
                       "photo.heif": "a HEIC/HEIF picture", "scan.jxl": "a JPEG XL picture"})
    if mnist_picture._pillow_reads("an AVIF picture"):  # (Pillow 10 does not: see the next test)
        expected.append("%s: error: cannot decode the picture: it begins as an AVIF picture, but Pillow cannot open "
                        "it (cut short or damaged)" % (tmp_path / "x.avif"))
    else:
        expected.append("%s: error: an AVIF picture, a kind this Pillow cannot read (Pillow 11.3 can): save it as "
                        "PNG or JPEG" % (tmp_path / "x.avif"))
    expected.append("%s: error: not a picture (Pillow cannot identify it)" % (tmp_path / "x.jpg"))
    expected += unread({"scan.pdf": "a PDF document", "drawing.svg": "an SVG drawing"})
    assert (out, err.splitlines()) == ("", expected)


def test_kinds_a_newer_pillow_reads_are_named_where_this_one_cannot(tmp_path, monkeypatch):
    # Pillow 10.0 reads neither AVIF nor PFM (nor does a Pillow built without libavif read AVIF): each was
    # "not a picture (Pillow cannot identify it)", and so was a folder of them.
    avif = tmp_path / "a.avif"
    avif.write_bytes(struct.pack(">I", 24) + b"ftypavif\0\0\0\0mif1miaf" + bytes(64))
    pfm = tmp_path / "b.pfm"
    pfm.write_bytes(b"Pf\n2 2\n-1.0\n" + bytes(16))
    for reads in (True, False):
        monkeypatch.setattr(mnist_picture, "_pillow_reads", lambda kind: reads)
        kinds = [mnist_picture._unread_kind(str(path)) for path in (avif, pfm)]
        assert kinds == ([None, None] if reads else ["an AVIF picture", "a PFM picture"])
    # as the app tells it (this AVIF is damaged: no Pillow identifies it)
    with pytest.raises(PictureError) as e:
        mnist_picture.open_picture(str(avif))
    assert str(e.value) == "an AVIF picture, a kind this Pillow cannot read (Pillow 11.3 can): save it as PNG or JPEG"


def test_benchmark_set_is_read_correctly(trained_model, mnist, tmp_path):
    """The default preprocessing reads the benchmark's photo-like pictures far better than the seed's."""
    import app_bench
    rng = np.random.default_rng(5)
    pictures = app_bench.write_set(mnist.test.images[100:124], mnist.test.labels[100:124].argmax(1),
                                   str(tmp_path), rng)
    model = mnist_app.load_model(trained_model)
    seed_accuracy = app_bench.score(model, pictures, "seed")[0]
    mnist_accuracy = app_bench.score(model, pictures, "mnist")[0]
    assert mnist_accuracy >= 0.75 and mnist_accuracy > seed_accuracy + 0.4, (mnist_accuracy, seed_accuracy)


def test_a_one_pixel_pen_is_read_like_a_wider_one(tmp_path):
    # MS Paint's pencil draws lines 1 pixel wide, which the median filter the ink is looked for on erases: a 7 or
    # a 0 drawn with it on a canvas of up to 320 pixels was "no ink found". Now read as the same digit drawn with
    # a pen of 2 pixels (which the filter keeps).
    for size in (100, 300):
        s = size / 300
        fields = {}
        for width in (1, 2):
            seven = Image.new("L", (size, size), 255)
            draw = ImageDraw.Draw(seven)
            draw.line([(90 * s, 60 * s), (210 * s, 60 * s), (128 * s, 248 * s)], fill=0, width=width)
            draw.line([(112 * s, 150 * s), (188 * s, 150 * s)], fill=0, width=width)
            zero = Image.new("L", (size, size), 255)
            ImageDraw.Draw(zero).ellipse([105 * s, 52 * s, 195 * s, 248 * s], outline=0, width=width)
            for name, img in (("seven", seven), ("zero", zero)):
                fields[name, width] = mnist_picture.mnist_input(save(img, tmp_path / ("%s%d.png" % (name, width))))
        for name in ("seven", "zero"):
            assert aligned_difference(fields[name, 1], fields[name, 2]) < 0.04, (size, name)
    # Specks are not a pen's line: the look along lines keeps only those that touch, so a speckled sheet is blank.
    rng = np.random.default_rng(5)
    sheet = np.full((300, 300), 0.9, np.float32)
    specks = rng.random(sheet.shape) < 0.01
    sheet[specks] = rng.uniform(0, 0.5, specks.sum())
    with pytest.raises(PictureError, match="no ink found"):
        mnist_picture.mnist_input(save(to_image(sheet), tmp_path / "specks.png"))
    # ... nor dust of specks 2 or 3 pixels long, which the look along lines keeps: they are no chains
    for length in (2, 3):
        sheet = np.full((300, 300), 0.9, np.float32)
        for y, x, across in zip(rng.integers(0, 296, 100), rng.integers(0, 296, 100), rng.random(100) < 0.5):
            if across:
                sheet[y, x:x + length] = 0.3
            else:
                sheet[y:y + length, x] = 0.3
        with pytest.raises(PictureError, match="no ink found"):
            mnist_picture.mnist_input(save(to_image(sheet), tmp_path / ("dust%d.png" % length)))


def test_a_fine_pen_on_a_large_canvas_is_read_whole(tmp_path):
    # A 0 or a 7 400 pixels tall, drawn with a pen of 1 to 3 pixels on a screen-sized canvas: its strokes are
    # about a pixel wide once reduced, and the median filter erased those along a row or a column (a 0's
    # sides, a 7's bar), so the digit's box was cut there: the 0's top half was read alone, the 7 as a 1.
    def drawn(shape, size, width):
        x, y, s = size[0] // 5, size[1] // 6, 400
        img = Image.new("L", size, 255)
        if shape == "0":
            ImageDraw.Draw(img).ellipse([x, y, x + s * 0.6, y + s], outline=0, width=width)
        else:
            ImageDraw.Draw(img).line([(x, y), (x + s * 0.6, y), (x + s * 0.25, y + s)], fill=0, width=width)
        return mnist_picture.mnist_input(save(img, tmp_path / ("%s%d.png" % (shape, width))))
    for shape, size, widths in (("0", (1920, 1080), (1, 2, 3)), ("0", (3840, 2160), (2,)), ("7", (3840, 2160), (2,))):
        wide = drawn(shape, size, 16)
        for width in widths:
            assert aligned_difference(drawn(shape, size, width), wide) < 0.04, (shape, size, width)


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


# ---------------------------------------------------------------------------------------------------------
# The model: restored once, restore_model(testPicArr)

def test_restore_model_restores_once(trained_model, digits, capsys, monkeypatch):
    images, labels = digits
    built = []

    class CountingModel(mnist_app.EmaModel):
        def __init__(self):
            built.append(1)
            super().__init__()
    monkeypatch.setattr(mnist_app, "EmaModel", CountingModel)
    monkeypatch.setattr(mnist_app, "_models", {})
    first = mnist_app.restore_model(images, trained_model)
    second = mnist_app.restore_model(images[:3], trained_model)
    assert len(built) == 1
    assert first.shape == (10,) and np.mean(first == labels) >= 0.8
    np.testing.assert_array_equal(second, first[:3])
    # no checkpoint: the course's message and -1
    empty = os.path.join(str(trained_model), "..", "no_model_here")
    assert mnist_app.restore_model(images, empty) == -1
    assert capsys.readouterr().out.strip() == "No checkpoint file found"


def test_restore_model_takes_a_newer_checkpoint(trained_model, digits, tmp_path, monkeypatch, capsys):
    # The course's restore_model restored the newest checkpoint at each call; restored once, it went on with the
    # first one for good: in a notebook that trained again, or at the prompt beside a trainer, the older model.
    import mnist_backward
    images, labels = digits
    model_dir = str(tmp_path / "m")
    shutil.copytree(trained_model, model_dir)
    monkeypatch.setattr(mnist_app, "_models", {})
    monkeypatch.setattr(mnist_app, "_newest_seen", {}, raising=False)
    mnist_app.restore_model(images, model_dir)
    assert mnist_app._models[model_dir].checkpoint == os.path.join(model_dir, "mnist_model-500")
    mnist_app.restore_model(images, model_dir)
    assert mnist_backward.backward(_mnist_of(images, labels), steps=502, batch_size=5, model_dir=model_dir,
                                   log_every=1) == 502
    capsys.readouterr()
    built = len(mnist_app._models)
    mnist_app.restore_model(images, model_dir)
    assert mnist_app._models[model_dir].checkpoint == os.path.join(model_dir, "mnist_model-502")
    assert len(mnist_app._models) == built  # the same model, restored again
    for name in os.listdir(model_dir):  # a newest one that cannot be read: the weights before stay, warned once
        if name.startswith("mnist_model-502.data"):
            open(os.path.join(model_dir, name), "r+b").truncate(10)
    os.utime(os.path.join(model_dir, "mnist_model-502.index"), ns=(1, 1))
    mnist_app.restore_model(images, model_dir)
    mnist_app.restore_model(images, model_dir)
    assert capsys.readouterr().err.count("warning: cannot read checkpoint %s-502" % os.path.join(model_dir,
                                                                                               "mnist_model")) == 1


def _mnist_of(images, labels):
    """A Datasets whose training set is images [N, 784] with integer labels [N] (one-hot for the trainer)."""
    import input_data
    one_hot = input_data.dense_to_one_hot(np.asarray(labels, np.int64))
    train = input_data.DataSet(np.asarray(images, np.float32), one_hot, seed=0)
    return input_data.Datasets(train=train, validation=None, test=None)


# ---------------------------------------------------------------------------------------------------------
# The prompt

@pytest.fixture(scope="module")
def pictures(tmp_path_factory, digits):
    """A folder of six pictures of the first six test digits (grey paper, different sizes and offsets):
    (folder, [paths], labels [6])."""
    images, labels = digits
    folder = tmp_path_factory.mktemp("pictures")
    paths = []
    for i in range(6):
        grey = digit_grey(images[i], (160 + 20 * i, 140), (10 + 5 * i, 10, 110), paper=0.95 - 0.05 * i, ink=0.1)
        paths.append(save(to_image(grey), folder / ("%d_digit.png" % i)))
    return str(folder), paths, labels[:6]


def test_prompt_flow(trained_model, pictures, tmp_path):
    folder, paths, labels = pictures
    (tmp_path / "notes.png").write_text("hello")
    answers = [" 5 ", paths[0], str(tmp_path / "missing.png"), str(tmp_path / "notes.png"), folder,
               "'%s'" % paths[1]]
    proc = run_script("mnist_app.py", "--model-dir", trained_model, input="\n".join(answers) + "\n")
    assert_no_traceback(proc)
    assert proc.returncode == 1, proc.stderr  # some pictures failed
    out = proc.stdout
    assert out.startswith("input the number of test pictures:")
    assert out.count("the path of test picture:") == 5
    predictions = re.findall(r"The prediction number is: (\d)\n", out)
    assert len(predictions) == 2
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 3
    assert errors[0] == "%s: error: no such file" % (tmp_path / "missing.png")
    assert errors[1].startswith("%s: error: not a picture" % (tmp_path / "notes.png"))
    assert errors[2] == "%s: error: is a folder, not a picture" % folder


def test_prompt_bad_count_and_end_of_input(trained_model, pictures, monkeypatch, capsys):
    # In-process, the prompt reading a StringIO as its stdin.
    folder, paths, labels = pictures

    def prompt(typed):
        monkeypatch.setattr(sys, "stdin", io.StringIO(typed))
        status = mnist_app.main(["--model-dir", trained_model])
        out, err = capsys.readouterr()
        return status, out, err

    # bad counts are asked again; end of input in the middle ends cleanly after the pictures read so far
    status, out, err = prompt("abc\n0\n-2\n2.5\n3\n%s\n" % paths[2])
    assert status == 0 and err == "", err
    assert out.count("Please enter a positive whole number") == 4
    assert out.count("input the number of test pictures:") == 5
    assert len(re.findall(r"The prediction number is: \d\n", out)) == 1
    # end of input after a picture that could not be read: the status still says so
    status, out, err = prompt("2\n%s\n" % (folder + "/missing.png"))
    assert status == 1 and err == "%s/missing.png: error: no such file\n" % folder
    # end of input at the first question
    status, out, err = prompt("")
    assert status == 0 and err == ""
    assert out.strip() == "input the number of test pictures:"
    # what was typed is shown quoted, a byte that is not UTF-8 as \xNN (it was '\udcff'); a NUL in a typed path as
    # \0, not as the raw byte
    status, out, err = prompt("\udcff\nit's\n1\nx\0y.png\n")
    assert "Please enter a positive whole number (got '\\xff')." in out
    assert "Please enter a positive whole number (got 'it\\'s')." in out
    assert status == 1 and err.startswith("\\x\\0y.png: error: ")
    # an empty path is named '' (as in batch mode)
    status, out, err = prompt("1\n\n")
    assert (status, err) == (1, "'': error: no such file\n")
    assert (mnist_app.main(["", "--model-dir", trained_model]), capsys.readouterr().err) == (1, err)
    # a line as long as MAX_LINE is an answer; a longer one (endless input: < /dev/zero) is not held in memory
    for end in ("", "\n"):
        status, out, err = prompt("7" * mnist_app.MAX_LINE + end)
        assert status == 0 and out.count("Please enter a positive whole number") == 1
    with pytest.raises(UserError, match=r"^standard input: a line of more than 65536 characters$"):
        prompt("0" * (mnist_app.MAX_LINE + 1))


def test_prompt_answers_from_a_file_that_starts_with_a_byte_order_mark(trained_model, pictures):
    # A file of answers saved by Windows' Notepad starts with one: the count was "\ufeff1", asked again.
    folder, paths, labels = pictures
    proc = run_script("mnist_app.py", "--model-dir", trained_model, input="\ufeff1\n%s\n" % paths[0])
    assert (proc.returncode, proc.stderr) == (0, "")
    assert re.fullmatch(r"input the number of test pictures:the path of test picture:The prediction number is: \d\n",
                        proc.stdout), proc.stdout


def test_prompt_answers_from_a_utf16_file_are_refused_in_one_line(trained_model, pictures):
    # PowerShell's > (and Notepad's "Unicode") writes UTF-16: every line was "Please enter a positive whole number
    # (got '\xff\xfe1\x00')", until the end of input, and the status 0.
    folder, paths, labels = pictures
    for encoding in ("utf-16-le", "utf-16-be"):  # (with the byte-order mark each begins with)
        answers = ("\ufeff1\r\n%s\r\n" % paths[0]).encode(encoding)
        proc = subprocess.run([sys.executable, os.path.join(ROOT, "mnist_app.py"), "--model-dir", trained_model],
                              cwd=ROOT, env=_env(), input=answers, capture_output=True, timeout=300)
        assert proc.returncode == 1 and b"Please enter" not in proc.stdout, (encoding, proc.stdout)
        assert proc.stderr.decode() == ("error: standard input is UTF-16 text (as PowerShell's > writes it): save the "
                                        "answers as UTF-8\n")


def test_prompt_takes_quoted_paths_and_names_with_quotes_or_spaces(trained_model, pictures, tmp_path, monkeypatch,
                                                                   capsys):
    folder, paths, labels = pictures
    names = ["'quoted'.png", "ends in a space.png ", "it's.png"]
    for name in names:
        shutil.copy(paths[2], tmp_path / name)
    typed = ["  '%s'  " % paths[2], '"%s"' % paths[2]] + [str(tmp_path / name) for name in names]
    monkeypatch.setattr(sys, "stdin", io.StringIO("%d\n%s\n" % (len(typed), "\n".join(typed))))
    status = mnist_app.main(["--model-dir", trained_model])
    out, err = capsys.readouterr()
    # Were "no such file" for the last three: every quote at either end was taken off, and the space.
    assert (status, err) == (0, "")
    predictions = re.findall(r"The prediction number is: (\d)\n", out)
    assert len(predictions) == len(typed) and len(set(predictions)) == 1  # one picture, under five names


def test_prompt_takes_paths_pasted_as_a_shell_or_a_file_manager_writes_them(trained_model, pictures, tmp_path,
                                                                           monkeypatch, capsys):
    # A file dragged into a terminal comes escaped (macOS Terminal: my\ digits/seven\ one.png) or shell-quoted
    # (GNOME Terminal: 'it'\''s.png'), or as a file:// address; ~ is typed for the home folder. All were
    # "no such file".
    folder, paths, labels = pictures
    (tmp_path / "my digits").mkdir()
    for name in ("my digits/seven one.png", "it's.png", "home.png"):
        shutil.copy(paths[2], tmp_path / name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    typed = ["my\\ digits/seven\\ one.png ", "'it'\\''s.png' ", "~/home.png", "file://%s" % (tmp_path / "my%20digits"
             / "seven%20one.png"), "'file://localhost%s'" % (tmp_path / "home.png"), "my\\ digits/none.png"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("%d\n%s\n" % (len(typed), "\n".join(typed))))
    status = mnist_app.main(["--model-dir", trained_model])
    out, err = capsys.readouterr()
    predictions = re.findall(r"The prediction number is: (\d)\n", out)
    assert len(predictions) == len(typed) - 1 and len(set(predictions)) == 1, err  # one picture, under five names
    # a path found no way is named as typed
    assert (status, err) == (1, "\\my\\\\ digits/none.png: error: no such file\n")


def test_prompt_ctrl_c_exits_130(trained_model):
    proc = popen([sys.executable, os.path.join(ROOT, "mnist_app.py"), "--model-dir", trained_model],
                 cwd=ROOT, env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, text=True)
    prompt = "input the number of test pictures:"
    assert proc.stdout.read(len(prompt)) == prompt  # waiting at the prompt
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130
    assert "Traceback" not in err and err.strip() == "Interrupted."


def _terminal_reader(fd):
    """until(text): reads what the terminal at fd shows until text, waiting for it (no sleep), and looks past it
    from then on; fails if the terminal closes first (an app that hangs is ended at popen()'s deadline)."""
    seen = [b""]

    def until(text):
        while text.encode() not in seen[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # (EIO: the app has ended)
                chunk = b""
            assert chunk, (text, seen[0])
            seen[0] += chunk
        seen[0] = seen[0].split(text.encode(), 1)[1]
    return until


@contextlib.contextmanager
def app_at_a_terminal(model_dir, cwd, stdout=None):
    """Runs mnist_app.py (the prompt) in cwd at a terminal of its own (TERM=xterm), its output there unless
    stdout (a file) is given; yields (the process, the terminal's fd, _terminal_reader of it); ends both after."""
    import pty
    main, child = pty.openpty()
    proc = popen([sys.executable, os.path.join(ROOT, "mnist_app.py"), "--model-dir", model_dir],
                 cwd=str(cwd), env=_env({"TERM": "xterm"}), stdin=child,
                 stdout=child if stdout is None else stdout, stderr=child, close_fds=True)
    os.close(child)
    try:
        yield proc, main, _terminal_reader(main)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main)


def test_prompt_at_a_terminal_edits_lines_and_completes_file_names(trained_model, pictures, tmp_path):
    # At a terminal the prompt is input()'s, which edits lines only once readline is loaded: the arrow keys
    # typed to mend a path came in as escape codes ("no such file"), and Tab as a tab.
    folder, paths, labels = pictures
    shutil.copy(paths[2], tmp_path / "unique-name.png")
    (tmp_path / "my digits").mkdir()
    shutil.copy(paths[3], tmp_path / "my digits" / "seven.png")
    with app_at_a_terminal(trained_model, tmp_path) as (proc, terminal, until):
        until("input the number of test pictures:")
        os.write(terminal, b"3\n")
        until("the path of test picture:")
        # a Z typed by mistake before the last letter: left arrow, then backspace
        os.write(terminal, paths[2][:-1].encode() + b"Z" + paths[2][-1:].encode() + b"\x1b[D\x7f\n")
        until("The prediction number is:")
        until("the path of test picture:")
        os.write(terminal, b"uniq\t\n")  # Tab completes the file name
        until("The prediction number is:")
        until("the path of test picture:")
        # also in a folder, whose name has a space: the whole line is one path (it completed only the text
        # after the last "/" or space, as a name in the current folder)
        os.write(terminal, b"my\tse\t\n")
        until("The prediction number is: %d" % labels[3])
        assert proc.wait() == 0  # (popen()'s deadline bounds it)


def test_prompt_at_a_terminal_whose_output_is_redirected_asks_on_the_terminal(trained_model, pictures, tmp_path):
    # `python mnist_app.py > predictions.txt`, typed at: the questions went into the file, out of sight, and the
    # predictions ran on after them ("input the number of test pictures:the path of test picture:The ...").
    folder, paths, labels = pictures
    with open(tmp_path / "predictions.txt", "w") as out, \
            app_at_a_terminal(trained_model, tmp_path, stdout=out) as (proc, terminal, until):
        until("input the number of test pictures:")
        os.write(terminal, b"none\n")
        until("Please enter a positive whole number (got 'none').")
        until("input the number of test pictures:")
        os.write(terminal, b"2\n")
        until("the path of test picture:")
        os.write(terminal, paths[0].encode() + b"\n")
        until("the path of test picture:")
        os.write(terminal, b"\x04")  # Ctrl+D: input ends
        assert proc.wait() == 0  # (popen()'s deadline bounds it)
    assert (tmp_path / "predictions.txt").read_text() == "The prediction number is: %d\n" % labels[0]


def test_prompt_in_a_notebook_asks_through_its_input(trained_model, pictures, monkeypatch, capsys):
    # A Jupyter kernel asks in the notebook through the input() it puts in, and leaves sys.stdin as it was (a
    # pipe no one writes to: read, it waited for ever; or at its end: the app ended at once, nothing asked). The
    # course's application() used input().
    import builtins
    folder, paths, labels = pictures
    answers, asked = ["1", paths[0]], []
    monkeypatch.setattr(builtins, "input", lambda prompt="": asked.append(prompt) or answers.pop(0))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert mnist_app.application(trained_model) == 0
    assert asked == ["input the number of test pictures:", "the path of test picture:"]
    assert capsys.readouterr().out == "The prediction number is: %d\n" % labels[0]


@pytest.mark.parametrize("batch", [True, False])
def test_a_ctrl_c_lost_while_the_model_was_built_still_stops_the_app(trained_model, pictures, lose_a_signal,
                                                                     monkeypatch, capsys, batch):
    # lost while EmaModel built its graph (TensorFlow's C++ code can drop it), it read every picture, or asked
    import builtins
    import signal
    from mnist_common import run_main
    folder, paths, labels = pictures
    monkeypatch.setattr(mnist_app, "_models", {})  # (built again, and the Ctrl+C lost then)
    answers = ["1", paths[0]]
    monkeypatch.setattr(builtins, "input", lambda prompt="": answers.pop(0))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    lose_a_signal(signal.SIGINT, "dropped")
    with pytest.raises(SystemExit) as e:
        run_main(lambda: mnist_app.main(["--model-dir", trained_model] + ([folder] if batch else [])))
    out, err = capsys.readouterr()
    assert (e.value.code, out, err) == (130, "", "Interrupted.\n")
    assert answers == ["1", paths[0]]  # nothing asked


# ---------------------------------------------------------------------------------------------------------
# Batch mode

def test_batch_mode(trained_model, pictures, tmp_path, digits):
    folder, paths, labels = pictures
    images, _ = digits
    bad = tmp_path / "bad"
    bad.mkdir()
    good = save(to_image(digit_grey(images[6], paper=0.9)), bad / "f_good.png")
    with open(good, "rb") as f:
        data = f.read()
    (bad / "a_empty.png").write_bytes(b"")
    (bad / "b_text.png").write_text("not a picture")
    (bad / "c_truncated.png").write_bytes(data[:len(data) // 2])
    png_header_only(bad / "d_bomb.png", 20000, 20000)
    save(Image.new("L", (100, 100), 230), bad / "e_blank.png")
    (bad / "readme.txt").write_text("skipped: not a picture extension")
    (bad / ".hidden.png").write_text("skipped: hidden")
    (bad / "sub.png").mkdir()  # a folder inside is not read
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_script("mnist_app.py", paths[3], folder, str(bad), str(empty), "--model-dir", trained_model)
    assert_no_traceback(proc)
    assert proc.returncode == 1
    lines = proc.stdout.strip().splitlines()
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert [m.group(1) for m in parsed] == [paths[3]] + paths + [good]  # in order, folders by name
    digits_read = [int(m.group(2)) for m in parsed]
    assert sum(d == l for d, l in zip(digits_read[1:7], labels)) >= 5
    assert digits_read[0] == digits_read[4]  # the same picture twice
    assert all(0.1 <= float(m.group(3)) <= 1.0 for m in parsed)
    errors = proc.stderr.strip().splitlines()
    expected = {"a_empty.png": "empty file (0 bytes)", "b_text.png": "not a picture",
                "c_truncated.png": "cannot decode", "d_bomb.png": "decompression bomb", "e_blank.png": "no ink"}
    assert len(errors) == len(expected) + 1, errors
    for error, (name, reason) in zip(errors, sorted(expected.items())):
        assert error.startswith("%s: error: " % (bad / name)) and reason in error, error
    assert errors[-1] == "%s: error: no pictures in this folder" % empty


def test_a_folder_of_pictures_in_any_kind_pillow_reads(trained_model, tmp_path, digits, capsys):
    # JPEG 2000, APNG, MPO (many cameras' JPEGs), icons, DDS, SGI, ... were read when named but skipped in a
    # folder ("no pictures in this folder" when it held only those).
    images, _ = digits
    picture = to_image(digit_grey(images[0]))
    kinds = {"a.jp2": {}, "b.j2k": {}, "c.apng": {"format": "PNG"}, "d.mpo": {"format": "MPO"}, "e.icns": {},
             "f.dds": {}, "g.sgi": {}, "h.rgb": {"format": "SGI"}, "i.xbm": {}}
    for name, options in kinds.items():
        save(picture.convert("1" if name.endswith(".xbm") else "RGB"), tmp_path / name, **options)
    assert mnist_app.main([str(tmp_path), "--model-dir", trained_model]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = [LINE.match(line) for line in out.splitlines()]
    assert [m.group(1) for m in lines] == [str(tmp_path / name) for name in sorted(kinds)]
    assert {m.group(2) for m in lines} == {str(mnist_app.restore_model(mnist_app.prepare(str(tmp_path / "a.jp2"))
                                                                       .reshape(1, 784), trained_model)[0])}
    # every name taken is one Pillow opens (MPO is opened as a JPEG's kind), or a kind named as one it cannot read
    Image.init()
    opened = {ext for ext, kind in Image.registered_extensions().items() if kind in Image.OPEN}
    opened |= {".mpo", ".heic", ".heif", ".hif", ".jxl"}
    opened |= {".avif", ".avifs", ".pfm"}  # named too where this Pillow cannot read them (Pillow 10)
    assert set(mnist_app.PICTURE_EXTENSIONS) <= opened


def _with_broken_exif(path):
    """Rewrites the JPEG at path with an EXIF block whose 'Make' tag points past the block's end."""
    exif = Image.Exif()
    exif[271] = "A" * 100  # Make: long enough to be stored at an offset
    data = bytearray(exif.tobytes())
    order = ">" if data[6:8] == b"MM" else "<"
    entry = data.find(struct.pack(order + "HH", 271, 2))  # tag 271, type ASCII
    struct.pack_into(order + "I", data, entry + 8, 0xFFFF)  # its data offset, now beyond the block
    Image.open(path).save(path, exif=bytes(data))


def test_batch_reads_damaged_metadata_and_non_finite_pixels_quietly(trained_model, tmp_path, digits):
    images, _ = digits
    grey = digit_grey(images[7])
    clean = save(to_image(grey), tmp_path / "a_clean.png")
    jpeg = save(to_image(grey), tmp_path / "b_exif.jpg", quality=95)
    _with_broken_exif(jpeg)
    with pytest.warns(UserWarning):  # Pillow's own complaint, which the app keeps off the user's screen
        ImageOps.exif_transpose(Image.open(jpeg))
    field = grey.copy()
    field[0, 0], field[0, 1], field[-1, -1] = np.inf, np.nan, -np.inf
    tiff = save(Image.fromarray(field, "F"), tmp_path / "c_float.tiff")
    # values from -3e38 to 3e38: their range overflows float32 (it was an overflow warning and "blank")
    wide = (grey.astype(np.float64) * 6e38 - 3e38).astype(np.float32)
    wide = save(Image.fromarray(wide, "F"), tmp_path / "d_wide.tiff")
    proc = run_script("mnist_app.py", str(tmp_path), "--model-dir", trained_model)
    assert_no_traceback(proc)
    assert proc.returncode == 0 and proc.stderr == ""
    parsed = [LINE.match(line) for line in proc.stdout.strip().splitlines()]
    assert [m.group(1) for m in parsed] == [clean, jpeg, tiff, wide]
    assert len({m.group(2) for m in parsed}) == 1  # the same digit read from all four


def test_batch_seed_preprocessing_matches_numpy(trained_model, tmp_path, digits):
    """--preprocess seed on clean, frame-filling pictures; digits and probabilities against NumPy on the
    checkpoint's shadow weights and the course's arithmetic done here."""
    images, _ = digits
    paths = [save(to_image(digit_grey(images[i], (140, 140), (0, 0, 140))), tmp_path / ("%d.png" % i))
             for i in range(4)]
    proc = run_script("mnist_app.py", *paths, "--preprocess", "seed", "--model-dir", trained_model)
    assert_no_traceback(proc)
    assert proc.returncode == 0 and proc.stderr == ""
    reader = tf.train.load_checkpoint(list_checkpoints(trained_model)[0])
    w1, b1, w2, b2 = (reader.get_tensor(n + "/ExponentialMovingAverage")
                      for n in ("Variable", "Variable_1", "Variable_2", "Variable_3"))
    for line, path in zip(proc.stdout.strip().splitlines(), paths):
        grey = np.asarray(Image.open(path).resize((28, 28), Image.LANCZOS).convert("L")).astype(int)
        x = np.where(255 - grey < 50, 0.0, 1.0).reshape(1, 784).astype(np.float32)
        logits = np.maximum(x @ w1 + b1, 0) @ w2 + b2
        p = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        m = LINE.match(line)
        assert m.group(1) == path and int(m.group(2)) == p.argmax()
        assert abs(float(m.group(3)) - p.max()) <= 0.0015


def test_paths_outside_ascii_on_an_ascii_stream(trained_model, pictures, tmp_path):
    # PYTHONIOENCODING=ascii: a picture named outside ASCII was a traceback (UnicodeEncodeError) where its line
    # should be; it is written as the bytes the file system names it with, like any other name.
    named = str(tmp_path / "\u00e9t\u00e9.png")
    shutil.copy(pictures[1][0], named)
    proc = run_script("mnist_app.py", "--model-dir", trained_model, named, str(tmp_path / "\u00e9.png"),
                      env={"PYTHONIOENCODING": "ascii"})
    assert_no_traceback(proc)
    assert proc.returncode == 1
    assert re.fullmatch(re.escape(named) + r"\t\d\t[01]\.\d{3}\n", proc.stdout)
    assert proc.stderr.startswith(str(tmp_path / "\u00e9.png") + ": error: ")


def test_batch_without_checkpoint(tmp_path, pictures, capsys):
    assert mnist_app.main([pictures[1][0], "--model-dir", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert out.strip() == "No checkpoint file found"
    assert err == "note: no checkpoint in %s; train one first: python mnist_backward.py --model-dir %s\n" % (
        tmp_path, tmp_path)


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


# ---------------------------------------------------------------------------------------------------------
# The benchmark

def test_app_bench_smoke(trained_model, mnist_dir, tmp_path, capsys, monkeypatch):
    proc = run_script("bench/app_bench.py", "--count", 24, "--speed-count", 20, "--sklearn-count", 10,
                      "--framing-count", 15, "--model-dir", trained_model, "--data-dir", mnist_dir)
    assert_no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    m = re.search(r"^\s+all\s+24\s+([0-9.]+)\s+([0-9.]+)$", out, re.M)
    assert m, out
    assert 0 <= float(m.group(1)) < float(m.group(2)) <= 1
    assert re.search(r"the model's ceiling", out)
    framing = re.findall(r"^  (close crop, dark ink|close crop, light ink|40 px in 12 MP photo|ruled paper"
                         r"|squared paper|ruled, turned|squared, turned|dark frame|scan margin|sheet on a table"
                         r"|hard shadow)"
                         r" +(\d+) +([0-9.]+) +([0-9.]+)$", out, re.M)
    assert [(kind, int(n)) for kind, n, _, _ in framing] == [
        ("close crop, dark ink", 15), ("close crop, light ink", 15), ("40 px in 12 MP photo", 1),
        ("ruled paper", 5), ("squared paper", 5), ("ruled, turned", 5), ("squared, turned", 5),
        ("dark frame", 5), ("scan margin", 5), ("sheet on a table", 5), ("hard shadow", 5)]
    assert all(0 <= float(a) <= 1 and 0 <= float(b) <= 1 for _, _, a, b in framing)
    assert re.search(r"^scikit-learn 8x8 digits", out, re.M)  # figures, or "skipped" without scikit-learn
    # 10 pictures seldom hold all ten digits: a digit with none is "none", not nan and a NumPy warning
    assert not re.search(r"\bnan\b", out) and "Warning" not in proc.stderr, (out, proc.stderr)
    assert re.search(r"mnist_app.py FOLDER .* s .*ms a picture", out), out
    assert re.search(r"course's approach .* s .*ms a picture", out), out
    assert re.search(r"mnist_app.py is \d+\.\dx faster \(same predictions: 100%\)", out), out

    proc = run_script("bench/app_bench.py", "--model-dir", tmp_path, "--data-dir", mnist_dir)
    assert_no_traceback(proc)
    assert proc.returncode == 1
    assert proc.stdout.strip().startswith("No checkpoint file found in %s" % tmp_path)

    # A data directory that is a file: the loader's one line, no traceback (the script as run, in-process).
    import runpy
    (tmp_path / "file").write_text("")
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["app_bench.py", "--model-dir", trained_model, "--data-dir",
                                      str(tmp_path / "file")])
    with pytest.raises(SystemExit) as exit:
        runpy.run_path(os.path.join(ROOT, "bench", "app_bench.py"), run_name="__main__")
    assert exit.value.code == 1
    assert capsys.readouterr().err == "error: data directory %s is not a directory\n" % (tmp_path / "file")


def test_app_bench_scores_out_of_mnist_digits_with_a_digit_missing(tmp_path, monkeypatch, capsys):
    # The scikit-learn part (an optional extra, so not in CI's requirements) run in-process on a stand-in for
    # sklearn.datasets: three 8x8 bars labelled 1, 1 and 2, and a stand-in model that calls every picture a 1.
    # A digit with no picture is "none" (it was nan, with NumPy's "Mean of empty slice" warning).
    import types
    import app_bench
    bar = np.zeros((8, 8))
    bar[1:7, 3:5] = 16  # scikit-learn's digits are 0 to 16
    datasets = types.ModuleType("sklearn.datasets")
    datasets.load_digits = lambda: types.SimpleNamespace(data=np.stack([bar.ravel()] * 3), target=np.array([1, 1, 2]))
    monkeypatch.setitem(sys.modules, "sklearn", types.ModuleType("sklearn"))
    monkeypatch.setitem(sys.modules, "sklearn.datasets", datasets)
    one = np.eye(10, dtype=np.float32)[1]
    ones = types.SimpleNamespace(probabilities_of=lambda batch: np.tile(one, (len(batch), 1)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        app_bench.sklearn_report(ones, 0, count=10)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("scikit-learn 8x8 digits (writers outside MNIST), 3 photo-like pictures: ")
    assert lines[0].endswith("the same digits put straight into MNIST's format (no picture): %.3f" % (2 / 3))
    assert re.fullmatch(r"  mnist \(default\) by digit: 0: none, 1: (1\.00|0\.50|0\.00), 2: 0\.00, "
                        + ", ".join("%d: none" % d for d in range(3, 10)), lines[1]), lines[1]
    assert len(lines) == 2


def test_file_names_with_tab_newline_or_backslash_are_escaped(trained_model, tmp_path, digits, capsys):
    # One picture a line, whatever its name: tab, CR, newline and backslash are written \t \r \n \\ and the
    # line starts with a backslash (sha256sum's convention); other names are written as they are.
    images, _ = digits
    names = ["plain.png", "tab\there.png", "two\nlines.png", "back\\slash.png", "cr\r.png"]
    for name in names:
        to_image(digit_grey(images[0])).save(tmp_path / name, format="PNG")
    (tmp_path / "bad\tname.png").write_text("not a picture")
    assert mnist_app.main([str(tmp_path), "--model-dir", trained_model]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    folder = str(tmp_path)  # pytest's, without a backslash
    assert len(lines) == 5 and all(re.fullmatch(r"[^\t\r]+\t\d\t\d\.\d{3}", line) for line in lines), lines
    assert {line.split("\t")[0] for line in lines} == {folder + "/plain.png"} | {
        "\\" + folder + "/" + escaped for escaped in ("tab\\there.png", "two\\nlines.png", "back\\\\slash.png",
                                                    "cr\\r.png")}
    assert len({line.split("\t", 1)[1] for line in lines}) == 1  # the same picture, the same prediction
    assert err == "\\%s/bad\\tname.png: error: not a picture (Pillow cannot identify it)\n" % folder


def test_file_name_that_is_not_utf8_passes_through(trained_model, tmp_path, digits):
    images, _ = digits
    folder = os.fsencode(str(tmp_path))
    name = folder + b"/\xff\xfedigit.png"  # not UTF-8: Python holds it as surrogates
    to_image(digit_grey(images[0])).save(os.fsdecode(name), format="PNG")
    script = os.path.join(ROOT, "mnist_app.py")
    env = _env({"PYTHONIOENCODING": "utf-8"})  # strict UTF-8 streams, as in a UTF-8 locale
    batch = subprocess.run([sys.executable, script, "--model-dir", trained_model, folder], cwd=ROOT, env=env,
                           capture_output=True, timeout=600)
    assert batch.returncode == 0 and batch.stderr == b"", batch.stderr
    assert re.fullmatch(re.escape(name) + rb"\t\d\t\d\.\d{3}\n", batch.stdout)
    prompt = subprocess.run([sys.executable, script, "--model-dir", trained_model], cwd=ROOT, env=env,
                            input=b"1\n" + name + b"\n", capture_output=True, timeout=600)
    assert prompt.returncode == 0 and prompt.stderr == b"", prompt.stderr
    digit = re.search(rb"\t(\d)\t", batch.stdout).group(1)
    assert prompt.stdout.endswith(b"The prediction number is: " + digit + b"\n")


def test_closed_standard_streams_end_cleanly(trained_model, tmp_path):
    # `>&-` and `<&-`: Python gives None for such a stream (sys.stdout.flush() failed with a traceback) and
    # leaves the descriptor free for the next file opened; /dev/null is put in their place (mnist_common, so
    # for every script that loads TensorFlow).
    prompt = run_script_redirected("<&-", "mnist_app.py", "--model-dir", trained_model)  # no input at all: ends at once
    assert (prompt.returncode, prompt.stderr) == (0, "")
    assert prompt.stdout.startswith("input the number of test pictures:")
    picture = str(tmp_path / "missing.png")
    both = run_script_redirected(">&-", "mnist_app.py", "--model-dir", trained_model, input="1\n%s\n" % picture)
    assert (both.returncode, both.stderr) == (1, "%s: error: no such file\n" % picture)
