"""Tiny but structurally valid sample files for upload tests.

Each builder returns fresh bytes: a one-page PDF with a correct xref table (ends with
``%%EOF\\n``), a 1×1 RGB PNG with correct CRCs, and an 8×8 grey baseline JPEG.
"""

from __future__ import annotations

import struct
import zlib


def tiny_pdf(catalog_extra: bytes = b"", extra_objects: tuple[bytes, ...] = ()) -> bytes:
    """A minimal one-page PDF 1.4 with correct xref offsets, ending with ``%%EOF\\n``.

    ``catalog_extra`` is added to the document catalog (e.g. ``b"/OpenAction 6 0 R"``) and
    ``extra_objects`` are appended as objects 6, 7 ... (each a whole object body)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + b">>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        None,  # content stream, built below
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        *extra_objects,
    ]
    content = b"BT /F1 12 Tf 20 50 Td (Sample referral document) Tj ET"
    objects[3] = b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream"
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        assert body is not None
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n" % (len(objects) + 1)
    out += b"0000000000 65535 f \n"
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def object_stream(*bodies: bytes) -> bytes:
    """An object stream (PDF 1.5, /Type /ObjStm) holding ``bodies``, Flate-compressed: where
    producers put dictionaries, out of sight of a plain byte search."""
    header = b" ".join(b"%d %d" % (100 + i, i * 200) for i in range(len(bodies))) + b" "
    payload = header + b"".join(body.ljust(200) for body in bodies)
    packed = zlib.compress(payload)
    return (
        b"<< /Type /ObjStm /N %d /First %d /Filter /FlateDecode /Length %d >>\nstream\n"
        % (len(bodies), len(header), len(packed))
        + packed
        + b"\nendstream"
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def tiny_png() -> bytes:
    """A 1×1 RGB PNG (one red pixel)."""
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")  # filter byte 0, then R G B
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", pixels)
        + _png_chunk(b"IEND", b"")
    )


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def tiny_jpeg() -> bytes:
    """An 8×8 mid-grey baseline JFIF JPEG (one block, DC only)."""
    app0 = _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    dqt = _segment(0xDB, b"\x00" + b"\x01" * 64)
    sof0 = _segment(0xC0, b"\x08\x00\x08\x00\x08\x01\x01\x11\x00")
    one_code = b"\x01" + b"\x00" * 15 + b"\x00"  # one code of length 1, for symbol 0
    dht_dc = _segment(0xC4, b"\x00" + one_code)  # DC table 0: category 0 (difference 0)
    dht_ac = _segment(0xC4, b"\x10" + one_code)  # AC table 0: EOB
    sos = _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
    scan = b"\x3f"  # bits 0 (DC=0) 0 (EOB), padded with ones
    return b"\xff\xd8" + app0 + dqt + sof0 + dht_dc + dht_ac + sos + scan + b"\xff\xd9"
