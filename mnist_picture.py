"""Turns a picture of one handwritten digit into a 28x28 MNIST-style input; used by mnist_app.py.

MNIST's digits were made from scanned handwriting like this: the digit was cut out to its bounding box,
scaled so its longer side is 20 pixels (aspect ratio kept, grey levels from anti-aliasing), and placed in a
28x28 field with its centre of mass at the centre; white ink (1.0) on black (0.0). ``mnist_input(path)``
does the same to an arbitrary picture, after first finding the ink in it:

  open safely -> EXIF orientation -> grey, transparency flattened -> reduce to WORK_SIZE -> cover a frame or
  a table around the sheet with paper -> lift the dark side of a hard-edged shadow across the sheet to the
  light side's level -> decide which side is ink (dark on light or light on dark) -> lift the printed lines
  of ruled or squared paper (level, or turned by up to 5 degrees) to the paper's level -> subtract the
  paper's own (possibly uneven) brightness -> soft contrast stretch between the noise floor and the stroke
  level -> crop to the ink (a small digit in a large picture: read again from the full-size picture; none
  found: a second look at FINE_SIZE; a digit cut out close to its ink: read again on a margin of paper) ->
  thicken hairline strokes to MNIST's width -> longer side to 20 pixels -> centre of mass to the centre of
  28x28.

Everything is NumPy/Pillow on whole arrays; a picture takes a few milliseconds. Unreadable pictures raise
``PictureError`` with a one-line reason.
"""
import os
import re
import stat
import warnings

import numpy as np
from PIL import Image, ImageOps

MAX_PIXELS = 40_000_000   # larger pictures are refused before decoding (decompression bombs)
WORK_SIZE = 320           # pictures are reduced so their longer side is at most this before analysis
FINE_SIZE = 1280          # ...and to this for a second look when no ink is found at WORK_SIZE
SIZE = 28                 # the MNIST field
BOX = 20                  # the digit's longer side in it
CENTRE = 14.0             # where MNIST puts the centre of mass (row, column index; measured: 14.0, 14.0)
BLOCKS = 12               # paper brightness is estimated on a grid of about this many blocks per side
MIN_CONTRAST = 0.1        # ink must differ from paper by this much (of full scale) or the picture is blank
MIN_INK_PIXELS = 12       # ...and cover at least this many working pixels
LOW_CUT = 0.15            # ink fainter than this fraction of the stroke level counts as paper
STROKE = 2.0              # thinner strokes are thickened to this width (MNIST's median), in field pixels
LINE_DARKEST = 0.45       # a printed line of ruled paper keeps at least this fraction of the paper's brightness
MAX_TILT = 0.09           # ...and may be turned by up to this slope (5 degrees) from the picture's rows or columns
SHADOW_DARKEST = 0.3      # a hard shadow's dark side keeps at least this fraction of the light side's brightness
SHADOW_FAINTEST = 0.85    # ...and at most this (fainter, its step is left to the paper's smooth level)

_HIGH_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")

# Pillow refuses pictures over twice Image.MAX_IMAGE_PIXELS at open but only warns between once and twice
# that; such pictures are over MAX_PIXELS anyway, so make the warning an error (set once here: changing
# warning filters per picture is not thread-safe).
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
# Pillow warns (UserWarning, over two lines of stderr) about damaged metadata it skips, e.g. "Truncated File
# Read" for a camera's broken EXIF block; the picture itself still reads, so these are not the user's concern.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")


def _quiet_libtiff():
    """Stops libtiff, which decodes compressed TIFFs for Pillow, writing its errors on stderr itself ("LZWDecode:
    Not enough data at scanline 0 ...", a line or more beside the picture's own error line): Pillow silences its
    warnings, not its errors, which reach us anyway as a decoder error. (Once, for the process, as the filters
    above; where libtiff's symbols cannot be reached from Pillow's module, as on Windows, nothing changes.)"""
    try:
        import ctypes
        from PIL import _imaging
        handler = ctypes.CDLL(_imaging.__file__).TIFFSetErrorHandler  # (found in its libtiff, which it loads)
    except (ImportError, OSError, AttributeError):
        return
    handler.restype, handler.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
    handler(None)


_quiet_libtiff()


class PictureError(Exception):
    """A picture that cannot be read or holds no digit; str() is a one-line reason."""


def open_picture(path, transpose=True, draft=None):
    """Opens a picture file safely and decodes it (first frame only).

    Args:
      path: the file.
      transpose: apply the EXIF orientation (the course's pre_pic did not).
      draft: a size in pixels: a JPEG more than twice as large is decoded at a reduced scale (1/2 to 1/8),
        still at least that large. None: full size.
    Returns:
      A loaded PIL.Image; if draft reduced it, its info["draft_scale"] is how many times (about 2 to 8).
    Raises:
      PictureError: missing, a folder, empty, not a picture, too many pixels, truncated or damaged.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        try:
            target = os.readlink(path)  # (a link whose target was moved or deleted: ls lists it)
        except (OSError, ValueError):
            raise PictureError("no such file") from None
        raise PictureError("a symbolic link to %s, which leads nowhere"
                           % (target if target.isprintable() else repr(target))) from None  # (one line)
    except PermissionError:  # a folder on the way that cannot be searched
        raise PictureError("permission denied")
    except OSError as e:  # a symlink loop, a file used as a folder in the path, ...
        raise PictureError((e.strerror or type(e).__name__).lower())
    except ValueError:  # typed or pasted at the prompt
        raise PictureError("the path holds a NUL character, which no file name can")
    if stat.S_ISDIR(info.st_mode):
        raise PictureError("is a folder, not a picture")
    if not stat.S_ISREG(info.st_mode):  # reading a named pipe or a device could wait, or run, for ever
        raise PictureError("not a regular file (a named pipe, a device or a socket)")
    opened = False  # (by Pillow, which read its header)
    try:
        if info.st_size == 0:
            raise PictureError("empty file (0 bytes)")
        # Opened from a file object, not by name: given a name, Pillow maps an uncompressed picture into memory
        # at its upright size, which garbles a TIFF stored turned (orientation 5 to 8; Pillow turns TIFFs itself).
        with open(path, "rb") as f, Image.open(f) as img:
            opened = True
            width, height = img.size  # from the header: nothing decoded yet
            if width * height > MAX_PIXELS:
                raise PictureError("%dx%d is %.0f megapixels, over the %d-megapixel limit; refused "
                                   "as a possible decompression bomb"
                                   % (width, height, width * height / 1e6, MAX_PIXELS // 1_000_000))
            if width == 0 or height == 0:
                raise PictureError("picture has no pixels (%dx%d)" % (width, height))
            # (an animation is opened at its first frame, which is the one read: no seek(0), which SPIDER, a
            # microscope format, refuses for a file of one picture)
            # (MPO is a JPEG with more pictures after the first, a depth map or a gain map: many phones' photos)
            reduced_by = 1
            if draft and img.format in ("JPEG", "MPO") and max(img.size) > 2 * draft:
                img.draft(img.mode, (draft, draft))  # DCT scaling: decodes 1/2 .. 1/8 size
                # (the size draft has set; not measured after load for every picture: Pillow 10 turns a TIFF
                # stored turned as it loads it, which changes its width)
                reduced_by = width / img.width
            img.load()
            # Pillow turns a TIFF itself as it loads it. Pillow 10 also keeps its orientation tag, so that
            # exif_transpose would turn it a second time; later versions drop the tag (no-op here either way).
            if transpose and img.format != "TIFF":
                ImageOps.exif_transpose(img, in_place=True)
            if reduced_by > 1:
                img.info["draft_scale"] = reduced_by  # full size / decoded size, for mnist_input
            return img  # loaded: usable after the file is closed
    except PictureError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # Pillow refuses at open beyond twice its own limit; its message holds the pixel count.
        pixels = re.search(r"(\d+) pixels", str(e))
        size = "%.0f megapixels" % (int(pixels.group(1)) / 1e6) if pixels else "too many pixels"
        raise PictureError("%s, over the %d-megapixel limit; refused as a possible decompression bomb"
                           % (size, MAX_PIXELS // 1_000_000))
    except Image.UnidentifiedImageError:
        kind = _unread_kind(path)
        if kind in _NEWER_KINDS:
            raise PictureError("%s, a kind this Pillow cannot read (Pillow 11.3 can): save it as PNG or JPEG" % kind)
        if kind:
            raise PictureError("%s, a kind Pillow cannot read: save it as PNG or JPEG" % kind)
        raise PictureError(_unopened(path) or "not a picture (Pillow cannot identify it)")
    except PermissionError:
        raise PictureError("permission denied")
    except Exception as e:  # truncated or damaged data: Pillow raises OSError, SyntaxError, ValueError, ...
        # Pillow's reason, from its header's reading, is terse ("Truncated File Read", "could not create decoder
        # object"), but for a ValueError: a limit it sets (a PNG's text chunk that decompresses to over 1 MB).
        unopened = None if opened or isinstance(e, ValueError) else _unopened(path)
        if unopened:
            raise PictureError(unopened)
        reason = e.args[0] if len(e.args) == 1 and isinstance(e.args[0], bytes) else str(e)  # (a plain PNM's)
        if isinstance(reason, bytes):
            reason = reason.decode("ascii", "backslashreplace")
        reason = reason.strip().splitlines()[0] if reason.strip() else type(e).__name__
        number = re.fullmatch(r"invalid literal for int\(\) with base 10: b?('.*'|\".*\")", reason)
        if number:  # (a plain PNM's number, or a header's, with a stray character: Python's own words)
            reason = "a value that is not a whole number: %s" % number.group(1)
        if re.fullmatch(r"decoder error -?\d+", reason):  # (a codec's failure, libtiff's: it says no more)
            reason = "its data is damaged (Pillow's %s)" % reason
        raise PictureError("cannot decode the picture: %s" % reason)


# Pictures Pillow cannot read, by how their files begin: HEIF (an iPhone's photos, .heic; its ftyp box names
# the brands), JPEG XL (a bare codestream, or in its own box format), PDF (a scanner's), SVG (a drawing program's).
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1")
# Kinds newer Pillow reads but an older one does not (Pillow 10.0 reads neither; 11.3 reads both), nor one built
# without libavif (AVIF): kind -> the extension Pillow registers once it can read them.
_NEWER_KINDS = {"an AVIF picture": ".avif", "a PFM picture": ".pfm"}


def _pillow_reads(kind):
    """Whether this Pillow reads the kind of picture named in _NEWER_KINDS."""
    return _NEWER_KINDS[kind] in Image.registered_extensions()


def _unread_kind(path):
    """The kind of picture Pillow cannot read that the file at path is ("a HEIC/HEIF picture", "a JPEG XL
    picture", "a PDF document", "an SVG drawing"; "an AVIF picture", "a PFM picture" if this Pillow cannot read
    them), or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(1024)
    except OSError:
        return None
    if head[4:8] == b"ftyp":
        brands = _brands(head)
        if brands & {b"avif", b"avis"}:  # (AVIF is HEIF too)
            return None if _pillow_reads("an AVIF picture") else "an AVIF picture"
        if brands & set(_HEIF_BRANDS):
            return "a HEIC/HEIF picture"
    if head.startswith((b"\xff\x0a", b"\0\0\0\x0cJXL \r\n\x87\n")):
        return "a JPEG XL picture"
    if head[:2] == b"Pf" and head[2:3].isspace():  # a grey Portable FloatMap (Pillow reads no colour "PF" ones)
        return None if _pillow_reads("a PFM picture") else "a PFM picture"
    if b"%PDF-" in head:  # (within its first 1024 bytes, PDF's rule)
        return "a PDF document"
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<") and re.search(rb"<svg[\s>/]", head):
        return "an SVG drawing"
    return None


def _brands(head):
    """The brands named in the ftyp box a file (HEIF, AVIF, MP4) begins with: major brand, minor version (taken
    for one: no brand is four zero bytes), compatible brands."""
    return {head[i:i + 4] for i in range(8, min(len(head), 64, int.from_bytes(head[:4], "big")), 4)}


# How the files of kinds of picture Pillow reads begin, and the kinds' names: a file that begins so, but that
# Pillow cannot open, is such a picture cut short or damaged, not "not a picture".
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "a", "PNG"), (b"\xff\xd8\xff", "a", "JPEG"), (b"GIF87a", "a", "GIF"),
               (b"GIF89a", "a", "GIF"), (b"II*\0", "a", "TIFF"), (b"MM\0*", "a", "TIFF"), (b"II+\0", "a", "TIFF"),
               (b"MM\0+", "a", "TIFF"), (b"8BPS", "a", "Photoshop"), (b"icns", "an", "ICNS"),
               (b"\0\0\0\x0cjP  \r\n\x87\n", "a", "JPEG 2000"), (b"\xff\x4f\xff\x51", "a", "JPEG 2000"),
               (b"qoif", "a", "QOI"), (b"\0\0\1\0", "an", "ICO"), (b"BM", "a", "BMP"), (b"RIFF", "a", "WebP"))

