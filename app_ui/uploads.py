"""Uploaded pictures: open one safely (size limits, EXIF orientation) or say in words why not."""

from __future__ import annotations

import io

from PIL import Image, ImageOps, UnidentifiedImageError


class UploadError(ValueError):
    """An uploaded file that cannot be used as a picture; the message is for the user."""


def open_picture(data: bytes, name: str, max_bytes: int, max_pixels: int, of_what: str = "",
                 ask: str = "photograph") -> Image.Image:
    """The uploaded file `data` (called `name`) as a loaded PIL image turned upright by its EXIF
    orientation; UploadError in words when it is empty, over `max_bytes` or `max_pixels`, or
    not readable PNG/JPG data. `of_what` ends "a picture…" in the messages (e.g. " of one
    digit"); `ask` ends "Upload a PNG or JPG …"."""
    if not data:
        raise UploadError(f"{name} is empty.")
    if len(data) > max_bytes:
        raise UploadError(f"{name} is {len(data) / 2**20:.1f} MB; upload a picture{of_what} "
                          f"under {max_bytes // 2**20} MB.")
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > max_pixels:
                raise UploadError(f"{name} is {img.width}×{img.height} pixels; upload a "
                                  f"smaller picture{of_what}.")
            img.load()
            return ImageOps.exif_transpose(img)
    except UploadError:
        raise
    except Image.DecompressionBombError:
        raise UploadError(f"{name} is too large a picture; upload a smaller picture"
                          f"{of_what}.") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise UploadError(f"{name} is not a picture that can be read: its contents are not "
                          f"PNG or JPG image data, or are damaged. Upload a PNG or JPG "
                          f"{ask}.") from None
