"""The image pipeline example (functions/src/images, C over libpng) as the seed runs it: a Python
producer chains images.resize -> images.watermark -> images.store on a real PNG file."""

import shutil
import struct
import zlib

import pytest
from celery import chain

from helpers import REPO, RESULT_TIMEOUT

IMAGES = REPO / "functions" / "libimages.so"


def write_png(path, width, height, pixel):
    """An 8-bit RGB PNG whose pixel (x, y) is pixel(x, y) -> (r, g, b)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + bytes(c for x in range(width) for c in pixel(x, y)) for y in range(height))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def read_png(path):
    """(width, height, rows of RGBA tuples) of an 8-bit RGBA or RGB PNG, any filter."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    bpp = 4 if color == 6 else 3
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append([tuple(line[x * bpp:(x + 1) * bpp]) + ((255,) if bpp == 3 else ()) for x in range(width)])
        prev = line
    return width, height, rows


@pytest.fixture
def host(serve, make_functions):
    if not IMAGES.is_file():
        pytest.fail(f"{IMAGES} is missing (run `make functions`)")
    return serve(make_functions(files={"libimages.so": IMAGES.read_bytes()}), "-c", "2")


def test_resize_watermark_store_chain_on_a_real_png(host, celery_app, tmp_path):
    source = tmp_path / "in" / "cat.png"
    source.parent.mkdir()
    write_png(source, 400, 200, lambda x, y: (200, 40, 40) if x < 200 else (40, 40, 200))
    store = tmp_path / "out"
    s = celery_app.signature
    result = chain(s("images.resize", args=(str(source), 100), queue="images.resize"),
                   s("images.watermark"), s("images.store", args=(str(store),))).apply_async()
    stored = result.get(timeout=RESULT_TIMEOUT)

    assert stored["path"] == str(store / "cat.png") and (stored["width"], stored["height"]) == (100, 50)
    assert stored["bytes"] == (store / "cat.png").stat().st_size
    assert result.parent.get(timeout=RESULT_TIMEOUT) == str(tmp_path / "in" / "cat.resized.wm.png")
    width, height, rows = read_png(store / "cat.png")
    assert (width, height) == (100, 50)
    # Left half red, right half blue, resized; the bottom-right quarter is striped lighter.
    assert rows[10][10] == (200, 40, 40, 255) and rows[10][90] == (40, 40, 200, 255)
    # A stripe pixel ((x + y) // 4 even) is halfway to white, the pixel between stripes is not.
    assert rows[48][96] == (148, 148, 228, 255)  # (40 + 255 + 1) // 2, (200 + 255 + 1) // 2
    assert rows[49][99] == (40, 40, 200, 255)


def test_a_missing_image_fails_the_chain_with_file_not_found(host, celery_app, tmp_path):
    s = celery_app.signature
    result = chain(s("images.resize", args=(str(tmp_path / "nope.png"),), queue="images.resize"),
                   s("images.watermark"), s("images.store", args=(str(tmp_path),))).apply_async()
    with pytest.raises(FileNotFoundError, match="nope.png"):
        result.get(timeout=RESULT_TIMEOUT)
