"""The COVESA Vehicle Signal Specification catalogue: vss-tools JSON files and overlays loaded into an immutable
tree of nodes (pure: reads the files it is given, nothing else)."""

from __future__ import annotations

from sdv.vss.catalogue import (
    KINDS,
    VSS_DATATYPES,
    Catalogue,
    Kind,
    VssNode,
    load_catalogue,
    split_datatype,
)
from sdv.vss.reader import CatalogueLimits

__all__ = [
    "KINDS",
    "VSS_DATATYPES",
    "Catalogue",
    "CatalogueLimits",
    "Kind",
    "VssNode",
    "load_catalogue",
    "split_datatype",
]
