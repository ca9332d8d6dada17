"""MIRAGE-style QA evaluation: loaders, prompts, answer extraction, modes, resumable runner."""

from eval.qa.cache import ItemResult, ResultCache
from eval.qa.extraction import Extraction, extract_answer
from eval.qa.items import QAItem, Suite
from eval.qa.kg_context import ConceptLinker, KGContext, serialize_facts
from eval.qa.loaders import DatasetFormatError, load_file, load_suite
from eval.qa.metrics import Score, standard_error
from eval.qa.modes import Mode, parse_modes
from eval.qa.runner import ModeRun, QARunner, RunOptions

__all__ = [
    "ConceptLinker",
    "DatasetFormatError",
    "Extraction",
    "ItemResult",
    "KGContext",
    "Mode",
    "ModeRun",
    "QAItem",
    "QARunner",
    "ResultCache",
    "RunOptions",
    "Score",
    "Suite",
    "extract_answer",
    "load_file",
    "load_suite",
    "parse_modes",
    "serialize_facts",
    "standard_error",
]
