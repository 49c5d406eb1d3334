"""Parameters of the detection_listener node."""
from __future__ import annotations

from aiat_perception.parameters import INT64_MAX, Param, ParameterTable

TABLE = ParameterTable('detection_listener', [
    Param('max_messages', 0, 'exit after this many messages; 0 = run until stopped', range=(0, INT64_MAX)),
    Param('json', False, 'print one JSON object per message instead of a text line'),
    Param('reliability', 'reliable', 'QoS reliability of the detections subscription',
          choices=('best_effort', 'reliable')),
    Param('quiet', False, 'print nothing per message'),
    Param('save_dir', '', 'folder for annotated frames from annotated_image; empty = none'),
    Param('save_every', 10, 'save every N-th annotated frame', range=(1, INT64_MAX)),
    Param('save_max', 5, 'save at most this many frames', range=(0, INT64_MAX)),
])
