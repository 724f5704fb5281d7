"""PNG, JPEG, BMP, TIFF, WebP and GIF through Pillow, with only those plugins allowed to open a file."""

from __future__ import annotations

import io
import math
import struct

import numpy as np
from PIL import Image

from core.imaging.common import DecodedImage, ImageReadError, COLOUR_MODES, EXPECTED, JPEG_EOI, PIL_FORMATS, THUMBNAIL, WEBP_COST, describe, mp, too_big
from core.imaging.limits import GuardedBytes, check_structure
from core.imaging.tiles import assemble, checked_grey, cleaned, finite_range, min_max, reduction_factor, rgb_luma, tile_boxes


def read_pillow(data: bytes, label: str, max_pixels: int, max_output_pixels: int) -> DecodedImage:
    check_structure(data, label)  # counts that bound the decoder's work, before Pillow sees the file
    try:
        try:
            img = _open_pil(data, label, max_pixels, max_output_pixels)
        except OSError:
            # A JPEG cut short (interrupted upload) still holds the top of the
            # picture. Pillow's LOAD_TRUNCATED_IMAGES switch would do, but it is a
            # process-wide global that is racy to toggle per call in a threaded
            # web app and surprising to set for everyone; closing the stream
            # with an EOI marker makes libjpeg finish the image on its own.
            if data[:3] != b"\xff\xd8\xff" or data.endswith(JPEG_EOI) or not _has_scan_data(data):
                raise
            img = _open_pil(data + JPEG_EOI, label, max_pixels, max_output_pixels)
    except ImageReadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageReadError(f"image is too large: {e}") from e
    except Exception as e:
        raise ImageReadError(f"{EXPECTED}; {label} is truncated or corrupt: {e}") from e
    orientation = _exif_orientation(img)
    factor = reduction_factor(img.height, img.width, max_output_pixels)
    grey = _pil_to_grey(img, label, factor)
    thumbnail = _colour_thumbnail(img, data, factor)
    return DecodedImage(checked_grey(_orient(grey, orientation), label), thumbnail)


