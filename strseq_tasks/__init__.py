"""strseq: learn a string normalizer from a few (dirty, clean) pairs; run it with onnxruntime.

The inference path (``strseq_tasks.serve.runtime``) needs numpy and onnxruntime only; training needs
the ``train`` extra (torch, onnx).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("strseq")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