_BMP_HEADERS = (12, 16, 40, 52, 56, 64, 108, 124)  # the sizes of a BMP's second header: its versions


def _unopened(path):
    """Why Pillow cannot open a file that begins as a picture of a kind it reads: a depth it does not read (a
    12-bit JPEG, a 16-bit Photoshop picture), a TIFF's pixels it does not read (32-bit floats in colour), or the
    file cut short or damaged; None for any other file."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return None
    article, kind = next(((article, name) for start, article, name in _SIGNATURES if head.startswith(start)
                          and (start != b"RIFF" or head[8:12] == b"WEBP")), (None, None))
    if kind == "BMP" and len(head) >= 18 and int.from_bytes(head[14:18], "little") not in _BMP_HEADERS:
        kind = None  # (two letters: a text file may begin so)
    if head[4:8] == b"ftyp" and _brands(head) & {b"avif", b"avis"}:  # (where Pillow reads AVIF: see _unread_kind)
        article, kind = "an", "AVIF"
    depth = None
    if kind == "JPEG":
        depth = _jpeg_precision(head)
    elif kind == "Photoshop" and len(head) >= 24:
        depth = int.from_bytes(head[22:24], "big")  # bits a channel (1, 8, 16 or 32)
    if kind == "TIFF" and _tiff_refusal(path) == "unknown pixel mode":
        return ("a TIFF picture whose pixels, as its header gives them (bits and samples a pixel, floating point "
                "or not), Pillow cannot read: save it as PNG or as an 8- or 16-bit TIFF")
    if depth not in (None, 1, 8):
        return ("a %d-bit %s picture, which Pillow cannot read (only 8-bit ones): save it as PNG or %s"
                % (depth, kind, "as an 8-bit JPEG" if kind == "JPEG" else "with 8 bits a channel"))
    if kind:
        return ("cannot decode the picture: it begins as %s %s picture, but Pillow cannot open it (cut short or "
                "damaged)" % (article, kind))
    return None


def _tiff_refusal(path):
    """Pillow's reason for not opening the TIFF at path ("unknown pixel mode": samples of a size, a number or a
    format it does not read, as 32-bit floats in colour), if its first directory holds where its pixels are and
    they are all in the file; else None (cut short or damaged: a directory cut short reads as any pixels)."""
    from PIL import TiffImagePlugin
    try:
        with open(path, "rb") as f:
            ifd = TiffImagePlugin.ImageFileDirectory_v2(f.read(8))
            f.seek(ifd.next)
            ifd.load(f)
            size = f.seek(0, os.SEEK_END)
            ends = [offset + count for offset, count in zip(ifd.get(273) or ifd.get(324) or (),
                                                             ifd.get(279) or ifd.get(325) or ())]
            if not ends or max(ends) > size:
                return None
            f.seek(0)
            TiffImagePlugin.TiffImageFile(f).close()
    except Exception as e:
        return str(e)
    return None


def _jpeg_precision(data):
    """The bits a sample of the JPEG whose first bytes are data, from its frame header (SOFn); None if not there."""
    at = 2
    while at + 4 < len(data) and data[at] == 0xFF:
        marker, length = data[at + 1], int.from_bytes(data[at + 2:at + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # (DHT, JPG and DAC are not frames)
            return data[at + 4] if at + 4 < len(data) else None
        if marker == 0xFF:  # (fill bytes)
            at += 1
            continue
        at += 2 + length
    return None


def grey_levels(img, work_size=WORK_SIZE):
    """The picture as grey levels with transparency flattened onto blank paper, reduced to work_size.

    Args:
      img: a PIL.Image of any mode (L, RGB, RGBA, P, LA, 1, I;16, I, F, CMYK, YCbCr, HSV, ...).
    Returns:
      float32 [H, W] in [0, 1], 0 black, 1 white; max(H, W) <= work_size.
    """
    scale = min(1.0, work_size / max(img.size))
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    if img.mode in _HIGH_BIT_MODES:
        grey = np.asarray(img, dtype=np.float32)
        if img.mode.startswith("I;16"):
            grey = grey / 65535.0
        else:  # 32-bit integer or float
            finite = np.isfinite(grey)
            if not finite.all():  # a float picture with NaN or infinities: clamp them to the finite range
                lo, hi = (float(grey[finite].min()), float(grey[finite].max())) if finite.any() else (0.0, 0.0)
                grey = np.nan_to_num(grey, nan=lo, posinf=hi, neginf=lo)
            lo, hi = float(grey.min()), float(grey.max())
            # A float picture whose levels all lie in 0..1, or in 0..255 and reach 2 at least, is on that scale, as
            # 16-bit is on 0..65535 (stretched, a faint smudge on a blank sheet was full-contrast ink). Between 1 and
            # 2 it is not clear (a 0..1 picture resampled overshoots 1 a little), nor outside 0..255, nor for 32-bit
            # integers (a PGM's or a PNG's are 16-bit, above): what is there is stretched to [0, 1].
            if img.mode == "F" and lo >= 0 and (hi <= 1 or 2 <= hi <= 255):
                lo, hi = 0.0, (1.0 if hi <= 1 else 255.0)
            span = hi - lo  # (in float64: a range from -3e38 to 3e38 overflows float32)
            grey = ((grey.astype(np.float64) - lo) / max(span, 1e-12)).astype(np.float32)
        return np.asarray(_reduce(_image(grey), size), dtype=np.float32)
    if img.mode in ("LA", "PA", "RGBA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        # One colour made transparent (a GIF's, or a PNG's, transparent colour) is the paper the picture was drawn
        # on, as a rule: taken before reducing, which leaves no colour under transparent pixels.
        keyed = isinstance(img.info.get("transparency"), (int, tuple)) and img.mode not in ("LA", "PA", "RGBA")
        matte = _matte(rgba) if keyed else None
        img = _reduce(rgba, size)  # Pillow resizes RGBA with premultiplied alpha
        return _flatten(np.asarray(img.convert("L"), dtype=np.float32) / 255.0,
                        np.asarray(img.getchannel("A"), dtype=np.float32) / 255.0, matte)
    if img.mode == "LAB":  # Pillow cannot convert LAB; its first channel is the lightness
        img = img.getchannel(0)
    # (an L picture as it is: convert("L") would copy it; the float32 array is new, divided in place)
    grey = np.asarray(_reduce(img if img.mode == "L" else img.convert("L"), size), dtype=np.float32)
    grey /= 255.0
    return grey


def _reduce(img, size):
    """img resized to size (width, height) by area averaging, or img itself if it has that size."""
    return img if img.size == size else img.resize(size, Image.BOX)


def _matte(rgba):
    """The grey level of the transparent pixels of an RGBA picture whose transparency is one colour (a sample
    of about 100,000 pixels), or None if none is transparent."""
    step = max(1, int(np.sqrt(rgba.width * rgba.height / 100_000)))
    sample = np.asarray(rgba.resize((max(1, rgba.width // step), max(1, rgba.height // step)), Image.NEAREST))
    clear = sample[..., 3] == 0
    if not clear.any():
        return None
    return float(np.median(np.asarray(Image.fromarray(sample[..., :3][clear][None]).convert("L")))) / 255.0


def _flatten(grey, alpha, matte=None):
    """Lays a picture with an alpha channel on paper. grey, alpha: [H, W] in [0, 1]. Returns [H, W].

    If most of the picture is transparent, the transparent part is the background and the opaque part the
    ink (a digit drawn on a transparent layer): the paper is then whichever of white or black contrasts
    with that ink; or, for a picture whose transparent colour is given (matte: its grey level), that colour,
    if the ink lies all on one side of it and reaches far from it: the picture was drawn on it, and the soft
    edges of its strokes, opaque, blend into it (a black digit with soft edges on white made transparent is
    mostly light grey: on black, its edges would be read as the digit). Otherwise the opaque part holds its
    own paper (e.g. a photo with transparent corners): the transparent part is filled with that paper's
    median level. Opaque is at least half the picture's highest opacity: a digit drawn at half opacity or
    less is still seen.
    """
    visible = float(alpha.max())
    if visible == 0:
        return np.ones_like(grey)  # nothing visible: blank paper
    opaque = alpha >= 0.5 * visible
    ink_level = float(np.median(grey[opaque]))
    if opaque.mean() < 0.5:
        paper = 1.0 if ink_level < 0.5 else 0.0
        if matte is not None:
            off = grey[opaque] - matte
            side = np.sign(np.median(off))
            if np.percentile(np.abs(off), 95) >= 0.5 and np.mean(off * side < -0.05) < 0.05:
                paper = matte
    else:
        paper = ink_level
    return grey * alpha + paper * (1.0 - alpha)


def _image(a):
    """A Pillow "F" (float32) image of a 2-D array."""
    return Image.fromarray(np.ascontiguousarray(a, dtype=np.float32))


def _median3(a):
    """Separable 3x3 median of float32 [H, W] (median of 3 along rows, then along columns; edges kept).

    Removes single-pixel noise and JPEG speckle like a true 3x3 median, at a tenth of Pillow's cost.
    """
    def median_of_3(x, y, z, out):  # (into out, which none of x, y, z overlaps)
        low = np.minimum(x, y)
        high = np.maximum(x, y)
        np.maximum(low, np.minimum(high, z, out=high), out=out)
    rows = np.empty(a.shape, a.dtype)
    rows[:, [0, -1]] = a[:, [0, -1]]
    if a.shape[1] >= 3:
        median_of_3(a[:, :-2], a[:, 1:-1], a[:, 2:], rows[:, 1:-1])
    out = np.empty(a.shape, a.dtype)
    out[[0, -1]] = rows[[0, -1]]
    if a.shape[0] >= 3:
        median_of_3(rows[:-2], rows[1:-1], rows[2:], out[1:-1])
    return out


def _robust(a):
    """(median, robust standard deviation = 1.4826 x median absolute deviation) of float32 [H, W].

    Estimated on a regular grid of about 5,000 pixels: these are statistics of the paper, which covers
    most of the picture.
    """
    step = max(1, int(np.sqrt(a.size / 5000)))
    sample = a[::step, ::step]
    median = float(_median(sample))
    return median, 1.4826 * float(_median(np.abs(sample - median)))


def _median(a):
    """np.median(a) of all of a's values (floating point), the same number, of the same type: the middle value, or
    the mean of the middle two, from np.partition. np.median's own bookkeeping costs more than the partition of
    the few thousand values it is given here, many times a picture. NaN if a holds one, as from np.median."""
    part = a.flatten()
    n = part.size
    if n == 0:
        return np.median(a)
    half = n // 2
    part.partition((half - 1, half, n - 1) if n % 2 == 0 else (half, n - 1))  # (NaN sorts last)
    if np.isnan(part[-1]):
        return part[-1]
    # (as np.median's mean, a sum from 0: -0.0 comes out as 0.0; in a's type, with NumPy 1's promotion rules too)
    zero = part.dtype.type(0)
    return part[half] + zero if n % 2 else (zero + part[half - 1] + part[half]) / part.dtype.type(2)


def _percentile(a, q):
    """np.percentile(a, q) of all of a's values (floating point) for one q from 0 to 100, the same number, from
    np.partition (see _median): linear interpolation between the two values around rank (n - 1) q / 100 in
    sorted order, computed as np.percentile does, in a's precision, from the nearer of the two."""
    part = a.flatten()
    n = part.size
    if n == 0:
        return np.percentile(a, q)
    rank = (n - 1) * (q / 100)
    i = min(int(rank), n - 1)
    part.partition((i, min(i + 1, n - 1), n - 1))
    if np.isnan(part[-1]):
        return part[-1]
    if rank >= n - 1:  # (the last value, with itself, as np.percentile takes it: rank + 1 past index -1)
        low, high, t = part[-1], part[-1], rank + 1
    else:
        low, high, t = part[i], part[i + 1], rank - i
    step = high - low
    return high - step * (1 - t) if t >= 0.5 else low + step * t


