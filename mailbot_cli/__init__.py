"""The ``mailbot`` command: the composition root.

This is the one package that imports all three layers (``reviewers`` ->
``workflows`` -> ``mailbot``) to start processes; the layers themselves keep
their one-way imports.
"""
