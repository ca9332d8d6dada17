"""Disease and finding descriptions from the graph sources, for the retrieval corpus."""

from __future__ import annotations

from kg import merge
from kg.sources import SOURCE_INFO, symcat_conditions


def _doid_url(doid: str) -> str:
    return f"http://purl.obolibrary.org/obo/{doid.replace(':', '_')}"


def description_documents() -> list[dict[str, str]]:
    """One document per description: SymCat condition texts, DOID definitions, finding texts.

    Keys: id, title, text, source, url, license. Ids are stable across runs.
    """
    content = merge.build_content()
    docs: list[dict[str, str]] = []
    symcat = symcat_conditions()
    from kg.sources import doid_terms

    terms = doid_terms()
    for disease in content.diseases.values():
        if disease.symcat and disease.symcat in symcat:
            cond = symcat[disease.symcat]
            text = " ".join(part for part in (cond.description, cond.remarks) if part)
            if text:
                docs.append(
                    {
                        "id": f"symcat:condition:{cond.slug}",
                        "title": cond.name,
                        "text": text,
                        "source": "symcat",
                        "url": f"https://www.symcat.com/conditions/{cond.slug}",
                        "license": SOURCE_INFO["symcat"]["license"],
                    }
                )
        if disease.doid and disease.doid in terms and terms[disease.doid].definition:
            term = terms[disease.doid]
            docs.append(
                {
                    "id": f"doid:{term.id}",
                    "title": disease.name
                    if disease.name.lower() == term.name.lower()
                    else f"{disease.name} ({term.name})",
                    "text": term.definition,
                    "source": "doid",
                    "url": _doid_url(term.id),
                    "license": SOURCE_INFO["doid"]["license"],
                }
            )
    for finding in content.findings.values():
        if finding.description:
            source = "symcat" if finding.symcat else "symp"
            url = (
                f"https://www.symcat.com/symptoms/{finding.symcat}"
                if finding.symcat
                else _doid_url(finding.symp or "")
            )
            docs.append(
                {
                    "id": f"finding:{finding.id}",
                    "title": finding.name,
                    "text": finding.description,
                    "source": source,
                    "url": url,
                    "license": SOURCE_INFO[source]["license"],
                }
            )
    seen: set[str] = set()
    unique = []
    for doc in docs:
        if doc["id"] not in seen:
            seen.add(doc["id"])
            unique.append(doc)
    return unique
