"""Live mode: the bag played from memory into the real node graph over DDS.

Each scored sensor of the bag has its detector node, run as its own process exactly as on the
vehicle (``python -m aiat_perception.nodes.<detector> --ros-args ...``: camera_detector for images,
lidar_detector for PointCloud2, scan_detector for LaserScan, and the fusion node on the camera and
lidar detectors' outputs with the bag's CameraInfo, cloud and /tf_static), its input remapped to the
bag's topic and its output to /aiat_eval/<sensor>/detections; ``--graph`` chooses them (``auto``:
every sensor the bag has ground truth for). Our player publishes the recorded messages at the recorded spacing
(x ``--rate-scale``, or at a multiple of the node's measured capacity); a subscription here records
every output with its receive time. Latency = output received - the input's publish time (the
recorded header stamps are kept so outputs pair with ground truth by stamp). A frame without an
output was dropped: the nodes keep only the newest frame when they fall behind, as on the vehicle.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from aiat_perception.replay.bag_input import ReplayError, Streams
from aiat_training.replay_eval import offline
from aiat_training.replay_eval.frames import Collected
from aiat_training.replay_eval.graphs import DETECTION_2D, NODES, SensorNode, sensor_topic
from aiat_training.replay_eval.scoring import percentiles

MAX_DROP = 0.05          # ros2_benchmark's acceptance for a rate: <= 5% frames lost


def node_command(spec: SensorNode, streams: Streams, args) -> List[str]:
    """The node's command line: the vehicle's node, its input on the bag's topic, reliable (the
    player offers reliable; the node's keep-last-1 input still drops what it cannot process), and for
    the lidar and fusion nodes the same parameter file the offline core reads, output in the sensor
    (fusion: camera) frame."""
    topic = sensor_topic(streams, spec.sensor)
    cmd = [sys.executable, '-m', spec.module, '--ros-args']
    if spec.sensor == 'camera':
        compressed = streams.camera_type.endswith('CompressedImage')
        cmd += ['-r', f'{"image/compressed" if compressed else "image"}:={topic}',
                '-r', f'detections:={spec.output_topic}', '-p', 'reliability:=reliable',
                '-p', f'compressed:={"true" if compressed else "false"}']
        if getattr(args, 'bundle', None):
            cmd += ['-p', f'bundle_path:={Path(args.bundle).resolve()}']
        if getattr(args, 'score_threshold', None) is not None:
            cmd += ['-p', f'score_threshold:={float(args.score_threshold)}']
        return cmd
    params = getattr(args, f'{spec.sensor}_params', None) or offline.REPO_CONFIG / f'{spec.graph}.yaml'
    if Path(params).is_file():
        cmd += ['--params-file', str(Path(params).resolve())]
    if spec.sensor == 'fusion':
        # the detectors' outputs over DDS, the bag's CameraInfo, cloud and /tf_static; lidar boxes used as offline
        return cmd + ['-r', f'detections:={NODES["camera"].output_topic}', '-r', f'camera_info:={streams.camera_info}',
                      '-r', f'points:={streams.points}', '-r', f'lidar_detections:={NODES["lidar"].output_topic}',
                      '-r', f'fused_detections:={spec.output_topic}', '-p', 'use_lidar_detections:=true',
                      '-p', 'reliability:=reliable', '-p', 'extrinsic_source:=tf_static', '-p', "target_frame:=''"]
    return cmd + ['-r', f'{spec.input_name}:={topic}', '-r', f'detections:={spec.output_topic}',
                  '-p', 'reliability:=reliable', '-p', "target_frame:=''"]


class OutputRecorder:
    """Every output of one detector: by header stamp the first one with its receive time, and the
    (stamp, receive ns) of each."""

    def __init__(self, node, topic: str, output_type: str, convert=None):
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        from aiat_perception.replay.player import rclpy_class
        self.outputs: Dict[int, Tuple[int, object]] = {}
        self.events: List[Tuple[int, int]] = []      # (header stamp, receive ns) of every output
        self.count = 0
        self.lock = threading.Lock()
        self.convert = convert or (_boxes_2d if output_type == DETECTION_2D else _objects_3d)
        node.create_subscription(rclpy_class(output_type), topic, self.on_msg,
                                 QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))

    def on_msg(self, msg) -> None:
        now = time.time_ns()
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        found = self.convert(msg)
        with self.lock:
            self.count += 1
            self.events.append((stamp, now))
            self.outputs.setdefault(stamp, (now, found))


def _boxes_2d(msg):
    """(boxes, classes, scores) of the usable detections, and every detection's box in message order
    (the fusion node names a camera detection by its index there)."""
    from aiat_perception.vision_conversions import labeled_boxes_from_msg
    found = labeled_boxes_from_msg(msg)      # malformed entries are left out
    boxes = np.array([b.box for b in found], np.float64).reshape(-1, 4)
    every = []
    for det in msg.detections:
        cx, cy, w, h = det.bbox.center.position.x, det.bbox.center.position.y, det.bbox.size_x, det.bbox.size_y
        every.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    return boxes, [b.class_id for b in found], np.array([b.score for b in found], np.float64), every


def _fused_entries(msg):
    """(id, class, score, centre, quaternion, size) of each fused object, in the message's frame."""
    out = []
    for det in msg.detections:
        if not det.results:
            continue
        best = max(det.results, key=lambda r: r.hypothesis.score)
        c, q, z = det.bbox.center.position, det.bbox.center.orientation, det.bbox.size
        out.append((det.id, str(best.hypothesis.class_id), float(best.hypothesis.score), (c.x, c.y, c.z),
                    (q.x, q.y, q.z, q.w), (z.x, z.y, z.z)))
    return out


