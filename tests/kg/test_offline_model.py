"""The scoring model on the real merged matrix (built from the shipped files, no server)."""

from __future__ import annotations

import numpy as np
import pytest

from kg import sources
from kg.merge import _slug
from kg.models import Evidence, Observation
from kg.offline import offline_model


def _binary_evidences(condition: sources.DdxCondition) -> list[str]:
    evidences = sources.ddxplus_evidences()
    return [e for e in condition.symptoms + condition.antecedents if evidences[e].data_type == "B"]


@pytest.mark.parametrize("key", sorted(sources.ddxplus_conditions()))
def test_each_ddxplus_condition_ranks_top3_from_its_own_findings(key: str) -> None:
    """With all 801 SymCat conditions in the matrix, DDXPlus conditions are not swamped."""
    condition = sources.ddxplus_conditions()[key]
    evidence = Evidence(
        observations=[Observation(finding_id=f, present=True) for f in _binary_evidences(condition)]
    )
    diff = offline_model().differential(evidence, top_k=3)
    assert f"DDX:{_slug(key)}" in [d.disease_id for d in diff.diseases]


def test_catalogue_prior_gives_each_catalogue_equal_mass() -> None:
    model = offline_model()
    prior = np.exp(model.log_base)
    ddx = np.array(["ddxplus" in d.sources for d in model.diseases])
    symcat = np.array(["symcat" in d.sources for d in model.diseases])
    assert prior.sum() == pytest.approx(1.0)
    # Each catalogue holds half the mass (merged diseases count in both).
    assert prior[ddx & ~symcat].sum() + prior[ddx & symcat].sum() > 0.5
    assert ddx.sum() == 49 and symcat.sum() >= 700


def test_merged_matrix_shape_and_probabilities() -> None:
    model = offline_model()
    assert model.P.shape == (len(model.diseases), len(model.findings))
    assert np.all((model.P > 0) & (model.P < 1))
    assert model.linked.sum() > 9000


def test_symcat_cannot_overrule_a_ddxplus_definition() -> None:
    """SymCat reports fever in chronic sinusitis; DDXPlus's chronic rhinosinusitis lists no
    fever, acute does: the capped SymCat link keeps fever telling the two apart."""
    model = offline_model()
    fever = model.finding_index["E_91"]
    chronic = model.disease_index["DDX:chronic-rhinosinusitis"]
    acute = model.disease_index["DDX:acute-rhinosinusitis"]
    assert model.linked[chronic, fever] and model.P[chronic, fever] <= 0.1
    assert model.P[acute, fever] >= 3 * model.P[chronic, fever]
    assert model.edge_source[(chronic, fever)] == "symcat"
