"""The bottom layer every stage may import: settings and the progress-callback type.

It imports no stage package (only `records.contract`, the vocabulary its defaults are built from).
"""
