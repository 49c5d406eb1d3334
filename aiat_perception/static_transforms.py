"""Static transforms (``/tf_static``), ROS-free: a buffer of parent -> child transforms that answers
"target_from_source" through the frame tree, and the quaternion maths (numpy) behind it.

It takes anything shaped like ``geometry_msgs/TransformStamped`` (``header.frame_id``,
``child_frame_id``, ``transform.translation.{x,y,z}``, ``transform.rotation.{x,y,z,w}``) or like
``tf2_msgs/TFMessage`` (``transforms``): rclpy messages, rosbags messages or plain objects. Where
``tf2_ros`` is installed a node may use it instead; this keeps the ROS-free core and bag tools
independent of it.
"""
from __future__ import annotations

import math
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np


class TransformError(ValueError):
    pass


def quaternion_to_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    """3x3 rotation of a quaternion (normalised first; a zero or non-finite one is an error)."""
    q = np.array([x, y, z, w], dtype=np.float64)
    norm = np.linalg.norm(q)
    if not np.all(np.isfinite(q)) or norm < 1e-9:
        raise TransformError(f'invalid quaternion {q.tolist()}')
    x, y, z, w = q / norm
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def matrix_to_quaternion(R: np.ndarray) -> Tuple[float, float, float, float]:
    """(x, y, z, w) of a 3x3 rotation, w >= 0 (Shepperd's method: the largest diagonal term first)."""
    R = np.asarray(R, dtype=np.float64)
    trace = R[0, 0] + R[1, 1] + R[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = [(R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s, 0.25 * s]
    elif R[0, 0] > R[1, 1] and R[0, 0] > R[2, 2]:
        s = 2.0 * math.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2])
        q = [0.25 * s, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s, (R[2, 1] - R[1, 2]) / s]
    elif R[1, 1] > R[2, 2]:
        s = 2.0 * math.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2])
        q = [(R[0, 1] + R[1, 0]) / s, 0.25 * s, (R[1, 2] + R[2, 1]) / s, (R[0, 2] - R[2, 0]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1])
        q = [(R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, 0.25 * s, (R[1, 0] - R[0, 1]) / s]
    q = np.array(q) / np.linalg.norm(q)
    if q[3] < 0:
        q = -q
    return tuple(float(v) for v in q)


def make_transform(translation=(0.0, 0.0, 0.0), quaternion=(0.0, 0.0, 0.0, 1.0)) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = quaternion_to_matrix(*quaternion)
    T[:3, 3] = translation
    if not np.all(np.isfinite(T)):
        raise TransformError(f'non-finite translation {list(translation)}')
    return T


def invert(T: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = T[:3, :3].T
    out[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return out


def apply(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return pts @ T[:3, :3].T + T[:3, 3]


def _strip(frame: str) -> str:
    return str(frame).lstrip('/')


class StaticTransformBuffer:
    """parent_from_child transforms by child frame (each frame has one parent, as in tf)."""

    def __init__(self):
        self._parent: Dict[str, Tuple[str, np.ndarray]] = {}

    def set(self, parent: str, child: str, parent_from_child: np.ndarray) -> None:
        parent, child = _strip(parent), _strip(child)
        if not parent or not child or parent == child:
            raise TransformError(f'bad frame pair {parent!r} -> {child!r}')
        T = np.asarray(parent_from_child, dtype=np.float64)
        if T.shape != (4, 4) or not np.all(np.isfinite(T)):
            raise TransformError(f'{parent} -> {child}: not a finite 4x4 transform')
        # a new link must not close a loop (the child may not be an ancestor of the parent)
        frame = parent
        while frame in self._parent:
            frame = self._parent[frame][0]
            if frame == child:
                raise TransformError(f'{parent} -> {child} would close a loop in the frame tree')
        self._parent[child] = (parent, T)

    def add(self, transform_stamped) -> None:
        """One TransformStamped-like object."""
        try:
            t = transform_stamped.transform
            tr, rot = t.translation, t.rotation
            T = make_transform((tr.x, tr.y, tr.z), (rot.x, rot.y, rot.z, rot.w))
            parent, child = transform_stamped.header.frame_id, transform_stamped.child_frame_id
        except AttributeError as exc:
            raise TransformError(f'not a TransformStamped: {exc}') from exc
        self.set(parent, child, T)

    def add_message(self, tf_message) -> int:
        """Every transform of a TFMessage-like object; returns how many were taken. Bad ones raise
        after the good ones are in (the caller counts them)."""
        errors: List[str] = []
        taken = 0
        for t in getattr(tf_message, 'transforms', []):
            try:
                self.add(t)
                taken += 1
            except TransformError as exc:
                errors.append(str(exc))
        if errors:
            raise TransformError('; '.join(errors))
        return taken

    def __len__(self) -> int:
        """How many parent -> child links are known."""
        return len(self._parent)

    def frames(self) -> List[str]:
        names = set(self._parent)
        names.update(p for p, _ in self._parent.values())
        return sorted(names)

    def _chain(self, frame: str) -> List[str]:
        chain = [frame]
        while chain[-1] in self._parent:
            chain.append(self._parent[chain[-1]][0])
        return chain

    def _root_from(self, frame: str, stop: str) -> np.ndarray:
        T = np.eye(4)
        while frame != stop:
            parent, parent_from_child = self._parent[frame]
            T = parent_from_child @ T
            frame = parent
        return T

    def can_transform(self, target: str, source: str) -> bool:
        return self.lookup(target, source, raise_error=False) is not None

    def lookup(self, target: str, source: str, raise_error: bool = True) -> Optional[np.ndarray]:
        """target_from_source (4x4): maps points in ``source`` coordinates into ``target``."""
        target, source = _strip(target), _strip(source)
        if target == source:
            return np.eye(4)
        up_source, up_target = self._chain(source), self._chain(target)
        common = next((f for f in up_source if f in set(up_target)), None)
        if common is None:
            if raise_error:
                raise TransformError(f'no transform between {target!r} and {source!r} '
                                     f'(known frames: {", ".join(self.frames()) or "none"})')
            return None
        return invert(self._root_from(target, common)) @ self._root_from(source, common)


def buffer_from(messages: Iterable) -> StaticTransformBuffer:
    buf = StaticTransformBuffer()
    for msg in messages:
        buf.add_message(msg)
    return buf
