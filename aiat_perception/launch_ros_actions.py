"""launch_ros actions from a node graph (``config/launch/*.yaml``), for ``launch/*.launch.py``.

Every graph argument becomes a ``DeclareLaunchArgument``; the nodes are built in an
``OpaqueFunction`` from the ``LaunchConfiguration`` values with :func:`launch_graph.checked_nodes`, so
``ros2 launch`` and ``aiat-launch`` resolve and validate arguments, parameter files and conditions
identically (an invalid graph stops ``ros2 launch`` with the same message). Needs the ROS 2 ``launch``
and ``launch_ros`` packages (imported when called).
"""
from __future__ import annotations

from aiat_perception import launch_graph as lg
from aiat_perception.share import config_dir


def graph_launch_description(graph_name: str):
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    config = config_dir()
    graph = lg.load_graph(lg.graph_path(graph_name, config))
    declared = [DeclareLaunchArgument(arg.name, description=arg.description, choices=arg.choices,
                                      **({} if arg.default is None else {'default_value': arg.default}))
                for arg in graph.arguments.values()]
    return LaunchDescription(declared + [OpaqueFunction(function=_nodes, args=[graph, config])])


def _nodes(context, graph, config):
    from launch.actions import EmitEvent, LogInfo, RegisterEventHandler, Shutdown
    from launch.event_handlers import OnProcessExit
    from launch.events import Shutdown as ShutdownEvent
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    values = {name: LaunchConfiguration(name).perform(context) for name in graph.arguments}
    nodes, warnings = lg.checked_nodes(graph, values, config)  # GraphError stops the launch
    actions = [LogInfo(msg=f'warning: {warning}') for warning in warnings]
    for node in nodes:
        ros_node = Node(
            package=lg.PACKAGE, executable=node.executable, name=node.name,
            namespace=lg.normalize_namespace(node.namespace) if node.namespace else None,
            # files first, then the inline overrides, which win (as with aiat-launch)
            parameters=[str(p) for p in node.params_files] + ([node.parameters] if node.parameters else []),
            remappings=node.remappings, output='screen', emulate_tty=True,
            on_exit=[Shutdown(reason=f'{node.fqn} is required and exited')] if node.required else None)

        def on_exit(event, _context, fqn=node.fqn):
            # a failing node stops the graph, as in aiat-launch
            if event.returncode not in (0, None, -2, -15, 130):
                return [EmitEvent(event=ShutdownEvent(reason=f'{fqn} failed with exit code {event.returncode}'))]
            return None
        actions += [ros_node, RegisterEventHandler(OnProcessExit(target_action=ros_node, on_exit=on_exit))]
    return actions
