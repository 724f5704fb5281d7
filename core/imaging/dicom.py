"""DICOM: sizes checked before anything is inflated or decoded (deflate, JPEG, JPEG 2000, JPEG-LS
and RLE frames), then the modality and VOI LUTs applied and MONOCHROME1 inverted."""

from __future__ import annotations

import functools
import io
import re
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import pydicom
from pydicom import uid
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.encaps import get_frame
from pydicom.filereader import read_dataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.processing import convert_color_space
from pydicom.pixels.utils import as_pixel_options

from core.imaging.common import ImageReadError, DICOM_VRS, EXPECTED, FRAME_BYTES_PER_PIXEL, mp, too_big
from core.imaging.limits import check_jpeg
from core.imaging.tiles import checked_grey, finite_range, min_max, reduction_factor, rgb_luma, scaled_to_range


_JPEG_SYNTAXES = frozenset({uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit, uid.JPEGLossless,
                            uid.JPEGLosslessSV1, uid.JPEGLSLossless, uid.JPEGLSNearLossless})
_J2K_SYNTAXES = frozenset({uid.JPEG2000Lossless, uid.JPEG2000, uid.JPEG2000MCLossless, uid.JPEG2000MC,
                           uid.HTJ2KLossless, uid.HTJ2KLosslessRPCL, uid.HTJ2K})
# Start-of-frame markers: baseline, extended, progressive and lossless (Huffman and arithmetic),
# and JPEG-LS's SOF55. They all hold precision, height, width and components in the same place.
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7})
_RLE_SLACK = 256  # decoded bytes a segment may have beyond Rows × Columns (encoder padding)
_PACKBITS_NO_OPS = re.compile(rb"\x80+")
_LONG_VRS = frozenset(b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())
_HEADER_TAGS = ("Rows", "Columns", "SamplesPerPixel", "BitsAllocated", "NumberOfFrames", "PhotometricInterpretation")


def looks_like_dicom(data: bytes) -> bool:
    """Content sniffing for DICOM, strict enough that random bytes do not pass."""
    if data[128:132] == b"DICM":
        return True
    # Preamble-less files (old ACR-NEMA style) start directly with a group 0002
    # or 0008 element; demand a known VR (explicit) or a length that fits the
    # file (implicit) so pydicom's force=True is never pointed at junk.
    if len(data) < 8:
        return False
    group, elem = struct.unpack("<HH", data[:4])
    if group not in (0x0002, 0x0008) or elem > 0x0100:
        return False
    return data[4:6] in DICOM_VRS or struct.unpack("<I", data[4:8])[0] < len(data)


@dataclass(frozen=True)
class DicomFrame:
    """The first frame of a DICOM file, decoded after every size check, before any LUT.

    Attributes:
        dataset: The parsed file (its tags: rescale, windows, modality).
        pixels: The frame's samples as stored: (H, W) monochrome or (H, W, 3|4) colour.
        photometric: Its photometric interpretation after decoding, upper case.
    """

    dataset: FileDataset
    pixels: np.ndarray
    photometric: str

    @property
    def monochrome(self) -> bool:
        return self.pixels.ndim == 2


def read_dicom(data: bytes, label: str, max_pixels: int, max_bytes: int, max_output_pixels: int) -> np.ndarray:
    frame = decode_dicom_frame(data, label, max_pixels, max_bytes)
    arr, photometric = frame.pixels, frame.photometric
    factor = reduction_factor(arr.shape[0], arr.shape[1], max_output_pixels)
    if not frame.monochrome:
        return checked_grey(dicom_colour_to_grey(arr, photometric, factor, label), label)
    return checked_grey(_dicom_monochrome_to_grey(frame, factor, label), label)


