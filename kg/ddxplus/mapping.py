"""Map DDXPlus PATHOLOGY names (English or French release) to the graph's disease ids.

The graph merges DDXPlus conditions with SymCat and the Disease Ontology under its own ids; we
find each DDXPlus condition's node by its names (``condition_name``, English and French names)
among the graph diseases' names and synonyms, preferring nodes whose sources include DDXPlus.
"""

from __future__ import annotations

from collections.abc import Iterable

from kg.ddxplus.definitions import ConditionDef, DDXPlusDefinitions
from kg.models import DiseaseConcept
from kg.sources import normalize_name


class DiseaseMapper:
    def __init__(self, diseases: Iterable[DiseaseConcept], definitions: DDXPlusDefinitions) -> None:
        self.definitions = definitions
        self.names: dict[str, str] = {}  # disease id -> display name
        by_key: dict[str, list[DiseaseConcept]] = {}
        for disease in diseases:
            self.names[disease.id] = disease.name
            for text in (disease.name, *disease.synonyms):
                by_key.setdefault(normalize_name(text), []).append(disease)
        self._by_condition: dict[str, str] = {}
        for cond in definitions.conditions.values():
            found = self._find(cond, by_key)
            if found is not None:
                self._by_condition[cond.name] = found

    @staticmethod
    def _find(cond: ConditionDef, by_key: dict[str, list[DiseaseConcept]]) -> str | None:
        matches: list[DiseaseConcept] = []
        for text in (cond.name, cond.name_en, cond.name_fr):
            for disease in by_key.get(normalize_name(text), []):
                if disease not in matches:
                    matches.append(disease)
        if not matches:
            return None
        from_ddxplus = [d for d in matches if any("ddxplus" in s.lower() for s in d.sources)]
        return (from_ddxplus or matches)[0].id

    def disease_id(self, pathology: str) -> str | None:
        """Graph disease id of a PATHOLOGY string, or None when the graph lacks it."""
        cond = self.definitions.condition(pathology)
        return self._by_condition.get(cond.name) if cond else None

    def unmapped_conditions(self) -> list[str]:
        return sorted(set(self.definitions.conditions) - set(self._by_condition))

    def name(self, disease_id: str) -> str:
        return self.names.get(disease_id, disease_id)
