"""A NanoDet fine-tuned on rendered mesh actors (aiat_training.recipes.mesh_actors), run in the loop
exactly like the pretrained model in test_sim_in_the_loop.py: sim (lockstep, mesh_actors, 20 frames)
+ camera_detector with the fine-tuned bundle + iou_monitor, three real processes over DDS.

The first run on a machine builds the bundle (render, fine-tune, export: ~4-5 min on 2 CPU cores);
later runs find it in the cache (~/.cache/aiat/bundles/nanodet-mesh-actors-<hash>) at once.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.integration.sim_loop import FRAMES, run_loop

PRETRAINED_MESH_RECALL = 0.010   # recorded by test_pretrained_detector_on_mesh_actors_is_recorded
BUILD_TIMEOUT_S = 1200


def finetuned_bundle() -> Path:
    """The recipe's cached bundle, built on first use (in its own process: torch stays out of this one)."""
    result = subprocess.run([sys.executable, '-m', 'aiat_training.recipes.mesh_actors'], cwd=str(ROOT),
                            capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-4000:]
    return Path(json.loads(result.stdout.strip().splitlines()[-1])['bundle'])


def test_finetuned_detector_raises_recall_on_mesh_actors(test_node, start_node, record_property):
    bundle = finetuned_bundle()
    total = run_loop(test_node, start_node, 'mesh_actors', bundle=bundle)
    record_property('mesh_actors_finetuned', total)
    print(f"mesh_actors (fine-tuned {bundle.name}): recall {total['total_recall']:.3f}, precision "
          f"{total['total_precision']:.3f}, mean IoU {total['total_mean_iou']:.3f} over {total['frames']:.0f} "
          f"frames (pretrained recall {PRETRAINED_MESH_RECALL:.3f})")
    assert total['frames'] == FRAMES
    # Measured (recipe bundle nanodet-mesh-actors-56adaeba6a56; the same weights from three builds;
    # lockstep, three runs, identical): recall 1.000 (100/100), precision 0.909 (10 extra boxes),
    # mean IoU 0.923; the pretrained model scores recall 0.010. The 100 ground-truth boxes are
    # 5 actors x 20 frames, so recall 0.8 still allows one actor missed in every frame and is 80x
    # the pretrained recall; precision 0.7 and mean IoU 0.75 keep the gain from coming from a flood
    # of boxes or loose ones (head-only fine-tuning, measured: recall 0.99 but precision 0.59).
    assert total['total_recall'] >= 0.8
    assert total['total_precision'] >= 0.7
    assert total['total_mean_iou'] >= 0.75
