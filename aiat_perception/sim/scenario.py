"""Scenario files (YAML): the ego vehicle and its sensors, the road, the actors, randomisation.

``load_scenario(path)`` validates the whole file and raises ``ScenarioError`` naming the file and
the key path (``actors[2].motion.speed``) of the first problem. Angles are in degrees in the file
(keys end in ``_deg``) and in radians in the dataclasses. See ``config/scenarios/*.yaml``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Tuple

import numpy as np

from aiat_perception.sim.catalog import ASSETS, KITTI_CLASS, PHOTO_CROPS
from aiat_perception.yaml_section import YamlSection, finite, read_yaml


class ScenarioError(ValueError):
    """A scenario file (or dict) is malformed; the message names the source and the key."""


# Limits on sizes a scenario may ask the simulator to render or ray-cast (trust no file):
MAX_CAMERA_SIDE = 8192          # pixels per image side
MAX_LIDAR_BEAMS = 100_000       # planar scanner beams per scan
MAX_LIDAR_POINTS = 2_000_000    # 3D lidar rays per sweep (rings x 360 / horizontal resolution)


@dataclass
class SensorPose:
    xyz: Tuple[float, float, float]
    rpy: Tuple[float, float, float]  # radians


@dataclass
class NoiseConfig:
    range_std: float = 0.0      # Gaussian range noise, metres (1 sigma)
    dropout: float = 0.0        # probability that a beam returns nothing


@dataclass
class CameraConfig:
    enabled: bool = True
    width: int = 640
    height: int = 480
    rate_hz: float = 10.0
    fov_deg: float = 70.0       # horizontal field of view, used when intrinsics are not given
    intrinsics: Optional[Tuple[float, float, float, float]] = None  # fx, fy, cx, cy (pixels)
    near: float = 0.1
    far: float = 150.0
    pose: SensorPose = field(default_factory=lambda: SensorPose((0.5, 0.0, 1.5), (0.0, 0.0, 0.0)))
    frame_id: str = 'camera_link'
    optical_frame_id: str = 'camera_optical_frame'

    def matrix(self) -> np.ndarray:
        """3x3 pinhole matrix K (OpenCV convention: pixel centres at integer coordinates)."""
        if self.intrinsics is not None:
            fx, fy, cx, cy = self.intrinsics
        else:
            fx = fy = 0.5 * self.width / math.tan(0.5 * math.radians(self.fov_deg))
            cx, cy = (self.width - 1) / 2.0, (self.height - 1) / 2.0
        return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


@dataclass
class Lidar2DConfig:
    """Planar scanner like a Hokuyo UST-10LX/UTM-30LX: 1081 beams over 270 degrees at 40 Hz."""
    enabled: bool = True
    beams: int = 1081
    fov_deg: float = 270.0
    range_min: float = 0.06
    range_max: float = 30.0
    rate_hz: float = 40.0
    pose: SensorPose = field(default_factory=lambda: SensorPose((1.0, 0.0, 0.5), (0.0, 0.0, 0.0)))
    noise: NoiseConfig = field(default_factory=lambda: NoiseConfig(0.01, 0.0))
    frame_id: str = 'laser'


@dataclass
class Lidar3DConfig:
    """Spinning multi-ring lidar (VLP-16 like by default; ``model: hdl64`` for an HDL-64E-like one)."""
    enabled: bool = True
    model: str = 'vlp16'
    rings: int = 16
    vertical_fov_deg: Tuple[float, float] = (-15.0, 15.0)
    horizontal_resolution_deg: float = 0.4
    range_min: float = 0.5
    range_max: float = 100.0
    rate_hz: float = 10.0
    pose: SensorPose = field(default_factory=lambda: SensorPose((0.0, 0.0, 1.9), (0.0, 0.0, 0.0)))
    noise: NoiseConfig = field(default_factory=lambda: NoiseConfig(0.02, 0.0))
    frame_id: str = 'velodyne'


@dataclass
class MotionConfig:
    type: str = 'static'                     # static | linear | waypoints
    position: Tuple[float, float] = (0.0, 0.0)
    yaw: Optional[float] = None              # radians; linear/waypoints default to the direction of travel
    velocity: Tuple[float, float] = (0.0, 0.0)   # linear, m/s in the map frame
    waypoints: List[Tuple[float, float]] = field(default_factory=list)
    speed: float = 0.0                       # waypoints, m/s
    loop: bool = True                        # waypoints: wrap around (else stop at the last one)


@dataclass
class EgoConfig:
    motion: MotionConfig = field(default_factory=MotionConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    lidar_2d: Lidar2DConfig = field(default_factory=Lidar2DConfig)
    lidar_3d: Lidar3DConfig = field(default_factory=Lidar3DConfig)
    frame_id: str = 'base_link'


@dataclass
class ActorConfig:
    name: str
    type: str                                # mesh | photo
    asset: str                               # ASSETS key (mesh) or PHOTO_CROPS key (photo)
    class_name: str
    kitti_class: str
    motion: MotionConfig
    scale: Optional[float] = None            # mesh: overrides the asset's default scale
    height: Optional[float] = None           # photo: quad height in metres (default per class)
    color: Optional[Tuple[float, float, float, float]] = None
    billboard: bool = True                   # photo: turn the quad to face the ego camera


@dataclass
class RoadConfig:
    type: str = 'straight'                   # straight | loop | none
    length: float = 200.0                    # straight
    radius: float = 30.0                     # loop (centre line)
    width: float = 7.0
    lanes: int = 2
    markings: bool = True


@dataclass
class RandomizationConfig:
    lighting: bool = False                   # light direction, colour, ambient/diffuse/specular
    textures: bool = False                   # ground/road textures, mesh actor colours, photo brightness
    placement_jitter: float = 0.0            # metres, uniform in a disc, per reset
    yaw_jitter_deg: float = 0.0


@dataclass
class GroundTruthConfig:
    min_visibility: float = 0.1              # visible / unoccluded projected pixels
    min_pixels: int = 20
    occlusion_levels: Tuple[float, float] = (0.1, 0.5)  # occluded fraction for KITTI levels 1, 2


@dataclass
class Scenario:
    name: str = 'scenario'
    seed: int = 0
    ego: EgoConfig = field(default_factory=EgoConfig)
    road: RoadConfig = field(default_factory=RoadConfig)
    actors: List[ActorConfig] = field(default_factory=list)
    randomization: RandomizationConfig = field(default_factory=RandomizationConfig)
    ground_truth: GroundTruthConfig = field(default_factory=GroundTruthConfig)
    source: str = '<dict>'


# ---------------------------------------------------------------- validation helpers

def _section(data: Any, source: str, path: str) -> YamlSection:
    return YamlSection({} if data is None else data, source, path, ScenarioError)


def _pose(sec: YamlSection, default: SensorPose) -> SensorPose:
    if not sec.has('pose'):
        sec.get('pose', None)
        return default
    p = sec.section('pose', None)
    xyz = p.numbers('xyz', 3, default=default.xyz)
    rpy_deg = p.numbers('rpy_deg', 3, default=tuple(math.degrees(a) for a in default.rpy))
    p.finish()
    return SensorPose(xyz, tuple(math.radians(a) for a in rpy_deg))


def _noise(sec: YamlSection, default: NoiseConfig) -> NoiseConfig:
    n = sec.section('noise', None)
    out = NoiseConfig(n.number('range_std', default.range_std, low=0.0),
                      n.number('dropout', default.dropout, low=0.0, high=1.0))
    n.finish()
    return out


def _camera(sec: YamlSection) -> CameraConfig:
    d = CameraConfig()
    cam = CameraConfig(
        enabled=sec.boolean('enabled', d.enabled),
        width=sec.number('width', d.width, low=8, high=MAX_CAMERA_SIDE, integer=True),
        height=sec.number('height', d.height, low=8, high=MAX_CAMERA_SIDE, integer=True),
        rate_hz=sec.number('rate_hz', d.rate_hz, low=0.0, strict_low=True),
        fov_deg=sec.number('fov_deg', d.fov_deg, low=1.0, high=170.0),
        near=sec.number('near', d.near, low=0.0, strict_low=True),
        far=sec.number('far', d.far, low=0.0, strict_low=True),
        pose=_pose(sec, d.pose),
        frame_id=sec.string('frame_id', d.frame_id),
        optical_frame_id=sec.string('optical_frame_id', d.optical_frame_id))
    if sec.has('intrinsics'):
        k = sec.section('intrinsics', None)
        cam.intrinsics = (k.number('fx', None, low=0.0, strict_low=True),
                          k.number('fy', None, low=0.0, strict_low=True),
                          k.number('cx', (cam.width - 1) / 2.0), k.number('cy', (cam.height - 1) / 2.0))
        if cam.intrinsics[0] is None or cam.intrinsics[1] is None:
            k.fail('fx', 'intrinsics need fx and fy')
        k.finish()
    else:
        sec.get('intrinsics', None)
    if cam.far <= cam.near:
        sec.fail('far', f'must be greater than near ({cam.near})')
    sec.finish()
    return cam


def _lidar_2d(sec: YamlSection) -> Lidar2DConfig:
    d = Lidar2DConfig()
    out = Lidar2DConfig(
        enabled=sec.boolean('enabled', d.enabled),
        beams=sec.number('beams', d.beams, low=2, high=MAX_LIDAR_BEAMS, integer=True),
        fov_deg=sec.number('fov_deg', d.fov_deg, low=0.0, high=360.0, strict_low=True),
        range_min=sec.number('range_min', d.range_min, low=0.0),
        range_max=sec.number('range_max', d.range_max, low=0.0, strict_low=True),
        rate_hz=sec.number('rate_hz', d.rate_hz, low=0.0, strict_low=True),
        pose=_pose(sec, d.pose), noise=_noise(sec, d.noise),
        frame_id=sec.string('frame_id', d.frame_id))
    if out.range_max <= out.range_min:
        sec.fail('range_max', f'must be greater than range_min ({out.range_min})')
    sec.finish()
    return out


# Presets of the 3D lidar (keys given in the scenario override them). hdl64: Velodyne HDL-64E-like,
# 64 rings from -24.8 to +2 deg, 0.18 deg azimuth steps (2000 per turn at 10 Hz), 120 m.
LIDAR_3D_MODELS = {
    'vlp16': {},
    'hdl64': dict(rings=64, vertical_fov_deg=(-24.8, 2.0), horizontal_resolution_deg=0.18, range_max=120.0),
}


def _lidar_3d(sec: YamlSection) -> Lidar3DConfig:
    model = sec.string('model', 'vlp16', choices=sorted(LIDAR_3D_MODELS))
    d = Lidar3DConfig(model=model, **LIDAR_3D_MODELS[model])
    out = Lidar3DConfig(
        enabled=sec.boolean('enabled', d.enabled),
        model=model,
        rings=sec.number('rings', d.rings, low=1, integer=True),
        vertical_fov_deg=sec.numbers('vertical_fov_deg', 2, default=d.vertical_fov_deg),
        horizontal_resolution_deg=sec.number('horizontal_resolution_deg', d.horizontal_resolution_deg,
                                             low=0.01, high=90.0),
        range_min=sec.number('range_min', d.range_min, low=0.0),
        range_max=sec.number('range_max', d.range_max, low=0.0, strict_low=True),
        rate_hz=sec.number('rate_hz', d.rate_hz, low=0.0, strict_low=True),
        pose=_pose(sec, d.pose), noise=_noise(sec, d.noise),
        frame_id=sec.string('frame_id', d.frame_id))
    rays = out.rings * 360.0 / out.horizontal_resolution_deg
    if rays > MAX_LIDAR_POINTS:
        sec.fail('rings', f'{out.rings} rings at {out.horizontal_resolution_deg} deg make {rays:.0f} '
                          f'rays per sweep, over the limit {MAX_LIDAR_POINTS}')
    low, high = out.vertical_fov_deg
    if not -90.0 <= low <= high <= 90.0:
        sec.fail('vertical_fov_deg', f'need -90 <= lower <= upper <= 90, got {list(out.vertical_fov_deg)}')
    if out.range_max <= out.range_min:
        sec.fail('range_max', f'must be greater than range_min ({out.range_min})')
    sec.finish()
    return out


def _motion(sec: YamlSection) -> MotionConfig:
    kind = sec.string('type', 'static', choices=('static', 'linear', 'waypoints'))
    m = MotionConfig(type=kind)
    yaw_deg = sec.number('yaw_deg', None)
    m.yaw = None if yaw_deg is None else math.radians(yaw_deg)
    if kind == 'waypoints':
        points = sec.get('waypoints', None)
        if not isinstance(points, list) or len(points) < 2:
            sec.fail('waypoints', f'expected a list of at least 2 [x, y] points, got {points!r}')
        for i, point in enumerate(points):
            if (not isinstance(point, (list, tuple)) or len(point) != 2
                    or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not finite(v)
                           for v in point)):
                sec.fail(f'waypoints[{i}]', f'expected [x, y] (finite numbers), got {point!r:.60}')
        m.waypoints = [(float(x), float(y)) for x, y in points]
        m.position = m.waypoints[0]
        m.speed = sec.number('speed', None, low=0.0)
        if m.speed is None:
            sec.fail('speed', 'waypoint motion needs a speed (m/s)')
        m.loop = sec.boolean('loop', True)
    else:
        m.position = sec.numbers('position', 2, default=(0.0, 0.0))
        if kind == 'linear':
            m.velocity = sec.numbers('velocity', 2, default=None)
            if m.velocity is None:
                sec.fail('velocity', 'linear motion needs velocity: [vx, vy] (m/s)')
    sec.finish()
    return m


def _actor(sec: YamlSection, index: int, names: set) -> ActorConfig:
    kind = sec.string('type', None, choices=('mesh', 'photo'))
    if kind is None:
        sec.fail('type', 'required: mesh or photo')
    table = ASSETS if kind == 'mesh' else PHOTO_CROPS
    asset = sec.string('asset' if kind == 'mesh' else 'photo', None, choices=sorted(table))
    if asset is None:
        sec.fail('asset' if kind == 'mesh' else 'photo', f'required, one of {sorted(table)}')
    default_class = table[asset].class_name
    class_name = sec.string('class', default_class)
    kitti = sec.string('kitti_class', KITTI_CLASS.get(class_name, 'Misc'),
                       choices=('Car', 'Pedestrian', 'Cyclist', 'Misc'))
    name = sec.string('name', f'{asset}_{index}')
    if name in names:
        sec.fail('name', f'duplicate actor name {name!r}')
    names.add(name)
    color = sec.numbers('color', 4, default=None)
    actor = ActorConfig(name=name, type=kind, asset=asset, class_name=class_name, kitti_class=kitti,
                        motion=_motion(sec.section('motion', None)), color=color)
    if kind == 'mesh':
        actor.scale = sec.number('scale', None, low=0.0, strict_low=True)
    else:
        actor.height = sec.number('height', None, low=0.0, strict_low=True)
        actor.billboard = sec.boolean('billboard', True)
    sec.finish()
    return actor


def parse_scenario(data: Any, source: str = '<dict>') -> Scenario:
    top = _section(data, source, '')
    sc = Scenario(source=source)
    sc.name = top.string('name', Path(source).stem if source != '<dict>' else 'scenario')
    sc.seed = top.number('seed', 0, low=0, integer=True)
    ego = top.section('ego', None)
    sc.ego = EgoConfig(motion=_motion(ego.section('motion', None)),
                       camera=_camera(ego.section('camera', None)),
                       lidar_2d=_lidar_2d(ego.section('lidar_2d', None)),
                       lidar_3d=_lidar_3d(ego.section('lidar_3d', None)),
                       frame_id=ego.string('frame_id', 'base_link'))
    ego.finish()
    road = top.section('road', None)
    d = RoadConfig()
    sc.road = RoadConfig(type=road.string('type', d.type, choices=('straight', 'loop', 'none')),
                         length=road.number('length', d.length, low=1.0),
                         radius=road.number('radius', d.radius, low=1.0),
                         width=road.number('width', d.width, low=0.5),
                         lanes=road.number('lanes', d.lanes, low=1, integer=True),
                         markings=road.boolean('markings', d.markings))
    road.finish()
    actors = top.get('actors', [])
    if not isinstance(actors, list):
        top.fail('actors', f'expected a list, got {type(actors).__name__}')
    names: set = set()
    sc.actors = [_actor(_section(a, source, f'actors[{i}]'), i, names) for i, a in enumerate(actors)]
    rnd = top.section('randomization', None)
    sc.randomization = RandomizationConfig(
        lighting=rnd.boolean('lighting', False), textures=rnd.boolean('textures', False),
        placement_jitter=rnd.number('placement_jitter', 0.0, low=0.0),
        yaw_jitter_deg=rnd.number('yaw_jitter_deg', 0.0, low=0.0, high=180.0))
    rnd.finish()
    gt = top.section('ground_truth', None)
    dg = GroundTruthConfig()
    sc.ground_truth = GroundTruthConfig(
        min_visibility=gt.number('min_visibility', dg.min_visibility, low=0.0, high=1.0),
        min_pixels=gt.number('min_pixels', dg.min_pixels, low=1, integer=True),
        occlusion_levels=gt.numbers('occlusion_levels', 2, default=dg.occlusion_levels))
    gt.finish()
    top.finish()
    return sc


def load_scenario(path) -> Scenario:
    data = read_yaml(path, ScenarioError, what='scenario')
    return parse_scenario(data, str(path))


def scenario_dir() -> Path:
    """``config/scenarios`` of the source tree or of the installed share directory."""
    from aiat_perception.share import config_dir
    try:
        return config_dir() / 'scenarios'
    except FileNotFoundError as exc:
        raise ScenarioError(str(exc)) from exc


def resolve_scenario(name_or_path) -> Path:
    """A path as given, or the name of a file in ``config/scenarios`` (with or without .yaml)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    for candidate in (scenario_dir() / f'{name_or_path}.yaml', scenario_dir() / str(name_or_path)):
        if candidate.is_file():
            return candidate
    raise ScenarioError(f'{name_or_path}: no such scenario file (also looked in {scenario_dir()})')
