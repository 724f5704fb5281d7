"""Fixtures of the app tests."""

from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage


@pytest.fixture
def media_files(monkeypatch) -> dict[str, bytes]:
    """``{file id: bytes}`` of every file the page hands to Streamlit's media store (images and
    downloads alike), recorded as each AppTest run stores them."""
    recorded: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def recording(self, path_or_data, mimetype, kind, filename=None):
        file_id = original(self, path_or_data, mimetype, kind, filename)
        recorded[file_id] = path_or_data if isinstance(path_or_data, bytes) else Path(path_or_data).read_bytes()
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", recording)
    return recorded


@pytest.fixture
def deferred_downloads(monkeypatch) -> dict[str, Callable]:
    """``{file id: callable}`` of every download the page makes only when clicked (a button whose
    data is a callable), recorded as each AppTest run registers them."""
    recorded: dict[str, Callable] = {}
    original = MediaFileManager.add_deferred

    def recording(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        file_id = original(self, data_callable, mimetype, coordinates, file_name=file_name, **kwargs)
        recorded[file_id] = data_callable
        return file_id

    monkeypatch.setattr(MediaFileManager, "add_deferred", recording)
    return recorded