def _objects_3d(msg):
    from aiat_perception.vision_conversions import objects_3d_from_msg
    return objects_3d_from_msg(msg)          # malformed entries are left out


class LiveGraph:
    """rclpy + one detector process per sensor; ``close()`` stops them all."""

    def __init__(self, sensors: Sequence[str], streams: Streams, args, log_dir: Path):
        from aiat_perception.nodes.common import configure_dds
        configure_dds()
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        self.rclpy = rclpy
        # a context of our own: the caller may have initialised rclpy already
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('aiat_eval_player', context=self.context)
        self.specs = {s: NODES[s] for s in sensors}
        self.recorders = {s: OutputRecorder(self.node, spec.output_topic, spec.output_type,
                                            _fused_entries if s == 'fusion' else None)
                          for s, spec in self.specs.items()}
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.spinning = True
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()
        log_dir.mkdir(parents=True, exist_ok=True)
        self.cmds: Dict[str, List[str]] = {}
        self.log_paths: Dict[str, Path] = {}
        self.logs = {}
        self.procs: Dict[str, subprocess.Popen] = {}
        for sensor, spec in self.specs.items():
            self.cmds[sensor] = node_command(spec, streams, args)
            self.log_paths[sensor] = log_dir / f'{spec.graph}.log'
            self.logs[sensor] = open(self.log_paths[sensor], 'w')
            self.procs[sensor] = subprocess.Popen(self.cmds[sensor], stdout=self.logs[sensor], stderr=subprocess.STDOUT,
                                                  start_new_session=True)

    def _spin(self):
        while self.spinning:
            self.executor.spin_once(timeout_sec=0.05)

    def output_count(self) -> int:
        return sum(r.count for r in self.recorders.values())

    def wait_ready(self, player, topics: Dict[str, str], timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        waiting = dict(topics)
        while time.monotonic() < deadline:
            for sensor, topic in list(waiting.items()):
                proc = self.procs[sensor]
                if proc.poll() is not None:
                    raise ReplayError(f'{self.specs[sensor].graph} exited with {proc.returncode} before the replay '
                                      f'(log: {self.log_paths[sensor]}): {self.tail(sensor)}')
                if player.subscribers(topic) > 0 and self.node.count_publishers(self.specs[sensor].output_topic) > 0:
                    del waiting[sensor]
            if not waiting:
                return
            time.sleep(0.05)
        sensor, topic = next(iter(waiting.items()))
        raise ReplayError(f'{self.specs[sensor].graph} did not subscribe to {topic} within {timeout:.0f} s '
                          f'(log: {self.log_paths[sensor]})')

    def tail(self, sensor: str) -> str:
        self.logs[sensor].flush()
        lines = self.log_paths[sensor].read_text(errors='replace').strip().splitlines()
        return lines[-1] if lines else ''

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for log in self.logs.values():
            log.close()
        self.spinning = False
        self.thread.join(timeout=2)
        self.executor.shutdown()
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)


