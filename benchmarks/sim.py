"""Simulator throughput: camera frames per second at 640x480 and 1280x720, lidar scans per second.

    python benchmarks/sim.py [--scenario street_mixed] [--iterations 20]

Prints JSON. For each resolution: the render alone (RGB + depth + segmentation through
TinyRenderer, plus our sky fill and id mapping), render + 2D ground truth (with the occlusion
re-renders), and the floor: a bare ``p.getCameraImage`` of an empty world (one plane) at that
resolution, interleaved with our runs so both see the same machine load. Lidar: the 2D scan
(1081 beams) and the 3D scan (16 rings x 0.4 deg = 14,400 rays) of the same world, against the
floor of one bare ``rayTestBatch`` of the same rays in an empty world. Times are medians and p99 in ms.

With ``--bundle DIR`` it also runs that detector bundle (ONNX Runtime) on ``--eval-frames`` frames
(0.5 s apart) of the photo_actors and mesh_actors scenarios and reports recall, precision and mean
IoU (IoU >= 0.5, per class, greedy by score; ground truth restricted to the model's classes;
``--alias truck:car`` style renames apply to both sides), overall and per actor.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pybullet as p
import pybullet_data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiat_perception.class_names import parse_aliases  # noqa: E402
from aiat_perception.sim.scenario import load_scenario, resolve_scenario  # noqa: E402
from aiat_perception.sim.world import SimWorld  # noqa: E402


def _finite(value):
    """NaN (e.g. mean IoU with no match) as null, so the output is strict JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and value != value:
        return None
    return value


def stats(values_s):
    ms = np.asarray(values_s) * 1e3
    median = float(np.median(ms))
    return {'median_ms': round(median, 2), 'p99_ms': round(float(np.percentile(ms, 99)), 2),
            'per_second': round(1000.0 / median, 1) if median > 0 else None}


class EmptyWorld:
    """The floor: PyBullet with one plane and nothing of ours."""

    def __init__(self):
        self.client = p.connect(p.DIRECT)
        p.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=self.client)
        p.loadURDF('plane.urdf', physicsClientId=self.client)
        self.view = p.computeViewMatrix([0, 0, 1.5], [10, 0, 1.5], [0, 0, 1], physicsClientId=self.client)
        self.proj = p.computeProjectionMatrixFOV(55, 4 / 3, 0.1, 150, physicsClientId=self.client)

    def render(self, width, height):
        p.getCameraImage(width, height, self.view, self.proj, renderer=p.ER_TINY_RENDERER,
                         physicsClientId=self.client)

    def rays(self, origins, targets):
        for start in range(0, len(origins), 16384):
            p.rayTestBatch(origins[start:start + 16384], targets[start:start + 16384], numThreads=0,
                           physicsClientId=self.client)


def detector_recall(bundle: str, frames: int, aliases: dict) -> dict:
    from aiat_perception.inference.detector import Detector
    from aiat_perception.metrics.matching import LabeledBox, RunningMetrics, filter_classes, match_frame

    detector = Detector(bundle)
    out = {'bundle': str(bundle), 'frames': frames, 'aliases': aliases}
    for name in ('photo_actors', 'mesh_actors'):
        metrics, per_actor = RunningMetrics(frames), {}
        with SimWorld(load_scenario(resolve_scenario(name))) as world:
            for k in range(frames):
                world.step(0.5 if k else 0.0)
                frame = world.render_camera()
                truth = [LabeledBox(b.bbox, b.class_name, 1.0, b.actor) for b in world.ground_truth_2d(frame)
                         if b.class_name in detector.classes]
                found = detector.detect_one(frame.rgb, 'rgb8')
                dets = [LabeledBox(tuple(float(v) for v in box), label, float(score))
                        for box, label, score in zip(found.boxes, found.labels, found.scores)]
                truth, dets = filter_classes(truth, (), aliases), filter_classes(dets, (), aliases)
                result = match_frame(dets, truth, 0.5)
                metrics.update(result)
                matched = {m[1] for m in result.matches}
                for j, g in enumerate(truth):
                    hits = per_actor.setdefault(g.id, [0, 0])
                    hits[0] += j in matched
                    hits[1] += 1
        total = metrics.total()
        out[name] = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in total.items()}
        out[name]['recall_per_actor'] = {a: round(h / n, 3) for a, (h, n) in sorted(per_actor.items())}
    detector.close()
    return out


def timed_rounds(warmup: int, iterations: int, step, stages):
    """Seconds per call of each stage (one list per stage), over ``iterations`` rounds after
    ``warmup``; ``step`` runs untimed before each round."""
    times = [[] for _ in stages]
    for i in range(warmup + iterations):
        step()
        for spent, stage in zip(times, stages):
            t0 = time.perf_counter()
            stage()
            if i >= warmup:
                spent.append(time.perf_counter() - t0)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--scenario', default='street_mixed')
    parser.add_argument('--iterations', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--bundle', help='also measure this detector bundle on photo and mesh actors')
    parser.add_argument('--eval-frames', type=int, default=20)
    parser.add_argument('--alias', action='append', default=[], help="class rename 'from:to' (repeatable)")
    args = parser.parse_args(argv)
    scenario = load_scenario(resolve_scenario(args.scenario))
    world = SimWorld(scenario)
    floor = EmptyWorld()
    result = {'scenario': scenario.name, 'actors': len(scenario.actors), 'iterations': args.iterations,
              'machine': {'python': platform.python_version(), 'processor': platform.processor() or platform.machine(),
                          'pybullet': p.getAPIVersion()}}
    dt = 1.0 / scenario.ego.camera.rate_hz
    for width, height in ((640, 480), (1280, 720)):
        frames = []
        render, gt, bare = timed_rounds(args.warmup, args.iterations, lambda: world.step(dt), [
            lambda: frames.append(world.render_camera(width, height)),
            lambda: world.ground_truth_2d(frames.pop()),
            lambda: floor.render(width, height)])
        result[f'camera_{width}x{height}'] = {'render': stats(render),
                                              'render_and_ground_truth': stats(np.add(render, gt)),
                                              'floor_bare_getCameraImage_empty_world': stats(bare)}
    dirs, _ = world.lidar_3d_directions()
    origin = np.array([0.0, 0.0, 1.9])
    origins_3d, targets_3d = [origin.tolist()] * len(dirs), (origin + dirs * 100.0).tolist()
    scan2d, scan3d, bare3d = timed_rounds(args.warmup, args.iterations, lambda: world.step(0.025), [
        world.scan_2d, world.scan_3d, lambda: floor.rays(origins_3d, targets_3d)])
    cfg2, cfg3 = scenario.ego.lidar_2d, scenario.ego.lidar_3d
    result['lidar_2d'] = {'beams': cfg2.beams, **stats(scan2d)}
    result['lidar_3d'] = {'rays': int(len(dirs)), 'rings': cfg3.rings, **stats(scan3d),
                          'floor_bare_rayTestBatch_empty_world': stats(bare3d)}
    world.close()
    if args.bundle:
        result['detector'] = detector_recall(args.bundle, args.eval_frames,
                                             parse_aliases(args.alias, '--alias'))
    print(json.dumps(_finite(result), indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
