"""``OUTPUT.parts/`` of a chunked render (``--workers``): the saved chunk plan, each finished
chunk's files (flushed, checksummed and listed in ``done.json`` as they land) and the lock.
A resume keeps the plan it finds and every listed file that is still whole."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from dreamvideo.errors import UserError
from dreamvideo.media.checkpoint import CHUNKED, first_difference, parts_dir, read_json, sha256_of
from dreamvideo.media.paths import RenderLock, replace_into, temp_path, write_atomic
from dreamvideo.scale.chunks import Chunk

DONE_FILE = "done.json"  # the finished chunks' files with their sizes and checksums


class ChunkStore:
    """``OUTPUT.parts/`` of a chunked render: the plan, each finished chunk's files, the lock."""

    def __init__(
        self,
        output: Path,
        identity: dict[str, Any],
        chunks: list[Chunk],
        resume: bool,
        restart: bool,
        suffixes: dict[str, str],
    ):
        """``chunks``: the plan of a new render; a resumed one keeps its saved plan.
        ``suffixes``: each part's container ("head", "main", "tail")."""
        self.output, self.dir, self.chunks = output, parts_dir(output), chunks
        self.suffixes = suffixes
        identity = json.loads(json.dumps(identity))
        if self.dir.is_symlink() or (self.dir.exists() and not self.dir.is_dir()):
            raise UserError(f"{self.dir} is not a folder dreamvideo made; move it away first")
        if self.dir.exists():
            self.lock = RenderLock(self.dir / "lock", output)
            if restart:
                self.lock.release()
                shutil.rmtree(self.dir)
        self.notes: list[str] = []
        if resume and self.dir.exists():
            if not (self.dir / CHUNKED).is_file():
                self.lock.release()
                kind = "single-process render" if (self.dir / "run.json").is_file() else "render"
                raise UserError(
                    f"{self.dir} holds a {kind} that was not chunked; resume it without "
                    "--workers, or use --restart"
                )
            saved = read_json(self.dir / CHUNKED, "the chunked render's settings")
            plan = saved.pop("chunks", None) if isinstance(saved, dict) else None
            if saved != identity:
                self.lock.release()
                raise UserError(
                    f"the unfinished render in {self.dir} was made with other settings "
                    f"({first_difference(saved, identity)}); repeat the original command "
                    "with --resume, or use --restart"
                )
            try:
                self.chunks = _chunks(plan, identity.get("first"), identity.get("last"))
            except UserError:
                self.lock.release()
                raise
            self.done = self._intact()
        elif resume:
            raise UserError(
                f"nothing to resume for {output}: no unfinished render in {self.dir}; "
                "run without --resume"
            )
        elif self.dir.exists():
            self.lock.release()
            raise UserError(
                f"{self.dir} holds an unfinished render of {output}; add --resume to "
                "continue it or --restart to discard it"
            )
        else:
            self.dir.mkdir()
            self.lock = RenderLock(self.dir / "lock", output)
            planned = [[c.start, c.end, c.lead] for c in chunks]
            write_atomic(
                self.dir / CHUNKED, json.dumps({**identity, "chunks": planned}, indent=1).encode()
            )
            self.done = {}
            self._save()

    def _intact(self) -> dict[str, dict[str, Any]]:
        """The listed chunks and seams whose files are all there and whole; the others (an
        entry someone edited included) are rendered again."""
        listed = read_json(self.dir / DONE_FILE, "the list of finished chunks")
        if not isinstance(listed, dict):
            listed = {}
            self.notes.append(f"the list of finished chunks in {self.dir} is damaged")
        kept = {}
        for key, parts in self._expected().items():
            if key not in listed:
                continue
            files = listed[key]
            if (
                isinstance(files, dict)
                and set(files) == parts
                and all(self._whole(key, name, entry) for name, entry in files.items())
            ):
                kept[key] = files
            else:
                self.notes.append(f"{key} in {self.dir} is damaged and is rendered again")
        return kept

    def _expected(self) -> dict[str, set[str]]:
        """Each chunk's and seam's key and the parts it is written as."""
        expected = {}
        for c in self.chunks:
            parts = {"head": c.lead > 0, "main": c.main[1] > c.main[0], "tail": c.tail > 0}
            expected[chunk_key(c)] = {name for name, there in parts.items() if there}
            if c.lead:
                expected[seam_key(c)] = {"main"}
        return expected

    def _whole(self, key: str, name: str, entry: Any) -> bool:
        """Whether a listed part is the file this store writes for it, at its size and checksum."""
        path = self.path(f"{key}_{name}{self.suffixes[name]}")
        return (
            isinstance(entry, dict)
            and entry.get("file") == path.name
            and path.is_file()
            and entry.get("bytes") == path.stat().st_size
            and entry.get("sha256") == sha256_of(path)
        )

    def _save(self) -> None:
        write_atomic(self.dir / DONE_FILE, json.dumps(self.done, indent=1).encode())

    def path(self, name: str) -> Path:
        return self.dir / name

    def add(self, key: str, files: dict[str, bytes]) -> None:
        """Write one unit's files (flushed and renamed into place), then list them."""
        entries = {}
        for name, data in files.items():
            if not data:
                continue
            target = self.path(f"{key}_{name}{self.suffixes[name]}")
            with temp_path(target) as tmp:
                tmp.write_bytes(data)
                replace_into(tmp, target)
            entries[name] = {"file": target.name, "bytes": len(data), "sha256": sha256_of(target)}
        self.done[key] = entries
        self._save()

    def file(self, key: str, name: str) -> Path | None:
        entry = self.done.get(key, {}).get(name)
        return self.path(entry["file"]) if entry else None

    def close(self, finished: bool) -> None:
        """Remove the folder when the file is made, or when nothing in it is worth keeping
        (so the next run is not told to resume an empty render)."""
        if finished or not self.done:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.lock.release()


def _chunks(plan: Any, first: Any, last: Any) -> list[Chunk]:
    """The chunks saved as ``[[start, end, lead], ...]``, checked to cover the render's frames
    ``[first, last)`` in order, each lead within the chunk before."""
    damaged = UserError("cannot resume: the saved chunk plan is damaged; add --restart")
    try:
        rows = [(int(a), int(b), int(lead)) for a, b, lead in plan]
    except (TypeError, ValueError):
        raise damaged from None
    ends = [first] + [b for _, b, _ in rows]
    if not rows or ends[-1] != last:
        raise damaged
    for k, (a, b, lead) in enumerate(rows):
        previous = rows[k - 1][1] - rows[k - 1][0] if k else 0
        if a != ends[k] or b <= a or not 0 <= lead <= previous or (k == 0 and lead):
            raise damaged
    tails = [lead for _, _, lead in rows[1:]] + [0]  # a chunk's tail is the next one's lead
    return [
        Chunk(k, a, b, lead, tail)
        for k, ((a, b, lead), tail) in enumerate(zip(rows, tails, strict=True))
    ]


def chunk_key(chunk: Chunk) -> str:
    return f"chunk_{chunk.index:05d}"


def seam_key(chunk: Chunk) -> str:
    """The cross-fade into ``chunk`` from the chunk before."""
    return f"seam_{chunk.index:05d}"
