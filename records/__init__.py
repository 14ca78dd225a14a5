"""Linked care records: the input contract, and the loader that checks an extract against it."""

from records.loader import Extract, TableReport, connect, load_extract, open_extract, write_rejects
from records.manifest import ExtractError, Manifest, read_manifest

__all__ = [
    "Extract",
    "ExtractError",
    "Manifest",
    "TableReport",
    "connect",
    "load_extract",
    "open_extract",
    "read_manifest",
    "write_rejects",
]