def ink_levels(grey, smooth=None):
    """Finds the ink in a grey picture and returns it MNIST-style: ink bright, paper 0.

    Args:
      grey: float32 [H, W] in [0, 1] (0 black).
      smooth: _median3(grey), if the caller has it already.
    Returns:
      (ink, solid): ink float32 [H, W] in [0, 1], 0 on the paper, 1 in the body of the strokes, grey at
      their edges; solid bool [H, W], where the noise-filtered picture is surely ink (for ink_box).
    Raises:
      PictureError: no ink (a blank or nearly uniform picture).
    """
    # Decisions are taken on a median-filtered copy (single-pixel noise and JPEG speckle removed), but the
    # ink returned comes from the picture itself: at small sizes the median filter eats thin strokes.
    g = _median3(grey) if smooth is None else smooth
    # Low, middle and high levels of each block of a grid (_block_levels): on the paper's side they are
    # the paper's local brightness, mostly paper even where a stroke crosses the block.
    low_grid, mid_grid, high_grid = _block_levels(g, (20, 50, 80))

    # Ink or paper? The paper covers most of the picture, but its brightness may vary (a lighting gradient)
    # more than the ink differs from it; so take the residual from a plane fitted robustly to the blocks'
    # medians (_lighting_plane) and see which side has more brightness far from it. Summing the excess
    # beyond the paper's own spread (3 robust standard deviations) over each side works even when the ink
    # covers a fraction of a percent of the picture, where a percentile would only see paper noise.
    darker, lighter = _ink_excess(g, mid_grid)
    if darker >= lighter:
        # dark ink: invert to MNIST's convention, ink bright; the paper's level is then the blocks' high one
        lift = _ruled_lines(g)
        if lift is not None:  # ruled or squared paper: its lines lifted to the paper's level, not taken for ink
            grey, g = grey * lift, g * lift  # (not clipped: a margin of on_paper may lie above 1)
            high_grid = _block_levels(g, (80,))[0]
        grey, g, paper_grid = 1.0 - grey, 1.0 - g, 1.0 - high_grid
    else:
        paper_grid = low_grid
    # Subtract the paper's own level, which may be uneven in any way (shadows, tinted or creased paper):
    # remove blocks lying entirely inside a thick stroke by a 3x3 grey opening (minimum, then maximum) of
    # the grid, and interpolate it bilinearly into a smooth surface.
    paper_grid = _grid_filter(_grid_filter(paper_grid, np.min), np.max)
    paper = _surface(paper_grid, g.shape)
    ink, smooth = grey - paper, g - paper
    np.maximum(ink, 0, out=ink)  # (in place: no more copies of the picture than needed)
    np.maximum(smooth, 0, out=smooth)

    # Is there ink? (_stroke_level)
    try:
        stroke, cut = _stroke_level(smooth)
        solid = smooth > cut
        if stroke_width(np.where(solid, ink, 0)) < 1.5:
            # Strokes about a pixel wide (a fine pen, once the picture is reduced): the median filter erases
            # those along a row or a column, the sides of a 0 or the bar of a 7, and the digit's box was cut
            # there (the 0's top half read alone, the 7 read as a 1). The largest of the medians along rows,
            # columns and diagonals keeps them. (Only for such strokes: it keeps the faint printed lines of
            # ruled paper too, which the box of a digit in wider strokes would then take in.)
            solid |= _line_median(grey) - paper > cut
    except PictureError:
        # The median filter erases lines one pixel wide (a pencil of 1 pixel, MS Paint's): look again at the
        # largest of the medians along rows, columns and diagonals, which keeps such a line, along it, and
        # still removes a lone pixel. Only if it keeps most of what stands out in the picture itself, as it
        # does a pen's line (of specks and noise it keeps the few that happen to touch), and most of what it
        # keeps lies on chains longer than six pixels, as a line does (not dust of short specks, even touching).
        thin = np.maximum(_line_median(grey) - paper, 0)
        stroke, cut = _stroke_level(thin)
        solid = thin > cut
        chains = solid
        for _ in range(3):  # a pixel at the end of a chain has one neighbour or none: three pixels off each end
            chains = chains & (_neighbours(chains) >= 2)
        if solid.sum() < 0.5 * np.sum(ink > cut) or chains.sum() < 0.6 * solid.sum():
            raise

    # Map linearly from just above the paper's noise (0) to the stroke level (1): paper texture goes to
    # 0, stroke bodies saturate at 1 like MNIST's, and the anti-aliased edges keep their grey levels.
    floor, noise = _robust(ink)
    low = floor + max(3 * noise, LOW_CUT * (stroke - floor))
    ink -= low
    ink /= max(stroke - low, 1e-6)
    return np.clip(ink, 0.0, 1.0, out=ink), solid


def _ink_excess(g, mid_grid):
    """How much of median-filtered float32 [H, W] g lies below and above its paper's level beyond the paper's
    own spread (ink_levels): (darker, lighter), sums of levels. mid_grid: the medians of its blocks
    (_block_levels)."""
    d = g - _lighting_plane(mid_grid, g.shape)
    spread = 3 * _robust(d)[1] + 0.02
    below = np.negative(d)  # (-d - spread, then d - spread, clipped at 0: in place)
    below -= spread
    above = np.subtract(d, spread, out=d)
    return float(np.maximum(below, 0, out=below).sum()), float(np.maximum(above, 0, out=above).sum())


def _stroke_level(smooth):
    """Whether there is ink, and its level, in float32 [H, W] ink above the paper (0 on paper).

    Most pixels are paper, so the median and the median absolute deviation measure the paper that is left;
    candidate ink is well above that, and its stroke level (a high percentile of the candidates: the body of
    the strokes, not their edges) must stand out from the paper's noise.
    Returns:
      (stroke, cut): the strokes' level, and the level above which it is surely ink.
    Raises:
      PictureError: no ink.
    """
    floor, noise = _robust(smooth)
    candidates = smooth[smooth > floor + max(4 * noise, MIN_CONTRAST / 2)]
    if candidates.size < MIN_INK_PIXELS:
        raise PictureError("no ink found: the picture looks blank")
    stroke = float(_percentile(candidates, 90))
    if stroke - floor < max(MIN_CONTRAST, 6 * noise):
        raise PictureError("no ink found: the picture looks blank (only faint marks or noise)")
    return stroke, floor + max(4 * noise, 0.25 * (stroke - floor))


def _neighbours(mask):
    """How many of the 8 neighbours of each pixel of bool [H, W] are set: int [H, W]."""
    p = np.pad(mask, 1).astype(np.int8)
    h, w = mask.shape
    return sum(p[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1)) - mask


def _line_median(a):
    """The largest of float32 [H, W]'s medians of 3 along its rows, columns and both diagonals (edges kept):
    a bright line one pixel wide keeps its level in the median along it; a lone bright pixel is gone in all."""
    p = np.pad(a, 1, mode="edge")
    centre = p[1:-1, 1:-1]
    out = None
    for (y1, x1), (y2, x2) in (((1, 0), (1, 2)), ((0, 1), (2, 1)), ((0, 0), (2, 2)), ((0, 2), (2, 0))):
        x, z = p[y1:y1 + a.shape[0], x1:x1 + a.shape[1]], p[y2:y2 + a.shape[0], x2:x2 + a.shape[1]]
        median = np.maximum(np.minimum(x, centre), np.minimum(np.maximum(x, centre), z))
        out = median if out is None else np.maximum(out, median)
    return out


def _ruled_lines(g):
    """Factors lifting the printed lines of ruled or squared paper to the paper's level, or None.

    The lines may be turned by up to MAX_TILT from the picture's rows or columns (a photo taken a little
    askew): _ruling_slope finds their slope, and the paper's level is then taken along lines of that slope.
    Along each line (row, if the ruling is level) the paper's level is its 90th percentile, the brightness
    only a tenth of the line exceeds: a digit covers far less than nine tenths of a line unless it is cropped
    close, while a printed line covers all of it. A printed line is a run of lines where that level dips at
    least 0.05 below a grey closing of it (max, then min, over 2k + 1 lines, k = 2% of the picture's longer
    side), no darker anywhere than LINE_DARKEST of the paper (ink is), with paper again on both sides (the
    soft edge of a stroke or a bar has the darker mark on one side); at the first or last line, only if the
    level is not sloping there (_sloping: the dark end of a gradient dips too). Only two printed lines or
    more along the rows (columns) count as ruling, and three or more along a slope (lines a quarter of a pixel
    apart, _line_levels; none found there: the rows are tried). The dip is divided out: reflectances
    multiply, so a stroke crossing a line keeps its contrast.
    Args:
      g: float32 [H, W] in [0, 1], dark ink on light paper (median-filtered).
    Returns:
      float32 [H, 1], [1, W] (level ruling of rows or columns) or [H, W] (both, or turned), to multiply g by;
      None: no ruling.
    """
    lift = None
    k = max(2, round(0.02 * max(g.shape)))
    # (the paper's level of _ruling_slope, found once: every third pixel of g or of g.T, the same values)
    paper = float(_percentile(g[::3, ::3], 90)) if max(g.shape) <= WORK_SIZE else None
    for axis in (1, 0):  # rows, then columns
        a = g if axis == 1 else g.T  # its rows run along the lines
        slope = _ruling_slope(a, paper)
        factor = _line_factors(_line_levels(a, slope), 4 * k, 4) if slope else None
        if factor is None:  # level, or nothing found along the slope: the rows themselves
            slope, factor = 0, _line_factors(_line_levels(a, 0), k)
        if factor is None:
            continue
        if slope == 0:
            factor = factor[:, None] if axis == 1 else factor[None, :]
        else:  # back from the turned lines to the pixels on them
            factor = np.append(factor, np.float32(1))[np.minimum(_line_of(a.shape, slope), factor.size)]
            factor = factor if axis == 1 else factor.T
        lift = factor if lift is None else lift * factor
    return lift


