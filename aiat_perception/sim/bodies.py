"""Creating PyBullet bodies: URDF assets, primitive pedestrians and cones, textured photo quads,
ground and road. Every function takes the physics client id and returns body ids."""
from __future__ import annotations

import contextlib
import math
import os
import sys
from typing import List, Optional, Sequence, Tuple

import numpy as np
import pybullet as p
import pybullet_data

from aiat_perception.sim.catalog import ASSETS


def local_box(client: int, body: int) -> Tuple[np.ndarray, np.ndarray]:
    """(min, max) corners of the body's collision geometry in its base frame (body must be at the
    identity pose): the actor's 3D box before it is placed."""
    indices = [-1] + list(range(p.getNumJoints(body, physicsClientId=client)))
    lo = np.full(3, np.inf)
    hi = np.full(3, -np.inf)
    for link in indices:
        a, b = p.getAABB(body, link, physicsClientId=client)
        lo = np.minimum(lo, a)
        hi = np.maximum(hi, b)
    # Bullet pads each AABB by its collision margin (about 4 mm at unit scale); not the object's size.
    return lo, hi


@contextlib.contextmanager
def quiet_stdout():
    """Silence Bullet's C-level URDF importer warnings (printed straight to file descriptor 1)."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def set_color(client: int, body: int, rgba: Sequence[float]) -> None:
    for link in [-1] + list(range(p.getNumJoints(body, physicsClientId=client))):
        p.changeVisualShape(body, link, rgbaColor=list(rgba), physicsClientId=client)


def load_mesh(client: int, asset: str, scale: Optional[float] = None) -> int:
    spec = ASSETS[asset]
    scale = spec.scale if scale is None else scale
    if spec.urdf is not None:
        with quiet_stdout():
            body = p.loadURDF(spec.urdf, [0, 0, 0], [0, 0, 0, 1], useFixedBase=True, globalScaling=scale,
                              physicsClientId=client)
    elif asset == 'pedestrian':
        body = pedestrian(client, scale)
    elif asset == 'traffic_cone':
        body = cone(client, scale)
    elif asset == 'sedan':
        body = sedan(client, scale, spec.color or (0.55, 0.1, 0.1, 1.0))
    else:
        raise ValueError(f'asset {asset!r} has neither a URDF nor a builder')
    if spec.color is not None and spec.urdf is not None:
        set_color(client, body, spec.color)
    return body


def pedestrian(client: int, scale: float = 1.0,
               shirt=(0.2, 0.25, 0.45, 1.0), trousers=(0.15, 0.15, 0.18, 1.0),
               skin=(0.85, 0.65, 0.5, 1.0)) -> int:
    """A standing person (1.75 m) from primitives: torso box, sphere head, cylinder arms and legs."""
    s = scale
    parts = [  # (shape, size, position of the part's centre, colour)
        (p.GEOM_BOX, (0.11 * s, 0.19 * s, 0.3 * s), (0, 0, 1.17 * s), shirt),
        (p.GEOM_SPHERE, 0.11 * s, (0, 0, 1.63 * s), skin),
        (p.GEOM_CYLINDER, (0.075 * s, 0.87 * s), (0, 0.09 * s, 0.435 * s), trousers),
        (p.GEOM_CYLINDER, (0.075 * s, 0.87 * s), (0, -0.09 * s, 0.435 * s), trousers),
        (p.GEOM_CYLINDER, (0.045 * s, 0.62 * s), (0, 0.245 * s, 1.14 * s), shirt),
        (p.GEOM_CYLINDER, (0.045 * s, 0.62 * s), (0, -0.245 * s, 1.14 * s), shirt),
    ]
    collisions, visuals = [], []
    for shape, size, _, colour in parts:
        if shape == p.GEOM_BOX:
            kw = {'halfExtents': size}
        elif shape == p.GEOM_SPHERE:
            kw = {'radius': size}
        else:
            kw = {'radius': size[0]}
        ckw = dict(kw)
        vkw = dict(kw)
        if shape == p.GEOM_CYLINDER:
            ckw['height'] = size[1]
            vkw['length'] = size[1]
        collisions.append(p.createCollisionShape(shape, physicsClientId=client, **ckw))
        visuals.append(p.createVisualShape(shape, rgbaColor=colour, physicsClientId=client, **vkw))
    return _person_body(client, collisions, visuals, parts)


def sedan(client: int, scale: float = 1.0, paint=(0.55, 0.1, 0.1, 1.0), glass=(0.15, 0.2, 0.25, 1.0),
          tyre=(0.05, 0.05, 0.05, 1.0)) -> int:
    """A car-sized two-box body (4.4 x 1.84 x 1.5 m) from boxes: a lower body 0.2-0.9 m above the ground,
    a cabin 3.0 m long on it and four wheels; its collision shapes are these boxes, so 3D lidar rays see
    a car's outline (the pybullet racecar scaled up is a go-kart: wheels apart from a narrow chassis)."""
    s = scale
    parts = [  # (shape, half extents, centre, colour); the lower body is the base
        (p.GEOM_BOX, (2.2 * s, 0.9 * s, 0.35 * s), (0, 0, 0.55 * s), paint),
        (p.GEOM_BOX, (1.5 * s, 0.8 * s, 0.3 * s), (-0.2 * s, 0, 1.2 * s), glass),
    ]
    for x in (1.4, -1.4):
        for y in (0.8, -0.8):
            parts.append((p.GEOM_BOX, (0.33 * s, 0.12 * s, 0.33 * s), (x * s, y * s, 0.33 * s), tyre))
    collisions = [p.createCollisionShape(p.GEOM_BOX, halfExtents=half, physicsClientId=client) for _, half, _, _ in parts]
    visuals = [p.createVisualShape(p.GEOM_BOX, halfExtents=half, rgbaColor=colour, physicsClientId=client)
               for _, half, _, colour in parts]
    return _person_body(client, collisions, visuals, parts)


