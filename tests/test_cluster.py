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
