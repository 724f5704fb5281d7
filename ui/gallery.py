"""The sample gallery: six FracAtlas test X-rays to try, each loaded like an upload with one click."""

from __future__ import annotations

import streamlit as st

from core.samples import Sample, SampleManifestError, load_samples, sample_bytes, sample_thumbnail
from ui import state
from ui.widgets import markdown_literal

GALLERY_LABEL = "Try a sample X-ray"
THUMBNAIL_PX = 136  # six in a row fit the wide layout at 1440 px; two a row on a 390 px phone
SAMPLES_CREDIT = ("FracAtlas test images, never used in training (Abedeen et al., *Scientific Data* 2023; "
                  "CC BY 4.0; downscaled). The captions are the radiologists' labels.")


@st.cache_data(show_spinner=False)
def _thumbnail(sample: Sample) -> bytes:
    return sample_thumbnail(sample, THUMBNAIL_PX)


def sample_key(sample: Sample) -> str:
    """The sample's key in a page's list of uploads (and the stem of its button's key)."""
    return f"sample:{sample.file_name}"


def _load_sample(page: str, sample: Sample) -> None:
    state.add_upload(page, sample.name, sample_bytes(sample), sample_key(sample))


def gallery_ui(page: str) -> None:
    """The samples as thumbnails, each with a button that adds it to ``page``'s uploads.

    Inside an expander, open while the page has no uploads; the thumbnails wrap onto more rows
    on a narrow screen.
    """
    loaded = {upload.key for upload in state.uploads(page)}
    with st.expander(GALLERY_LABEL, expanded=not loaded, icon=":material/photo_library:"):
        try:
            thumbnails = {sample: _thumbnail(sample) for sample in load_samples()}  # re-read only when rebuilt
        except SampleManifestError as error:  # the app works without its samples; say why they are missing
            st.warning(markdown_literal(f"The sample X-rays are unavailable: {error}"), icon=":material/warning:")
            return
        with st.container(horizontal=True, gap="small"):
            for sample, thumbnail in thumbnails.items():
                with st.container(width=THUMBNAIL_PX, gap="small"):
                    st.image(thumbnail, width=THUMBNAIL_PX, alt=sample.caption)
                    added = sample_key(sample) in loaded
                    st.button(sample.caption, key=f"{page}-{sample_key(sample)}", width="stretch",
                              on_click=_load_sample, args=(page, sample), disabled=added,
                              help="Already loaded on this page" if added else f"Classify this X-ray ({sample.file_name})")
        st.caption(SAMPLES_CREDIT)
