"""Minimal PNG reading/writing with numpy + zlib (8-bit RGB/RGBA/grey, non-interlaced), for screenshot checks."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def read_png(path: str | Path) -> np.ndarray:
    """(H, W, C) uint8 array of an 8-bit non-interlaced PNG (what Chromium's --screenshot writes)."""
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    if depth != 8 or interlace or color not in _CHANNELS:
        raise ValueError(f"{path}: unsupported PNG (depth {depth}, colour type {color}, interlace {interlace})")
    ch = _CHANNELS[color]
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8).reshape(height, 1 + width * ch)
    out = np.zeros((height, width * ch), dtype=np.uint8)
    prev = bytes(width * ch)
    for y in range(height):
        f = raw[y, 0]
        line = raw[y, 1:]
        if f == 0:
            cur = line
        elif f == 1:  # Sub: running sum of each channel along the row, mod 256
            cur = np.cumsum(line.reshape(width, ch).astype(np.int64), axis=0).astype(np.uint8).ravel()
        elif f == 2:  # Up
            cur = line + out[y - 1] if y else line.copy()
        elif f in (3, 4):  # Average, Paeth: sequential in x, plain Python ints are fastest here
            cur_b = bytearray(line.tobytes())
            up = prev
            for x in range(len(cur_b)):
                left = cur_b[x - ch] if x >= ch else 0
                if f == 3:
                    cur_b[x] = (cur_b[x] + ((left + up[x]) >> 1)) & 255
                else:
                    b = up[x]
                    c = up[x - ch] if x >= ch else 0
                    pa, pb, pc = abs(b - c), abs(left - c), abs(left + b - 2 * c)
                    cur_b[x] = (cur_b[x] + (left if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            cur = np.frombuffer(bytes(cur_b), dtype=np.uint8)
        else:
            raise ValueError(f"{path}: bad PNG filter {f}")
        out[y] = cur
        prev = out[y].tobytes()
    return out.reshape(height, width, ch)


def write_png(path: str | Path, img: np.ndarray) -> None:
    """Write an (H, W, 3|4) uint8 array as PNG (filter 0)."""
    img = np.ascontiguousarray(img, dtype=np.uint8)
    h, w, ch = img.shape
    color = {3: 2, 4: 6}[ch]
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
                          + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))