def _open_pil(data: bytes, label: str, max_pixels: int, max_output_pixels: int) -> Image.Image:
    """Open lazily (header only), check the declared size, then decode (JPEG at a reduced scale
    when it is larger than max_output_pixels: libjpeg then never holds the full size)."""
    try:
        img = Image.open(GuardedBytes(data), formats=PIL_FORMATS)  # every read checks the decode deadline
    except ImageReadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        size = _declared_size(data)
        if size is not None:
            raise too_big(*size, max_pixels) from e
        raise ImageReadError(f"image is too large: {e}") from e
    except Image.UnidentifiedImageError as e:
        raise ImageReadError(_unsupported_tiff(data, label) or f"{EXPECTED}; {describe(data, label)}") from e
    except Exception as e:
        raise ImageReadError(f"{EXPECTED}; {label} is truncated or has a broken header: {e}") from e
    w, h = img.size
    if w * h > max_pixels:
        raise too_big(w, h, max_pixels)
    if img.format == "WEBP" and w * h > max_pixels // WEBP_COST:
        raise ImageReadError(f"WebP image is {w}×{h} = {mp(w * h)}; the limit for WebP is "
                             f"{mp(max_pixels // WEBP_COST)}, because its decoder holds about "
                             f"{4 * WEBP_COST} bytes per pixel (save it as PNG or JPEG)")
    if w == 0 or h == 0:
        raise ImageReadError(f"image in {label} is empty ({w}×{h} pixels)")
    if w * h > max_output_pixels:
        # DCT scaling by 1/2, 1/4 or 1/8; a no-op for every format but JPEG.
        scale = next((s for s in (2, 4, 8) if math.ceil(w / s) * math.ceil(h / s) <= max_output_pixels), 8)
        img.draft(img.mode, (max(1, w // scale), max(1, h // scale)))
    img.load()
    return img


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """Header size of an image Pillow refused as a bomb, only to word the error."""
    for fmt in PIL_FORMATS:
        factory, accept = Image.OPEN.get(fmt, (None, None))
        if factory is not None and (accept is None or accept(data[:16]) is True):
            try:
                return factory(io.BytesIO(data)).size  # plugin constructors skip the bomb check
            except Exception:
                continue
    return None


def _unsupported_tiff(data: bytes, label: str) -> str | None:
    """A precise message for a TIFF of floating-point samples Pillow cannot read (64-bit, 16-bit),
    or None when the data is something else."""
    order = {b"II*\x00": "<", b"MM\x00*": ">"}.get(data[:4])
    if order is None:
        return None
    try:
        fields = _tiff_fields(data, order, {258, 339})  # BitsPerSample, SampleFormat
    except (struct.error, ValueError):
        return None
    bits, sample_format = fields.get(258, 1), fields.get(339, 1)
    if sample_format != 3 or bits == 32:
        return None
    return (f"TIFF in {label} holds {bits}-bit floating-point samples, which are not supported "
            "(32-bit float TIFF is); save it as 32-bit float or 16-bit integer")


def _tiff_fields(data: bytes, order: str, wanted: set[int]) -> dict[int, int]:
    """The first value of the wanted SHORT/LONG tags in a classic TIFF's first directory."""
    offset = struct.unpack_from(order + "I", data, 4)[0]
    count = struct.unpack_from(order + "H", data, offset)[0]
    found = {}
    for entry in range(offset + 2, offset + 2 + 12 * count, 12):
        tag, kind, n = struct.unpack_from(order + "HHI", data, entry)
        if tag in wanted and kind in (3, 4):
            size = 2 if kind == 3 else 4
            where = entry + 8 if n * size <= 4 else struct.unpack_from(order + "I", data, entry + 8)[0]
            found[tag] = struct.unpack_from(order + ("H" if kind == 3 else "I"), data, where)[0]
    return found


def _has_scan_data(data: bytes) -> bool:
    """True when a JPEG got past its headers into compressed pixels (SOS + payload)."""
    sos = data.find(b"\xff\xda")
    if sos < 0 or len(data) < sos + 4:
        return False
    return len(data) > sos + 2 + struct.unpack(">H", data[sos + 2:sos + 4])[0]


def _colour_thumbnail(img: Image.Image, data: bytes, factor: int) -> np.ndarray | None:
    """uint8 RGB, at most 64 px a side, of an image stored in a colour mode; None otherwise.

    Shrinks ``img`` in place, so it must come after the grey image. A JPEG is decoded again from
    ``data`` at 1/8 scale by DCT scaling, which costs less than shrinking the full decode; an image
    read reduced (``factor`` > 1) is first reduced tile by tile, because Pillow would make a full
    premultiplied copy of a large RGBA image to shrink it.
    """
    if img.mode not in COLOUR_MODES:
        return None  # grey modes hold no colour
    try:
        if img.format in ("JPEG", "MPO"):
            img = Image.open(GuardedBytes(data), formats=("JPEG",))
            img.draft("RGB", THUMBNAIL)
        elif factor > 1:
            img = _reduced_by_tiles(img, factor)
        img.thumbnail(THUMBNAIL)
        return np.asarray(img.convert("RGB"))
    except ImageReadError:  # the decode deadline: refused, not merely without colour
        raise
    except Exception:  # colour is a warning, never a reason to refuse an image that reads
        return None


def _reduced_by_tiles(img: Image.Image, factor: int) -> Image.Image:
    """``img`` reduced by box averaging, tile by tile (tiles on multiples of factor: the same
    result as one Image.reduce, without its full-size copies), as RGB or RGBA."""
    mode = "RGBA" if img.mode in ("RGBA", "PA") or "transparency" in img.info else "RGB"
    out = Image.new(mode, (math.ceil(img.width / factor), math.ceil(img.height / factor)))
    for top, bottom, left, right in tile_boxes(img.height, img.width, factor):
        out.paste(img.crop((left, top, right, bottom)).convert(mode).reduce(factor), (left // factor, top // factor))
    return out


def _pil_to_grey(img: Image.Image, label: str, factor: int) -> np.ndarray:
    w, h = img.size
    mode = img.mode

    def raw(top, bottom, left, right) -> np.ndarray:
        return np.asarray(img.crop((left, top, right, bottom)), dtype=np.float64)

    if mode.startswith("I;16"):
        # Full 16-bit range rather than a per-image stretch, so intensities mean
        # the same in every file; 12-bit data in a 16-bit file comes out dim and
        # the model's own normalisation takes care of contrast.
        return assemble(h, w, factor, lambda *box: cleaned(raw(*box) / 65535.0))
    if mode == "I":
        span = finite_range(h, w, raw)
        if span is not None and span[0] >= 0 and span[1] <= 65535:  # 16-bit data in a 32-bit container
            return assemble(h, w, factor, lambda *box: cleaned(raw(*box) / 65535.0))
        return min_max(h, w, factor, raw, label)
    if mode == "F":
        return min_max(h, w, factor, raw, label)
    if mode in ("LA", "La", "RGBA", "RGBa", "PA") or "transparency" in img.info:
        # Composite on black: radiographs have a black background, so clear
        # pixels become background instead of a bright frame that looks like bone.
        def composited(top, bottom, left, right) -> np.ndarray:
            rgba = np.asarray(img.crop((left, top, right, bottom)).convert("RGBA"), dtype=np.float64)
            return cleaned(rgb_luma(rgba[..., :3]) * (rgba[..., 3] / 255.0) / 255.0)
        return assemble(h, w, factor, composited)

    # Pillow's "L" conversion uses ITU-R 601 luma for RGB, CMYK and palettes. 8-bit values need
    # no NaN or range clean-up: float32 straight away is 2.5x faster than via float64.
    def eight_bit(top, bottom, left, right) -> np.ndarray:
        grey = np.asarray(img.crop((left, top, right, bottom)).convert("L"), dtype=np.float32)
        grey /= 255.0
        return grey
    return assemble(h, w, factor, eight_bit)


_ORIENTATIONS = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                 4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
                 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
                 8: Image.Transpose.ROTATE_90}


def _exif_orientation(img: Image.Image) -> Image.Transpose | None:
    """The turn that makes the image upright (EXIF Orientation, as ImageOps.exif_transpose reads it)."""
    try:
        return _ORIENTATIONS.get(img.getexif().get(0x0112, 1))
    except Exception:  # broken EXIF must not reject an otherwise good image
        return None


def _orient(grey: np.ndarray, method: Image.Transpose | None) -> np.ndarray:
    """Turn the float image, not the decoded one: a copy of a large decode would double its memory."""
    if method is None:
        return grey
    return np.array(Image.fromarray(grey).transpose(method), dtype=np.float32)  # mode "F": exact
