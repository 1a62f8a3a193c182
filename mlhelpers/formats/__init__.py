"""Model files, shared by export, ``mlh predict``, ``mlh optimize`` and the drift check: ``skops_io`` (the
trusted format), ``onnx_io`` (portable and fast) with its ``converters``, ``parity`` (proof that a file
predicts what the fitted pipeline predicts), ``serving`` (size, memory and latency, measured in fresh
processes), ``served`` (which file of a model folder serves, and answering rows with it) and
``scoring`` (a whole file scored in chunks, with rejects).
Modules here import ``mlhelpers.core`` and each other, nothing from a step.
"""
