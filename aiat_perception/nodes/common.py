"""What every AIAT node shares: DDS setup, parameter tables, QoS, time stamps, and a main loop that
exits cleanly. ROS is imported inside the functions, so ROS-free code may import this module."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from aiat_perception.parameters import ParameterError, ParameterTable

__all__ = ['ParameterError', 'configure_dds', 'declare_table', 'sensor_qos', 'latched_qos',
           'stamp_to_ns', 'ns_to_stamp', 'finish', 'run_node']

RESOURCES = Path(__file__).resolve().parent.parent / 'resources'
FASTDDS_PROFILE = RESOURCES / 'fastdds_large_data.xml'
FASTDDS_PROFILE_LOCALHOST = RESOURCES / 'fastdds_large_data_localhost.xml'


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
        for variable in profile_variables(fast_dds_major()):
            os.environ[variable] = str(profile)


def profile_variables(major: Optional[int]) -> Tuple[str, ...]:
    """Fast DDS 3 (Kilted and newer) reads FASTDDS_DEFAULT_PROFILES_FILE (and warns about the old
    name); Fast DDS 2.x (Humble, Jazzy) reads only FASTRTPS_DEFAULT_PROFILES_FILE. Unknown: both."""
    if major == 2:
        return ('FASTRTPS_DEFAULT_PROFILES_FILE',)
    if major == 3:
        return ('FASTDDS_DEFAULT_PROFILES_FILE',)
    return ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')


def fast_dds_major() -> Optional[int]:
    """The Fast DDS major version the RMW will load: from ROS_DISTRO on a sourced ROS install, else
    from the library on the loader path (libfastrtps.so.2 or libfastdds.so.3; pip wheels set
    LD_LIBRARY_PATH); None when neither says."""
    distro = os.environ.get('ROS_DISTRO', '').lower()
    if distro in ('humble', 'iron', 'jazzy'):
        return 2
    if distro:
        return 3
    import glob
    folders = [d for d in os.environ.get('LD_LIBRARY_PATH', '').split(os.pathsep) if d]
    folders += [os.path.join(sys.prefix, 'lib')]
    for folder in folders:
        if glob.glob(os.path.join(folder, 'libfastdds.so.3*')):
            return 3
        if glob.glob(os.path.join(folder, 'libfastrtps.so.2*')):
            return 2
    return None


def parameter_descriptor(param):
    """The ``ParameterDescriptor`` of a table entry: description, read-only unless dynamic, range."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    descriptor = ParameterDescriptor(description=param.description, read_only=not param.dynamic)
    if param.choices:
        descriptor.additional_constraints = f"one of: {', '.join(param.choices)}"
    if param.range is not None and param.type == 'double':
        low, high = param.range
        descriptor.floating_point_range = [FloatingPointRange(
            from_value=float(low), to_value=float(high), step=0.0)]
        if param.open_low:
            descriptor.additional_constraints = f'> {low:g}'
    elif param.range is not None and param.type == 'integer':
        low, high = param.range
        descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=0)]
    return descriptor


def declare_table(node, table: ParameterTable,
                  on_change: Optional[Callable[[Dict[str, object], set], None]] = None,
                  check: Optional[Callable[[Dict[str, object]], List[str]]] = None) -> Dict[str, object]:
    """Declare every parameter of ``table`` on ``node`` and return the values, checked by the table
    (ranges, choices, cross-field checks): :class:`ParameterError` naming every problem otherwise.

    rclpy refuses a run-time update outside a range or of a parameter that is not dynamic (read-only)
    by itself; the table's other checks, and ``check(values)`` (the node's own, e.g. against a loaded
    model; also applied here at start), run in an on-set callback, which keeps the returned dict up
    to date and then calls ``on_change(values, changed_names)``.
    """
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

    values, problems = {}, []
    for param in table:
        try:
            values[param.name] = node.declare_parameter(
                param.name, param.default, parameter_descriptor(param)).value
        except (InvalidParameterValueException, InvalidParameterTypeException) as exc:
            problems.append(f'{param.name}: {exc}')
    problems += table.problems(values, cross_field=not problems)
    if not problems and check is not None:
        problems += check(values)
    if problems:
        raise ParameterError('; '.join(problems))
    values.update(table.validated(values))

    def on_set(params):
        from rcl_interfaces.msg import SetParametersResult

        update = {p.name: p.value for p in params if p.name in table}
        problems = table.problems(dict(values, **update))
        if not problems and check is not None:
            problems = check(dict(values, **update))
        if problems:
            return SetParametersResult(successful=False, reason='; '.join(problems))
        values.update(table.validated(dict(values, **update)))
        if on_change is not None and update:
            on_change(values, set(update))
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
    return values


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


def finished(node) -> bool:
    return getattr(node, 'aiat_exit_code', None) is not None


def run_node(factory: Callable, args=None, threads: int = 1) -> int:
    """Create the node with ``factory()`` (a node class), spin it until SIGINT/SIGTERM, shutdown or
    :func:`finish`, and clean up in order: the executor, the node's ``close()`` (its worker threads),
    the node, then rclpy. A :class:`ParameterError` from the factory stops the process with exit code 2 and
    its message. Our nodes keep callbacks short (heavy work runs in their own threads), so they spin the
    lighter single-threaded executor; ``threads`` > 1 selects the multi-threaded one.

    SIGINT and SIGTERM only ask for the stop (:mod:`aiat_perception.nodes.node_process`); the loop
    notices within 0.1 s. A stop before or while the node is built ends with exit code 0 once it exists.
    """
    from aiat_perception.nodes.node_process import STOP, enable_stack_dumps, hold_stop_signals

    enable_stack_dumps()
    own_signals = hold_stop_signals()
    configure_dds()
    import rclpy
    from rclpy.executors import (ExternalShutdownException, MultiThreadedExecutor,
                                 SingleThreadedExecutor)
    from rclpy.signals import SignalHandlerOptions

    node = executor = None
    try:
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO if own_signals else None)
        node = factory()
        executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 \
            else SingleThreadedExecutor()
        executor.add_node(node)
        while not STOP.requested and rclpy.ok() and not finished(node):
            executor.spin_once(timeout_sec=0.1)
        return getattr(node, 'aiat_exit_code', None) or 0
    except ParameterError as exc:
        print(f'[{getattr(node, "get_name", lambda: "aiat")()}] invalid parameters: {exc}',
              file=sys.stderr, flush=True)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if STOP.requested or not rclpy.ok():  # stopped while the node was being built
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
