"""launch_ros actions from a node graph (``config/launch/*.yaml``), for ``launch/*.launch.py``.

Every graph argument becomes a ``DeclareLaunchArgument``; the nodes are built in an
``OpaqueFunction`` from the ``LaunchConfiguration`` values with :func:`launch_graph.resolve`, so
``ros2 launch`` and ``aiat-launch`` resolve arguments, parameter files and conditions identically.
Needs the ROS 2 ``launch`` and ``launch_ros`` packages (imported when called).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from aiat_perception import launch_graph as lg


def package_config_dir(launch_file: Optional[str] = None) -> Path:
    """The installed share directory's config (ament index), else the one beside ``launch_file``'s
    ``launch/`` directory (the source tree), else :func:`launch_graph.config_dir`."""
    try:
        from ament_index_python.packages import get_package_share_directory
        share = Path(get_package_share_directory(lg.PACKAGE)) / 'config'
        if (share / 'launch').is_dir():
            return share
    except Exception:  # not installed through ament (e.g. a source checkout)
        pass
    if launch_file:
        beside = Path(launch_file).resolve().parent.parent / 'config'
        if (beside / 'launch').is_dir():
            return beside
    return lg.config_dir()


def graph_launch_description(graph_name: str, launch_file: Optional[str] = None):
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    config = package_config_dir(launch_file)
    graph = lg.load_graph(lg.graph_path(graph_name, config))
    declared = [DeclareLaunchArgument(arg.name, default_value=arg.default, description=arg.description,
                                      choices=arg.choices)
                if arg.default is not None else
                DeclareLaunchArgument(arg.name, description=arg.description, choices=arg.choices)
                for arg in graph.arguments.values()]
    return LaunchDescription(declared + [OpaqueFunction(function=_nodes, args=[graph, config])])


def _nodes(context, graph, config):
    from launch.actions import EmitEvent, RegisterEventHandler, Shutdown
    from launch.event_handlers import OnProcessExit
    from launch.events import Shutdown as ShutdownEvent
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    values = {name: LaunchConfiguration(name).perform(context) for name in graph.arguments}
    actions = []
    for node in lg.resolve(graph, values, config):
        ros_node = Node(
            package=lg.PACKAGE, executable=node.executable, name=node.name,
            namespace=lg.normalize_namespace(node.namespace) if node.namespace else None,
            # files first, then the inline overrides, which win (as with aiat-launch)
            parameters=[str(p) for p in node.params_files] + ([node.parameters] if node.parameters else []),
            remappings=node.remappings, output='screen', emulate_tty=True,
            on_exit=[Shutdown(reason=f'{node.fqn} is required and exited')] if node.required else None)
        actions.append(ros_node)

        def on_exit(event, _context, fqn=node.fqn):
            # a failing node stops the graph, as in aiat-launch
            if event.returncode not in (0, None, -2, -15, 130):
                return [EmitEvent(event=ShutdownEvent(reason=f'{fqn} failed with exit code {event.returncode}'))]
            return None
        actions.append(RegisterEventHandler(OnProcessExit(target_action=ros_node, on_exit=on_exit)))
    return actions
