"""What every AIAT node shares: DDS setup, QoS, time stamps, and a main loop that exits cleanly."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

RESOURCES = Path(__file__).resolve().parent.parent / 'resources'
FASTDDS_PROFILE = RESOURCES / 'fastdds_large_data.xml'
FASTDDS_PROFILE_LOCALHOST = RESOURCES / 'fastdds_large_data_localhost.xml'


class ParameterError(ValueError):
    """Invalid node parameters; the message names each bad parameter."""


def configure_dds() -> None:
    """Use the large-data Fast DDS profile unless the user chose one (or set AIAT_FASTDDS_PROFILE=0).

    Honours ROS's own host restriction (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST or ROS_LOCALHOST_ONLY=1)
    with the loopback-only variant. Must run before ``rclpy.init`` creates the participant.
    """
    os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    if os.environ.get('AIAT_FASTDDS_PROFILE', '1') == '0':
        return
    if 'FASTDDS_DEFAULT_PROFILES_FILE' not in os.environ and 'FASTRTPS_DEFAULT_PROFILES_FILE' not in os.environ:
        localhost = (os.environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE', '').upper() == 'LOCALHOST'
                     or os.environ.get('ROS_LOCALHOST_ONLY') == '1')
        profile = FASTDDS_PROFILE_LOCALHOST if localhost else FASTDDS_PROFILE
        os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = str(profile)


def sensor_qos(reliability: str = 'best_effort', depth: int = 1):
    """Sensor-data QoS (keep last ``depth``, volatile) with a chosen reliability."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    policies = {'best_effort': ReliabilityPolicy.BEST_EFFORT, 'reliable': ReliabilityPolicy.RELIABLE}
    if reliability not in policies:
        raise ParameterError(f"reliability must be 'best_effort' or 'reliable', not {reliability!r}")
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=policies[reliability],
                      durability=DurabilityPolicy.VOLATILE)


def latched_qos(depth: int = 1):
    """Transient-local QoS for data published once (LabelInfo, static TF)."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)


def stamp_to_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int, stamp=None):
    if stamp is None:
        from builtin_interfaces.msg import Time
        stamp = Time()
    stamp.sec, stamp.nanosec = divmod(int(ns), 1_000_000_000)
    return stamp


def finish(node, exit_code: int = 0) -> None:
    """Ask :func:`run_node` to stop spinning ``node`` and exit with ``exit_code``."""
    node.aiat_exit_code = exit_code


def run_node(factory: Callable, args=None, threads: int = 1) -> int:
    """Create the node with ``factory()``, spin it until Ctrl-C, shutdown or :func:`finish`, and
    clean up. A :class:`ParameterError` from the factory stops the process with exit code 2 and its
    message. Our nodes keep callbacks short (heavy work runs in their own threads), so they spin the
    lighter single-threaded executor; ``threads`` > 1 selects the multi-threaded one.
    """
    configure_dds()
    import rclpy
    from rclpy.executors import (ExternalShutdownException, MultiThreadedExecutor,
                                 SingleThreadedExecutor)

    rclpy.init(args=args)
    node = executor = None
    try:
        node = factory()
        executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 \
            else SingleThreadedExecutor()
        executor.add_node(node)
        while rclpy.ok() and getattr(node, 'aiat_exit_code', None) is None:
            executor.spin_once(timeout_sec=0.1)
        return getattr(node, 'aiat_exit_code', None) or 0
    except ParameterError as exc:
        print(f'[{getattr(node, "get_name", lambda: "aiat")()}] invalid parameters: {exc}',
              file=sys.stderr, flush=True)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if not rclpy.ok():  # Ctrl-C / SIGTERM arrived while the node was being built
            return 0
        raise
    finally:
        if executor is not None:
            executor.shutdown(timeout_sec=5.0)  # let in-flight callbacks finish before the node goes
        if node is not None:
            close = getattr(node, 'close', None)
            if close is not None:
                close()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
