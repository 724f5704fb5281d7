"""The bytes behind what a page shows or offers, from Streamlit's in-memory media store.

AppTest builds a fresh store per run and drops it afterwards; the ``media_files`` fixture
(tests/app/conftest.py) records what each run put in it, through the store's own method.
"""

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image


def media_id(url: str) -> str:
    """The media file id a rendered element's URL names (``/media/<id>.png``)."""
    return Path(url).stem


def download_data(app, label: str, media: dict[str, bytes]) -> bytes:
    """The bytes behind the first rendered download button labelled ``label``."""
    buttons = [button for button in app.get("download_button") if button.label == label]
    assert buttons, f"no download button {label!r}"
    file_id = media_id(buttons[0].proto.url)
    assert file_id in media, f"the data of {label!r} ({buttons[0].proto.url}) is not in the media store"
    return media[file_id]


def image_pixels(app, index: int, media: dict[str, bytes]) -> np.ndarray:
    """The decoded pixels of the page's ``index``-th st.image."""
    url = app.image[index].proto.imgs[0].url
    assert media_id(url) in media, f"image {index} ({url}) is not in the media store"
    return np.asarray(Image.open(io.BytesIO(media[media_id(url)])))


def deferred_data(app, label: str, recorded: dict[str, Callable]) -> bytes:
    """What the button labelled ``label`` would download if clicked now (its callable, run)."""
    buttons = [button for button in app.get("download_button") if button.label == label]
    assert buttons, f"no download button {label!r}"
    file_id = buttons[0].proto.deferred_file_id
    assert file_id in recorded, f"{label!r} is not a deferred download"
    return recorded[file_id]()
