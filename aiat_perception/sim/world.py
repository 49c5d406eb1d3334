"""The simulated world: a headless PyBullet scene (``p.DIRECT``, TinyRenderer) built from a
:class:`Scenario`, with scripted motion, camera/lidar sensors and ground truth.

All results are plain numpy arrays and dataclasses; the ROS node converts them to messages.
Time advances only through :meth:`SimWorld.step`, and every random draw comes from generators seeded
by (scenario seed, reset seed, sensor, time), so a run is repeatable frame by frame.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import pybullet as p
import pybullet_data

from aiat_perception.sim import bodies
from aiat_perception.sim.catalog import ASSETS, PHOTO_CROPS
from aiat_perception.sim.ground_truth import (Box2D, Box3D, mask_boxes, occlusion_level, projected_rect,
                                              rects_overlap)
from aiat_perception.sim.motion import ScriptedMotion
from aiat_perception.sim.scenario import ActorConfig, CameraConfig, Scenario
from aiat_perception.sim.textures import photo_aspect, photo_texture, surface_texture
from aiat_perception.sim.transforms import (R_BODY_FROM_OPTICAL, invert, make_transform, pose_xy_yaw,
                                            pose_xyz_rpy, quaternion_xyzw, transform_points)

MAP_FRAME = 'map'
ISOLATION_OFFSET = np.array([0.0, 0.0, -5000.0])  # where one actor is rendered alone (see _isolated)
ISOLATION_MAX_PIXELS = 160                        # longest side of an isolated render
GRASS_PALETTE_BGR = ((60, 120, 70), (40, 100, 60), (70, 140, 90), (50, 110, 100), (80, 130, 110), (45, 90, 75))
SKIN_TONES = ((0.95, 0.8, 0.7), (0.85, 0.65, 0.5), (0.65, 0.45, 0.3), (0.45, 0.3, 0.2))
_SENSOR_STREAM = {'lidar_2d': 1, 'lidar_3d': 2, 'randomize': 3}


@dataclass
class Lighting:
    direction: Tuple[float, float, float] = (0.4, -0.3, 1.0)
    color: Tuple[float, float, float] = (1.0, 1.0, 1.0)
    distance: float = 100.0
    ambient: float = 0.6
    diffuse: float = 0.5
    specular: float = 0.1
    shadow: bool = False
    sky_top: Tuple[int, int, int] = (150, 185, 225)     # RGB
    sky_horizon: Tuple[int, int, int] = (215, 225, 235)


@dataclass
class CameraFrame:
    stamp: float                 # simulation time, seconds
    rgb: np.ndarray              # HxWx3 uint8, RGB order
    depth: np.ndarray            # HxW float32, metres along the optical axis (inf: nothing hit)
    segmentation: np.ndarray     # HxW int32: actor index, -1 for road/ground/sky
    K: np.ndarray                # 3x3
    map_from_optical: np.ndarray  # 4x4 pose of the optical frame in the map
    frame_id: str


@dataclass
class LaserScanData:
    stamp: float
    frame_id: str
    angle_min: float
    angle_max: float
    angle_increment: float
    time_increment: float
    scan_time: float
    range_min: float
    range_max: float
    ranges: np.ndarray           # float32; inf = no return within range_max, nan = dropout
    actors: np.ndarray           # int32 actor index hit by each beam (-1: none/static)


@dataclass
class PointCloudData:
    stamp: float
    frame_id: str
    points: np.ndarray           # Nx3 float32 in the lidar frame
    intensity: np.ndarray        # N float32 in [0, 1]
    ring: np.ndarray             # N uint16 (0 = lowest beam)
    actors: np.ndarray           # N int32 actor index (-1: road/ground)


@dataclass
class _Actor:
    index: int
    config: ActorConfig
    body: int
    box_center: np.ndarray       # centre of the collision box in the base frame
    size: np.ndarray             # l, w, h
    motion: ScriptedMotion
    reflectivity: float
    load_pose: np.ndarray        # pose pybullet reports for the base at load time (its inertial frame)
    map_from_box: np.ndarray = field(default_factory=lambda: np.eye(4))


def _sky_color(rng: np.random.Generator, low: float, high: float, min_ratio: float) -> Tuple[int, int, int]:
    """A blue-to-grey sky colour (RGB): red <= green <= blue."""
    blue = rng.uniform(low, high)
    red_ratio = rng.uniform(min_ratio, 1.0)
    green_ratio = rng.uniform(red_ratio, 1.0)
    return (int(blue * red_ratio), int(blue * green_ratio), int(blue))


class SimWorld:
    def __init__(self, scenario: Scenario, seed: Optional[int] = None):
        self.scenario = scenario
        self.client = p.connect(p.DIRECT)
        p.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=self.client)
        self._textures: Dict[str, int] = {}
        self.ground_z = bodies.ROAD_THICKNESS if scenario.road.type != 'none' else 0.0
        self.ground = bodies.ground(self.client)
        self.road, self.markings = bodies.road(self.client, scenario.road)
        self._reflectivity = {self.ground: 0.2}
        self._reflectivity.update({b: 0.15 for b in self.road})
        self.actors: List[_Actor] = [self._make_actor(i, a) for i, a in enumerate(scenario.actors)]
        self._body_actor = np.full(max([self.ground] + self.road + self.markings
                                       + [a.body for a in self.actors]) + 2, -1, dtype=np.int32)
        for actor in self.actors:
            self._body_actor[actor.body] = actor.index
            self._reflectivity[actor.body] = actor.reflectivity
        self._segment_lookup = np.concatenate([[-1], self._body_actor]).astype(np.int32)
        self._body_reflectivity = np.full(len(self._body_actor), 0.5)
        for body, value in self._reflectivity.items():
            self._body_reflectivity[body] = value
        self.lighting = Lighting()
        self.time = 0.0
        self.reset(seed)

    # ------------------------------------------------------------------ construction

    def _texture(self, path) -> int:
        key = str(path)
        if key not in self._textures:
            self._textures[key] = p.loadTexture(key, physicsClientId=self.client)
        return self._textures[key]

    def _make_actor(self, index: int, config: ActorConfig) -> _Actor:
        if config.type == 'mesh':
            body = bodies.load_mesh(self.client, config.asset, config.scale)
            if config.color is not None:
                bodies.set_color(self.client, body, config.color)
            reflectivity = ASSETS[config.asset].reflectivity
        else:
            crop = PHOTO_CROPS[config.asset]
            height = config.height or crop.height
            body = bodies.photo_quad(self.client, self._texture(photo_texture(config.asset)),
                                     height * photo_aspect(config.asset), height)
            reflectivity = 0.5
        lo, hi = bodies.local_box(self.client, body)
        # resetBasePositionAndOrientation moves the base's inertial frame, which URDFs may offset
        # and rotate from the link frame; remember where it was while the body sat at the origin.
        pos, orn = p.getBasePositionAndOrientation(body, physicsClientId=self.client)
        rot = np.asarray(p.getMatrixFromQuaternion(orn), dtype=np.float64).reshape(3, 3)
        motion = ScriptedMotion(config.motion)
        return _Actor(index, config, body, (lo + hi) / 2.0, hi - lo, motion, reflectivity,
                      make_transform(pos, rot))

    def close(self) -> None:
        if self.client is not None and p.isConnected(self.client):
            p.disconnect(self.client)
        self.client = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ randomisation and time

    def reset(self, seed: Optional[int] = None) -> None:
        """Time back to 0; re-draw lighting, textures and placement from (scenario seed, seed)."""
        self.reset_seed = 0 if seed is None else int(seed)
        self.time = 0.0
        rnd = self.scenario.randomization
        rng = np.random.default_rng([self.scenario.seed, self.reset_seed, _SENSOR_STREAM['randomize']])
        self.lighting = Lighting()
        if rnd.lighting:
            az, el = rng.uniform(0, 2 * math.pi), rng.uniform(math.radians(25), math.radians(80))
            tint = rng.uniform(0.85, 1.0, 3)
            self.lighting = Lighting(
                direction=(math.cos(az) * math.cos(el), math.sin(az) * math.cos(el), math.sin(el)),
                color=tuple(float(v) for v in tint), ambient=float(rng.uniform(0.4, 0.8)),
                diffuse=float(rng.uniform(0.25, 0.7)), specular=float(rng.uniform(0.0, 0.3)),
                sky_top=_sky_color(rng, 150, 250, 0.55), sky_horizon=_sky_color(rng, 200, 250, 0.85))
        if rnd.textures:
            # a small palette keeps the number of texture files (and loaded textures) bounded
            grass = GRASS_PALETTE_BGR[int(rng.integers(len(GRASS_PALETTE_BGR)))]
            ground_tex = surface_texture('grass', int(rng.integers(0, 4)), base_bgr=grass)
            asphalt = float(rng.uniform(0.18, 0.42))
            road_rgba = (asphalt, asphalt, asphalt * float(rng.uniform(0.95, 1.08)), 1.0)
        else:
            ground_tex = surface_texture('grass', 0)
            road_rgba = (0.3, 0.3, 0.32, 1.0)
        p.changeVisualShape(self.ground, -1, textureUniqueId=self._texture(ground_tex),
                            physicsClientId=self.client)
        for body in self.road:
            p.changeVisualShape(body, -1, rgbaColor=list(road_rgba),
                                physicsClientId=self.client)
        for actor in self.actors:
            cfg = actor.config
            if rnd.textures:
                if cfg.type == 'photo':
                    gain = round(float(rng.uniform(0.75, 1.25)) * 10) / 10
                    bias = round(float(rng.uniform(-20, 20)) / 10) * 10
                    tex = self._texture(photo_texture(cfg.asset, gain, bias))
                    p.changeVisualShape(actor.body, -1, textureUniqueId=tex, physicsClientId=self.client)
                elif cfg.color is None and cfg.asset == 'pedestrian':
                    shirt, trousers = (tuple(float(v) for v in rng.uniform(0.05, 0.9, 3)) + (1.0,) for _ in range(2))
                    skin = tuple(float(v) for v in SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]) + (1.0,)
                    bodies.set_person_colors(self.client, actor.body, shirt, trousers, skin)
                elif cfg.color is None and cfg.asset != 'traffic_cone':
                    # the base link only: a car's body changes colour, its wheels stay black
                    colour = tuple(float(v) for v in rng.uniform(0.05, 0.95, 3)) + (1.0,)
                    p.changeVisualShape(actor.body, -1, rgbaColor=list(colour), physicsClientId=self.client)
            offset = (0.0, 0.0)
            if rnd.placement_jitter > 0:
                r = rnd.placement_jitter * math.sqrt(rng.uniform())
                a = rng.uniform(0, 2 * math.pi)
                offset = (r * math.cos(a), r * math.sin(a))
            yaw = math.radians(rng.uniform(-rnd.yaw_jitter_deg, rnd.yaw_jitter_deg)) if rnd.yaw_jitter_deg else 0.0
            actor.motion = ScriptedMotion(cfg.motion, offset, yaw)
        self.ego_motion = ScriptedMotion(self.scenario.ego.motion)
        self._place()

    def step(self, dt: float) -> None:
        """Advance scripted motion by ``dt`` seconds (deterministic; no physics integration)."""
        if dt < 0:
            raise ValueError(f'dt must be >= 0, got {dt}')
        self.time += dt
        self._place()

    def _place(self) -> None:
        x, y, yaw = self.ego_motion.pose(self.time)
        self.map_from_base = pose_xy_yaw(x, y, 0.0, yaw)
        camera_pos = (self.map_from_base @ self.base_from_camera())[:3, 3]
        for actor in self.actors:
            ax, ay, ayaw = actor.motion.pose(self.time)
            if actor.config.type == 'photo' and actor.config.billboard:
                ayaw = math.atan2(camera_pos[1] - ay, camera_pos[0] - ax)
            actor.map_from_box = pose_xy_yaw(ax, ay, self.ground_z + actor.size[2] / 2.0, ayaw)
            self._set_body_pose(actor, actor.map_from_box)

    def _set_body_pose(self, actor: _Actor, map_from_box: np.ndarray) -> None:
        map_from_base = map_from_box @ make_transform(-actor.box_center) @ actor.load_pose
        p.resetBasePositionAndOrientation(actor.body, map_from_base[:3, 3].tolist(),
                                          quaternion_xyzw(map_from_base[:3, :3]).tolist(),
                                          physicsClientId=self.client)

    # ------------------------------------------------------------------ frames

    def base_from_camera(self) -> np.ndarray:
        pose = self.scenario.ego.camera.pose
        return pose_xyz_rpy(pose.xyz, pose.rpy)

    def base_from_optical(self) -> np.ndarray:
        return self.base_from_camera() @ make_transform(rotation=R_BODY_FROM_OPTICAL)

    def base_from_lidar_2d(self) -> np.ndarray:
        pose = self.scenario.ego.lidar_2d.pose
        return pose_xyz_rpy(pose.xyz, pose.rpy)

    def base_from_lidar_3d(self) -> np.ndarray:
        pose = self.scenario.ego.lidar_3d.pose
        return pose_xyz_rpy(pose.xyz, pose.rpy)

    def transforms(self) -> List[Tuple[str, str, np.ndarray, bool]]:
        """(parent, child, parent_from_child, is_static) for map -> base_link -> sensors."""
        ego = self.scenario.ego
        cam = ego.camera
        return [
            (MAP_FRAME, ego.frame_id, self.map_from_base.copy(), False),
            (ego.frame_id, cam.frame_id, self.base_from_camera(), True),
            (cam.frame_id, cam.optical_frame_id, make_transform(rotation=R_BODY_FROM_OPTICAL), True),
            (ego.frame_id, ego.lidar_2d.frame_id, self.base_from_lidar_2d(), True),
            (ego.frame_id, ego.lidar_3d.frame_id, self.base_from_lidar_3d(), True),
        ]

    # ------------------------------------------------------------------ camera

    @staticmethod
    def _gl_matrices(K: np.ndarray, width: int, height: int, near: float, far: float,
                     map_from_optical: np.ndarray):
        """OpenGL view/projection (column-major lists) reproducing the pinhole K exactly."""
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        proj = np.zeros((4, 4))
        proj[0, 0] = 2.0 * fx / width
        proj[0, 2] = 1.0 - 2.0 * (cx + 0.5) / width
        proj[1, 1] = 2.0 * fy / height
        proj[1, 2] = 2.0 * (cy + 0.5) / height - 1.0
        proj[2, 2] = -(far + near) / (far - near)
        proj[2, 3] = -2.0 * far * near / (far - near)
        proj[3, 2] = -1.0
        view = np.diag([1.0, -1.0, -1.0, 1.0]) @ invert(map_from_optical)
        return view.T.ravel().tolist(), proj.T.ravel().tolist()

    def _render(self, K, width, height, map_from_optical, cam: CameraConfig):
        view, proj = self._gl_matrices(K, width, height, cam.near, cam.far, map_from_optical)
        light = self.lighting
        _, _, rgba, depth_buffer, seg = p.getCameraImage(
            width, height, view, proj, lightDirection=list(light.direction), lightColor=list(light.color),
            lightDistance=light.distance, shadow=int(light.shadow), lightAmbientCoeff=light.ambient,
            lightDiffuseCoeff=light.diffuse, lightSpecularCoeff=light.specular,
            renderer=p.ER_TINY_RENDERER, physicsClientId=self.client)
        rgba = np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)
        depth_buffer = np.asarray(depth_buffer, dtype=np.float32).reshape(height, width)
        seg = np.asarray(seg, dtype=np.int32).reshape(height, width)
        return rgba, depth_buffer, seg

    def camera_matrix(self, width: Optional[int] = None, height: Optional[int] = None) -> np.ndarray:
        cam = self.scenario.ego.camera
        K = cam.matrix()
        if width is not None and (width, height) != (cam.width, cam.height):
            sx, sy = width / cam.width, height / cam.height
            K = np.array([[K[0, 0] * sx, 0, (K[0, 2] + 0.5) * sx - 0.5],
                          [0, K[1, 1] * sy, (K[1, 2] + 0.5) * sy - 0.5], [0, 0, 1]])
        return K

    def render_camera(self, width: Optional[int] = None, height: Optional[int] = None) -> CameraFrame:
        """RGB, depth and actor segmentation from the ego camera (optionally at another resolution,
        with the intrinsics scaled)."""
        cam = self.scenario.ego.camera
        width, height = width or cam.width, height or cam.height
        K = self.camera_matrix(width, height)
        map_from_optical = self.map_from_base @ self.base_from_optical()
        rgba, zbuf, seg = self._render(K, width, height, map_from_optical, cam)
        # seg holds body ids (-1: nothing); one table lookup maps them to actor indices
        actor_seg = self._segment_lookup[np.clip(seg, -1, len(self._body_actor) - 1) + 1]
        sky = seg < 0
        zbuf = zbuf.astype(np.float32, copy=False)
        depth = np.float32(cam.far * cam.near) / (np.float32(cam.far) - np.float32(cam.far - cam.near) * zbuf)
        depth[sky] = np.inf
        t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
        top = np.array(self.lighting.sky_top, np.float32)
        horizon = np.array(self.lighting.sky_horizon, np.float32)
        gradient = (top * (1 - t) + horizon * t).astype(np.uint8)  # H x 3
        rgb = np.where(sky[:, :, None], gradient[:, None, :], rgba[:, :, :3])
        return CameraFrame(self.time, rgb, depth, actor_seg, K, map_from_optical, cam.optical_frame_id)

    # ------------------------------------------------------------------ ground truth

    def ground_truth_3d(self, frame: str = MAP_FRAME) -> List[Box3D]:
        """3D boxes of all actors in ``map``, the ego frame (base_link) or the camera optical frame."""
        ego = self.scenario.ego
        if frame == MAP_FRAME:
            frame_from_map = np.eye(4)
        elif frame == ego.frame_id:
            frame_from_map = invert(self.map_from_base)
        elif frame == ego.camera.optical_frame_id:
            frame_from_map = invert(self.map_from_base @ self.base_from_optical())
        else:
            raise ValueError(f'unknown frame {frame!r}')
        return [Box3D(a.config.name, a.index, a.config.class_name, a.config.kitti_class, frame,
                      frame_from_map @ a.map_from_box, a.size.copy()) for a in self.actors]

    def ground_truth_2d(self, frame: CameraFrame, exact_occlusion: bool = True,
                        apply_threshold: bool = True) -> List[Box2D]:
        """2D boxes from the segmentation mask, with visibility (visible / unoccluded pixels) and
        truncation. Unoccluded silhouettes come from rendering an actor alone (only for actors
        whose projected box overlaps another's or leaves the image; others are unoccluded)."""
        gt_cfg = self.scenario.ground_truth
        height, width = frame.segmentation.shape
        cam = self.scenario.ego.camera
        visible = mask_boxes(frame.segmentation)
        optical_from_map = invert(frame.map_from_optical)
        rects, depths = {}, {}
        for box in self.ground_truth_3d():
            corners = transform_points(optical_from_map, box.corners())
            rect = projected_rect(frame.K, corners, cam.near, width, height)
            if rect is not None:
                rects[box.actor_index] = rect
                depths[box.actor_index] = (corners[:, 2].min(), corners[:, 2].max())
        out = []
        for actor in self.actors:
            i = actor.index
            if i not in visible:
                continue
            bbox, count = visible[i]
            rect = rects.get(i)
            inside = rect is not None and rect[0] >= 0 and rect[1] >= 0 and rect[2] <= width and rect[3] <= height
            # only a visible actor whose box starts nearer than this one ends can hide part of it
            overlapped = rect is not None and any(
                j != i and j in visible and depths[j][0] < depths[i][1] and rects_overlap(rect, other)
                for j, other in rects.items())
            unoccluded, truncation, full = float(count), 0.0, bbox
            if exact_occlusion and rect is not None and (overlapped or not inside):
                unoccluded, total, full = self._isolated(actor, frame, rect, width, height)
                unoccluded = max(unoccluded, float(count))
                truncation = 0.0 if total <= 0 else max(0.0, 1.0 - unoccluded / total)
                if full is None:
                    full = bbox
                full = (min(full[0], bbox[0]), min(full[1], bbox[1]), max(full[2], bbox[2]), max(full[3], bbox[3]))
            visibility = min(1.0, count / unoccluded) if unoccluded > 0 else 0.0
            record = Box2D(actor.config.name, i, actor.config.class_name, actor.config.kitti_class,
                           tuple(float(v) for v in bbox), tuple(float(v) for v in full), count, unoccluded,
                           visibility, truncation, occlusion_level(visibility, gt_cfg.occlusion_levels))
            if apply_threshold and (count < gt_cfg.min_pixels or visibility < gt_cfg.min_visibility):
                continue
            out.append(record)
        return out

    def _isolated(self, actor: _Actor, frame: CameraFrame, rect, width: int, height: int):
        """Render only ``actor`` over its projected rectangle (even outside the image): returns
        (silhouette pixels inside the image, total silhouette pixels, silhouette box clipped to the
        image or None). The actor and the camera move together by ISOLATION_OFFSET, far from
        everything else, so nothing else is within the camera's far plane."""
        cam = self.scenario.ego.camera
        x0, y0 = math.floor(rect[0]), math.floor(rect[1])
        x1, y1 = math.ceil(rect[2]), math.ceil(rect[3])
        scale = max(1.0, max(x1 - x0, y1 - y0) / ISOLATION_MAX_PIXELS)
        w = max(1, int(math.ceil((x1 - x0) / scale)))
        h = max(1, int(math.ceil((y1 - y0) / scale)))
        K = frame.K
        K_sub = np.array([[K[0, 0] / scale, 0, (K[0, 2] - x0 + 0.5) / scale - 0.5],
                          [0, K[1, 1] / scale, (K[1, 2] - y0 + 0.5) / scale - 0.5], [0, 0, 1]])
        shift = make_transform(ISOLATION_OFFSET)
        self._set_body_pose(actor, shift @ actor.map_from_box)
        try:
            _, _, seg = self._render(K_sub, w, h, shift @ frame.map_from_optical, cam)
        finally:
            self._set_body_pose(actor, actor.map_from_box)
        mask = (seg >= 0) & ((seg & ((1 << 24) - 1)) == actor.body)
        # pixel centres of the sub-render in full-image pixel coordinates
        us = x0 - 0.5 + scale * (np.arange(w) + 0.5)
        vs = y0 - 0.5 + scale * (np.arange(h) + 0.5)
        in_u = (us >= -0.5) & (us < width - 0.5)
        in_v = (vs >= -0.5) & (vs < height - 0.5)
        inside = mask & in_v[:, None] & in_u[None, :]
        area = scale * scale
        full = None
        if inside.any():
            rows = np.flatnonzero(inside.any(axis=1))
            cols = np.flatnonzero(inside.any(axis=0))
            full = (max(0.0, math.floor(us[cols[0]] - (scale - 1) / 2)), max(0.0, math.floor(vs[rows[0]] - (scale - 1) / 2)),
                    min(float(width), math.ceil(us[cols[-1]] + (scale + 1) / 2)),
                    min(float(height), math.ceil(vs[rows[-1]] + (scale + 1) / 2)))
        return float(inside.sum()) * area, float(mask.sum()) * area, full

    # ------------------------------------------------------------------ lidars

    def _cast(self, origins: np.ndarray, targets: np.ndarray):
        bodies_hit, fractions, normals = [], [], []
        batch = 16383  # pybullet answers at most 16383 rays per call (it drops the rest silently)
        for start in range(0, len(origins), batch):
            results = p.rayTestBatch(origins[start:start + batch].tolist(), targets[start:start + batch].tolist(),
                                     numThreads=0, physicsClientId=self.client)
            if len(results) != len(origins[start:start + batch]):
                raise RuntimeError(f'pybullet answered {len(results)} of {len(origins[start:start + batch])} rays')
            bodies_hit.extend(r[0] for r in results)
            fractions.extend(r[2] for r in results)
            normals.extend(r[4] for r in results)
        return (np.asarray(bodies_hit, dtype=np.int64), np.asarray(fractions, dtype=np.float64),
                np.asarray(normals, dtype=np.float64).reshape(-1, 3))

    def _noise_rng(self, sensor: str) -> np.random.Generator:
        return np.random.default_rng([self.scenario.seed, self.reset_seed, _SENSOR_STREAM[sensor],
                                      int(round(self.time * 1e6))])

    def scan_2d(self) -> LaserScanData:
        cfg = self.scenario.ego.lidar_2d
        fov = math.radians(cfg.fov_deg)
        angles = -fov / 2.0 + np.arange(cfg.beams) * (fov / (cfg.beams - 1))
        dirs_local = np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], axis=1)
        map_from_laser = self.map_from_base @ self.base_from_lidar_2d()
        dirs = dirs_local @ map_from_laser[:3, :3].T
        origin = map_from_laser[:3, 3]
        hit, fraction, _ = self._cast(np.broadcast_to(origin, dirs.shape), origin + dirs * cfg.range_max)
        ranges = np.where(hit >= 0, fraction * cfg.range_max, np.inf)
        rng = self._noise_rng('lidar_2d')
        noise = rng.normal(0.0, cfg.noise.range_std, cfg.beams) if cfg.noise.range_std > 0 else 0.0
        ranges = ranges + noise
        ranges[ranges > cfg.range_max] = np.inf
        ranges[ranges < cfg.range_min] = -np.inf
        if cfg.noise.dropout > 0:
            ranges[rng.uniform(size=cfg.beams) < cfg.noise.dropout] = np.nan
        actors = self._actor_of(hit)
        scan_time = 1.0 / cfg.rate_hz
        return LaserScanData(self.time, cfg.frame_id, float(angles[0]), float(angles[-1]),
                             float(fov / (cfg.beams - 1)), scan_time * (cfg.fov_deg / 360.0) / (cfg.beams - 1),
                             scan_time, cfg.range_min, cfg.range_max, ranges.astype(np.float32), actors)

    def _actor_of(self, hit: np.ndarray) -> np.ndarray:
        valid = (hit >= 0) & (hit < len(self._body_actor))
        return np.where(valid, self._body_actor[np.where(valid, hit, 0)], -1).astype(np.int32)

    def lidar_3d_directions(self) -> Tuple[np.ndarray, np.ndarray]:
        """Unit ray directions (lidar frame, ring-major) and their ring numbers."""
        cfg = self.scenario.ego.lidar_3d
        low, high = cfg.vertical_fov_deg
        elevations = np.radians(np.linspace(low, high, cfg.rings)) if cfg.rings > 1 else np.radians([low])
        azimuths = np.radians(np.arange(0.0, 360.0, cfg.horizontal_resolution_deg))
        el, az = np.meshgrid(elevations, azimuths, indexing='ij')
        dirs = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1).reshape(-1, 3)
        rings = np.repeat(np.arange(cfg.rings, dtype=np.uint16), len(azimuths))
        return dirs, rings

    def scan_3d(self) -> PointCloudData:
        cfg = self.scenario.ego.lidar_3d
        dirs_local, rings = self.lidar_3d_directions()
        map_from_lidar = self.map_from_base @ self.base_from_lidar_3d()
        dirs = dirs_local @ map_from_lidar[:3, :3].T
        origin = map_from_lidar[:3, 3]
        hit, fraction, normals = self._cast(np.broadcast_to(origin, dirs.shape), origin + dirs * cfg.range_max)
        ranges = fraction * cfg.range_max
        rng = self._noise_rng('lidar_3d')
        if cfg.noise.range_std > 0:
            ranges = ranges + rng.normal(0.0, cfg.noise.range_std, len(ranges))
        keep = (hit >= 0) & (ranges >= cfg.range_min) & (ranges <= cfg.range_max)
        if cfg.noise.dropout > 0:
            keep &= rng.uniform(size=len(ranges)) >= cfg.noise.dropout
        hit_kept = hit[keep]
        inside = (hit_kept >= 0) & (hit_kept < len(self._body_reflectivity))
        reflect = np.where(inside, self._body_reflectivity[np.where(inside, hit_kept, 0)], 0.5)
        cos_incidence = np.abs(np.einsum('ij,ij->i', dirs[keep], normals[keep]))
        points = dirs_local[keep] * ranges[keep, None]
        return PointCloudData(self.time, cfg.frame_id, points.astype(np.float32),
                              np.clip(reflect * cos_incidence, 0.0, 1.0).astype(np.float32),
                              rings[keep], self._actor_of(hit[keep]))