def _warm_up(graph: LiveGraph, player, sensor: str, first, rounds: int = 6, timeout: float = 30.0) -> float:
    """Publish the sensor's first message stamped 1..rounds ns (not a bag stamp), one at a time, each
    after the node answered the previous; returns the node's capacity (frames/s) from the median round
    trip of the rounds after the first two (the node's own process, transport included: what the
    replay meets). A laser scan goes with one more (empty) beam: scan_detector's background model
    learns from every scan it processes but starts afresh when the beam count changes, so the replay's
    first scan finds it as new as the offline core does, and the warm-up still does a real scan's work."""
    from rclpy.serialization import deserialize_message, serialize_message

    from aiat_perception.replay.player import rclpy_class
    cls = rclpy_class(first.msgtype)
    msg = deserialize_message(first.raw, cls)
    if sensor == 'scan':
        msg.ranges = [*msg.ranges, float('nan')]
        msg.angle_max = float(msg.angle_max + msg.angle_increment)
        if len(msg.intensities):
            msg.intensities = [*msg.intensities, 0.0]
    recorder = graph.recorders[sensor]
    round_trips = []
    for k in range(1, rounds + 1):
        msg.header.stamp.sec, msg.header.stamp.nanosec = 0, k
        data = serialize_message(msg)
        t0 = time.time_ns()
        player.publishers[first.topic].publish(data)
        deadline = time.monotonic() + timeout
        while k not in recorder.outputs:
            if time.monotonic() > deadline:
                raise ReplayError(f'{graph.specs[sensor].graph} gave no output for a warm-up frame within '
                                  f'{timeout:.0f} s (log: {graph.log_paths[sensor]}): {graph.tail(sensor)}')
            time.sleep(0.002)
        round_trips.append((recorder.outputs[k][0] - t0) / 1e9)
    return 1.0 / float(np.median(round_trips[2:]))


def _settle(graph: LiveGraph, quiet_s: float = 1.0, limit_s: float = 10.0) -> None:
    start, last, seen = time.monotonic(), time.monotonic(), graph.output_count()
    while time.monotonic() - start < limit_s:
        time.sleep(0.05)
        if graph.output_count() != seen:
            seen, last = graph.output_count(), time.monotonic()
        elif time.monotonic() - last > quiet_s:
            return


def _rate_hz(times_ns: Sequence[int]) -> Optional[float]:
    span = (times_ns[-1] - times_ns[0]) / 1e9 if len(times_ns) > 1 else 0.0
    return (len(times_ns) - 1) / span if span > 0 else None


