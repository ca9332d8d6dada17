"""`medkg kg load|stats|calibrate`: load the merged graph, show what it holds, learn its p from records."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import typer

from assistant.settings import Settings, load_settings
from kg import GraphError, Neo4jGraphStore, connect, load_graph
from kg.calibration import DEFAULT_STRENGTH, calibrate_graph, calibration_label

kg_app = typer.Typer(
    help="Knowledge graph: load the shipped sources, show counts, calibrate from patient records.",
    no_args_is_help=True,
)


@contextlib.contextmanager
def _graph_store(settings: Settings) -> Iterator[Neo4jGraphStore]:
    """A store on the configured server (NEO4J_URI), else on the embedded ArcadeDB started here."""
    with contextlib.ExitStack() as stack:
        graph = settings.graph
        uri = graph.uri
        if uri is None:
            from assistant.processes.embedded import embedded_graph_service, graph_uri

            typer.echo(f"starting the embedded graph server (data in {settings.graph_dir})", err=True)
            service = stack.enter_context(embedded_graph_service(settings))
            uri = graph_uri(service)
        store = connect(
            uri,
            graph.user,
            graph.password.get_secret_value(),
            graph.database,
            timeout_s=graph.query_timeout_s,
        )
        stack.callback(store.close)
        yield store


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


@kg_app.command("load")
def load_command(
    force: bool = typer.Option(False, "--force", help="Reload even when the graph already has this version."),
    as_json: bool = typer.Option(False, "--json", help="Print the load report as JSON."),
) -> None:
    """Load (idempotently) DDXPlus, SymCat, Disease Ontology and PharmacotherapyDB into the graph."""
    try:
        with _graph_store(load_settings()) as store:
            report = load_graph(store, force=force)
    except GraphError as exc:
        _fail(str(exc))
        return
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        return
    state = (
        "already at this version, nothing loaded" if report.skipped else f"loaded in {report.seconds:.1f} s"
    )
    typer.echo(f"graph version {report.version} (checksum {report.checksum}): {state}")
    _print_counts(report.labels, report.relations)
    typer.echo("merge report:")
    for key, value in report.merge.items():
        typer.echo(f"  {key}: {value}")


@kg_app.command("stats")
def stats_command(
    as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
) -> None:
    """Counts per node label and relation type, graph version and source checksum."""
    try:
        with _graph_store(load_settings()) as store:
            stats = store.stats()
    except GraphError as exc:
        _fail(str(exc))
        return
    if as_json:
        typer.echo(json.dumps(stats.model_dump(), indent=2))
        return
    typer.echo(f"graph version: {stats.version or '(not loaded: run `medkg kg load`)'}")
    typer.echo(f"checksum: {stats.checksum or '-'}")
    _print_counts(stats.labels, stats.relations)


@kg_app.command("calibrate")
def calibrate_command(
    patients: Path = typer.Option(
        ...,
        "--patients",
        help="Diagnosed patients in the DDXPlus CSV format (.csv, .gz or .zip), e.g. "
        "release_train_patients.zip. Never the set you evaluate on.",
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Use only the first N patients."),
    strength: float = typer.Option(
        DEFAULT_STRENGTH, "--strength", min=0.0, help="Weight of the shipped p, in pseudo-patients."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Learn P(finding | disease) from patient records; `medkg kg load --force` undoes it."""
    from kg.ddxplus.counting import count_conditions
    from kg.ddxplus.definitions import load_definitions
    from kg.ddxplus.mapping import DiseaseMapper
    from kg.ddxplus.records import PatientFileError, iter_patients

    definitions = load_definitions()
    try:
        with _graph_store(load_settings()) as store:
            if not store.stats().labels.get("Disease"):
                _fail("the graph is empty: run `medkg kg load` first")
            mapper = DiseaseMapper(store.diseases(), definitions)
            counted = count_conditions(iter_patients(patients, limit), mapper, definitions)
            if not counted.counts:
                _fail(f"no patient in {patients} has a condition the graph knows")
            label = calibration_label(patients, counted.patients)
            report = calibrate_graph(store, counted.counts, label=label, strength=strength)
    except (GraphError, PatientFileError) as exc:
        _fail(str(exc))
        return
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        return
    typer.echo(
        f"calibrated {report.diseases} diseases from {report.patients} patients "
        f"({report.updated} links updated, {report.created} created); graph version {report.version}"
    )
    if counted.unmapped:
        typer.echo(
            f"skipped {sum(counted.unmapped.values())} patients of conditions the graph lacks", err=True
        )


def _print_counts(labels: dict[str, int], relations: dict[str, int]) -> None:
    typer.echo("nodes:")
    for label, count in labels.items():
        typer.echo(f"  {label:<14} {count:>7}")
    typer.echo("relations:")
    for rel, count in relations.items():
        typer.echo(f"  {rel:<14} {count:>7}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""
    app.add_typer(kg_app, name="kg")