def decode_dicom_frame(data: bytes, label: str, max_pixels: int, max_bytes: int) -> DicomFrame:
    """The guarded path from DICOM bytes to the first frame's samples: the file is parsed (a
    deflated one inflated to at most ``max_bytes``), its declared size, frame bytes and codestream
    header are checked against the limits before anything is decoded.

    Raises:
        ImageReadError: The file cannot be parsed, has no pixel data, is too large, or its pixel
            data cannot be decoded or has an unexpected shape.
    """
    ds, header = _parse_dicom(data, label, max_bytes)
    rows, cols = header["Rows"], header["Columns"]
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise ImageReadError(f"DICOM file has no pixel data ({label} may be a report or "
                             "presentation state, not an image)")
    if not isinstance(rows, int) or not isinstance(cols, int) or not rows or not cols:  # e.g. two values
        raise ImageReadError(f"DICOM image in {label} has no size (Rows={rows}, Columns={cols})")
    if rows * cols > max_pixels:
        raise too_big(int(cols), int(rows), max_pixels)
    ts = _transfer_syntax(ds, label)
    _check_frame_bytes(header, label, max_pixels)
    if ts is not None and ts.is_encapsulated and "PixelData" in ds:
        _check_first_frame_header(ds, header, ts, label)
    arr, photometric = _decode_first_frame(ds, header, ts, label)
    if arr.ndim != 2 and not (arr.ndim == 3 and arr.shape[-1] in (3, 4)):
        raise ImageReadError(f"DICOM image in {label} has unexpected shape {arr.shape}")
    return DicomFrame(ds, arr, photometric)


def _parse_dicom(data: bytes, label: str, max_bytes: int) -> tuple[FileDataset, dict]:
    """The dataset, and the header values the size checks use: pydicom converts values when they
    are first read, so reading them here reports a corrupt one as a parse error."""
    try:
        deflated = _deflated_meta(data)
        if deflated is not None:
            ds = _read_deflated(data, *deflated, label, max_bytes)
        else:
            ds = pydicom.dcmread(io.BytesIO(data), force=data[128:132] != b"DICM")
        return ds, {name: ds.get(name) for name in _HEADER_TAGS}
    except ImageReadError:
        raise
    except Exception as e:
        raise ImageReadError(f"{EXPECTED}; {label} looks like DICOM but cannot be parsed: {e}") from e


def _deflated_meta(data: bytes) -> tuple[int, int] | None:
    """(start, end) of the file meta group when it names the deflated transfer syntax, else None.

    The group is always explicit VR little endian, so its elements can be walked without pydicom,
    whose reader would inflate the rest of the file in one go, however large it turns out.
    """
    start = pos = 132 if data[128:132] == b"DICM" else 0
    syntax = None
    while pos + 8 <= len(data) and struct.unpack_from("<H", data, pos)[0] == 0x0002:
        element = struct.unpack_from("<H", data, pos + 2)[0]
        if data[pos + 4:pos + 6] in _LONG_VRS:
            header, length = 12, struct.unpack_from("<I", data, pos + 8)[0] if pos + 12 <= len(data) else 0
        else:
            header, length = 8, struct.unpack_from("<H", data, pos + 6)[0]
        if element == 0x0010:
            syntax = data[pos + header:pos + header + length].rstrip(b"\x00 ")
        pos += header + length
    return (start, pos) if syntax == uid.DeflatedExplicitVRLittleEndian.encode() else None


def _read_deflated(data: bytes, meta_start: int, meta_end: int, label: str, max_bytes: int) -> FileDataset:
    """A deflated-transfer-syntax file, inflated to at most max_bytes.

    Rows and Columns are inside the deflated stream, so they cannot bound it before inflating;
    the upload limit can: an uncompressed file of that size could not have been sent either.
    """
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        body = inflater.decompress(data[meta_end:], max_bytes + 1)  # never more than the cap, whatever the ratio
    except zlib.error as e:
        raise ImageReadError(f"deflated DICOM in {label} cannot be inflated: {e}") from e
    if len(body) > max_bytes:
        raise ImageReadError(f"deflated DICOM in {label} inflates to more than {max_bytes / 2**20:.1f} MB "
                             f"({max_bytes:,} bytes, the upload limit); it was not inflated further")
    meta = read_dataset(io.BytesIO(data[meta_start:meta_end]), is_implicit_VR=False, is_little_endian=True)
    dataset = read_dataset(io.BytesIO(body), is_implicit_VR=False, is_little_endian=True)
    return FileDataset("", dataset, preamble=data[:128] if meta_start else None,
                       file_meta=FileMetaDataset(meta), is_implicit_VR=False, is_little_endian=True)


