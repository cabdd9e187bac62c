"""What the commands share: their common options, the training app and the demo pipeline.

The top library layer: it may import both ``models.common`` and ``models.matching``;
the commands (``models/*.py``) are thin over it and never import each other.
"""
