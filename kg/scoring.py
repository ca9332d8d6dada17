"""Noisy naive-Bayes differential and expected-information-gain questions, in numpy.

The model is a dense disease x finding matrix ``P[d, f] = P(f present | d)`` pulled from the
graph once per graph version (``Neo4jGraphStore`` caches it). Links without an edge get a
small *leak* probability, so a present finding a disease does not explain costs that disease
``log(leak)`` instead of ruling it out.

    log P(d | E) = log prior(d, age, sex) + sum_present log p(f|d) + sum_absent log(1 - p(f|d))

normalized over the candidates: diseases linked to at least one present finding (all
rankable diseases when nothing is present yet). Defaults and their rationale: docs/kg.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from kg.models import (
    VALUE_SEPARATOR,
    Differential,
    Evidence,
    FindingConcept,
    FindingLink,
    NextStep,
    Question,
    RankedDisease,
    StopRule,
)
from kg.sources import AGE_BANDS, age_band_index
from kg.store import UnknownFindingError

FloatArray = NDArray[np.float64]

# P(finding present | disease) for a finding the disease has no edge to. Symptoms and signs
# are rarely present by chance in a consultation for an unrelated disease; history and risk
# factors (smoking, diabetes...) are common background, so they leak more.
LEAK_SYMPTOM = 0.01
LEAK_HISTORY = 0.05
# SymCat age/sex odds of 0.0 mean "rare in the survey sample", not impossible. Age bands are
# thin in the survey (whooping cough at 60-74: 0, yet DDXPlus and clinicians see it), so an age
# band costs at most a factor 5; sex odds of 0 are mostly real (ovarian cysts in men) and keep
# 0.05. Age floor 0.05 -> 0.2: top-1 0.980 -> 0.984 on DDXPlus training patients (docs/ddx.md).
MIN_AGE_ODDS = 0.2
MIN_SEX_ODDS = 0.05
SEVERE_AT_MOST = 2  # DDXPlus severity 1-2 = severe
CANNOT_EXCLUDE_P = 0.01  # a severe condition at or above this posterior stays on the list
VOCABULARIES = ("ddxplus", "symcat")  # sources whose patients describe findings in their own terms
VALUE_GAIN_SAMPLES = 64  # Monte Carlo answers per value question
VALUE_GAIN_TAIL, VALUE_GAIN_ROWS = 1e-3, 64  # posterior tail and row cap of that Monte Carlo
# Naive Bayes multiplies correlated findings as if independent (pain, its location, its
# character...) and is overconfident: every log-likelihood counts 1/T. T = 2 was chosen on
# DDXPlus *training* patients (train_sample_en_500, docs/ddx.md), never on validation or test.
LIKELIHOOD_TEMPERATURE = 2.0


def leak_for(kind: str, leak_symptom: float = LEAK_SYMPTOM, leak_history: float = LEAK_HISTORY) -> float:
    """P(finding present | a disease without a link to it), by the finding's kind."""
    return leak_history if kind in ("history", "risk_factor") else leak_symptom


@dataclass
class FindingMeta:
    id: str
    name: str
    kind: str
    question: str | None
    value_type: str
    default_value: str | None
    parent: str | None
    red_flag: bool
    concept: FindingConcept
    sources: tuple[str, ...] = ()
    same_as: tuple[str, ...] = ()  # findings that say the same in another vocabulary


@dataclass
class DiseaseMeta:
    id: str
    name: str
    severity: int | None
    icd10: list[str]
    sources: tuple[str, ...] = ()
    prior: float | None = None  # share of its catalogue's patients, where a source measured it


@dataclass
class ResolvedEvidence:
    """Evidence mapped onto matrix columns: (column, confidence) per state."""

    present: list[tuple[int, float]] = field(default_factory=list)
    absent: list[tuple[int, float]] = field(default_factory=list)
    values: dict[int, str] = field(default_factory=dict)
    asked: set[int] = field(default_factory=set)  # answered or implied by an absent gate question
    present_cols: set[int] = field(default_factory=set)
    # A present finding said in words that other findings say too ("sore throat" = pain in the
    # pharynx or a tonsil): satisfied by whichever of the columns the disease explains best.
    any_of: list[tuple[NDArray[np.int64], float]] = field(default_factory=list)


