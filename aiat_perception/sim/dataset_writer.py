"""Render labelled frames of randomised scenarios to disk in KITTI object format and COCO JSON.

    python -m aiat_perception.sim.dataset_writer --scenario street_mixed --frames 100 \
        --out /tmp/simdata --format kitti,coco --seed 0

Frames come in episodes: each episode re-seeds the world (lighting, textures, placement jitter),
starts at a random time of the scripted motion and renders ``--frames-per-episode`` frames at the
camera rate. Layout (KITTI's ``training/`` tree):
``image_2/NNNNNN.png``, ``label_2/NNNNNN.txt``, ``calib/NNNNNN.txt``, ``velodyne/NNNNNN.bin``,
``ImageSets/all.txt`` and ``coco.json`` (visible-pixel boxes; KITTI boxes are the unoccluded
silhouette clipped to the image, as KITTI annotates).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from aiat_perception.sim import kitti
from aiat_perception.sim.catalog import COCO_ID
from aiat_perception.sim.scenario import Scenario, ScenarioError, load_scenario, resolve_scenario
from aiat_perception.sim.transforms import invert
from aiat_perception.sim.world import SimWorld

FORMATS = ('kitti', 'coco')


def randomized(scenario: Scenario, placement_jitter: float = 1.0, yaw_jitter_deg: float = 30.0) -> Scenario:
    """The scenario with lighting/texture randomisation on and at least the given placement jitter."""
    rnd = dataclasses.replace(scenario.randomization, lighting=True, textures=True,
                              placement_jitter=max(scenario.randomization.placement_jitter, placement_jitter),
                              yaw_jitter_deg=max(scenario.randomization.yaw_jitter_deg, yaw_jitter_deg))
    return dataclasses.replace(scenario, randomization=rnd)


def _check_level_camera(scenario: Scenario) -> None:
    roll, pitch, _ = scenario.ego.camera.pose.rpy
    if abs(roll) > 1e-9 or abs(pitch) > 1e-9:
        raise ScenarioError(f'{scenario.source}: ego.camera.pose.rpy_deg: KITTI output needs roll = pitch = 0 '
                            f'(a level camera), got roll {math.degrees(roll):.2f}, pitch {math.degrees(pitch):.2f}')


def write_dataset(scenario: Scenario, out_dir, frames: int, formats: Sequence[str] = FORMATS, seed: int = 0,
                  frames_per_episode: int = 10, log=None) -> dict:
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f'unknown format(s) {sorted(unknown)}; choose from {list(FORMATS)}')
    if frames < 1 or frames_per_episode < 1:
        raise ValueError('frames and frames_per_episode must be >= 1')
    if 'kitti' in formats:
        _check_level_camera(scenario)
    out = Path(out_dir)
    dirs = {name: out / name for name in ('image_2', 'label_2', 'calib', 'velodyne', 'ImageSets')}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    cam = scenario.ego.camera
    coco = {'info': {'description': f'AIAT simulator: {scenario.name}', 'seed': seed, 'scenario': scenario.source},
            'images': [], 'annotations': [], 'categories': []}
    classes_seen = {}
    rng = np.random.default_rng([seed, 7919])
    counts = {'frames': 0, 'objects': 0}
    start = time.perf_counter()
    with SimWorld(scenario, seed=seed) as world:
        optical_from_velo = invert(world.base_from_optical()) @ world.base_from_lidar_3d()
        velo_from_base = invert(world.base_from_lidar_3d())
        for index in range(frames):
            if index % frames_per_episode == 0:
                world.reset(seed=seed * 1_000_003 + index // frames_per_episode)
                world.step(float(rng.uniform(0.0, 10.0)))
            else:
                world.step(1.0 / cam.rate_hz)
            name = f'{index:06d}'
            frame = world.render_camera()
            boxes2d = world.ground_truth_2d(frame)
            boxes3d = {b.actor_index: b for b in world.ground_truth_3d(cam.optical_frame_id)}
            cv2.imwrite(str(dirs['image_2'] / f'{name}.png'), cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR))
            if 'kitti' in formats:
                lines = [kitti.kitti_object(b, boxes3d[b.actor_index]).line() for b in boxes2d]
                (dirs['label_2'] / f'{name}.txt').write_text(''.join(line + '\n' for line in lines))
                (dirs['calib'] / f'{name}.txt').write_text(kitti.format_calib(frame.K, optical_from_velo, velo_from_base))
                cloud = world.scan_3d()
                kitti.write_velodyne(dirs['velodyne'] / f'{name}.bin', cloud.points, cloud.intensity)
            if 'coco' in formats:
                coco['images'].append({'id': index, 'file_name': f'image_2/{name}.png', 'width': cam.width,
                                       'height': cam.height, 'sim_time': frame.stamp})
                for b in boxes2d:
                    classes_seen[b.class_name] = COCO_ID.get(b.class_name, 200 + len(classes_seen))
                    x0, y0, x1, y1 = b.bbox
                    coco['annotations'].append({
                        'id': len(coco['annotations']) + 1, 'image_id': index,
                        'category_id': classes_seen[b.class_name], 'bbox': [x0, y0, x1 - x0, y1 - y0],
                        'area': float(b.visible_pixels), 'iscrowd': 0, 'actor': b.actor,
                        'kitti_class': b.kitti_class, 'visibility': round(b.visibility, 4),
                        'truncation': round(b.truncation, 4), 'occluded': b.occlusion_level})
            counts['frames'] += 1
            counts['objects'] += len(boxes2d)
            if log is not None and (index + 1) % 10 == 0:
                log(f'{index + 1}/{frames} frames')
    (dirs['ImageSets'] / 'all.txt').write_text(''.join(f'{i:06d}\n' for i in range(frames)))
    if 'coco' in formats:
        coco['categories'] = [{'id': cid, 'name': name, 'supercategory': 'sim'}
                              for name, cid in sorted(classes_seen.items(), key=lambda kv: kv[1])]
        (out / 'coco.json').write_text(json.dumps(coco, indent=1))
    counts['seconds'] = round(time.perf_counter() - start, 2)
    return counts


def main(argv: Iterable[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--scenario', required=True, help='scenario YAML path or name in config/scenarios')
    parser.add_argument('--frames', type=int, required=True)
    parser.add_argument('--out', required=True)
    parser.add_argument('--format', default='kitti,coco', help='comma-separated: kitti, coco')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--frames-per-episode', type=int, default=10)
    parser.add_argument('--no-randomize', action='store_true',
                        help="keep the scenario's own randomisation settings")
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        scenario = load_scenario(resolve_scenario(args.scenario))
        if not args.no_randomize:
            scenario = randomized(scenario)
        formats = [f.strip() for f in args.format.split(',') if f.strip()]
        counts = write_dataset(scenario, args.out, args.frames, formats, args.seed, args.frames_per_episode,
                               log=lambda msg: print(msg, file=sys.stderr, flush=True))
    except (ScenarioError, ValueError, kitti.KittiFormatError) as exc:
        print(f'dataset_writer: {exc}', file=sys.stderr)
        return 2
    print(json.dumps({'out': str(args.out), **counts}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
