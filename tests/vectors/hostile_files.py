"""Small files that are expensive to extract text from, the kind a hostile uploader sends."""

from __future__ import annotations

import zlib


def slow_pdf(text_operations: int) -> bytes:
    """A one-page PDF whose compressed content stream repeats a text operation: about 7 KB per
    100,000 operations, each of which pypdf interprets in Python (seconds of CPU per 100,000)."""
    content = b"BT /F1 12 Tf " + b"1 0 0 1 10 10 Tm (ab) Tj " * text_operations + b"ET"
    stream = zlib.compress(content, 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> "
        b"/Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def large_html(words: int) -> bytes:
    """HTML whose parse holds several times its size in memory."""
    return b"<html><body><p>" + b"word " * words + b"</p></body></html>"