@dataclass
class Posterior:
    rows: NDArray[np.int64]  # candidate disease rows
    log_scores: FloatArray
    probs: FloatArray
    evidence: ResolvedEvidence

    @property
    def entropy(self) -> float:
        return entropy(self.probs)


def entropy(probs: FloatArray) -> float:
    nz = probs[probs > 0]
    return float(-(nz * np.log(nz)).sum())


class DiagnosisModel:
    """Disease x finding likelihood matrix plus the metadata needed to explain a ranking."""

    def __init__(
        self,
        diseases: Sequence[DiseaseMeta],
        findings: Sequence[FindingMeta],
        edges: Iterable[tuple[str, str, float, str]],
        age_odds: dict[str, list[float]] | None = None,
        sex_odds: dict[str, list[float]] | None = None,
        *,
        leak_symptom: float = LEAK_SYMPTOM,
        leak_history: float = LEAK_HISTORY,
        impute_unknown: bool = False,
        catalogue_prior: bool = True,
        temperature: float = LIKELIHOOD_TEMPERATURE,
    ) -> None:
        if temperature <= 0:
            raise ValueError("temperature must be > 0")
        self.temperature = temperature
        self.diseases = list(diseases)
        self.findings = list(findings)
        self.disease_index = {d.id: i for i, d in enumerate(self.diseases)}
        self.finding_index = {f.id: j for j, f in enumerate(self.findings)}
        self.leak_symptom, self.leak_history = leak_symptom, leak_history
        self.leak = np.array([leak_for(f.kind, leak_symptom, leak_history) for f in self.findings])
        n_d, n_f = len(self.diseases), len(self.findings)
        self.P: FloatArray = np.tile(self.leak, (n_d, 1)) if n_d else np.zeros((0, n_f))
        self.linked = np.zeros((n_d, n_f), dtype=bool)
        self.edge_source: dict[tuple[int, int], str] = {}
        for did, fid, p, source in edges:
            i, j = self.disease_index.get(did), self.finding_index.get(fid)
            if i is None or j is None:
                continue
            self.P[i, j] = p
            self.linked[i, j] = True
            self.edge_source[(i, j)] = source
        self.covered = (
            _coverage(self.diseases, self.findings) if impute_unknown else np.ones((n_d, n_f), bool)
        )
        self.p_unknown = np.empty(n_f)
        for j in range(n_f):
            # A missing edge means "rare" (leak) only when the disease's source describes the
            # finding's vocabulary. Otherwise (a SymCat disease and a DDXPlus-only question, or
            # the reverse) the link is unknown, and the finding's average probability among
            # the diseases that do describe it stands in: the answer then neither favours nor
            # penalizes the undescribed disease against an average one.
            known = self.covered[:, j]
            self.p_unknown[j] = float(self.P[known, j].mean()) if known.any() else self.leak[j]
            self.P[~known & ~self.linked[:, j], j] = self.p_unknown[j]
        # Vocabulary of each finding (DDXPlus / SymCat / both); see answerability().
        vocab_index = {v: k for k, v in enumerate(VOCABULARIES)}
        self.vocabularies: list[tuple[int, ...]] = [
            tuple(vocab_index[s] for s in VOCABULARIES if s in f.sources) for f in self.findings
        ]
        self.logP = np.log(self.P)
        self.log1mP = np.log1p(-self.P)
        self.parent_col = np.array(
            [self.finding_index.get(f.parent, -1) if f.parent else -1 for f in self.findings], dtype=np.int64
        )
        # Value findings ("pain location: pharynx") by their evidence's column and value code.
        self.value_of_col = np.full(n_f, -1, dtype=np.int64)
        self.value_cols: dict[int, dict[str, int]] = {}
        self.value_code: dict[int, str] = {}
        for j, f in enumerate(self.findings):
            base = self.finding_index.get(f.concept.value_of or "")
            if base is not None:
                self.value_of_col[j] = base
                self.value_code[j] = f.id.rpartition(VALUE_SEPARATOR)[2]
                self.value_cols.setdefault(base, {})[self.value_code[j]] = j
        self.same_as: dict[int, NDArray[np.int64]] = {}
        for j, f in enumerate(self.findings):
            targets = [self.finding_index[t] for t in f.same_as if t in self.finding_index]
            if targets:
                self.same_as[j] = np.asarray([j, *targets], dtype=np.int64)
        # Log prior: uniform base (no source gives prevalences for all diseases) times the
        # SymCat age and sex odds ratios where known.
        self.log_base = _catalogue_log_prior(self.diseases) if catalogue_prior else np.zeros(n_d)
        bands = len(AGE_BANDS)
        self.log_age = np.zeros((n_d, bands))
        self.log_sex = np.zeros((n_d, 2))
        for i, d in enumerate(self.diseases):
            odds = (age_odds or {}).get(d.id)
            if odds and len(odds) == bands:
                self.log_age[i] = np.log(np.maximum(np.asarray(odds, dtype=float), MIN_AGE_ODDS))
            sodds = (sex_odds or {}).get(d.id)
            if sodds and len(sodds) == 2:
                self.log_sex[i] = np.log(np.maximum(np.asarray(sodds, dtype=float), MIN_SEX_ODDS))

    def subset(self, edges: Iterable[tuple[str, str, float, str]]) -> DiagnosisModel:
        """A model over the diseases the edges mention (a pulled candidate subgraph), keeping
        this model's priors so that rankings agree."""
        edge_list = list(edges)
        wanted = {d for d, _, _, _ in edge_list}
        rows = [i for i, d in enumerate(self.diseases) if d.id in wanted]
        sub = DiagnosisModel(
            [self.diseases[i] for i in rows],
            self.findings,
            edge_list,
            leak_symptom=float(self.leak_symptom),
            leak_history=float(self.leak_history),
            catalogue_prior=False,
            temperature=self.temperature,
        )
        sub.log_base = self.log_base[rows]
        sub.log_age = self.log_age[rows]
        sub.log_sex = self.log_sex[rows]
        return sub

    # ------------------------------------------------------------------ evidence
    def resolve(self, evidence: Evidence) -> ResolvedEvidence:
        unknown = sorted({o.finding_id for o in evidence.observations} - set(self.finding_index))
        if unknown:
            raise UnknownFindingError(f"unknown finding ids: {', '.join(unknown)}")
        state: dict[int, tuple[bool, float]] = {}
        resolved = ResolvedEvidence()
        listed: set[int] = set()  # evidences answered with their values: other values are absent

        def observe(j: int, present: bool, confidence: float) -> None:
            previous = state.get(j)
            # Several observations of one finding (multi-choice values): present wins.
            if previous is None or (present and not previous[0]):
                state[j] = (present, confidence)

        for obs in evidence.observations:
            j = self.finding_index[obs.finding_id]
            resolved.asked.add(j)
            meta = self.findings[j]
            present = obs.present
            if obs.value is not None and meta.default_value is not None:
                # A categorical answer equal to the "no" default (pain "nowhere", intensity 0)
                # means the finding is absent.
                present = str(obs.value) != meta.default_value if present is not False else False
                if present:
                    resolved.values[j] = str(obs.value)
                    value_col = self.value_cols.get(j, {}).get(str(obs.value))
                    if value_col is not None:
                        listed.add(j)
                        resolved.asked.add(value_col)
                        observe(value_col, True, obs.confidence)
            if present is None:
                continue  # "don't know" is no evidence
            observe(j, present, obs.confidence)
            base = int(self.value_of_col[j])
            if present and base >= 0:  # "pain in the pharynx: yes" means pain location is known
                resolved.asked.add(base)
                resolved.values.setdefault(base, self.value_code[j])
                observe(base, True, obs.confidence)
        for j in listed:
            for value_col in self.value_cols[j].values():
                resolved.asked.add(value_col)
                if value_col not in state:
                    state[value_col] = (False, 1.0)
        # An absent gate ("no pain") or an absent evidence (pain "nowhere") implies its details
        # and values; counting them again would double-count.
        absent = {j for j, (present, _) in state.items() if not present}
        implied = {int(j) for j in np.flatnonzero(np.isin(self.parent_col, list(absent)))}
        implied |= {c for j in absent for c in self.value_cols.get(j, {}).values()}
        answered = {int(self.value_of_col[j]) for j in state if self.value_of_col[j] >= 0} | set(state)
        for j, (present, confidence) in state.items():
            if j in implied:
                continue
            group = self.same_as.get(j) if present else None
            if group is not None and not any(self._evidence_of(int(c)) in answered for c in group[1:]):
                resolved.any_of.append((group, confidence))
            else:
                (resolved.present if present else resolved.absent).append((j, confidence))
            if present:
                resolved.present_cols.add(j)
        resolved.asked |= implied
        return resolved

    def _evidence_of(self, j: int) -> int:
        """The evidence a value finding belongs to, or the finding itself."""
        base = int(self.value_of_col[j])
        return base if base >= 0 else j

    def log_prior(self, age: int | None, sex: str | None) -> FloatArray:
        prior = self.log_base.copy()
        if age is not None:
            prior += self.log_age[:, age_band_index(age)]
        if sex in ("M", "F"):
            prior += self.log_sex[:, 0 if sex == "M" else 1]
        return prior

    def posterior(self, evidence: Evidence) -> Posterior:
        resolved = self.resolve(evidence)
        present_cols = [j for j, _ in resolved.present] + [int(c) for g, _ in resolved.any_of for c in g]
        if present_cols:
            rows = np.flatnonzero(self.linked[:, present_cols].any(axis=1))
        else:
            rows = np.arange(len(self.diseases))
        scores = np.zeros(rows.size)
        for cols, present in ((resolved.present, True), (resolved.absent, False)):
            for j, confidence in cols:
                p = self.P[rows, j]
                if confidence >= 1.0:
                    scores = scores + (self.logP[rows, j] if present else self.log1mP[rows, j])
                else:
                    # Soft evidence: the observation is right with probability `confidence`.
                    like = p if present else 1.0 - p
                    scores = scores + np.log(confidence * like + (1.0 - confidence) * (1.0 - like))
        for group, confidence in resolved.any_of:
            like = self.P[np.ix_(rows, group)].max(axis=1)
            scores = scores + np.log(confidence * like + (1.0 - confidence) * (1.0 - like))
        scores = self.log_prior(evidence.age, evidence.sex)[rows] + scores / self.temperature
        probs = _softmax(scores)
        return Posterior(rows=rows, log_scores=scores, probs=probs, evidence=resolved)

    # ------------------------------------------------------------------ questions
    def question_candidates(self, posterior: Posterior, top_candidates: int) -> NDArray[np.int64]:
        """Findings linked to the top candidates, not asked, whose gate question (if any) is
        present; value findings only through their evidence ("where is the pain?")."""
        if posterior.rows.size == 0:
            return np.zeros(0, dtype=np.int64)
        order = np.argsort(-posterior.probs, kind="stable")[:top_candidates]
        top_rows = posterior.rows[order]
        cols = np.flatnonzero(self.linked[top_rows].any(axis=0))
        keep = [
            j
            for j in cols
            if j not in posterior.evidence.asked
            and self.value_of_col[j] < 0  # values are heard through their evidence's question
            and (self.parent_col[j] < 0 or self.parent_col[j] in posterior.evidence.present_cols)
        ]
        return np.asarray(keep, dtype=np.int64)

    def answerability(self, evidence: Evidence, cols: NDArray[np.int64]) -> FloatArray:
        """P(the patient gives a yes/no/value answer) for each finding column, learned in-session.

        A patient described in one source's vocabulary (a DDXPlus case) may only be able to say
        "don't know" to findings that exist only in another (SymCat's). Per vocabulary, the rule
        of succession over this consultation's answers to single-vocabulary findings:
        (answered + 1) / (asked + 2); a finding in several vocabularies takes the best rate, one
        in none (hand-built models) counts as answerable.
        """
        asked = np.zeros(len(VOCABULARIES))
        answered = np.zeros(len(VOCABULARIES))
        for obs in evidence.observations:
            j = self.finding_index.get(obs.finding_id)
            if obs.source != "answer" or j is None or len(self.vocabularies[j]) != 1:
                continue
            asked[self.vocabularies[j][0]] += 1
            answered[self.vocabularies[j][0]] += obs.present is not None
        rate = (answered + 1.0) / (asked + 2.0)
        return np.array([max((rate[v] for v in self.vocabularies[j]), default=1.0) for j in cols])

    def information_gain(self, posterior: Posterior, cols: NDArray[np.int64]) -> FloatArray:
        """H(D) - sum_v P(v) H(D | v) for each finding column (present / absent outcomes).

        A categorical / multi-choice finding is asked as one question whose answer names its
        values. Where the graph holds per-condition value links (learned by calibration), its
        gain counts the values too (``_value_question_gain``); otherwise the value split is
        the same for every disease and the gain is that of presence.
        """
        if cols.size == 0 or posterior.rows.size == 0:
            return np.zeros(cols.size)
        gain = self._presence_gain(posterior, cols)
        for k, j in enumerate(cols):
            values = np.fromiter(self.value_cols.get(int(j), {}).values(), dtype=np.int64)
            if values.size and self.linked[np.ix_(posterior.rows, values)].any():
                gain[k] = self._value_question_gain(posterior, int(j), values)
        return gain

    def _value_question_gain(self, posterior: Posterior, j: int, value_cols: NDArray[np.int64]) -> float:
        """Expected gain of asking evidence ``j`` and hearing its values, by Monte Carlo.

        Answers are sampled from the model (a disease from the posterior, presence from
        P[d, j], each value from P[d, v] / P[d, j]) and scored the way ``resolve`` scores a
        listed answer (presence, named values present, the others absent). Seeded: the same
        state always gives the same gain.
        """
        rng = np.random.default_rng(j)
        # The candidates holding all but 0.1% of the mass (at most VALUE_GAIN_ROWS) and the
        # values any of them links: the tail cannot change the expected entropy by more than
        # its mass, and scoring all 812 rows x every value made a turn 40x slower.
        order = np.argsort(-posterior.probs, kind="stable")
        cut = int(np.searchsorted(np.cumsum(posterior.probs[order]), 1.0 - VALUE_GAIN_TAIL)) + 1
        keep = order[: min(cut, VALUE_GAIN_ROWS)]
        rows, probs = posterior.rows[keep], posterior.probs[keep] / posterior.probs[keep].sum()
        value_cols = value_cols[self.linked[np.ix_(rows, value_cols)].any(axis=0)]
        if value_cols.size == 0:
            return 0.0
        sampled = rng.choice(rows.size, size=VALUE_GAIN_SAMPLES, p=probs)
        p_base = self.P[rows, j]
        present = rng.random(VALUE_GAIN_SAMPLES) < p_base[sampled]
        p_values = self.P[np.ix_(rows, value_cols)]
        q_values = np.minimum(p_values / p_base[:, None], 1.0)
        named = (rng.random((VALUE_GAIN_SAMPLES, value_cols.size)) < q_values[sampled]) & present[:, None]
        log_like = np.where(
            present[:, None],
            np.log(p_base)[None, :]
            + named.astype(float) @ np.log(p_values).T
            + (~named).astype(float) @ np.log1p(-p_values).T,
            np.log1p(-p_base)[None, :],
        )
        log_post = np.log(np.maximum(probs, 1e-300))[None, :] + log_like / self.temperature
        log_post -= log_post.max(axis=1, keepdims=True)
        post = np.exp(log_post)
        post /= post.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            h_after = -np.where(post > 0, post * np.log(np.where(post > 0, post, 1.0)), 0.0).sum(axis=1)
        return max(entropy(probs) - float(h_after.mean()), 0.0)

    def _presence_gain(self, posterior: Posterior, cols: NDArray[np.int64]) -> FloatArray:
        pi = posterior.probs[:, None]
        p = self.P[np.ix_(posterior.rows, cols)]
        h = posterior.entropy
        gain = np.full(cols.size, h)
        for like in (p, 1.0 - p):
            joint = pi * like
            p_v = joint.sum(axis=0)
            with np.errstate(divide="ignore", invalid="ignore"):
                xlogx = np.where(joint > 0, joint * np.log(np.where(joint > 0, joint, 1.0)), 0.0)
                h_v = np.where(
                    p_v > 0,
                    -xlogx.sum(axis=0) / np.where(p_v > 0, p_v, 1.0) + np.log(np.where(p_v > 0, p_v, 1.0)),
                    0.0,
                )
            gain -= p_v * h_v
        return np.maximum(gain, 0.0)

    # ------------------------------------------------------------------ results
    def differential(self, evidence: Evidence, top_k: int = 10) -> Differential:
        post = self.posterior(evidence)
        everything = np.argsort(-post.probs, kind="stable")
        order = list(everything[: max(top_k, 0)])
        # Severe conditions that the evidence cannot exclude yet stay on the list, flagged.
        order += [
            k
            for k in everything[max(top_k, 0) :]
            if post.probs[k] >= CANNOT_EXCLUDE_P and self._severe(int(post.rows[k]))
        ]
        ranked = [
            self._ranked(int(post.rows[k]), float(post.probs[k]), float(post.log_scores[k]), post.evidence)
            for k in order
        ]
        flags = [
            self.findings[j].concept for j in sorted(post.evidence.present_cols) if self.findings[j].red_flag
        ]
        return Differential(diseases=ranked, entropy=post.entropy, red_flags=flags, unknown_findings=[])

    def _link(self, i: int, j: int, present: bool, evidence: ResolvedEvidence) -> FindingLink:
        d, f = self.diseases[i], self.findings[j]
        linked = bool(self.linked[i, j])
        p = float(self.P[i, j])
        if linked:
            source = self.edge_source.get((i, j))
            path = (
                f"(:Disease {{name: {d.name!r}}})-[:HAS_FINDING {{p: {p:.2f}, source: {source!r}}}]->"
                f"(:Finding {{id: {f.id!r}, name: {f.name!r}}})"
            )
        elif self.covered[i, j]:
            source = "leak"
            path = f"no HAS_FINDING edge from {d.name!r} to {f.name!r} (leak p={p:.2f})"
        else:
            source = "unknown"
            path = f"{d.name!r} has no data on {f.name!r} (average p={p:.2f})"
        return FindingLink(
            finding_id=f.id,
            finding_name=f.name,
            p=p,
            present=present,
            value=evidence.values.get(j),
            source=source,
            path=path,
        )

    def _ranked(self, i: int, prob: float, log_score: float, ev: ResolvedEvidence) -> RankedDisease:
        d = self.diseases[i]
        supporting = [self._link(i, j, True, ev) for j, _ in ev.present if self.linked[i, j]]
        for group, _ in ev.any_of:  # the column that explains the patient's words best
            best = int(group[np.argmax(self.P[i, group])])
            if self.linked[i, best]:
                supporting.append(self._link(i, best, True, ev))
        contradicting = [self._link(i, j, False, ev) for j, _ in ev.absent if self.linked[i, j]]
        contradicting += [
            self._link(i, j, True, ev)
            for j, _ in ev.present
            # An unlinked value (no condition has value data without calibration) says nothing.
            if not self.linked[i, j] and self.covered[i, j] and self.value_of_col[j] < 0
        ]
        supporting.sort(key=lambda link: -link.p)
        contradicting.sort(key=lambda link: -link.p if not link.present else 1.0)
        severe = self._severe(i)
        return RankedDisease(
            disease_id=d.id,
            name=d.name,
            probability=prob,
            log_score=log_score,
            severity=d.severity,
            icd10=d.icd10,
            supporting=supporting,
            contradicting=contradicting,
            severe=severe,
            cannot_exclude=severe and prob >= CANNOT_EXCLUDE_P,
        )

    def _severe(self, i: int) -> bool:
        severity = self.diseases[i].severity
        return severity is not None and severity <= SEVERE_AT_MOST

    def next_step(
        self, evidence: Evidence, differential: Differential, rule: StopRule = StopRule()
    ) -> NextStep:
        post = self.posterior(evidence)
        if post.rows.size == 0 or not differential.diseases:
            return NextStep(question=None, stop_reason="no_candidates")
        if float(post.probs.max()) >= rule.posterior_threshold:
            return NextStep(question=None, stop_reason="confident")
        asked = sum(1 for o in evidence.observations if o.source == "answer")
        if asked >= rule.max_questions:
            return NextStep(question=None, stop_reason="budget")
        cols = self.question_candidates(post, rule.top_candidates)
        gains = self.information_gain(post, cols)
        if gains.size == 0 or float(gains.max()) < rule.min_information_gain:
            return NextStep(question=None, stop_reason="low_gain")
        # Expected gain of asking = gain of the answer x P(an answer other than "don't know").
        best = int(np.argmax(gains * self.answerability(evidence, cols)))
        meta = self.findings[int(cols[best])]
        text = meta.question or f"Do you have {meta.name}?"
        return NextStep(
            question=Question(finding=meta.concept, information_gain=float(gains[best]), text=text),
            stop_reason="asking",
        )


