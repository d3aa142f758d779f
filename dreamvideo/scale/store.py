"""``OUTPUT.parts/`` of a chunked render (``--workers``): the saved chunk plan, each finished
chunk's files (flushed, checksummed and listed in ``done.json`` as they land) and the lock.
A resume keeps the plan it finds and every listed file that is still whole."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dreamvideo.errors import UserError
from dreamvideo.media.checkpoint import (
    CHUNKED,
    first_difference,
    lock_parts,
    parts_dir,
    read_json,
    restart_parts,
    unfinished,
)
from dreamvideo.media.owned import clear_parts, parts_pattern, sha256_of
from dreamvideo.media.paths import RenderLock, replace_into, temp_path, write_atomic
from dreamvideo.scale.chunks import Chunk

DONE_FILE = "done.json"  # the finished chunks' files with their sizes and checksums
# what a chunked render writes into its parts folder (see dreamvideo.media.owned)
CHUNK_PARTS = parts_pattern(
    r"(chunk|seam)_\d{5}_(head|main|tail)\.\w+", r"chunks\.json", r"done\.json"
)


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
        lanes: int = 1,
    ):
        """``chunks``: the plan of a new render; a resumed one keeps its saved plan.
        ``suffixes``: each part's container ("head", "main", "tail"). ``lanes``: how many
        chunks of the plan are dreamed together as one batch (:attr:`lanes`: the saved
        plan's, on a resume)."""
        self.output, self.dir, self.chunks = output, parts_dir(output), chunks
        self.lanes = lanes
        self.suffixes = suffixes
        identity = json.loads(json.dumps(identity))
        lock = lock_parts(self.dir, output)
        if lock is not None:
            self.lock = lock
            if restart:
                restart_parts(self.dir, CHUNK_PARTS, self.lock)
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
            planned_lanes = saved.pop("lanes", 1) if isinstance(saved, dict) else 1
            if saved != identity:
                self.lock.release()
                raise UserError(
                    f"the unfinished render in {self.dir} was made with other settings "
                    f"({first_difference(saved, identity)}); repeat the original command "
                    "with --resume, or use --restart"
                )
            try:
                self.chunks = _chunks(plan, identity.get("first"), identity.get("last"))
                if not (isinstance(planned_lanes, int) and 1 <= planned_lanes <= 64):
                    raise UserError("cannot resume: the saved chunk plan is damaged; add --restart")
            except UserError:
                self.lock.release()
                raise
            self.lanes = planned_lanes
            self.done = self._intact()
        elif resume:
            raise UserError(
                f"nothing to resume for {output}: no unfinished render in {self.dir}; "
                "run without --resume"
            )
        elif self.dir.exists():
            self.lock.release()
            raise unfinished(self.dir, output)
        else:
            self.dir.mkdir()
            self.lock = RenderLock(self.dir / "lock", output)
            planned = [[c.start, c.end, c.lead] for c in chunks]
            saved = {**identity, "chunks": planned, "lanes": lanes}
            write_atomic(self.dir / CHUNKED, json.dumps(saved, indent=1).encode())
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

    def done_chunks(self) -> list[str]:
        """The keys of the finished chunks (seams are not counted)."""
        return [key for key in self.done if key.startswith("chunk_")]

    def waves(self) -> list[list[Chunk]]:
        """The chunks still to render, as the batches they are dreamed in: the plan's chunks
        in groups of :attr:`lanes`, each group whole when any of its chunks is missing. A
        chunk's frames depend on the batch it was dreamed in (batched convolutions round
        differently), so a resumed render dreams each chunk in the batch it had, and matches
        an uninterrupted one."""
        groups = [self.chunks[k : k + self.lanes] for k in range(0, len(self.chunks), self.lanes)]
        return [g for g in groups if any(chunk_key(c) not in self.done for c in g)]

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
            left = clear_parts(self.dir, CHUNK_PARTS)
            self.notes += [left] if left and finished else []
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
