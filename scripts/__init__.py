"""Command-line tools: the reproduction launcher and its recipes, the table builder, the quickstart, the log parser.

Imported as ``scripts.<module>`` from the repository root; a tool run by path (``python scripts/make_tables.py``)
puts the repository root on ``sys.path`` first, so both ways import the same modules.
"""