def _transfer_syntax(ds, label: str):
    ts = getattr(ds, "file_meta", {}).get("TransferSyntaxUID")
    if ts is not None and not getattr(ts, "is_transfer_syntax", False):  # ts.is_compressed would raise
        raise ImageReadError(f"DICOM file in {label} names an unknown transfer syntax "
                             f"'{str(ts)[:64]}', so its pixel data cannot be decoded")
    if ts is not None and ts.is_compressed:
        try:
            available = get_decoder(ts).is_available
        except NotImplementedError:
            available = False
        if not available:
            raise ImageReadError(f"DICOM pixel data in {label} is compressed as "
                                 f"'{ts.name}' ({ts}), which cannot be decoded here")
    return ts


def _check_frame_bytes(header: dict, label: str, max_pixels: int) -> None:
    """Refuse a frame whose decoded array would be too large, before decoding it: the pixel limit
    alone lets a 60 MP frame of 3 × 64-bit samples through, 1.4 GB."""
    limit = FRAME_BYTES_PER_PIXEL * max_pixels
    rows, cols, bits = header["Rows"], header["Columns"], header["BitsAllocated"]
    samples = 1 if header["SamplesPerPixel"] is None else header["SamplesPerPixel"]
    if not isinstance(samples, int) or not isinstance(bits, int) or not 0 < bits <= 64:
        return  # pydicom refuses these itself, before decoding
    itemsize = next(size for size in (1, 2, 4, 8) if bits <= 8 * size)  # numpy's container per sample
    size = rows * cols * max(samples, 1) * itemsize
    if size > limit:
        raise ImageReadError(f"DICOM image in {label} would decode to {size / 2**20:.0f} MB "
                             f"({cols}×{rows} × {samples} sample(s) × {bits} bits allocated); "
                             f"the limit is {limit / 2**20:.0f} MB per frame ({mp(max_pixels)} × "
                             f"{FRAME_BYTES_PER_PIXEL} bytes)")


def _check_first_frame_header(ds, header: dict, ts, label: str) -> None:
    """The codestream's own header must describe the image the DICOM header does: the decoder
    allocates what the codestream says, so a mismatch is refused before decoding."""
    if ts in _JPEG_SYNTAXES:
        what, parse = "JPEG", _jpeg_header
    elif ts in _J2K_SYNTAXES:
        what, parse = "JPEG 2000", _j2k_header
    elif ts == uid.RLELossless:
        what, parse = "RLE", None
    else:
        return
    rows, cols = header["Rows"], header["Columns"]
    frame = _first_frame(ds, header, ts, label)
    try:
        if parse is None:
            _check_rle_frame(frame, rows * cols, label)
            return
        width, height, components = parse(frame)
        if parse is _jpeg_header:  # scans and segments bound the decoder's work, as for a JPEG upload
            check_jpeg(frame, label, "the first frame's JPEG codestream")
    except ImageReadError:
        raise
    except (ValueError, struct.error) as e:
        raise ImageReadError(f"DICOM '{ts.name}' pixel data in {label} cannot be decoded: "
                             f"the first frame has no readable {what} header ({e})") from e
    samples = 1 if header["SamplesPerPixel"] is None else header["SamplesPerPixel"]
    if (width, height) != (cols, rows) or components != samples:
        raise ImageReadError(
            f"DICOM '{ts.name}' pixel data in {label} does not match its header: the {what} codestream "
            f"of the first frame is {width}×{height} with {components} component(s), but Columns × Rows "
            f"is {cols}×{rows} with {samples} sample(s) per pixel; refused before decoding")


def _first_frame(ds, header: dict, ts, label: str) -> bytes:
    """The first frame's codestream: the fragments pydicom's decoder would join for it."""
    try:
        frames = int(header["NumberOfFrames"] or 1)
        extended = None
        if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
            extended = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
        return get_frame(ds.PixelData, 0, number_of_frames=frames, extended_offsets=extended)
    except Exception as e:
        raise ImageReadError(f"DICOM '{ts.name}' pixel data in {label} cannot be decoded: {e}") from e


