"""Real evidence files built in memory: images drawn with Pillow, PDFs written with pypdf, and files of an
exact size, for the tests of R6's evidence. The desk decodes every attachment whole, so a test file must be
the real thing, not a signature followed by filler."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image
from pypdf import PdfWriter

PILLOW_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}


def image(content_type: str = "image/png", size: tuple[int, int] = (48, 32)) -> bytes:
    """A small screenshot-like picture, encoded as `content_type` by Pillow."""
    picture = Image.new("RGB", size, (240, 240, 240))
    for x in range(size[0]):
        picture.putpixel((x, size[1] // 2), (200, 30, 30))
    buffer = io.BytesIO()
    picture.save(buffer, format=PILLOW_FORMATS[content_type])
    return buffer.getvalue()


def pdf(pages: int = 1) -> bytes:
    """A PDF of blank pages, written by pypdf."""
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def real_file(content_type: str) -> bytes:
    """A small, whole file of each accepted type."""
    if content_type == "application/pdf":
        return pdf()
    if content_type == "text/plain":
        return "12:01 code requested — none came\n12:21 the number expired\n".encode()
    return image(content_type)


PNG = image("image/png")
SMALLEST_PNG = len(PNG) + 12
"""The smallest size `png_of` makes: the picture and an empty padding chunk."""


def png_of(size: int) -> bytes:
    """A whole PNG of exactly `size` bytes: the picture with a private ancillary chunk of padding before its
    end chunk, which decoders skip (its CRC is right)."""
    padding = b"\x00" * (size - SMALLEST_PNG)
    chunk = (
        struct.pack(">I", len(padding)) + b"paDd" + padding + struct.pack(">I", zlib.crc32(b"paDd" + padding))
    )
    end = PNG.rindex(b"IEND") - 4
    return PNG[:end] + chunk + PNG[end:]


def text_of(size: int) -> bytes:
    """A plain-text log of exactly `size` bytes."""
    line = b"12:01 code requested, none came\n"
    return (line * (size // len(line) + 1))[:size]