def _ruling_slope(a, paper=None):
    """The slope (rows per column) within +-MAX_TILT of printed lines along the rows of a; 0 if none or level.

    Columns are averaged in bands of 16 (ink no darker than the darkest printed line) and the bands' profiles
    shifted against each other as lines of a slope would be, slopes two pixels of drift across the picture
    apart. Summed, they dip sharply at the lines where the shift matches them: the sum of the squared dips
    below a grey closing of the summed profile (narrow dips only, so a digit's bulk does not count) peaks
    there, and stays flat over the slopes where nothing is ruled (a peak under twice the median: no ruling).
    Before that search, a picture where most bands have no narrow dip of 0.01 at all is taken as unruled.
    The slope is then fitted to the lines' centres in each band, to a fraction of a pixel. A drift under
    half a pixel across the picture is no slope. A picture larger than WORK_SIZE (a second look at
    FINE_SIZE) is reduced to about that size first.
    Args:
      a: float32 [H, W], dark ink and lines on light paper.
      paper: the 90th percentile of a[::3, ::3], if the caller has it (a no larger than WORK_SIZE).
    Returns:
      float: the slope; lines run along y = c + slope * (x - W / 2).
    """
    h, w = a.shape
    width = w
    scale = -(-max(h, w) // WORK_SIZE)
    if scale > 1:  # a second look at FINE_SIZE: the slope is that of the picture at WORK_SIZE
        a = a[:h - h % scale, :w - w % scale].reshape(h // scale, scale, w // scale, scale).mean(axis=(1, 3))
        h, w = a.shape
    if w < 64 or h < 16:
        return 0.0
    if paper is None or scale > 1:
        paper = float(_percentile(a[::3, ::3], 90))
    a = np.maximum(a, np.float32(LINE_DARKEST * paper))
    k = max(2, round(0.02 * max(h, w)))
    step = 2.0 / w
    reach = int(MAX_TILT / step) + 1

    bands = w // 16
    profiles = a[:, :bands * 16].reshape(h, bands, 16).mean(axis=2, dtype=np.float32)  # [H, bands]
    middles = (np.arange(bands) + 0.5) * 16 - w / 2  # band centres from the picture's middle
    # Printed lines cross every band: where most bands have no narrow dip at all, nothing is ruled
    # (most pictures, at a tenth of the search's cost).
    dipped = (_closing(profiles.T, k) - profiles.T).max(axis=1)  # [bands]
    if _median(dipped) < 0.01:
        return 0.0
    edge = int(np.ceil(MAX_TILT * w / 2)) + 1
    padded = np.pad(profiles.T, ((0, 0), (edge, edge)), mode="edge")  # [bands, H + 2 edge]
    slopes = np.arange(-reach, reach + 1) * step
    shifts = np.rint(slopes[:, None] * middles).astype(np.intp) + edge  # [slopes, bands]
    # (each band's profile shifted for each slope: rows of its windows of H rows, gathered whole; the mean over the
    # bands in the same order as from a gather of every row index)
    windows = np.lib.stride_tricks.sliding_window_view(padded, h, axis=1)  # [bands, 2 edge + 1, H]
    summed = windows[np.arange(bands)[:, None], shifts.T].mean(axis=0)  # [slopes, H]
    dips = np.square(_closing(summed, k) - summed).sum(axis=1)  # [slopes]
    best = int(np.argmax(dips))
    if dips[best] < 2 * _median(dips):  # no straight lines across the picture
        return 0.0

    # Refine: each deepest dip of the best sum (within k rows) that stands out is a printed line; its centre in
    # each band (the centroid of its dip there, to a fraction of a pixel) moves along the bands by the slope,
    # fitted by least squares over all the lines (_fit_lines).
    slope, profile = float(slopes[best]), summed[best]
    dip = _closing(profile, k) - profile
    lines = np.flatnonzero((dip >= 0.02) & (dip == _sliding(dip, k, np.maximum)))
    centres = lines.astype(np.float64)
    for _ in range(2):  # the second time with windows centred by the first fit
        if centres.size == 0:
            return 0.0
        slope, centres, seen = _fit_lines(profiles, middles, centres, slope, LINE_DARKEST * paper)
    # Ruling is three printed lines or more, each seen across at least half the picture (a stroke of a
    # digit is one line, seen only where the digit is)
    if np.sum(seen >= 0.5) < 3:
        return 0.0
    return slope if abs(slope) * width >= 0.5 and abs(slope) <= MAX_TILT else 0.0


def _fit_lines(profiles, middles, centres, slope, ink):
    """Fits one slope to printed lines seen in bands of columns.

    Args:
      profiles: float32 [H, bands], each band's columns averaged along its rows.
      middles: float [bands], the bands' centres from the picture's middle column.
      centres: float [L], each line's row at the middle, roughly; slope: roughly.
      ink: a window this dark (or darker) holds ink, not just a line: that band is left out.
    Returns:
      (slope, centres, seen): least squares over the lines' centroids in 7-row windows about where they
      were expected (rows weighted by their dip below the window's brightest); lines seen in fewer than 3
      bands are dropped; seen: for each line kept, the fraction of the bands it crosses inside the
      picture that it was seen in.
    """
    h, bands = profiles.shape
    at = np.rint(centres[:, None] + slope * middles).astype(np.intp)  # [L, bands]
    rows = at[:, :, None] + np.arange(-3, 4)  # [L, bands, 7]
    ok = (rows[:, :, 0] >= 0) & (rows[:, :, -1] < h)
    rows = np.clip(rows, 0, h - 1)
    window = profiles[rows, np.arange(bands)[:, None]]
    weight = np.maximum(window.max(axis=2, keepdims=True) - window, 0)
    total = weight.sum(axis=2)
    inside = ok.sum(axis=1)
    ok &= (total > 0) & (window.min(axis=2) > ink + 1e-3)
    y = (weight * rows).sum(axis=2) / np.maximum(total, 1e-12)
    seen = ok.sum(axis=1) >= 3
    ok &= seen[:, None]
    if not seen.any():
        return slope, centres[seen], np.zeros(0)
    n = np.maximum(ok.sum(axis=1), 1)
    x_mean = (ok * middles).sum(axis=1) / n
    y_mean = (ok * y).sum(axis=1) / n
    dx, dy = (middles - x_mean[:, None]) * ok, (y - y_mean[:, None]) * ok
    slope = float(np.sum(dx * dy) / max(np.sum(dx * dx), 1e-9))
    return slope, (y_mean - slope * x_mean)[seen], (ok.sum(axis=1) / np.maximum(inside, 1))[seen]


def _line_levels(a, slope):
    """The paper's level along lines of a slope through a: the 90th percentile of every other pixel.

    Args:
      a: float32 [H, W].
      slope: from _ruling_slope; 0: the rows.
    Returns:
      level float32 [L] along the rows, or for a slope, along lines a quarter of a pixel apart: level[j] is
      that of the pixels (y, x) nearest to line j, which runs along y - slope * (x - W / 2) = (j - reach) / 4
      (reach from _line_of). A pixel's own line, not an interpolation between rows: a printed line crossing
      the rows keeps its full depth. A line with too few pixels for a percentile (under 4, or a quarter of
      the median line's) is NaN beyond the first and last with enough (the picture's corners), interpolated
      between them.
    """
    if slope == 0:
        lines = a[:, ::2]
        n = lines.shape[1]
        return np.sort(lines, axis=1)[:, int(0.9 * (n - 1))]  # (the same value as np.partition's, sooner here)
    line = _line_of(a.shape, slope, np.s_[::2])
    values = a[:, ::2].ravel()
    order = np.argsort(line.ravel() + values.astype(np.float64) / 2, kind="stable")  # by line, then value
    count = np.bincount(line.ravel())
    starts = np.cumsum(count) - count
    level = values[order][starts + (0.9 * np.maximum(count - 1, 0)).astype(np.intp)]
    enough = count >= max(4, np.median(count[count > 0]) / 4)  # (a line's percentile from a few pixels is noise)
    level = np.where(enough, level, np.nan).astype(np.float32)
    # a slope under a pixel's drift across the picture leaves some quarter-pixel lines (nearly) empty:
    # between lines with pixels enough, their level is interpolated
    known = np.flatnonzero(enough)
    if known.size:
        inner = np.arange(known[0], known[-1] + 1)
        level[inner] = np.interp(inner, known, level[known])
    return level


def _line_of(shape, slope, columns=np.s_[:]):
    """Index of the quarter-pixel line (see _line_levels) that each pixel of an [H, W] picture lies on.

    Returns: intp [H, W] (or [H, the columns chosen]); line j = round(4 * (y - slope * (x - W / 2))) + reach,
    reach = ceil(4 * |slope| * W / 2), so that every index is 0 or more.
    """
    h, w = shape
    reach = int(np.ceil(4 * abs(slope) * w / 2))
    x = np.arange(w)[columns]
    return np.rint(4 * (np.arange(h)[:, None] - slope * (x - w / 2))).astype(np.intp) + reach


def _line_factors(level, k, sub=1):
    """Factors dividing the printed lines' dips out of a level (see _ruled_lines), or None: too few lines.

    level: float32 [L], NaN where a line has too few pixels; k: the closing's half width; sub: lines per
    pixel (4 for turned lines: a printed line then spans two of them or more, runs less than a pixel apart
    count as one, three printed lines are needed, and _sloping looks at every fourth)."""
    factor = np.ones(level.size, np.float32)  # 1 for the lines with too few pixels
    ends = np.flatnonzero(~np.isnan(level))
    if ends.size == 0:
        return None
    first, level = ends[0], level[ends[0]:ends[-1] + 1]
    base = _closing(level, k)
    dip = np.concatenate(([0], (base - level > 0.05).astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(dip))
    found, last = 0, None
    for start, end in zip(edges[::2], edges[1::2]):  # each run [start, end) of dipping lines
        paper = float(base[start:end].min())
        beside = [level[i] for i in (start - 1, end) if 0 <= i < level.size]
        if (end - start >= (sub + 1) // 2 and level[start:end].min() >= LINE_DARKEST * paper
                and min(beside, default=paper) >= paper - 0.05
                and not (start == 0 and _sloping(level[::sub]))
                and not (end == level.size and _sloping(level[::-sub]))):
            factor[first + start:first + end] = base[start:end] / np.maximum(level[start:end], 1e-3)
            found += last is None or start - last >= sub  # runs less than a pixel apart: one printed line
            last = end
    return factor if found >= (2 if sub == 1 else 3) else None


def _sloping(a):
    """Whether 1-D a rises (or falls) steadily from its start: its first two steps of three samples go the
    same way, by 0.01 at least (more than the noise of a level paper) and the smaller by half the larger at
    least; a line at the start is one large step, then level paper (or the gradient it lies on)."""
    if a.size < 7:
        return False
    first, second = float(a[3] - a[0]), float(a[6] - a[3])
    small, large = sorted((abs(first), abs(second)))
    return first * second > 0 and small >= max(0.01, 0.5 * large)


def _closing(a, k):
    """Grey closing of a along its last axis: max, then min, over windows of 2k + 1 (dips narrower than that
    filled in)."""
    return _sliding(_sliding(a, k, np.maximum), k, np.minimum)


def _sliding(a, k, reduce):
    """reduce (np.maximum or np.minimum) of a over windows of 2k + 1 along its last axis, the ends replicated."""
    n, window = a.shape[-1], 2 * k + 1
    out = np.concatenate([a[..., :1]] * k + [a] + [a[..., -1:]] * k, axis=-1)  # (the ends replicated)
    # Windows of 2, 4, 8, ... values, each from two of half the width; then the whole window from two that overlap
    # (a maximum or a minimum is exact: the same as over the 2k + 1 values one by one, in fewer steps).
    width = 1
    while 2 * width <= window:
        out = reduce(out[..., :-width], out[..., width:])
        width *= 2
    if width < window:
        out = reduce(out[..., :n], out[..., window - width:window - width + n])
    return out[..., :n]


def _block_side(shape):
    """Side of the square blocks of _block_levels for an [H, W] picture: even, about max(H, W) / BLOCKS."""
    return 2 * max(1, -(-max(shape) // (2 * BLOCKS)))


def _robust_plane(xs, ys, levels):
    """Coefficients (a, b, c) of the plane a + b*x + c*y through float32 [N] levels at points (xs, ys).

    Least squares, refitted twice to the points within 2.5 robust standard deviations of the previous fit,
    so that a minority of points far off it (ink) do not pull it.
    Returns:
      (coef [3], keep bool [N]: the points the last fit kept).
    """
    basis = np.stack([np.ones(levels.size, np.float32), xs, ys], axis=1)
    keep = np.ones(levels.size, bool)
    coef = np.array([_median(levels), 0.0, 0.0])
    for _ in range(3):
        if keep.sum() < 3:
            break
        # A coordinate the same for every point kept (a grid one block tall: a picture over 12 times as wide
        # as it is high) says nothing of the slope along it: left out, it stays 0. Kept in, it would be as
        # good as the constant, and the least-norm solution would tilt the plane along it.
        points = basis[keep]
        used = [0] + [i for i in (1, 2) if points[:, i].max() > points[:, i].min()]
        coef = np.zeros(3)
        coef[used] = np.linalg.lstsq(points[:, used], levels[keep], rcond=None)[0]
        residual = levels - basis @ coef
        centre = _median(residual[keep])
        kept = np.abs(residual - centre) <= 2.5 * 1.4826 * _median(np.abs(residual[keep] - centre)) + 0.01
        if np.array_equal(kept, keep):  # the same points again: a refit would be this fit, to the last bit
            break
        keep = kept
    return coef, keep


def _lighting_plane(grid, shape):
    """The plane a + b*x + c*y that best fits a grid of block levels from _block_levels. Returns [H, W].

    Fitted robustly (_robust_plane), so that blocks full of ink (even a thick digit filling the picture)
    do not pull it.
    """
    b = _block_side(shape)
    ys, xs = (np.indices(grid.shape, dtype=np.float32) + 0.5) * b   # block centres
    coef, _ = _robust_plane(xs.ravel(), ys.ravel(), grid.ravel())
    rows = np.arange(shape[0], dtype=np.float32)[:, None]
    cols = np.arange(shape[1], dtype=np.float32)[None, :]
    # (summed in float64 and rounded to float32 as it is stored, as .astype would: no float64 copy of the picture)
    return np.add(coef[0] + coef[1] * cols, coef[2] * rows, out=np.empty(shape, np.float32))


def _block_levels(a, percentiles):
    """Percentiles of float32 [H, W] over a grid of about BLOCKS x BLOCKS square blocks.

    Each block is sampled on every other row and column (a quarter of its pixels: plenty for a percentile).
    Returns:
      float32 [len(percentiles), ny, nx] (edge blocks padded by replicating the border).
    """
    h, w = a.shape
    half = _block_side(a.shape) // 2
    ny, nx = -(-h // (2 * half)), -(-w // (2 * half))
    sample = a[::2, ::2]
    padded = np.pad(sample, ((0, ny * half - sample.shape[0]), (0, nx * half - sample.shape[1])), mode="edge")
    blocks = np.sort(padded.reshape(ny, half, nx, half).transpose(0, 2, 1, 3).reshape(ny, nx, half * half))
    return np.stack([blocks[..., round(q / 100 * (half * half - 1))] for q in percentiles])


def _surface(grid, shape):
    """Bilinear interpolation of a block grid from _block_levels to a float32 [H, W] surface.

    Beyond the outer blocks' centres the surface carries on linearly (_extended), not level: the paper at
    the edge of a strong lighting gradient would otherwise differ from the surface, and pass for ink.
    """
    b = _block_side(shape)
    ny, nx = grid.shape
    # Block centres sit at (i + 1.5) * b in the extended grid resized; cropped, at (i + 0.5) * b exactly.
    surface = _image(_extended(grid)).resize(((nx + 2) * b, (ny + 2) * b), Image.BILINEAR)
    return np.asarray(surface.crop((b, b, b + shape[1], b + shape[0])), dtype=np.float32)


def _extended(grid):
    """A 2-D array with one more row and column on every side, continuing a gradient it has at its edges.

    Each new value goes on from the edge by the smaller of the edge's last two steps when they go the same
    way, else repeats the edge: a steady gradient carries on, a stroke or a bump at the edge is not
    projected past it (the "minmod" limiter of numerical schemes).
    """
    def beyond(edge, inner, inner2):
        step, step2 = edge - inner, inner - inner2
        return edge + np.where(step * step2 > 0, np.sign(step) * np.minimum(abs(step), abs(step2)), 0)

    h, w = grid.shape  # (its edges repeated, as np.pad's "edge" does, at a fraction of its cost)
    p = grid[np.clip(np.arange(-1, h + 1), 0, h - 1)[:, None], np.clip(np.arange(-1, w + 1), 0, w - 1)]
    if grid.shape[0] > 2:
        p[0], p[-1] = beyond(p[1], p[2], p[3]), beyond(p[-2], p[-3], p[-4])
    if grid.shape[1] > 2:
        p[:, 0], p[:, -1] = beyond(p[:, 1], p[:, 2], p[:, 3]), beyond(p[:, -2], p[:, -3], p[:, -4])
    return p


def _grid_filter(grid, reduce):
    """3x3 neighbourhood min or max of a small 2-D array, its edges continued linearly (_extended), so that a
    grey opening (min, then max) keeps a gradient up to the edge while removing a block that stands out."""
    p = _extended(grid)
    h, w = grid.shape
    stack = [p[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)]
    return reduce(np.stack(stack), axis=0)


def _ink_span(profile, gap):
    """The [start, end) run of a 1-D ink profile holding the most ink, bridging gaps up to `gap` long.

    A digit's row (and column) profile is one run; dust and specks elsewhere form other, lighter runs.
    """
    on = np.flatnonzero(profile > 0)
    if on.size == 0:
        raise PictureError("no ink found: the picture looks blank")
    breaks = np.flatnonzero(np.diff(on) > gap + 1)
    starts = np.concatenate(([on[0]], on[breaks + 1]))
    ends = np.concatenate((on[breaks], [on[-1]])) + 1
    mass = [profile[s:e].sum() for s, e in zip(starts, ends)]
    best = int(np.argmax(mass))
    return int(starts[best]), int(ends[best])


def ink_box(solid):
    """The digit's bounding box in bool [H, W] solid ink. Returns (top, bottom, left, right), exclusive."""
    gap = max(2, round(0.03 * max(solid.shape)))
    r0, r1 = _ink_span(solid.sum(axis=1), gap)
    c0, c1 = _ink_span(solid[r0:r1].sum(axis=0), gap)
    r0, r1 = _ink_span(solid[:, c0:c1].sum(axis=1), gap)  # again, rows of the chosen columns only
    return r0, r1, c0, c1


def stroke_width(ink):
    """Mean stroke width of float32 [h, w] ink, in its pixels: ink mass / stroke length.

    The length is half the total variation (sum of |differences| along rows and columns): a stroke has two
    edges, each a step from paper to ink. Measured this way MNIST's strokes are 2.0 pixels wide (median of
    the training set; 20th percentile 1.6; class medians from 1.8 for 5s to 2.3 for 0s).
    """
    down, across = ink[1:] - ink[:-1], ink[:, 1:] - ink[:, :-1]  # (np.diff's, without its overhead)
    variation = np.abs(down, out=down).sum() + np.abs(across, out=across).sum()
    return 2 * float(ink.sum()) / max(float(variation), 1e-6)


def _thicken(digit):
    """Grey dilation of float32 [h, w] ink whose strokes, scaled into the field, would be thinner than
    STROKE: pen or pencil on a large sheet is far thinner than MNIST's strokes, and the network reads
    hairlines badly. Returns [h + k, w + k], k the added width (0: unchanged)."""
    h, w = digit.shape
    per_field_pixel = max(h, w) / BOX
    k = int(round((STROKE - stroke_width(digit) / per_field_pixel) * per_field_pixel))
    if k < 1:
        return digit
    # A maximum over a (k + 1)-wide square, along columns then rows, adds k pixels to every stroke.
    lo, hi = k // 2, k - k // 2
    a = np.pad(digit, ((lo, hi), (lo, hi)))
    padded = np.pad(a, ((lo, hi), (0, 0)))
    a = np.maximum.reduce([padded[i:i + a.shape[0]] for i in range(k + 1)])
    padded = np.pad(a, ((0, 0), (lo, hi)))
    return np.maximum.reduce([padded[:, i:i + a.shape[1]] for i in range(k + 1)])


def to_mnist_field(digit):
    """Scales float32 [h, w] ink so its longer side is BOX and centres its mass in SIZE x SIZE.

    Returns:
      float32 [SIZE, SIZE] in [0, 1].
    """
    digit = _thicken(digit)
    h, w = digit.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # Shrinking: area averaging (the anti-aliasing that gave MNIST its grey edges); enlarging: bilinear.
    resample = Image.BOX if scale < 1 else Image.BILINEAR
    small = np.clip(np.asarray(_image(digit).resize(size, resample), dtype=np.float32), 0, 1)
    field = np.zeros((SIZE, SIZE), np.float32)
    total = small.sum()
    if total <= 0:
        raise PictureError("no ink found: the picture looks blank")
    # Centre of mass of the small digit, in its own pixel indices; a whole-pixel shift puts it at CENTRE,
    # as MNIST did. The shift is clamped so that no ink falls outside the field.
    rows, cols = np.indices(small.shape)
    top = int(np.clip(round(CENTRE - (rows * small).sum() / total), 0, SIZE - small.shape[0]))
    left = int(np.clip(round(CENTRE - (cols * small).sum() / total), 0, SIZE - small.shape[1]))
    field[top:top + small.shape[0], left:left + small.shape[1]] = small
    return field


def mnist_input(path):
    """Reads a picture file and prepares it the way MNIST's digits were prepared.

    Args:
      path: a picture file in any format and mode Pillow reads.
    Returns:
      float32 [784] in [0, 1], white ink on black, row-major 28x28.
    Raises:
      PictureError: unreadable, too large, or blank.
    """
    img = open_picture(path, transpose=True, draft=WORK_SIZE)
    reopen = (lambda size: open_picture(path, transpose=True, draft=size)) if "draft_scale" in img.info else None
    try:
        # A 16-bit PGM, which Pillow scales to 0..65535 and opens as I (as older Pillows open a 16-bit PNG):
        # 16-bit grey on that fixed scale, as a 16-bit PNG is now, not stretched from its darkest to its lightest.
        if img.mode == "I" and img.format in ("PPM", "PNG"):
            img = img.convert("I;16")
        try:
            return mnist_array(img, reopen)
        except PictureError as blank:
            # Ink as bright as its paper, of another hue (a red pen on green paper), is lost in grey levels: a
            # colour picture that looks blank is looked at again along the axis its colours differ most along.
            colour = colour_contrast(img) if str(blank).startswith("no ink found") else None
            if colour is None:
                raise
            try:
                return mnist_array(colour)
            except PictureError:
                raise blank from None
    except PictureError as e:
        if str(e).startswith("no ink found"):
            raise PictureError(str(e) + first_frame_note(path)) from None
        raise
    except Exception as e:  # an unusual mode or size the steps above do not handle: one line, not a traceback
        raise PictureError("cannot process this %s picture (%dx%d): %s" % (img.mode, img.width, img.height,
                                                                          str(e).strip() or type(e).__name__))


def first_frame_note(path):
    """For a picture of several frames (an animation: GIF, APNG, WebP) or pages (a TIFF), of which only the first
    is read, what to add to its being blank: " (the first of its N frames, the only one read)"; else "". (Not
    for a Photoshop picture, whose frames are its layers, all in the first, nor a photo's MPO: a depth map.)"""
    try:
        with open(path, "rb") as f, Image.open(f) as img:
            frames = 1 if img.format in ("PSD", "MPO") else getattr(img, "n_frames", 1)
            unit = "pages" if img.format == "TIFF" else "frames"
    except Exception:  # (read once already: the note is left out)
        return ""
    return " (the first of its %d %s, the only one read)" % (frames, unit) if frames > 1 else ""


def colour_contrast(img):
    """A colour picture as grey levels along the axis (in RGB) its colours differ most along, the paper light.

    Ink and paper of the same brightness but different hues (red on green) differ along it, as much as their
    colours do. The axis is scaled so that its weights' magnitudes sum to 1, as grey's do: a change of grey
    is as large along it as in grey levels, and the levels are not stretched, so faint grey marks and a sheet
    of one colour with its noise stay blank.
    Args:
      img: a PIL.Image.
    Returns:
      an 8-bit greyscale PIL.Image of img's size, or None for a picture without colour (or with transparency).
    """
    if img.mode not in ("RGB", "RGBA", "P", "CMYK", "YCbCr"):
        return None
    if img.mode == "RGBA" or "transparency" in img.info:  # (drawing programs save RGBA where nothing is see-through)
        alpha = img.getchannel("A") if img.mode == "RGBA" else img.convert("RGBA").getchannel("A")
        if alpha.getextrema()[0] < 255:
            return None
    rgb = img.convert("RGB")
    sample = np.asarray(_reduce(rgb, (max(1, img.width // 8), max(1, img.height // 8))), np.float32) / 255.0
    colours = sample.reshape(-1, 3)
    spread, axes = np.linalg.eigh(np.cov(colours, rowvar=False) if len(colours) > 1 else np.zeros((3, 3)))
    if spread[-1] < 1e-6:  # one colour
        return None
    axis = axes[:, -1] / np.abs(axes[:, -1]).sum()
    low, middle, high = np.percentile(colours @ axis, (1, 50, 99))
    if high - middle > middle - low:  # the ink, a minority, is on the side of the longer tail: made dark
        axis = -axis
    # Projected a band of rows at a time (a float copy of a 40-megapixel picture would take 0.5 GB), twice:
    # the lightest level found first, set to 1.
    rows = max(1, 1_000_000 // img.width)
    bands = [np.s_[top:top + rows] for top in range(0, img.height, rows)]
    pixels = np.asarray(rgb)
    lightest = max(float((pixels[band].astype(np.float32) / 255.0 @ axis).max()) for band in bands)
    out = np.empty((img.height, img.width), np.uint8)
    for band in bands:
        levels = pixels[band].astype(np.float32) / 255.0 @ axis.astype(np.float32) - lightest + 1.0
        out[band] = (np.clip(levels, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    return Image.fromarray(out)


def on_paper(grey):
    """grey laid on a margin of its own paper, a quarter of its longer side wide on every side.

    The margin continues the paper at the picture's border: the plane fitted robustly to the border pixels
    (_robust_plane: strokes reaching the border, even a third of it, do not pull it), so a lighting gradient
    carries on into the margin instead of meeting a flat level there; not clipped to [0, 1], where a
    gradient would bend and the bend look like a stroke. And the paper's noise, measured along the border
    from one pixel to the next (strokes crossing it make few such steps, a gradient only small ones): a
    margin without noise would lower the noise ink_levels measures, and noise would pass for ink.
    Args:
      grey: float32 [H, W] from grey_levels.
    Returns:
      (float32 [H + 2m, W + 2m], m), m = max(H, W) // 4 (2 at least).
    """
    h, w = grey.shape
    m = max(2, max(h, w) // 4)
    edge = np.zeros((h, w), bool)
    edge[[0, -1]], edge[:, [0, -1]] = True, True
    ys, xs = np.nonzero(edge)
    coef, _ = _robust_plane(xs.astype(np.float32), ys.astype(np.float32), grey[edge])
    steps = np.concatenate([np.diff(line) for line in (grey[0], grey[-1], grey[:, 0], grey[:, -1])])
    noise = _step_noise(steps)
    rows = np.arange(-m, h + m, dtype=np.float32)[:, None]
    cols = np.arange(-m, w + m, dtype=np.float32)[None, :]
    plane = coef[0] + coef[1] * cols + coef[2] * rows
    # (plane + noise, in float64, rounded to float32 as it is stored, as .astype would)
    padded = np.add(plane, noise * np.random.default_rng(0).standard_normal(plane.shape),
                    out=np.empty(plane.shape, np.float32))
    padded[m:m + h, m:m + w] = grey
    return padded, m


def _seeded_runs(seeds, mask):
    """The runs of bool [H, W] mask along its rows that hold a pixel of seeds: bool [H, W]."""
    h, w = mask.shape
    m = np.zeros((h, w + 1), bool)  # a column of False between rows: no run goes on into the next row
    m[:, :w] = mask
    s = np.zeros((h, w + 1), bool)
    s[:, :w] = seeds & mask
    # The rows end to end, cut where the mask begins or ends: runs and the gaps between them, each seeded or not,
    # and drawn again so (a few hundred pieces: a cumulative sum over every pixel, to number them, cost 3 times as
    # much).
    flat = m.ravel()
    starts = np.concatenate(([0], np.flatnonzero(flat[1:] != flat[:-1]) + 1))
    seeded = np.logical_or.reduceat(s.ravel(), starts)
    return np.repeat(seeded, np.diff(starts, append=flat.size)).reshape(h, w + 1)[:, :w]


def _from_side(a, side):
    """[H, W] a seen from side 0 (top), 1 (bottom), 2 (left) or 3 (right): a view whose rows run inward."""
    return (a, a[::-1], a.T, a[:, ::-1].T)[side]


def _reached(seeds, mask):
    """The pixels of bool [H, W] mask connected (along rows and columns) to those of seeds: bool [H, W]."""
    region = seeds & mask
    for _ in range(32):  # along rows, then columns, until nothing is added (a frame or a table: two rounds)
        grown = _seeded_runs(_seeded_runs(region, mask).T, mask.T).T
        if np.array_equal(grown, region):
            break
        region = grown
    return region


def surroundings(grey, most=0.9, smooth=None, contrast=2 * MIN_CONTRAST):
    """What lies around the sheet the digit is on: a dark frame, a dark margin of a scan, or a table around a
    photographed sheet; darker than the paper, along the whole of one side of the picture at least.

    Args:
      grey: float32 [H, W] grey levels (0 black).
      most: the largest part of the picture it may cover (a sheet photographed from afar, on a table that fills
        most of the picture; past 90% the paper's level, the 90th percentile, would be the table's).
      smooth: _median3(grey), if the caller has it.
      contrast: how much darker than the paper it must be, at least.
    Returns:
      bool [H, W], or None where there is none (or it cannot be told from the digit: see below).
    """
    h, w = grey.shape
    if min(h, w) < 16:
        return None
    paper = float(_percentile(grey[::4, ::4], 90))  # (the paper covers most of the picture)
    depth = max(2, round(0.02 * max(h, w)))
    # Each side (top, bottom, left, right): the darkest of its outer `depth` pixels (median-filtered as the whole
    # picture is below: noise, specks and 1-pixel lines are not a frame), all along it. Lined: 95% of it clearly
    # darker than the paper. (Taken from the whole picture's median filter, cut as a band one pixel deeper
    # filtered on its own was, its inner edge then dropped: the same values.)
    bands = (np.s_[:depth], np.s_[-depth:], np.s_[:, :depth], np.s_[:, -depth:])
    wider = (np.s_[:depth + 1], np.s_[-depth - 1:], np.s_[:, :depth + 1], np.s_[:, -depth - 1:])
    outer = (np.s_[:depth], np.s_[1:], np.s_[:, :depth], np.s_[:, 1:])
    g = _median3(grey) if smooth is None else smooth
    levels = {}
    for side in range(4):
        edge = g[wider[side]][outer[side]].min(axis=side // 2)
        level = float(_median(edge))
        if paper - level >= contrast and np.mean(edge < (paper + level) / 2) >= 0.95:
            levels[side] = level
    if not levels:
        return None
    lined = list(levels)
    dark = g < (paper + max(levels.values())) / 2  # below halfway from the paper to the lightest lined side
    seeds = np.zeros((h, w), bool)
    for side in lined:
        seeds[bands[side]] = True
    reached = _reached(seeds, dark)
    # A stroke of the digit touching a frame is reached too, as a spike in how deep the frame is along its side:
    # along each lined side, the region is only as deep as it is around there (a running median of the depth,
    # give or take `depth`: its ragged edge is not a stroke).
    region = np.zeros((h, w), bool)
    for side in lined:
        r = _from_side(reached, side)
        deep = np.where(r.all(axis=0), r.shape[0], np.argmin(r, axis=0))  # reached pixels from the side, on
        k = max(3, r.shape[1] // 10) | 1
        window = np.lib.stride_tricks.sliding_window_view(np.pad(deep, k // 2, mode="edge"), k)
        median = np.partition(window, k // 2, axis=1)[:, k // 2]  # (k is odd: np.median's, as whole numbers)
        _from_side(region, side)[...] |= r & (np.arange(r.shape[0])[:, None] < median + depth)
    rest = dark & ~region
    # Taken only if there is one (a dark line a pixel in from the edge is not seen from it), something dark that
    # is not part of it is left (the digit: a digit cut out close to its ink, a 7 whose bar runs along the top,
    # is all one piece) and it covers at most `most` of the picture. A light digit on a dark board, its strokes a
    # tenth of the picture or more (so the paper's level is theirs), is the board: it is told by the box round the
    # rest, which a digit's strokes fill far less than a sheet does (the board comes into the box).
    if not region.any() or rest.sum() < MIN_INK_PIXELS or region.mean() > most:
        return None
    if _box_share(region) > 0.15:
        return None
    if len(lined) == 1:
        # Along one side only it may be a detached stroke of a digit cut out close (the bar of a 5): taken only if
        # the rest does not reach the side's two ends, and keeps away from it by at least its own depth.
        r, rest_from = _from_side(region, lined[0]), _from_side(rest, lined[0])
        along = np.flatnonzero(rest_from.any(axis=0))
        reach, begins = np.flatnonzero(r.any(axis=1))[-1] + 1, np.flatnonzero(rest_from.any(axis=1))[0]
        if along[0] < 2 or along[-1] >= r.shape[1] - 2 or begins - reach < reach:
            return None
    return region


def _box_share(region):
    """How much of the box round the rest of the picture (what bool [H, W] region leaves: the sheet) region covers,
    the box upright or, if less, turned as the rest's left edge is. A sheet photographed a little turned leaves the
    table in each corner of an upright box (about a sixth of it at 6 degrees); a turned box fits it. A digit's strokes
    leave the board inside their box, upright or turned: a ring leaves 21% of it in the corners at any angle."""
    sheet = ~region
    rows, cols = np.flatnonzero(sheet.any(axis=1)), np.flatnonzero(sheet.any(axis=0))
    share = float(region[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].mean())
    # The left edge's slope (columns per row): the median, over the rows, of how far the leftmost pixel moves in a
    # tenth of the height. Along a turned rectangle's left side it moves by tan(angle); along the short stretch of
    # its top or bottom side that is leftmost too, by far more, in fewer rows.
    left = np.argmax(sheet[rows], axis=1)
    k = max(1, len(rows) // 10)
    slope = float(_median((left[k:] - left[:-k]) / (rows[k:] - rows[:-k]))) if len(rows) > k else 0.0
    if share <= 0.15 or abs(slope) < 0.02 or abs(slope) > 0.2:  # (upright, or turned by over 11 degrees)
        return share
    ys, xs = np.indices(region.shape, dtype=np.float32)
    across, along = xs - slope * ys, ys + slope * xs  # constant across / along the left side (both scaled alike)
    a, b = across[sheet], along[sheet]
    box = (across >= a.min()) & (across <= a.max()) & (along >= b.min()) & (along <= b.max())
    return min(share, float(region[box].mean()))


def _step_noise(steps):
    """A picture's pixel noise from float32 [N] differences between neighbouring pixels: their robust standard
    deviation over sqrt(2) (each difference holds the noise of two pixels); 0 without any."""
    return 1.4826 * float(_median(np.abs(steps - _median(steps)))) / np.sqrt(2) if steps.size else 0.0


def _paper_over(grey, region):
    """grey [H, W] with region covered by paper: the plane fitted to the rest's brightness, with its noise."""
    sheet = ~region
    ys, xs = np.nonzero(sheet)
    step = max(1, xs.size // 5000)
    coef, _ = _robust_plane(xs[::step].astype(np.float32), ys[::step].astype(np.float32), grey[sheet][::step])
    pairs = sheet[:, 1:] & sheet[:, :-1]
    steps = np.diff(grey, axis=1)[pairs]
    noise = _step_noise(steps)
    ys, xs = np.nonzero(region)
    out = grey.copy()
    out[region] = coef[0] + coef[1] * xs + coef[2] * ys + noise * np.random.default_rng(0).standard_normal(xs.size)
    return out


def _group_percentile(values, groups, n, q):
    """The q-th percentile (0 to 100, nearest rank) of float32 [N] values in each of n groups (intp [N], 0 to n-1).

    Returns: (float32 [n], NaN for a group without values, or [len(q), n] for a sequence q; intp [n], how many
    values each group holds).
    """
    order = np.lexsort((values, groups))  # by group, then value
    count = np.bincount(groups, minlength=n)
    starts = np.cumsum(count) - count
    qs = np.atleast_1d(np.asarray(q, np.float64))[:, None]
    rank = np.minimum(starts + (qs / 100 * np.maximum(count - 1, 0)).astype(np.intp), max(values.size - 1, 0))
    level = values[order][rank] if values.size else np.zeros(rank.shape, np.float32)
    level = np.where(count > 0, level, np.nan).astype(np.float32)
    return (level[0] if np.ndim(q) == 0 else level), count


def _straight_edges(g, paper, most=4):
    """The strongest straight edges in float32 [H, W] g (a Hough transform of its edge pixels' gradients).

    Returns:
      [(phi, rho)]: each edge on the line x cos(phi) + y sin(phi) = rho, phi pointing to its light side, good
      to a degree or two and a pixel or two; strongest first, at most `most`.
    """
    h, w = g.shape
    # Every other pixel's gradient, along rows and columns (a quarter of the pixels: a long edge has plenty).
    gx, gy = _sobel(g)
    # A shadow's edge steps by at least 15% of the paper's level within 4 pixels (SHADOW_FAINTEST; beyond a
    # reduction to WORK_SIZE, a wider edge is narrower): a slope of 0.04 of it, 0.3 in Sobel's units.
    ys, xs = np.nonzero(gx * gx + gy * gy > (0.3 * paper) ** 2)
    # votes for an edge, at least: a line across a fifth of the picture's shorter side (every other pixel's
    # gradient: about one vote for two pixels of its length)
    smallest = min(h, w) / 10
    if xs.size < smallest:
        return []
    direction = np.arctan2(gy[ys, xs], gx[ys, xs])
    xs, ys = 2 * xs + 1, 2 * ys + 1
    # Only pixels whose dark side, 4 pixels away across the edge, is as much darker than their light side as a
    # shadow's may be vote: not the edges of dark strokes (ink is darker), nor of thin ones (paper beyond).
    across_x, across_y = 4 * np.cos(direction), 4 * np.sin(direction)

    def beside(side):  # g 4 pixels from each edge pixel across the edge, on its light (1) or dark (-1) side
        return g[np.clip(np.rint(ys + side * across_y).astype(np.intp), 0, h - 1),
                 np.clip(np.rint(xs + side * across_x).astype(np.intp), 0, w - 1)]
    light, dark = beside(1), beside(-1)
    shadow_like = (dark >= (SHADOW_DARKEST - 0.05) * light) & (dark <= (SHADOW_FAINTEST + 0.05) * light)
    xs, ys, direction = xs[shadow_like], ys[shadow_like], direction[shadow_like]
    if xs.size < smallest:
        return []
    angles = 180  # 2-degree bins; the line is refined afterwards
    bin_of = np.rint(direction * (angles / (2 * np.pi))).astype(np.intp)
    span = int(np.hypot(h, w)) + 2  # rho from -span to span, in bins of 2 pixels
    a = (bin_of + np.array([[-1], [0], [1]])) % angles  # each pixel votes for its own direction and the two beside
    theta = a * (2 * np.pi / angles)
    rho = np.rint((xs * np.cos(theta) + ys * np.sin(theta) + span) / 2).astype(np.intp)
    # and rho +-1 bin (not exact: the peak only needs finding), but not into the first and last bins: each vote
    # counted in the bins beside its own too (a few thousand votes, not sums over the 180 x span bins)
    cell, rho = (a * (span + 1) + rho).ravel(), rho.ravel()
    cell = np.concatenate((cell, cell[rho <= span - 2] + 1, cell[rho >= 2] - 1))
    votes = np.bincount(cell, minlength=angles * (span + 1)).reshape(angles, span + 1)
    found = []
    top = votes.max(axis=1)  # each direction's most votes, kept up to date as peaks are cleared
    for _ in range(most):
        peak_a = int(np.argmax(top))  # (the first of the highest, as np.argmax of all votes finds it)
        peak_r = int(np.argmax(votes[peak_a]))
        if votes[peak_a, peak_r] < smallest:
            break
        found.append((peak_a * (2 * np.pi / angles), 2.0 * peak_r - span))
        around = [(peak_a + i) % angles for i in range(-2, 3)]
        votes[around, max(0, peak_r - 3):peak_r + 4] = 0  # and around it
        top[around] = votes[around].max(axis=1)
    return found


def _sobel(g):
    """The Sobel gradient (gx, gy) of float32 [H, W] g at every other row and column from the second (not the
    last row or column): float32 [(H - 1) // 2, (W - 1) // 2] each, gx[i, j] at pixel (2i + 1, 2j + 1).

    Differences across 2 pixels, smoothed 1-2-1 along the edge: the direction is good to about a degree on an
    edge a pixel wide, where plain differences are off by several. In its units a slope is 8 times larger.
    """
    h, w = g.shape
    return _sobel_of(lambda dy, dx: g[1 + dy:h - 1 + dy:2, 1 + dx:w - 1 + dx:2])


def _sobel_of(at):
    """The Sobel gradient (gx, gy) from at(dy, dx): the picture at the pixels wanted, shifted by (dy, dx)."""
    gx = (at(-1, 1) - at(-1, -1)) + 2 * (at(0, 1) - at(0, -1)) + (at(1, 1) - at(1, -1))
    gy = (at(1, -1) - at(-1, -1)) + 2 * (at(1, 0) - at(-1, 0)) + (at(1, 1) - at(-1, 1))
    return gx, gy


def _steps_along(g, phi, rho):
    """The ratio by which the brightness steps down across a line (phi, rho from _straight_edges) all along it,
    or None: it does not. A quick look at points 3 pixels apart along the line, before _shadow_ratio's closer
    one: at each, the darker side's level over the lighter side's, 6 and 14 pixels from the line (past the
    edge's blur and the line's error) on each side. The most common ratio between SHADOW_DARKEST and
    SHADOW_FAINTEST (in bins of 0.05) must be seen, at either distance, at 40% of the line's points inside the
    picture (10 at least), and in its first and last quarter: a stroke along the line, or crossing it, hides
    it at some; a stroke's edge shows it only where the stroke is (past it, there is paper on both sides: a
    ratio of 1)."""
    h, w = g.shape
    c, s = np.cos(phi), np.sin(phi)
    along = np.arange(-np.hypot(h, w), np.hypot(h, w), 3)
    x, y = rho * c - along * s, rho * s + along * c
    ratios = []
    for off in (6, 14):
        points = [(np.rint(x + side * off * c).astype(np.intp), np.rint(y + side * off * s).astype(np.intp))
                  for side in (1, -1)]
        inside = np.all([(px >= 0) & (px < w) & (py >= 0) & (py < h) for px, py in points], axis=0)
        along, x, y, points = along[inside], x[inside], y[inside], [(px[inside], py[inside]) for px, py in points]
        ratios = [r[inside] for r in ratios]  # (the points inside at both distances)
        (lx, ly), (dx, dy) = points
        ratios.append(g[dy, dx] / np.maximum(g[ly, lx], 1e-3))
    if along.size < 10:
        return None
    both = np.concatenate(ratios)
    counts = np.bincount(np.clip(np.rint(both / 0.05).astype(np.intp), 0, 40), minlength=41)
    low, high = int(np.ceil(SHADOW_DARKEST / 0.05)), int(SHADOW_FAINTEST / 0.05)
    common = (low + int(np.argmax(counts[low:high + 1]))) * 0.05
    if counts[round(common / 0.05)] == 0:
        return None
    r = float(_median(both[np.abs(both - common) <= 0.05]))
    same = (np.abs(ratios[0] - r) <= 0.08) | (np.abs(ratios[1] - r) <= 0.08)
    quarter = max(1, along.size // 4)
    return r if (SHADOW_DARKEST <= r <= SHADOW_FAINTEST and same.sum() >= 0.4 * along.size
                 and same[:quarter].any() and same[-quarter:].any()) else None


def _hard_shadow(grey, smooth=None):
    """grey with the dark side of a hard-edged shadow across the picture (a hand's, a phone's) lifted to its light
    side's level, or None: there is none.

    The paper's level subtracted in ink_levels is smooth: a step in it along a sharp edge is smoothed over, and
    the step is left as ink (a bar across the digit). So a straight edge is looked for first (_straight_edges),
    then checked as a shadow's edge (_steps_along, then _shadow_ratio): it runs across the whole picture, or
    most of it (not a stroke of the digit, which is short), and the paper's brightness steps down across it
    by one ratio all along, between SHADOW_DARKEST (ink is darker) and SHADOW_FAINTEST, on both sides as far
    as a thick stroke is wide (a stroke is dark between paper on both sides). Then the shadow is lifted
    (_shadow_lifted). A picture larger than WORK_SIZE (the second look at FINE_SIZE) is searched shrunk to
    about that size, and lifted at its own size.
    Args:
      grey: float32 [H, W] grey levels (0 black).
      smooth: _median3(grey), if the caller has it already.
    Returns:
      float32 [H, W], or None.
    """
    h, w = grey.shape
    if min(h, w) < 24:
        return None
    k = -(-max(h, w) // WORK_SIZE)
    if k == 1:
        g = _median3(grey) if smooth is None else smooth
    else:
        g = _median3(grey[:h - h % k, :w - w % k].reshape(h // k, k, w // k, k).mean(axis=(1, 3)))
    sample = g[::3, ::3].ravel()
    rank = int(0.9 * (sample.size - 1))
    paper = float(np.partition(sample, (rank, sample.size - 1))[rank])  # (with a second rank: NumPy's quicker way)
    if paper < 0.05:  # (a black picture)
        return None
    for phi, rho in _straight_edges(g, paper):
        ratio = _steps_along(g, phi, rho)
        line = _refined(g, phi, rho, max(6.0, 0.02 * max(g.shape))) if ratio is not None else None
        ratio = _shadow_ratio(g, *line, ratio) if line is not None else None
        if ratio is not None:
            break
    else:
        return None
    phi, rho = line
    if k > 1:  # the line on the picture itself (pixel i of the shrunk one is k i + (k - 1) / 2 of it), refined there
        g = _median3(grey) if smooth is None else smooth
        line = _refined(g, phi, k * rho + (k - 1) / 2 * (np.cos(phi) + np.sin(phi)), 2.0 * k)
        if line is None:
            return None
        phi, rho = line
    lifted = _shadow_lifted(grey, g, phi, rho, ratio, k)
    if lifted is not None:
        # Lifted, the sheet must not hold clearly more light ink than dark (more than 12 pixels' worth of
        # MIN_CONTRAST): a band of light ink on a grey board, cut out close and as wide as a quarter of the
        # picture, can look like a shadow's light side, and lifting the board beside it to its level left a
        # board of mostly light ink (of 400, 6 lifted and 5 misread; 4 and 3 with this).
        lifted_g = _median3(lifted)
        darker, lighter = _ink_excess(lifted_g, _block_levels(lifted_g, (50,))[0])
        if lighter > darker + MIN_INK_PIXELS * MIN_CONTRAST:
            return None
    return lifted


def _distance(shape, phi, rho, ys=None, xs=None):
    """Each pixel's distance from the line x cos(phi) + y sin(phi) = rho (positive on phi's side), and its place
    along it: float32 arrays [H, W] for a picture of shape [H, W], or of the pixels (ys, xs) given."""
    if ys is None:
        ys, xs = np.arange(shape[0], dtype=np.float32)[:, None], np.arange(shape[1], dtype=np.float32)[None, :]
    c, s = np.float32(np.cos(phi)), np.float32(np.sin(phi))
    return xs * c + ys * s - np.float32(rho), ys * c - xs * s


def _refined(g, phi, rho, first):
    """The line (phi, rho) of an edge of float32 [H, W] g moved onto it to a fraction of a pixel, or None.

    Along it, in pieces of a sixteenth of its length, the edge's centre is the mean distance from the line
    weighted by the brightness's rise across it (its derivative, which peaks in the middle of the edge); a
    straight line is fitted to the centres by least squares three times, each leaving out the pieces the last
    fit found further off than both 0.75 pixel and twice the median distance (a stroke crossing moves a
    centre), and the line moved onto it. Three passes: with the pixels within `first` pixels of the line (it
    may be off by a pixel or two, and by up to a degree), then within a third of that (at least 3), then within
    2 pixels. The rise counts beyond 0.1 of the paper's level (in Sobel's units, its noise): noise, which
    rises as much everywhere, does not hold the centre where the line was.
    """
    band_y, band_x = np.nonzero(np.abs(_distance(g.shape, phi, rho)[0]) <= first + 2)
    gx, gy = _sobel_at(g, band_y, band_x)
    noise = 0.1 * float(_percentile(g[band_y, band_x], 90)) if band_y.size else 0.0
    band_y, band_x = band_y.astype(np.float32), band_x.astype(np.float32)
    for window in (first, max(3.0, first / 3), 2.0):
        d, along = _distance(g.shape, phi, rho, band_y, band_x)
        near = np.abs(d) <= window
        along, across = along[near], d[near]
        if along.size < 16:
            return None
        rise = np.maximum(gx[near] * np.cos(phi) + gy[near] * np.sin(phi) - noise, 0)
        piece = np.floor((along - along.min()) / max(6.0, float(np.ptp(along)) / 16)).astype(np.intp)
        total = np.bincount(piece, rise)
        seen = total > 0.3 * _median(total[total > 0]) if np.any(total > 0) else total > 0
        if seen.sum() < 4:
            return None
        centre = np.bincount(piece, rise * across)[seen] / total[seen]
        at = np.bincount(piece, rise * along)[seen] / total[seen]
        keep = np.ones(centre.size, bool)
        for _ in range(3):
            if keep.sum() < 4:
                return None
            slope, offset = np.polyfit(at[keep], centre[keep], 1)
            off = np.abs(centre - (offset + slope * at))
            keep = off <= max(0.75, 2 * _median(off))
        # the edge lies along d = offset + slope * t: the line turned by -atan(slope), and moved
        phi, rho = phi - np.arctan(slope), (rho + offset) / np.hypot(1, slope)
    return phi, rho


def _side_levels(g, phi, rho, k, reach):
    """The paper's level on each side of a line through float32 [H, W] g, in pieces of a twelfth of the line's
    length inside the picture: the 90th percentile (ink, darker, covers less than a tenth) of every k-th row
    and column, 3 k to 7 k pixels from the line (just past the edge's blur), and 7 k to 7 k + reach in two
    bands, each half as wide.

    Returns:
      (float32 [pieces, 6]: light side near, dark side near, light side further on, dark side further on,
      light side further still, dark side further still; NaN where there are fewer than 4 pixels; a function
      giving the piece of a place along the line), or None.
    """
    d, along = _distance(g.shape, phi, rho, np.arange(0, g.shape[0], k, dtype=np.float32)[:, None],
                         np.arange(0, g.shape[1], k, dtype=np.float32)[None, :])  # (of the pixels used only)
    inside = along[np.abs(d) < k]
    if inside.size < 2:
        return None
    start, length = float(inside.min()), max(8.0 * k, float(np.ptp(inside)) / 12)
    pieces = int(np.ptp(inside) // length) + 1

    def piece_of(along):
        return np.clip(np.floor((along - start) / length).astype(np.intp), 0, pieces - 1)
    zone = np.full(d.shape, -1, np.intp)
    for i, (low, high) in enumerate(((3 * k, 7 * k), (7 * k, 7 * k + reach / 2), (7 * k + reach / 2, 7 * k + reach))):
        zone[(d >= low) & (d < high)] = 2 * i
        zone[(d <= -low) & (d > -high)] = 2 * i + 1
    used = zone >= 0
    level, count = _group_percentile(g[::k, ::k][used], piece_of(along[used]) * 6 + zone[used], pieces * 6, 90)
    return np.where(count >= 4, level, np.nan).reshape(pieces, 6), piece_of


def _shadow_ratio(g, phi, rho, ratio):
    """The shadow's brightness over the light side's, if the edge of float32 [H, W] g along the line (phi, rho)
    is a hard shadow's; else None. ratio: about what it is (_steps_along).

    The paper's level on each side in pieces along the line (_side_levels, further on up to 25% of the
    picture's size: wider than a thick stroke of a digit cut out close to its ink, whose straight edge, grey
    ink on light paper, would otherwise pass for a shadow's; 15% let 5 in 300 such through), over the light
    side's paper (the brighter of its two levels: a stroke along the line may darken one).
    A piece shows the shadow's step where its ratio is within 0.08 of the median one (of those within 0.1 of
    `ratio`), its light side is light on and its dark side as dark, in both bands further on (NaN: outside
    the picture: no objection). A piece contradicts it where the light side is no lighter than the dark side
    by half the step, near the line or in either band further on (paper on both sides: no step, or a dark
    band, a stroke, between them), or where the light side is darker in both bands further on (a light band;
    in one band only, it may be a thick stroke along the line: two bands, as with one, a light stroke on a
    grey board, cut out close, held the 90th percentile of the light side up with a tenth of the band). Ink
    on either side near the line hides the step (neither). The step must show in 40% of the pieces, in the
    first and the last quarter of the line (it runs across the picture), and at most one piece may
    contradict it. (So a shadow's dark band narrower than a quarter of the picture, between two edges, is
    taken for a stroke, and left.)
    """
    levels = _side_levels(g, phi, rho, 1, max(8.0, 0.25 * max(g.shape)))
    if levels is None:
        return None
    level = levels[0] / np.maximum(np.fmax(levels[0][:, 0], levels[0][:, 2]), 1e-3)[:, None]
    light, dark = level[:, 0], level[:, 1]
    # further on, the light side's lower and higher level of its two bands, and the dark side's higher
    lowest, highest = np.fmin(level[:, 2], level[:, 4]), np.fmax(level[:, 2], level[:, 4])
    dark_far = np.fmax(level[:, 3], level[:, 5])
    near = np.abs(dark - ratio) <= 0.1
    if near.sum() < 4:
        return None
    ratio = float(_median(dark[near]))
    half = 1 - (1 - ratio) / 2
    steady = ((np.abs(dark - ratio) <= 0.08) & (light >= 0.92) & ~(lowest < 0.92)
              & ~(np.abs(dark_far - ratio) > 0.08))
    against = (dark >= half) | (dark_far >= half) | (highest <= half)
    quarter = max(1, level.shape[0] // 4)
    if (SHADOW_DARKEST <= ratio <= SHADOW_FAINTEST and steady.sum() >= 0.4 * level.shape[0] and against.sum() <= 1
            and steady[:quarter].any() and steady[-quarter:].any()):
        return ratio
    return None


def _shadow_lifted(grey, g, phi, rho, ratio, k):
    """grey [H, W] with the dark side of the shadow's edge along the line (phi, rho) lifted to its light side's
    level, or None (too few pixels to see the edge's profile). g: grey median-filtered; ratio: the shadow's
    brightness over the light side's (_shadow_ratio); k: grey's size over the size the shadow was found at."""
    h, w = grey.shape
    ramp = 3.0 * k  # the edge's blur, at most (at WORK_SIZE): its profile is measured to ramp + 1 either side
    levels = _side_levels(g, phi, rho, k, 8.0 * k)
    if levels is None:
        return None
    paper, piece_of = np.fmax(levels[0][:, 0], levels[0][:, 2]), levels[1]  # the light side's level
    paper[paper <= 0] = np.nan  # (black there, no paper: its level is unknown, as where there are no pixels)
    if np.isnan(paper).all():
        return None
    paper = np.where(np.isnan(paper), np.nanmedian(paper), paper).astype(np.float32)

    # The edge's own profile (however blurred): across the line, the median brightness over the light side's
    # level, a quarter of a pixel at a time, of pixels that are not ink (darker than 0.8 of the shadow's
    # level, or 2 pixels from such: an edge near the picture's rows or columns passes each quarter pixel
    # along a few stretches only, and a stroke there would be its median). Smoothed by a median of 3, scaled
    # from the dark side's end (ratio) to the light side's (1), made to rise steadily.
    d, along = _distance(grey.shape, phi, rho)
    ys, xs = np.nonzero(np.abs(d) <= ramp + 1)
    d_edge, piece = d[ys, xs], piece_of(along[ys, xs])
    ink = np.zeros(ys.size, bool)
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            ink |= g[np.clip(ys + dy, 0, h - 1), np.clip(xs + dx, 0, w - 1)] < 0.8 * ratio * paper[piece]
    steps = int(4 * (2 * ramp + 2)) + 1
    quarters = np.rint((d_edge[~ink] + ramp + 1) * 4).astype(np.intp)  # 0 to steps - 1
    profile, count = _group_percentile(g[ys, xs][~ink] / paper[piece[~ink]], quarters, steps, 50)
    at = np.arange(steps) / 4 - ramp - 1
    at, profile = at[count >= 3], profile[count >= 3]
    if profile.size < 3 or not (at >= ramp).any() or not (at <= -ramp).any():
        return None
    profile[1:-1] = np.median(np.stack([profile[:-2], profile[1:-1], profile[2:]]), axis=0)
    top, bottom = float(_median(profile[at >= ramp])), float(_median(profile[at <= -ramp]))
    if top - bottom < 0.05:
        return None
    profile = np.maximum.accumulate(np.clip(ratio + (profile - bottom) * (1 - ratio) / (top - bottom), ratio, 1))

    # q, the profile at each pixel's distance from the line, is how much of the light its paper gets.
    q = np.interp(d, at, profile, left=ratio, right=1.0).astype(np.float32)
    paper = paper[piece_of(along)]
    # Dividing by q restores the ink's contrast in the shadow, but multiplies the paper's noise there by
    # 1 / q as well (up to 3.3), and ink_levels, measuring the noise over the whole picture, would take the
    # loudest of it for specks of ink (a blank sheet photographed large, read at FINE_SIZE, looked written
    # on). So a pixel's departure from the shadow's paper level is lifted only beyond 3 times the noise
    # (measured in the shadow, from one pixel to the next along every k-th row): the noise keeps its level,
    # the ink gets nearly all its contrast back.
    dark_side = d[::k] < -ramp
    pairs = dark_side[:, 1:] & dark_side[:, :-1]
    gate = 3 * _step_noise(np.diff(grey[::k], axis=1)[pairs])
    e = grey - paper * q
    e = np.where(np.abs(e) <= gate, e, np.sign(e) * (gate + (np.abs(e) - gate) / q))
    lifted = np.where(q < 1, paper + e, grey)
    # An edge sampled by the pixels is not quite straight (the camera's pixels, a reduction by a factor that is
    # not whole: its crossings wander by half a pixel), so near it the lift leaves a thin light or dark trace,
    # 0.1 or more on a sharp step, which could be taken for a stroke (on a blank sheet, the digit). There, what
    # is within 20% of the paper's level is paper: ink, darker (or lighter, on a dark board), is kept.
    edge = np.abs(d) <= ramp + 1
    edge[edge] = np.abs(lifted[edge] - paper[edge]) <= 0.2 * paper[edge]
    lifted[edge] = paper[edge]
    return lifted.astype(np.float32)


def _sobel_at(g, ys, xs):
    """_sobel's gradient of float32 [H, W] g at the pixels (ys, xs), intp [N] each (the edge replicated)."""
    h, w = g.shape
    return _sobel_of(lambda dy, dx: g[np.clip(ys + dy, 0, h - 1), np.clip(xs + dx, 0, w - 1)])


def fills_the_picture(box, shape):
    """Whether an ink box (top, bottom, left, right) of a picture [H, W] reaches two of its sides (within 8%)
    and is not small (a quarter of the longer side or more): a digit cropped close to its ink."""
    top, bottom, left, right = box
    h, w = shape
    near = (top <= 0.08 * h) + (h - bottom <= 0.08 * h) + (left <= 0.08 * w) + (w - right <= 0.08 * w)
    return near >= 2 and max(bottom - top, right - left) >= max(h, w) / 4


def _read(grey, margin=True):
    """Finds the digit in a working picture from grey_levels.

    Args:
      margin: read a digit cropped close to its ink (or no ink found) again on a margin of paper.
    Returns:
      (ink, box, close_cropped): ink float32 [h, w] from ink_levels, the digit's box (top, bottom, left,
      right) in it, and whether the digit was found cropped close to its ink (ink then has a margin, so its
      coordinates are not grey's).
    Raises:
      PictureError: no ink.
    """
    # (median-filtered once for what lies around, the shadow's search and the ink's, which all take decisions
    # on it; again only where the picture changes. The 3x3 median of 1 - grey is 1 - that of grey, exactly.)
    smooth = _median3(grey)
    around = surroundings(grey, smooth=smooth)
    if around is None:
        # Or lighter than a dark sheet: a white-on-black drawing canvas in a screenshot, with the page around it, a
        # board and the wall. What it surrounds must be mostly darker than it: a dark sheet, not the light paper
        # itself (a page whose printed lines and digit are a tenth of it looks so from its sides). A dark mode's
        # window round its canvas is only a little lighter (0.1 to 0.2), yet its edge on a noiseless canvas is
        # taken for ink from about 0.07 up: in a picture mostly dark (its median below 0.5) it is looked for from
        # half MIN_CONTRAST (a one-off check: of 250 dark boards lit 0.1 to 0.3 lighter towards a side or
        # round the edges, 100 of them blank, none came out otherwise). Not in others: the sides of a light sheet lit
        # unevenly are often that much lighter, and the search that then follows (about 1 ms) finds nothing. Nor
        # below four times the picture's noise: noise alone makes a side look about twice its level lighter (the
        # lightest of its outer pixels against the 10th percentile), so that a noisy photo of a board was taken to
        # have light surroundings, which reached into a stroke near a side and painted it over.
        contrast = 2 * MIN_CONTRAST
        if _median(grey[::4, ::4]) < 0.5:
            rows = grey[::max(1, grey.shape[0] // 16)]  # (about 16 rows, some 5,000 steps: enough for the noise)
            contrast = min(contrast, max(MIN_CONTRAST / 2, 4 * _step_noise(np.diff(rows, axis=1).ravel())))
        light = surroundings(1.0 - grey, smooth=1.0 - smooth, contrast=contrast)
        if light is not None and _median(grey[~light]) < _median(grey[light]) - contrast:
            around = light
    if around is not None:  # a frame, a scan's margin, a table: not ink, but paper like the sheet's
        grown = _neighbours(around) > 0
        grown |= _neighbours(grown) > 0  # (and the soft edge between it and the sheet)
        grey = _paper_over(grey, grown | around)
        smooth = _median3(grey)
    for _ in range(2):  # a hard-edged shadow across the sheet: its dark side lifted to the light side's level
        lifted = _hard_shadow(grey, smooth)
        if lifted is None:
            break
        grey, smooth = lifted, _median3(lifted)
    try:
        ink, solid = ink_levels(grey, smooth)
        box = ink_box(solid)
        close_cropped = fills_the_picture(box, solid.shape)
    except PictureError:
        if not margin:
            raise
        ink, close_cropped = None, True
    if close_cropped and margin:
        # A digit cropped close to its ink can cover half the picture: too much for the paper to be told from
        # it, and its strokes are taken for paper (the picture called blank, or part of the digit read). Laid
        # on a margin of paper, it is read as any other. (Only those pictures: the plane the margin continues
        # does not follow a shadow across the sheet, which cost a few of bench/app_bench.py's JPEGs.)
        padded, m = on_paper(grey)
        try:
            padded_ink, solid = ink_levels(padded)
            padded_box = ink_box(solid)
            top, bottom, left, right = padded_box
            inside = (max(0, min(bottom, m + grey.shape[0]) - max(top, m))
                      * max(0, min(right, m + grey.shape[1]) - max(left, m)))
            h, w = grey.shape
            in_picture = (max(0, top - m), min(h, bottom - m), max(0, left - m), min(w, right - m))
            strokes = solid[m:m + h, m:m + w]
            contrast = (abs(float(_median(grey[strokes]) - _median(grey[~strokes])))
                        if strokes.any() and not strokes.all() else 0.0)
            # Taken only if it is what was looked for: a digit reaching the picture's sides, in the picture
            # (not the margin), its strokes standing out from the paper around them (not the blotches of a
            # sheet where nothing was found, which stand out only from the margin's even level).
            if (inside < 0.5 * (bottom - top) * (right - left) or not fills_the_picture(in_picture, grey.shape)
                    or contrast < 2 * MIN_CONTRAST):
                raise PictureError("no ink found: the picture looks blank")
            ink, box = padded_ink, padded_box
        except PictureError:
            if ink is None:
                raise
            close_cropped = False  # the first reading stands
    return ink, box, close_cropped


def mnist_array(img, reopen=None):
    """mnist_input for an already opened PIL.Image.

    Args:
      img: the picture, perhaps decoded at a reduced size (a JPEG draft).
      reopen: for a reduced img, a function(size) decoding the picture again, at least size pixels on its
        longer side (a draft again) or, for size None, at full size.
    Returns:
      float32 [784].
    """
    decoded = {}

    def at(size):
        """The picture decoded at least size pixels large (None: full size); img whenever it will do."""
        if reopen is None or (size is not None and max(img.size) >= size):
            return img
        if size not in decoded:
            decoded[size] = reopen(size)
        return decoded[size]

    try:
        ink, (top, bottom, left, right), close_cropped = _read(grey_levels(img))
    except PictureError:
        fine = at(FINE_SIZE)
        if max(fine.size) <= 2 * WORK_SIZE:
            raise
        # A digit a few pixels tall once reduced to WORK_SIZE (a small digit in a large photo) is lost in
        # the reduction: look again at FINE_SIZE. (Not on a margin: a digit that small is not cropped close.)
        ink, (top, bottom, left, right), close_cropped = _read(grey_levels(fine, FINE_SIZE), margin=False)
    side = max(bottom - top, right - left)
    full_width = img.width * img.info.get("draft_scale", 1)
    if not close_cropped and side < WORK_SIZE // 4 and ink.shape[1] < full_width:
        # A small digit in a large picture (a phone photo of a sheet): reduced it has few pixels left, so
        # read its neighbourhood (three times its size) again from the full-size picture.
        big = at(None)
        # working pixel -> full-size pixel, along each axis (a picture a few pixels wide is 1 or 2 once reduced)
        to_x, to_y = big.width / ink.shape[1], big.height / ink.shape[0]
        box = [round(v * to) for v, to in zip((left - side, top - side, right + side, bottom + side),
                                               (to_x, to_y, to_x, to_y))]
        box = (max(0, box[0]), max(0, box[1]), min(big.width, box[2]), min(big.height, box[3]))
        try:
            closer, closer_box, _ = _read(grey_levels(big.crop(box)))
            ink, (top, bottom, left, right) = closer, closer_box
        except PictureError:
            pass  # keep the first reading
    return to_mnist_field(ink[top:bottom, left:right]).reshape(SIZE * SIZE)