def _jpeg_header(frame: bytes) -> tuple[int, int, int]:
    """(width, height, components) from a JPEG or JPEG-LS start-of-frame segment."""
    if frame[:2] != b"\xff\xd8":
        raise ValueError("no JPEG start-of-image marker")
    pos = 2
    while pos + 4 <= len(frame):
        if frame[pos] != 0xFF:
            raise ValueError(f"no JPEG marker at byte {pos}")
        marker = frame[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
        elif marker in _JPEG_SOF:
            height, width, components = struct.unpack_from(">HHB", frame, pos + 5)
            return width, height, components
        elif marker in (0xDA, 0xD9):
            raise ValueError("a scan or the end came before any start-of-frame marker")
        elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            pos += 2
        else:
            pos += 2 + struct.unpack_from(">H", frame, pos + 2)[0]
    raise ValueError("no JPEG start-of-frame marker")


def _j2k_header(frame: bytes) -> tuple[int, int, int]:
    """(width, height, components) from a JPEG 2000 codestream's SIZ marker (raw or in a JP2 file)."""
    codestream = _jp2_codestream(frame) if frame[4:8] == b"jP  " else frame
    if codestream[:4] != b"\xff\x4f\xff\x51":
        raise ValueError("no JPEG 2000 SOC and SIZ markers")
    x_size, y_size, x_offset, y_offset = struct.unpack_from(">IIII", codestream, 8)
    components = struct.unpack_from(">H", codestream, 40)[0]
    return x_size - x_offset, y_size - y_offset, components


def _jp2_codestream(data: bytes) -> bytes:
    """The contiguous codestream box ('jp2c') of a JP2 file."""
    pos = 0
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if length == 1:
            length, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif length == 0:
            length = len(data) - pos
        if kind == b"jp2c":
            return data[pos + header:pos + length]
        if length < header:
            break
        pos += length
    raise ValueError("no JP2 codestream box")


def _check_rle_frame(frame: bytes, plane: int, label: str) -> None:
    """Each RLE segment must decode to Rows × Columns bytes (plus encoder padding). pydicom's
    decoder grows its output until the input ends, so 2 input bytes can become 128: count first,
    decode after. A segment that is too short is refused here too, saving pydicom a second walk
    (a 50 MB segment of one-byte literals takes seconds to walk)."""
    count = struct.unpack_from("<I", frame)[0]
    offsets = list(struct.unpack_from("<15I", frame, 4)[:min(count, 15)])
    for number, (start, end) in enumerate(zip(offsets, offsets[1:] + [len(frame)]), start=1):
        decoded = _packbits_length(frame, start, min(end, len(frame)), plane + _RLE_SLACK)
        if decoded > plane + _RLE_SLACK:
            raise ImageReadError(f"DICOM 'RLE Lossless' pixel data in {label} does not match its header: "
                                 f"segment {number} of the first frame decodes to more than Rows × Columns "
                                 f"= {plane:,} bytes; refused before decoding")
        if decoded < plane:
            raise ImageReadError(f"DICOM 'RLE Lossless' pixel data in {label} does not match its header: "
                                 f"segment {number} of the first frame decodes to {decoded:,} bytes, fewer than "
                                 f"Rows × Columns = {plane:,}")


def _packbits_length(data: bytes, pos: int, end: int, limit: int) -> int:
    """Bytes a PackBits run decodes to, counted no further than just past limit (a tight loop:
    a 50 MB segment of one-byte literals is 25 million turns)."""
    decoded = 0
    while pos < end and decoded <= limit:
        header = data[pos]
        if header < 128:  # a literal run of header + 1 bytes
            decoded += header + 1
            pos += header + 2
        elif header > 128:  # one byte repeated 257 - header times
            decoded += 257 - header
            pos += 2
        elif pos + 1 < end and data[pos + 1] == 128:  # 128 is a no-op; skip a stretch of them at C speed
            pos = _PACKBITS_NO_OPS.match(data, pos, end).end()
        else:
            pos += 1
    return decoded - max(0, pos - end)  # a last literal cut short by the end of the segment


def _decode_first_frame(ds, header: dict, ts, label: str) -> tuple[np.ndarray, str]:
    """The first frame's pixels as stored (YCbCr is not converted here), and its photometric
    interpretation after decoding. Only the first frame of a multi-frame file (cine,
    tomosynthesis) is decoded: it is the one a radiograph viewer shows first, and decoding every
    frame could use many times max_pixels of memory."""
    what = f"'{ts.name}' " if ts is not None and ts.is_compressed else ""
    try:
        if ts is None:
            raise ValueError("the file meta has no (0002,0010) Transfer Syntax UID")
        index = 0 if int(header["NumberOfFrames"] or 1) > 1 else None
        arr, properties = get_decoder(ts).as_array(ds, index=index, validate=True,
                                                   **as_pixel_options(ds, as_rgb=False))
    except Exception as e:
        raise ImageReadError(f"DICOM {what}pixel data in {label} cannot be decoded: {e}") from e
    photometric = str(properties.get("photometric_interpretation")
                      or header["PhotometricInterpretation"] or "MONOCHROME2").upper()
    return arr, photometric


def dicom_colour_to_grey(arr: np.ndarray, photometric: str, factor: int, label: str) -> np.ndarray:
    # YCbCr becomes RGB as pydicom would convert it, a tile at a time (its converter makes float32
    # copies of the whole image); LUTs only apply to monochrome.
    ybr = photometric in ("YBR_FULL", "YBR_FULL_422") and arr.dtype == np.uint8 and arr.shape[-1] == 3

    def luma(top, bottom, left, right) -> np.ndarray:
        rgb = arr[top:bottom, left:right, :3]
        if ybr:
            rgb = convert_color_space(rgb, "YBR_FULL", "RGB")
        return rgb_luma(rgb.astype(np.float64))
    return min_max(arr.shape[0], arr.shape[1], factor, luma, label)


def modality_values(frame: DicomFrame, top: int, bottom: int, left: int, right: int, label: str) -> np.ndarray:
    """One tile of a monochrome frame after the modality LUT (rescale slope and intercept, or the
    file's modality LUT), as float64 in the file's own units (Hounsfield units for CT).

    Raises:
        ImageReadError: The rescale or modality LUT cannot be applied.
    """
    ds = frame.dataset
    try:
        return apply_modality_lut(frame.pixels[top:bottom, left:right], ds).astype(np.float64)
    except Exception as e:  # unlike a window, a wrong rescale could silently invert the image
        raise ImageReadError(f"DICOM rescale (RescaleSlope '{ds.get('RescaleSlope')}', RescaleIntercept "
                             f"'{ds.get('RescaleIntercept')}') or modality LUT in {label} is unusable: {e}") from e


def _dicom_monochrome_to_grey(frame: DicomFrame, factor: int, label: str) -> np.ndarray:
    arr, ds = frame.pixels, frame.dataset
    invert = frame.photometric == "MONOCHROME1"  # MONOCHROME1 stores bone dark

    def values(top, bottom, left, right, window=True) -> np.ndarray:
        tile = modality_values(frame, top, bottom, left, right, label)
        if window:
            tile = apply_voi_lut(tile, ds, index=0)
        tile = np.asarray(tile, dtype=np.float64)
        return -tile if invert else tile

    height, width = arr.shape
    if not _window_usable(ds):  # a NaN centre or an infinite width would make every pixel NaN or one grey
        values = functools.partial(values, window=False)
    try:
        span = finite_range(height, width, values)
    except ImageReadError:
        raise
    except Exception:  # a malformed window is better ignored than fatal: the image is still valid
        span = None
    if span is None:  # a window that leaves no finite value is ignored too, as documented
        values = functools.partial(values, window=False)
        span = finite_range(height, width, values)
    return scaled_to_range(height, width, factor, values, span, label)


def _window_usable(ds) -> bool:
    """False when the first VOI window (the one applied) has a centre or width that is not a finite
    number; True otherwise, also when there is no window or a VOI LUT sequence takes precedence."""
    if "VOILUTSequence" in ds:
        return True
    try:
        center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
        if center is None or width is None:
            return True
        first = [float(np.ravel(np.asarray(v, dtype=np.float64))[0]) for v in (center, width)]
    except Exception:  # unreadable: apply_voi_lut raises and the window is ignored there
        return True
    return bool(np.isfinite(first).all())