def run_live(args, streams: Streams, sensors: Optional[Sequence[str]] = None) -> Tuple[Collected, Dict[str, object]]:
    from aiat_perception.replay.player import Player, load
    from aiat_training.replay_eval.fusion_frames import objects_from_fused_msg
    sensors = [s for s in NODES if s in (sensors or [s for s in NODES if sensor_topic(streams, s)])]
    if not sensors:
        raise ReplayError(f'{args.bag}: no scored sensor topic to play (use --offline)')
    fusion = 'fusion' in sensors
    topics = {s: sensor_topic(streams, s) for s in sensors if s != 'fusion'}     # what the player feeds each detector
    single = len(topics) == 1
    if not single and (getattr(args, 'capacity_multiple', None) or args.max_rate):
        raise ReplayError('--capacity-multiple and --max-rate measure one node: choose one with --graph '
                          f'(this run has {", ".join(NODES[s].graph for s in sensors)})')
    pair_ns = offline.fusion_config(getattr(args, 'fusion_params', None))[1] if fusion else 0
    collected = offline.collect(args.bag, streams, fusion_frames=fusion, fusion_tolerance_ns=pair_ns)
    latched = [streams.tf_static] if fusion else []
    messages = load(args.bag, list(topics.values()) + ([streams.camera_info] + latched if fusion else []))
    by_topic = {t: [m for m in messages if m.topic == t] for t in topics.values()}
    fixed_rate = None
    rate_scale = args.rate_scale
    graph = LiveGraph(sensors, streams, args, Path(args.out))
    try:
        player = Player(graph.node, messages, clock=args.clock, latched=latched)
        graph.wait_ready(player, {**topics, **({'fusion': streams.camera_info} if fusion else {})})
        capacity: Dict[str, Optional[float]] = {s: _warm_up(graph, player, s, by_topic[topics[s]][0]) for s in topics}
        if single and getattr(args, 'capacity_multiple', None):
            fixed_rate = args.capacity_multiple * capacity[sensors[0]]
        extra_live: Dict[str, object] = {}
        if args.max_rate:
            if not (1 <= args.max_rate_iterations <= 20 and 1 <= args.max_rate_frames <= 100_000):
                raise ReplayError('--max-rate-iterations must be 1..20 and --max-rate-frames 1..100000')
            extra_live['max_rate'] = _max_rate_search(graph.recorders[sensors[0]], graph, player, messages,
                                                      capacity[sensors[0]], args.max_rate_iterations,
                                                      args.max_rate_frames)
        for recorder in graph.recorders.values():
            recorder.outputs.clear()
        before = {s: r.count for s, r in graph.recorders.items()}
        log = player.play(rate_scale=rate_scale, fixed_rate_hz=fixed_rate)
        _settle(graph)
        received = {s: r.count - before[s] for s, r in graph.recorders.items()}
        outputs = {s: dict(r.outputs) for s, r in graph.recorders.items()}
    finally:
        graph.close()
    per_node: Dict[str, Dict[str, object]] = {}
    for sensor in sensors:
        topic = topics.get(sensor, streams.camera)     # fusion: latency from the camera image's publish
        frames = collected.of(sensor)
        for frame in frames:
            out = outputs[sensor].get(frame.stamp_ns)
            if out is None:
                continue
            recv_ns, dets = out
            if sensor == 'camera':
                dets = dets[:3]
            elif sensor == 'fusion':
                T = frame.extra['cam_from_lidar']            # the node publishes in the camera frame
                camera_out = outputs['camera'].get(frame.stamp_ns)
                dets, frame.extra['fused'] = objects_from_fused_msg(dets, np.linalg.inv(T), np.eye(4),
                                                                    camera_out[1][3] if camera_out else [])
            frame.detections = dets
            frame.processing_ms = (recv_ns - log.publish_wall_ns[(topic, frame.stamp_ns)]) / 1e6
        actual = [a for a, t in zip(log.actual, log.topic) if t == topic]
        played = (len(actual) - 1) / (actual[-1] - actual[0]) if len(actual) > 1 and actual[-1] > actual[0] else None
        dropped = sum(1 for f in frames if f.detections is None and not f.malformed)
        cap = capacity.get(sensor)
        per_node[sensor] = {'node': ' '.join(graph.cmds[sensor][1:]), 'topic': topic,
                            'recorded_rate_hz': _r(_rate_hz([m.log_ns for m in by_topic[topic]])),
                            'played_rate_hz': _r(played), 'capacity_hz_measured': _r(cap),
                            'published': len(actual) if sensor != 'fusion' else None, 'outputs': received[sensor]}
        graph_name = NODES[sensor].graph
        if sensor == 'fusion':
            if dropped:
                collected.notes.append(f'live fusion: {dropped} of {len(frames)} camera frames with a cloud within '
                                       f'{pair_ns / 1e6:g} ms got no fused output (the fusion node, or the detector '
                                       'before it, skipped them)')
        elif played and dropped:
            collected.notes.append(
                f'live {sensor}: played at {played:.1f} Hz, {played / cap:.1f}x {graph_name}\'s measured capacity '
                f'({cap:.1f} frames/s on this machine); the node keeps only the newest frame, so {dropped} of '
                f'{len(actual)} frames got no output: they count as missed ground truth, and the score is lower '
                'than offline for that reason')
        elif played:
            collected.notes.append(f'live {sensor}: played at {played:.1f} Hz ({played / cap:.2f}x the measured capacity '
                                   f'of {graph_name}, {cap:.1f} frames/s): every frame got an output')
    first = per_node[sensors[0]]
    live = {'graphs': [NODES[s].graph for s in sensors], 'nodes': per_node,
            'node': ' | '.join(p['node'] for p in per_node.values()),
            'recorded_rate_hz': first['recorded_rate_hz'] if single and not fusion else _r(_rate_hz([m.log_ns for m in messages])),
            'played_rate_hz': first['played_rate_hz'] if single and not fusion else _r(_rate_hz([int(a * 1e9) for a in log.actual])),
            'rate_scale': rate_scale if fixed_rate is None else None,
            'capacity_hz_measured': first['capacity_hz_measured'] if single else None,
            'capacity_definition': '1 / median round trip of single frames through the node before the replay',
            'published': len(log.actual), 'outputs': sum(received.values()),
            'player_timing_error_ms': percentiles([abs(e) for e in log.timing_errors_ms()])}
    if fusion:
        live['fusion_latency_definition'] = ('fused output received minus the publish time of the camera image '
                                             'of that stamp: camera detector, fusion pairing and fusion together')
    live.update(extra_live)
    return collected, {'live': live}


def _r(v: Optional[float]) -> Optional[float]:
    return None if v is None else round(float(v), 3)


def _max_rate_search(recorder: OutputRecorder, graph: LiveGraph, player, messages, capacity: float,
                     iterations: int = 6, min_frames: int = 30) -> Dict[str, object]:
    """Bisection over the input rate (ros2_benchmark's method): a rate passes when <= 5% of the frames
    get no output. Each trial plays at least ``min_frames`` frames (the bag repeated) at a fixed rate."""
    trial_msgs = (messages * (min_frames // max(len(messages), 1) + 1))[:max(min_frames, len(messages))]
    lo, hi = 0.0, 4.0 * capacity
    trials = []
    best = None
    for _ in range(iterations):
        rate = hi if not trials else (lo + hi) / 2.0
        before = recorder.count
        first_event = len(recorder.events)
        recorder.outputs.clear()
        log = player.play(fixed_rate_hz=rate, messages=trial_msgs)
        _settle(graph, quiet_s=0.5)
        got = recorder.count - before
        drop = max(0.0, 1.0 - got / len(trial_msgs))
        latency = percentiles(_trial_latencies(log.published, recorder.events[first_event:]))
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
