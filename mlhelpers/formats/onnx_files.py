"""Where ONNX graphs live on disk: plain ``x.onnx``, or gzip-compressed ``x.onnx.gz`` when large.

``save_onnx(model, path, compress=None) -> Path`` writes one or the other (and removes the other variant);
``onnx_file(folder)`` finds a model folder's graph either way, ``remove_onnx(folder)`` deletes it, and
``plain_onnx(path)`` hands a reader a plain file (a decompressed temporary copy for ``.gz``). The predictor
that serves the graphs is ``mlhelpers.formats.onnx_io.OnnxPredictor``.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from mlhelpers.core.artifacts import artifact_file, atomic_path
from mlhelpers.formats.skops_io import ModelFileError, existing_file

# Graphs over this size are written gzip-compressed (``model.onnx.gz``). Tree ensembles compress ~3x (double
# thresholds and varint node ids repeat a lot): the 500-tree Ames forest's 20.8 MB graph became 7.3 MB at level 6,
# written in 1.8-5.6 s and read back in 0.09-0.33 s on a busy machine, which is what brings a forest's graph
# under a tenth of its pickle (16.7x against 5.9x plain). Below
# 1 MB the saving is under ~0.7 MB, which no disk notices, while a plain .onnx opens as is in every ONNX tool
# (Netron, onnx.load); gzip (not zlib or lzma, 4.25 MB but 20 s) so anyone can `gunzip` the file.
COMPRESS_ONNX_ABOVE_BYTES = 1_000_000
GZIP_SUFFIX = ".gz"


def is_onnx_file(path: str | Path) -> bool:
    """Whether ``path`` names an ONNX graph, plain (``.onnx``) or compressed (``.onnx.gz``)."""
    return Path(path).name.endswith((".onnx", ".onnx" + GZIP_SUFFIX))


def save_onnx(model: Any, path: str | Path, compress: bool | None = None) -> Path:
    """Write an ONNX ModelProto atomically to ``path`` (``x.onnx``), or gzip-compressed to ``x.onnx.gz``
    when ``compress`` (None: when the graph is over ``COMPRESS_ONNX_ABOVE_BYTES``); the other variant, left
    by an earlier save, is removed so a folder never holds two graphs. Returns the path written."""
    import gzip

    path = Path(path)
    path = path.with_name(path.name.removesuffix(GZIP_SUFFIX))
    data = model.SerializeToString()
    if compress is None:
        compress = len(data) > COMPRESS_ONNX_ABOVE_BYTES
    target, other = (path.with_name(path.name + GZIP_SUFFIX), path) if compress else \
        (path, path.with_name(path.name + GZIP_SUFFIX))
    with atomic_path(target) as temp:
        # mtime=0: the same model gives the same bytes (the gzip header would otherwise stamp the time)
        temp.write_bytes(gzip.compress(data, compresslevel=6, mtime=0) if compress else data)
    other.unlink(missing_ok=True)
    return target


def onnx_file(folder: str | Path) -> Path | None:
    """The exported graph in a model folder: ``model.onnx.gz`` or ``model.onnx`` (as older exports wrote
    it), None when there is neither."""
    for name in ("model_onnx_gz", "model_onnx"):
        if (Path(folder) / artifact_file(name)).is_file():
            return Path(folder) / artifact_file(name)
    return None


def remove_onnx(folder: str | Path) -> None:
    """Delete a model folder's graph, compressed or plain (a stale one must never ship)."""
    for name in ("model_onnx_gz", "model_onnx"):
        (Path(folder) / artifact_file(name)).unlink(missing_ok=True)


@contextmanager
def plain_onnx(path: str | Path) -> Iterator[Path]:
    """``path`` as a plain ``.onnx`` file: itself, or for ``x.onnx.gz`` a decompressed copy in a temporary folder
    (removed afterwards). A damaged compressed file raises ``ModelFileError`` naming it and the fix."""
    import gzip
    import shutil
    import tempfile
    import zlib

    path = existing_file(path)
    if not path.name.endswith(GZIP_SUFFIX):
        yield path
        return
    # Decompressed to a file, streamed, not into memory: onnxruntime reads a file into its own buffer, so bytes
    # handed over would be held twice while loading (+21 MB at the Ames forest's loading peak, 349 vs 328 MB).
    with tempfile.TemporaryDirectory(prefix="mlh-onnx-") as folder:
        plain = Path(folder) / path.name.removesuffix(GZIP_SUFFIX)
        try:
            with gzip.open(path, "rb") as packed, open(plain, "wb") as out:
                shutil.copyfileobj(packed, out, 1 << 20)
        except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError; a cut file an EOFError
            raise ModelFileError(f"{path} is not a readable gzip-compressed ONNX model ({type(error).__name__}: "
                                 f"{error or 'the file ends early'}); it is damaged or cut short: export the model "
                                 "again (the export step, or `mlh optimize`).") from None
        yield plain
