"""Files of a run folder that survive being killed: atomic files, a manifest of complete
chunks, and the per-chunk data that the final summary needs.

Every file is written under a temporary name (``.<name>.tmp``) and renamed, so a reader never
sees a partial file under a final name. After all files of a chunk are in place, the chunk is
recorded in ``manifest.json`` (itself replaced atomically) with the SHA-256 of each file; a
resumed run trusts exactly the chunks whose files still hash to the recorded values and
recomputes the others. ``.partial/`` keeps, per chunk, the RTT series of every pair and the
counters that ``summary.json`` is computed from; it is removed when the summary is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from ...errors import RunFolderError
from ._names import MANIFEST, PARTIAL


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary sibling and a rename (fsync'd)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # A full disk or a kill: no temporary file is left behind.
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_table(path: Path, table: pa.Table) -> None:
    """Write a Parquet file through a temporary sibling and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_save_npy(path: Path, array: NDArray[Any]) -> None:
    """Save one array as ``.npy`` through a temporary sibling and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _record_text(index: int, files: dict[str, str]) -> str:
    """One chunk's record as ``json.dumps(manifest, indent=1)`` writes it, two levels down
    (each of its lines two spaces further in)."""
    return f"  {json.dumps(str(index))}: " + json.dumps(files, indent=1).replace("\n", "\n  ")


class Manifest:
    """The record of a run folder's complete chunks.

    Parameters
    ----------
    out : Path
        The run folder.
    scenario_sha256 : str
        Hash of the resolved ``scenario.toml``; a resume needs the same.
    chunks : list of (int, int)
        Step range of every chunk of the run.
    """

    def __init__(self, out: Path, scenario_sha256: str, chunks: list[tuple[int, int]]) -> None:
        self.out = out
        self.scenario_sha256 = scenario_sha256
        self.chunks = chunks
        self.done: dict[int, dict[str, str]] = {}
        # What the last save wrote (see _save): the records, copied, and their JSON text; the
        # scenario hash and chunks, and their JSON text.
        self._saved: dict[int, dict[str, str]] = {}
        self._entry_text: dict[int, str] = {}
        self._head: tuple[str, list[tuple[int, int]], str] | None = None

    @classmethod
    def load(cls, out: Path) -> Manifest:
        """Read ``out/manifest.json``.

        Raises
        ------
        RunFolderError
            If there is no readable manifest.
        """
        path = out / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            m = cls(out, str(data["scenario_sha256"]), [])
            m.chunks = [(int(a), int(b)) for a, b in data["chunks"]]
            m.done = {
                int(k): {str(f): str(h) for f, h in v.items()} for k, v in data["done"].items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RunFolderError(
                f"cannot resume {str(out)!r}: no readable {MANIFEST} ({exc}); "
                "run it again with --force"
            ) from None
        return m

    def save(self) -> None:
        """Replace ``manifest.json`` atomically."""
        self._save(None)

    def record(self, index: int, files: Iterable[Path]) -> None:
        """Mark chunk ``index`` complete with the hashes of its files, and save."""
        self.done[index] = {str(p.relative_to(self.out)): file_sha256(p) for p in files}
        self._save(index)

    def _save(self, changed: int | None) -> None:
        """Write the manifest: ``json.dumps`` of it with ``indent=1``, each chunk's record
        encoded once and reused.

        A day of W4 records 2,980 chunks; encoding every record at every chunk cost 25 ms per
        chunk by the end of the day (41 s of the writer's CPU over the day). ``changed`` is the
        chunk just recorded; any other difference from what the last save wrote (a loaded
        manifest, a record edited in place) is found by comparing the records one by one.
        """
        if self._head is None or self._head[:2] != (self.scenario_sha256, self.chunks):
            data = {
                "scenario_sha256": self.scenario_sha256,
                "chunks": [list(c) for c in self.chunks],
            }
            self._head = (self.scenario_sha256, list(self.chunks), json.dumps(data, indent=1))
        if changed is not None and changed in self.done:
            self._saved[changed] = dict(self.done[changed])
            self._entry_text[changed] = _record_text(changed, self.done[changed])
        if self._saved != self.done:
            for k in self._saved.keys() - self.done.keys():
                del self._saved[k], self._entry_text[k]
            for k, v in self.done.items():
                if self._saved.get(k) != v:
                    self._saved[k] = dict(v)
                    self._entry_text[k] = _record_text(k, v)
        entries = [text for _k, text in sorted(self._entry_text.items())]
        done = "{\n" + ",\n".join(entries) + "\n }" if entries else "{}"
        # The head ends with "\n}": the records go in before it.
        text = self._head[2][:-2] + ',\n "done": ' + done + "\n}\n"
        atomic_write_bytes(self.out / MANIFEST, text.encode())

    def is_complete(self, index: int) -> bool:
        """Whether chunk ``index`` is recorded and all its files still hash as recorded."""
        files = self.done.get(index)
        if not files:
            return False
        for rel, digest in files.items():
            p = self.out / rel
            if not p.is_file() or file_sha256(p) != digest:
                return False
        return True


class ChunkStore:
    """Per-chunk RTT series of every (mode, pair) and counters, in ``.partial/``.

    Series are float64 arrays ``(M, P, Tc)`` [s], one ``.npy`` per chunk, read back a block of
    pairs at a time through memory maps, so neither the run nor its summary holds the whole run
    in memory.
    """

    def __init__(self, out: Path, chunks: list[tuple[int, int]]) -> None:
        self.dir = out / PARTIAL
        self.dir.mkdir(exist_ok=True)
        self.chunks = chunks

    def series_path(self, index: int) -> Path:
        return self.dir / f"series-{index:06d}.npy"

    def extra_path(self, index: int) -> Path:
        return self.dir / f"extra-{index:06d}.npz"

    def write(self, index: int, series: NDArray[np.float64], extra: dict[str, Any]) -> list[Path]:
        """Store one chunk; returns the files written."""
        atomic_save_npy(self.series_path(index), series)
        tmp = self.extra_path(index).with_name(f".{self.extra_path(index).name}.tmp")
        try:
            with open(tmp, "wb") as f:
                np.savez(f, **extra)
            os.replace(tmp, self.extra_path(index))
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return [self.series_path(index), self.extra_path(index)]

    def extra(self, index: int, keys: Sequence[str] | None = None) -> dict[str, NDArray[Any]]:
        """Counters and states of one chunk: all of them, or those of ``keys`` it has (only
        those are read)."""
        with np.load(self.extra_path(index)) as z:
            names = z.files if keys is None else [k for k in keys if k in z.files]
            return {k: z[k] for k in names}

    def rows(self, m: int, p0: int, p1: int, n_t: int) -> NDArray[np.float64]:
        """Series of pairs ``p0 .. p1 - 1`` of mode ``m`` over the whole run, ``(p1-p0, T)``."""
        out = np.empty((p1 - p0, n_t))
        for i, (a, b) in enumerate(self.chunks):
            arr = np.load(self.series_path(i), mmap_mode="r")
            out[:, a:b] = arr[m, p0:p1]
            del arr
        return out

    def remove(self) -> None:
        """Drop ``.partial/``."""
        shutil.rmtree(self.dir, ignore_errors=True)


def verify_run(out: Path) -> None:
    """Check that a finished run folder is whole: every chunk recorded and every recorded file
    present with the hash the manifest gives.

    Raises
    ------
    RunFolderError
        Naming the first chunk or file that is missing or damaged, and the fix.
    """
    if not (out / MANIFEST).is_file():
        raise RunFolderError(
            f"{str(out)!r} has no {MANIFEST}: it is not a complete starmesh run folder"
        )
    try:
        m = Manifest.load(out)
    except RunFolderError:
        raise RunFolderError(
            f"{str(out)!r}: its {MANIFEST} cannot be read; run it again with --force"
        ) from None
    for i, (a, b) in enumerate(m.chunks):
        files = m.done.get(i)
        if not files:
            raise RunFolderError(
                f"{str(out)!r} is incomplete: chunk {i} (steps {a}-{b - 1}) was never written; "
                f"finish it with: starmesh run --resume {out}"
            )
        for rel, digest in files.items():
            if rel.startswith(PARTIAL + "/"):
                continue  # kept only until the summary is written
            p = out / rel
            if not p.is_file():
                raise RunFolderError(
                    f"{str(out)!r} is damaged: {rel} (chunk {i}) is missing; "
                    f"recompute it with: starmesh run --resume {out}"
                )
            if file_sha256(p) != digest:
                raise RunFolderError(
                    f"{str(out)!r} is damaged: {rel} (chunk {i}) differs from what the run wrote; "
                    f"recompute it with: starmesh run --resume {out}"
                )
