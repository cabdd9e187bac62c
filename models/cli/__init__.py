"""What the commands share: their common options, the training app and the demo pipeline.

The top library layer: it may import ``models.common``, ``models.matching`` and
``models.evaluation``; the commands (``models/*.py``) are thin over it and never
import each other.
"""