def set_person_colors(client: int, body: int, shirt, trousers, skin) -> None:
    """Recolour a :func:`pedestrian` (links: head, two legs, two arms after the torso base)."""
    for link, colour in ((-1, shirt), (0, skin), (1, trousers), (2, trousers), (3, shirt), (4, shirt)):
        p.changeVisualShape(body, link, rgbaColor=list(colour), physicsClientId=client)


def _person_body(client, collisions, visuals, parts) -> int:
    """A fixed multi-body of primitive parts (the first is the base), used for persons and cars."""
    # The base (torso) is placed at its own centre; links are offsets from it.
    # The base frame sits at the torso centre and stays at the origin until the actor is placed.
    base_pos = np.array(parts[0][2], dtype=float)
    n = len(parts) - 1
    body = p.createMultiBody(
        baseMass=0, baseCollisionShapeIndex=collisions[0], baseVisualShapeIndex=visuals[0],
        basePosition=[0, 0, 0],
        linkMasses=[0] * n, linkCollisionShapeIndices=collisions[1:], linkVisualShapeIndices=visuals[1:],
        linkPositions=[list(np.array(part[2]) - base_pos) for part in parts[1:]],
        linkOrientations=[[0, 0, 0, 1]] * n,
        linkInertialFramePositions=[[0, 0, 0]] * n, linkInertialFrameOrientations=[[0, 0, 0, 1]] * n,
        linkParentIndices=[0] * n, linkJointTypes=[p.JOINT_FIXED] * n, linkJointAxis=[[0, 0, 1]] * n,
        physicsClientId=client)
    return body


def _cone_mesh(radius: float, height: float, segments: int = 20):
    angles = np.linspace(0, 2 * math.pi, segments, endpoint=False)
    ring = [(radius * math.cos(a), radius * math.sin(a), 0.0) for a in angles]
    vertices = ring + [(0.0, 0.0, height), (0.0, 0.0, 0.0)]
    apex, centre = segments, segments + 1
    indices = []
    for i in range(segments):
        j = (i + 1) % segments
        indices += [i, j, apex, j, i, centre]
    return vertices, indices


def cone(client: int, scale: float = 1.0) -> int:
    """A traffic cone (0.7 m tall, 0.36 m base) with a square foot."""
    vertices, indices = _cone_mesh(0.15 * scale, 0.7 * scale)
    visual = p.createVisualShape(p.GEOM_MESH, vertices=vertices, indices=indices,
                                 rgbaColor=[1.0, 0.35, 0.0, 1.0], physicsClientId=client)
    collision = p.createCollisionShape(p.GEOM_MESH, vertices=vertices, physicsClientId=client)
    return p.createMultiBody(baseMass=0, baseCollisionShapeIndex=collision, baseVisualShapeIndex=visual,
                             basePosition=[0, 0, 0], physicsClientId=client)