def _catalogue_log_prior(diseases: Sequence[DiseaseMeta]) -> FloatArray:
    """Equal prior mass per source catalogue, spread within each by measured shares where known
    and uniformly otherwise (a merged disease sums both).

    No source gives prevalences for all diseases. A uniform prior per disease would hand the
    801 SymCat conditions 94% of the mass against DDXPlus's 49 by count alone; an equal split
    between the catalogues (each an alternative description of the patients) avoids that.
    """
    sizes = {c: sum(1 for d in diseases if c in d.sources) for c in VOCABULARIES}
    present = [c for c in VOCABULARIES if sizes[c]]
    if not present:
        return np.zeros(len(diseases))
    mass = np.zeros(len(diseases))
    for c in present:
        members = [i for i, d in enumerate(diseases) if c in d.sources]
        # Within a catalogue: its measured shares (DDXPlus training patients) where known,
        # the members without one getting the average share.
        shares = np.array([diseases[i].prior or np.nan for i in members], dtype=float)
        known = ~np.isnan(shares)
        shares[~known] = shares[known].mean() if known.any() else 1.0
        mass[members] += shares / shares.sum() / len(present)
    mass[mass == 0] = mass[mass > 0].min() if (mass > 0).any() else 1.0
    return np.log(mass / mass.sum())


def _coverage(diseases: Sequence[DiseaseMeta], findings: Sequence[FindingMeta]) -> NDArray[np.bool_]:
    """covered[d, f]: the disease's source describes the finding's vocabulary.

    Sources without vocabulary information (hand-built models) cover everything.
    """
    d_vocab = [set(d.sources) & set(VOCABULARIES) for d in diseases]
    f_vocab = [set(f.sources) & set(VOCABULARIES) for f in findings]
    covered = np.ones((len(diseases), len(findings)), dtype=bool)
    for i, dv in enumerate(d_vocab):
        if not dv:
            continue
        for j, fv in enumerate(f_vocab):
            if fv and not (dv & fv):
                covered[i, j] = False
    return covered


def _softmax(scores: FloatArray) -> FloatArray:
    if scores.size == 0:
        return scores
    shifted = np.exp(scores - scores.max())
    return shifted / shifted.sum()
