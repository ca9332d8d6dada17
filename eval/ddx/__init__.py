"""Interactive-diagnosis evaluation: simulated DDXPlus-format patients answer the agent's questions.

Public face: ``read_patients`` / ``write_patients`` (official DDXPlus CSV), ``SimulatedPatient``;
``eval.ddx.generator`` (``python -m eval.ddx.generator`` regenerates the shipped patients) and
``eval.ddx.evaluate.evaluate_from_settings`` (CLI and benchmark entry point).
"""

from eval.ddx.simulator import SimulatedPatient
from kg.ddxplus.records import Patient, PatientFileError, read_patients, write_patients

__all__ = [
    "Patient",
    "PatientFileError",
    "SimulatedPatient",
    "read_patients",
    "write_patients",
]