def photo_quad(client: int, texture_id: int, width: float, height: float, thickness: float = 0.04) -> int:
    """An upright rectangle (in the local y-z plane, bottom edge on z=0) showing the texture on both
    faces; seen from +x the texture is upright and not mirrored."""
    w, h = width / 2.0, height
    front = [(0.0, -w, 0.0), (0.0, w, 0.0), (0.0, w, h), (0.0, -w, h)]
    uvs = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]
    back_uvs = [(1.0, 0.0), (0.0, 0.0), (0.0, 1.0), (1.0, 1.0)]
    vertices = front + front
    normals = [(1.0, 0.0, 0.0)] * 4 + [(-1.0, 0.0, 0.0)] * 4
    indices = [0, 1, 2, 0, 2, 3, 4, 6, 5, 4, 7, 6]
    visual = p.createVisualShape(p.GEOM_MESH, vertices=vertices, indices=indices, normals=normals,
                                 uvs=uvs + back_uvs, physicsClientId=client)
    collision = p.createCollisionShape(p.GEOM_BOX, halfExtents=[thickness / 2.0, w, h / 2.0],
                                       collisionFramePosition=[0, 0, h / 2.0], physicsClientId=client)
    body = p.createMultiBody(baseMass=0, baseCollisionShapeIndex=collision, baseVisualShapeIndex=visual,
                             basePosition=[0, 0, 0], physicsClientId=client)
    p.changeVisualShape(body, -1, textureUniqueId=texture_id, rgbaColor=[1, 1, 1, 1], physicsClientId=client)
    return body


def ground(client: int) -> int:
    p.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=client)
    return p.loadURDF('plane.urdf', [0, 0, 0], useFixedBase=True, physicsClientId=client)


def _box(client: int, half_extents, position, yaw: float, rgba, collide: bool = True) -> int:
    visual = p.createVisualShape(p.GEOM_BOX, halfExtents=list(half_extents), rgbaColor=list(rgba),
                                 physicsClientId=client)
    collision = p.createCollisionShape(p.GEOM_BOX, halfExtents=list(half_extents),
                                       physicsClientId=client) if collide else -1
    return p.createMultiBody(baseMass=0, baseCollisionShapeIndex=collision, baseVisualShapeIndex=visual,
                             basePosition=list(position),
                             baseOrientation=p.getQuaternionFromEuler([0, 0, yaw]), physicsClientId=client)


ROAD_THICKNESS = 0.02


def road(client: int, config, asphalt_rgba=(0.3, 0.3, 0.32, 1.0)) -> Tuple[List[int], List[int]]:
    """Road surface segments and lane markings; returns (surface ids, marking ids)."""
    surfaces, markings = [], []
    t = ROAD_THICKNESS
    if config.type == 'none':
        return surfaces, markings
    lane_offsets = [(-config.width / 2 + k * config.width / config.lanes) for k in range(1, config.lanes)]
    if config.type == 'straight':
        half = config.length / 2.0
        surfaces.append(_box(client, (half, config.width / 2, t / 2), (half - 20.0, 0, t / 2), 0.0, asphalt_rgba))
        if config.markings:
            for x in np.arange(-20.0, config.length - 20.0, 10.0):
                for y in lane_offsets:
                    markings.append(_box(client, (1.5, 0.07, 0.002), (x + 1.5, y, t + 0.002), 0.0,
                                         (0.95, 0.95, 0.9, 1), collide=False))
                for y in (-config.width / 2 + 0.2, config.width / 2 - 0.2):
                    markings.append(_box(client, (5.0, 0.07, 0.002), (x + 5.0, y, t + 0.002), 0.0,
                                         (0.95, 0.95, 0.9, 1), collide=False))
        return surfaces, markings
    # loop: a ring of tangent segments around the origin
    segments = max(16, int(2 * math.pi * config.radius / 4.0))
    seg_len = 2 * math.pi * (config.radius + config.width / 2) / segments * 1.02
    for k in range(segments):
        a = 2 * math.pi * k / segments
        pos = (config.radius * math.cos(a), config.radius * math.sin(a), t / 2)
        surfaces.append(_box(client, (seg_len / 2, config.width / 2, t / 2), pos, a + math.pi / 2, asphalt_rgba))
        if config.markings and k % 2 == 0:
            for off in lane_offsets:
                r = config.radius + off
                markings.append(_box(client, (seg_len / 4, 0.07, 0.002),
                                     (r * math.cos(a), r * math.sin(a), t + 0.002), a + math.pi / 2,
                                     (0.95, 0.95, 0.9, 1), collide=False))
    return surfaces, markings
