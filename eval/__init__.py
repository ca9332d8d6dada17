"""Evaluation: MIRAGE-style QA suites (``eval.qa``) and interactive diagnosis (``eval.ddx``)."""
