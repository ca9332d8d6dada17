"""Interactive-diagnosis evaluation: simulated DDXPlus-format patients answer the agent's questions.

Public face: ``read_patients`` / ``write_patients`` (official DDXPlus CSV), ``generate_patients``,
``SimulatedPatient``, ``evaluate_from_settings`` (CLI and benchmark entry point).
"""

from eval.ddx.generator import generate_patients
from eval.ddx.patients import Patient, PatientFileError, read_patients, write_patients
from eval.ddx.simulator import SimulatedPatient

__all__ = [
    "Patient",
    "PatientFileError",
    "SimulatedPatient",
    "generate_patients",
    "read_patients",
    "write_patients",
]
