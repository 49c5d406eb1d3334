"""The real camera_detector, with image conversion failing the way it can on a vehicle.

On numpy 1.21 (Ubuntu 22.04 / JetPack 6) ``image_to_numpy`` raised a plain ``ValueError`` for valid
padded 16-bit rows, and a conversion can always run out of memory; neither can be produced with
this machine's numpy 2. This peer runs the unchanged node, with the conversion it imports wrapped
so that frames whose ``header.frame_id`` names an exception raise it, exactly where the node calls
the conversion; every other frame goes through the real conversion.
"""
from __future__ import annotations

from aiat_perception.nodes import camera_detector

FAULTS = {
    'raise_value_error': lambda: ValueError(
        'When changing to a larger dtype, its size must be a divisor of the total size in bytes '
        'of the last axis of the array.'),
    'raise_memory_error': lambda: MemoryError('Unable to allocate 5.99 GiB for an array'),
    'raise_key_error': lambda: KeyError('encoding'),
}
real_image_to_numpy = camera_detector.image_to_numpy


def image_to_numpy_with_faults(msg):
    fault = FAULTS.get(msg.header.frame_id)
    if fault is not None:
        raise fault()
    return real_image_to_numpy(msg)


camera_detector.image_to_numpy = image_to_numpy_with_faults

if __name__ == '__main__':
    camera_detector.main()
