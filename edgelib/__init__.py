"""edgelib: the helper library of the course "From backprop to the edge".

The first cell of every notebook:

    import edgelib
    edgelib.setup()

Modules (import the one you need; none imports TensorFlow at import time):
    edgelib.environment  set-up of a notebook: Keras 2, quiet logs, seeds, threads
    edgelib.datasets     the course's data sets behind one API, offline by default
    edgelib.models       model builders shared by several chapters (tf_keras)
    edgelib.tflite       conversion to .tflite in the four quantization modes, sizes
    edgelib.runtime      the edge runtime wrapper (LiteRT, never imports TensorFlow)
    edgelib.serving      a model server (FastAPI + uvicorn, metrics), its client, a load tool
    edgelib.split        split computing: cut a model at layer k, encode the activation
    edgelib.qat          quantization-aware training (fake quantization, tfmot QAT)
    edgelib.compression  pruning, clustering, collaborative optimization, sparsity in a file
    edgelib.distillation knowledge distillation and few-shot transfer learning
    edgelib.distributed  multi-worker training on localhost, ring all-reduce
    edgelib.lm_edge      the chapter-07 language model on LiteRT, prefill/decode over a KV cache
    edgelib.plots        figures shared by chapters (the edge-cloud map, curves)
    edgelib.checks       automatic checks for the exercises
"""

from .environment import setup

__version__ = "0.1.0"
__all__ = ["setup", "__version__"]
