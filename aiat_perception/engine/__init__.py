"""TensorRT engines built from a model bundle, on the target (no torch).

``aiat-engine build`` (``cli.py``) builds a serialized engine from the bundle's ONNX graph
(``builder.py``), writes its metadata next to it (``metadata.py``), keeps engines in a cache keyed by
that metadata (``cache.py``) and feeds INT8 calibration through the bundle's own preprocessing
(``calibration.py``). TensorRT and the CUDA bindings are imported only when an engine is built or run
(``trt_api.py``, ``cuda_api.py``): everything else here runs on any machine.

None of the TensorRT or CUDA calls in this package have run on hardware yet (no GPU and no TensorRT
where it was written); see docs/jetson.md, "What has run where".
"""
