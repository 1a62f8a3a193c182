"""Command-line tools that no notebook needs: ``predict`` (``mlh predict``: which files to write),
``optimize`` (``mlh optimize``: a smaller, faster model with parity proved) and ``compact`` (its compact
forest format).
"""
