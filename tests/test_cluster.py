"""A two-node Ray cluster on this machine: a chunked render uses the workers of both nodes."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import pan_frames, write_clip
from test_workers import fast, frames_of

from dreamvideo.scale.chunked import render_video_chunked

ray = pytest.importorskip("ray")


def test_chunks_land_on_both_nodes_of_a_cluster(tmp_path):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
        clip = Path(write_clip(tmp_path / "clip.mp4", pan_frames(40, (64, 48)), audio=True))
        nodes = set()
        out = tmp_path / "out.mp4"
        r = render_video_chunked(
            fast(), clip, out, workers=2, address=cluster.address,
            on_worker=lambda p: nodes.add(p.node),
        )  # fmt: skip
        assert len(nodes) == 2  # one worker per node: each node has one CPU
        assert r.frames == 40 == len(frames_of(out))
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_workers_get_a_gpu_each_or_half_of_one_and_say_when_they_cannot_use_it(tmp_path):
    """Ray told of four GPUs that are not there (num_gpus=4): four workers of one GPU each
    get GPUs 0-3, one each (each sees its own as CUDA_VISIBLE_DEVICES); four of half a GPU
    share two of them, two workers on each, with lanes. Here torch finds no CUDA: every
    worker dreams on the CPU, and the render says so once."""
    ray.init(num_cpus=4, num_gpus=4, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")  # fmt: skip
    try:
        clip = Path(write_clip(tmp_path / "clip.mp4", pan_frames(48, (64, 48)), audio=True))
        for per_worker, lanes in ((1.0, 1), (0.5, 2)):
            seen = {}
            out = tmp_path / f"out-{per_worker}.mp4"
            r = render_video_chunked(
                fast(chunk_seconds=0.2, chunk_overlap=2, lanes=lanes), clip, out, workers=4,
                gpus_per_worker=per_worker, on_worker=lambda p, seen=seen: seen.update(
                    {p.worker: p}),
            )  # fmt: skip
            assert r.frames == 48 == len(frames_of(out))
            gpus = sorted(p.gpus for p in seen.values())
            if per_worker == 1.0:
                assert len(seen) == 4 and gpus == ["0", "1", "2", "3"]  # its own each
            else:  # two workers to a GPU
                assert len(seen) == 4 and sorted(set(gpus)) == gpus[::2] and len(set(gpus)) == 2
            assert all(p.device == "cpu" for p in seen.values())
            said = [n for n in r.notes if "torch finds no CUDA there" in n]
            assert len(said) == 1 and "dreamed on the CPU" in said[0], r.notes
    finally:
        ray.shutdown()
