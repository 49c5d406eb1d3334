"""Live mode: the bag played from memory into the real node graph over DDS.

The camera_detector runs as its own process (``python -m aiat_perception.nodes.camera_detector
--ros-args ...``, input remapped to the bag's image topic, output to /aiat_eval/detections); our
player publishes the recorded image messages at the recorded spacing (x ``--rate-scale``, or at a
multiple of the detector's measured capacity); a subscription here records every output with its
receive time. Latency = output received - the input's publish time (the recorded header stamps are
kept so outputs pair with ground truth by stamp). A frame without an output was dropped: the node
keeps only the newest frame when it falls behind, as on the vehicle.

Only the camera graph exists as nodes so far; lidar and scan are evaluated offline.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from aiat_perception.replay.bag_input import ReplayError, Streams
from aiat_training.replay_eval import offline
from aiat_training.replay_eval.frames import Collected
from aiat_training.replay_eval.scoring import percentiles

OUTPUT_TOPIC = '/aiat_eval/detections'
MAX_DROP = 0.05          # ros2_benchmark's acceptance for a rate: <= 5% frames lost


class OutputRecorder:
    def __init__(self, node, topic: str):
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from vision_msgs.msg import Detection2DArray
        self.outputs: Dict[int, Tuple[int, tuple]] = {}
        self.events: List[Tuple[int, int]] = []      # (header stamp, receive ns) of every output
        self.count = 0
        self.lock = threading.Lock()
        node.create_subscription(Detection2DArray, topic, self.on_msg,
                                 QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))

    def on_msg(self, msg) -> None:
        from aiat_perception.vision_conversions import labeled_boxes_from_msg
        now = time.time_ns()
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        found = labeled_boxes_from_msg(msg)      # malformed entries are left out
        boxes = np.array([b.box for b in found], np.float64).reshape(-1, 4)
        scores = np.array([b.score for b in found], np.float64)
        labels = [b.class_id for b in found]
        with self.lock:
            self.count += 1
            self.events.append((stamp, now))
            self.outputs.setdefault(stamp, (now, (boxes, list(labels), scores)))


class LiveGraph:
    """rclpy + the camera_detector process; ``close()`` stops both."""

    def __init__(self, streams: Streams, bundle, score_threshold, log_dir: Path):
        from aiat_perception.nodes.common import configure_dds
        configure_dds()
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        self.rclpy = rclpy
        # a context of our own: the caller may have initialised rclpy already
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('aiat_eval_player', context=self.context)
        self.recorder = OutputRecorder(self.node, OUTPUT_TOPIC)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.spinning = True
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()
        compressed = streams.camera_type.endswith('CompressedImage')
        cmd = [sys.executable, '-m', 'aiat_perception.nodes.camera_detector', '--ros-args',
               '-r', f'{"image/compressed" if compressed else "image"}:={streams.camera}',
               '-r', f'detections:={OUTPUT_TOPIC}', '-p', 'reliability:=reliable',
               '-p', f'compressed:={"true" if compressed else "false"}']
        if bundle:
            cmd += ['-p', f'bundle_path:={Path(bundle).resolve()}']
        if score_threshold is not None:
            cmd += ['-p', f'score_threshold:={float(score_threshold)}']
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / 'camera_detector.log'
        self.log = open(self.log_path, 'w')
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def _spin(self):
        while self.spinning:
            self.executor.spin_once(timeout_sec=0.05)

    def wait_ready(self, player, topic: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ReplayError(f'camera_detector exited with {self.proc.returncode} before the replay '
                                  f'(log: {self.log_path}): {self.tail()}')
            if player.subscribers(topic) > 0 and self.node.count_publishers(OUTPUT_TOPIC) > 0:
                return
            time.sleep(0.05)
        raise ReplayError(f'camera_detector did not subscribe to {topic} within {timeout:.0f} s (log: {self.log_path})')

    def tail(self) -> str:
        self.log.flush()
        lines = self.log_path.read_text(errors='replace').strip().splitlines()
        return lines[-1] if lines else ''

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        self.spinning = False
        self.thread.join(timeout=2)
        self.executor.shutdown()
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)


def _warm_up(graph: LiveGraph, player, first, rounds: int = 6, timeout: float = 30.0) -> float:
    """Publish the first frame stamped 1..rounds ns (not a bag stamp), one at a time, each after the
    node answered the previous; returns the graph's capacity (frames/s) from the median round trip of
    the rounds after the first two (the node's own process, transport included: what the replay meets)."""
    from rclpy.serialization import deserialize_message, serialize_message

    from aiat_perception.replay.player import rclpy_class
    cls = rclpy_class(first.msgtype)
    msg = deserialize_message(first.raw, cls)
    round_trips = []
    for k in range(1, rounds + 1):
        msg.header.stamp.sec, msg.header.stamp.nanosec = 0, k
        data = serialize_message(msg)
        t0 = time.time_ns()
        player.publishers[first.topic].publish(data)
        deadline = time.monotonic() + timeout
        while k not in graph.recorder.outputs:
            if time.monotonic() > deadline:
                raise ReplayError(f'camera_detector gave no output for a warm-up frame within {timeout:.0f} s '
                                  f'(log: {graph.log_path}): {graph.tail()}')
            time.sleep(0.002)
        round_trips.append((graph.recorder.outputs[k][0] - t0) / 1e9)
    return 1.0 / float(np.median(round_trips[2:]))


def _settle(graph: LiveGraph, quiet_s: float = 1.0, limit_s: float = 10.0) -> None:
    start, last, seen = time.monotonic(), time.monotonic(), graph.recorder.count
    while time.monotonic() - start < limit_s:
        time.sleep(0.05)
        if graph.recorder.count != seen:
            seen, last = graph.recorder.count, time.monotonic()
        elif time.monotonic() - last > quiet_s:
            return


def run_live(args, streams: Streams) -> Tuple[Collected, Dict[str, object]]:
    from aiat_perception.replay.player import Player, load
    if not streams.camera:
        raise ReplayError(f'{args.bag}: live mode runs the camera graph (camera_detector); this bag has no scored '
                          'camera topic: use --offline')
    notes = []
    if streams.points or streams.scan:
        notes.append('live mode ran the camera graph only; lidar and scan have no nodes yet (use --offline)')
    cam_streams = Streams(camera=streams.camera, camera_type=streams.camera_type, gt_2d=streams.gt_2d,
                          notes=list(streams.notes) + notes)
    collected = offline.collect(args.bag, cam_streams)
    messages = load(args.bag, [streams.camera])
    span = (messages[-1].log_ns - messages[0].log_ns) / 1e9 if len(messages) > 1 else 0.0
    recorded_hz = (len(messages) - 1) / span if span > 0 else None
    fixed_rate = None
    rate_scale = args.rate_scale
    graph = LiveGraph(streams, args.bundle, args.score_threshold, Path(args.out))
    try:
        player = Player(graph.node, messages, clock=args.clock)
        graph.wait_ready(player, streams.camera)
        capacity = _warm_up(graph, player, messages[0])
        if getattr(args, 'capacity_multiple', None):
            fixed_rate = args.capacity_multiple * capacity
        extra_live: Dict[str, object] = {}
        if args.max_rate:
            if not (1 <= args.max_rate_iterations <= 20 and 1 <= args.max_rate_frames <= 100_000):
                raise ReplayError('--max-rate-iterations must be 1..20 and --max-rate-frames 1..100000')
            extra_live['max_rate'] = _max_rate_search(graph, player, messages, capacity, args.max_rate_iterations,
                                                      args.max_rate_frames)
        graph.recorder.outputs.clear()
        before = graph.recorder.count
        log = player.play(rate_scale=rate_scale, fixed_rate_hz=fixed_rate)
        _settle(graph)
        received = graph.recorder.count - before
        outputs = dict(graph.recorder.outputs)
    finally:
        graph.close()
    for frame in collected.of('camera'):
        out = outputs.get(frame.stamp_ns)
        if out is not None:
            recv_ns, dets = out
            frame.detections = dets
            frame.processing_ms = (recv_ns - log.publish_wall_ns[frame.stamp_ns]) / 1e6
    played = (len(log.actual) - 1) / (log.actual[-1] - log.actual[0]) if len(log.actual) > 1 else None
    dropped = sum(1 for f in collected.of('camera') if f.detections is None)
    live = {'node': ' '.join(graph.cmd[1:]), 'recorded_rate_hz': _r(recorded_hz), 'played_rate_hz': _r(played),
            'rate_scale': rate_scale if fixed_rate is None else None,
            'capacity_hz_measured': _r(capacity),
            'capacity_definition': '1 / median round trip of single frames through the node before the replay', 'published': len(log.actual), 'outputs': received,
            'player_timing_error_ms': percentiles([abs(e) for e in log.timing_errors_ms()])}
    live.update(extra_live)
    if played and dropped:
        collected.notes.append(
            f'live: played at {played:.1f} Hz, {played / capacity:.1f}x the graph\'s measured capacity '
            f'({capacity:.1f} frames/s on this machine); the node keeps only the newest frame, so {dropped} of '
            f'{len(log.actual)} frames got no output: they count as missed ground truth, and the score is lower '
            'than offline for that reason')
    elif played:
        collected.notes.append(f'live: played at {played:.1f} Hz ({played / capacity:.2f}x the measured capacity of '
                               f'{capacity:.1f} frames/s): every frame got an output')
    return collected, {'live': live}


def _r(v: Optional[float]) -> Optional[float]:
    return None if v is None else round(float(v), 3)


def _max_rate_search(graph: LiveGraph, player, messages, capacity: float, iterations: int = 6,
                     min_frames: int = 30) -> Dict[str, object]:
    """Bisection over the input rate (ros2_benchmark's method): a rate passes when <= 5% of the frames
    get no output. Each trial plays at least ``min_frames`` frames (the bag repeated) at a fixed rate."""
    trial_msgs = (messages * (min_frames // max(len(messages), 1) + 1))[:max(min_frames, len(messages))]
    lo, hi = 0.0, 4.0 * capacity
    trials = []
    best = None
    for _ in range(iterations):
        rate = hi if not trials else (lo + hi) / 2.0
        before = graph.recorder.count
        first_event = len(graph.recorder.events)
        graph.recorder.outputs.clear()
        log = player.play(fixed_rate_hz=rate, messages=trial_msgs)
        _settle(graph, quiet_s=0.5)
        got = graph.recorder.count - before
        drop = max(0.0, 1.0 - got / len(trial_msgs))
        latency = percentiles(_trial_latencies(log.published, graph.recorder.events[first_event:]))
        trial = {'rate_hz': round(rate, 2), 'drop_rate': round(drop, 4), 'latency_ms': latency}
        trials.append(trial)
        if drop <= MAX_DROP:
            lo, best = rate, trial
            if len(trials) == 1:
                break
        else:
            hi = rate
    return {'criterion': f'drops <= {MAX_DROP:.0%}', 'max_rate_hz': best['rate_hz'] if best else None,
            'drop_rate_at_max': best['drop_rate'] if best else None,
            'latency_ms_at_max': best['latency_ms'] if best else None, 'trials': trials,
            'note': 'outputs per trial counted against frames sent (the bag repeated to fill a trial); latency = '
                    'output received - the latest publish of the same stamp before it'}


def _trial_latencies(published, events) -> List[float]:
    by_stamp: Dict[int, List[int]] = {}
    for stamp, wall in published:
        by_stamp.setdefault(stamp, []).append(wall)
    out = []
    for stamp, recv in events:
        sent = [w for w in by_stamp.get(stamp, []) if w <= recv]
        if sent:
            out.append((recv - max(sent)) / 1e6)
    return out
