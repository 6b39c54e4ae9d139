"""The pages' one way of opening an uploaded picture: a readable picture comes back upright and
loaded; anything else is refused in words naming the file."""

from __future__ import annotations

import numpy as np
import pytest

from app_ui.testing import png_bytes
from app_ui.uploads import UploadError, open_picture


def test_a_picture_opens_loaded_with_its_pixels() -> None:
    a = (np.arange(12 * 20) % 256).astype(np.uint8).reshape(12, 20)
    img = open_picture(png_bytes(a), "a.png", 2**20, 10_000)
    assert img.size == (20, 12) and np.array_equal(np.asarray(img), a)


@pytest.mark.parametrize(("data", "limits", "says"), [
    (b"", (2**20, 10_000), "a.png is empty."),
    (b"x" * (3 * 2**20), (2**20, 10_000), "a.png is 3.0 MB; upload a picture of one digit under 1 MB."),
    (b"this is not a picture", (2**20, 10_000), "a.png is not a picture that can be read"),
    (png_bytes(np.zeros((64, 64), np.uint8))[:60], (2**20, 10_000), "a.png is not a picture"),  # cut short
    (png_bytes(np.zeros((200, 100), np.uint8)), (2**20, 10_000),
     "a.png is 100×200 pixels; upload a smaller picture of one digit."),
])
def test_what_cannot_be_used_is_refused_in_words(data: bytes, limits: tuple[int, int],
                                                 says: str) -> None:
    with pytest.raises(UploadError) as err:
        open_picture(data, "a.png", *limits, of_what=" of one digit", ask="of one digit")
    assert says in str(err.value)
