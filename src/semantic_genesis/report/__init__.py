"""Figures and the HTML/Markdown report that `semgen demo` writes."""

from semantic_genesis.report.document import Figure, Report, Section, Table
from semantic_genesis.report.figures import cohort_montage

__all__ = ["Figure", "Report", "Section", "Table", "cohort_montage"]
