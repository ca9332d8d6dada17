"""The Gradio Blocks app: consultation chat and report drafting, over the same services as the API."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from assistant.private_files import private_temp_dir

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


# Gradio's upload cache (patient images) in an owner-only folder, set before Gradio reads it.
os.environ.setdefault("GRADIO_TEMP_DIR", private_temp_dir("medkg-gradio"))

import gradio as gr
from pydantic import BaseModel

from assistant.contracts import TurnResult
from assistant.outages import DependencyUnavailableError
from assistant.safety import DISCLAIMER
from ui.api.images import SUPPORTED, ImageTooLargeError, VisionLimits, check_decoded_size, sniff_image_kind
from ui.api.models import MAX_INDICATION_CHARS, MAX_MESSAGE_CHARS
from ui.services import AppServices, ReportUnavailableError
from ui.web.render import (
    assistant_message,
    differential_html,
    evidence_html,
    follow_up_markdown,
    urgent_html,
)
from ui.web.reports import draft_text, edited_draft
from vlm.base import ImageError, VisionUnavailableError

log = logging.getLogger(__name__)

# The page banner: the consultation's own disclaimer plus what to do in an emergency.
PAGE_DISCLAIMER = f"**medkg is not a doctor.** {DISCLAIMER} In an emergency call your local emergency number."
QUICK_ANSWERS = ("Yes", "No", "Don't know")
UI_CONCURRENCY = 8
MAX_AGE = 130  # as the API and the consultation accept
IMAGE_TYPES = [".png", ".jpg", ".jpeg", ".dcm", ".dicom"]

History = list[dict[str, Any]]


class UserFacingError(Exception):
    """Shown to the user as a warning; the consultation goes on."""


def _read_image(path: str | None, limits: VisionLimits) -> bytes | None:
    if not path:
        return None
    file = Path(path)
    max_bytes = limits.max_upload_bytes
    if file.stat().st_size > max_bytes:
        raise UserFacingError(f"The image is larger than {max_bytes // (1024 * 1024)} MB.")
    data = file.read_bytes()
    if sniff_image_kind(data) is None:
        raise UserFacingError(f"The file is not a {SUPPORTED} image.")
    try:  # decoded size from the header, before any pixel is decoded (as the API does)
        check_decoded_size(data, limits)
    except ImageTooLargeError as exc:
        raise UserFacingError(str(exc)) from exc
    return data


def _forget_upload(path: str | None) -> None:
    """Delete an uploaded file once its bytes are read: patient images do not stay on disk."""
    if path:
        try:
            Path(path).unlink(missing_ok=True)
        except OSError:
            log.warning("could not delete an upload")


def _first_file(files: list[Any] | None) -> str | None:
    if not files:
        return None
    first = files[0]
    if isinstance(first, dict):
        return str(first.get("path") or "") or None
    return str(first)


def demographics_updates(result: TurnResult | None, *, reset: bool = False) -> tuple[Any, Any]:
    """The Age and Sex boxes show what the consultation knows: given with the first message or
    read from the patient's words ("I am a 34 year old woman"). Empty is unknown (0 is a
    newborn). Read-only once a session runs; a new session clears and unlocks them."""
    if reset:
        return gr.update(value="", interactive=True), gr.update(value=None, interactive=True)
    if result is None:  # nothing happened (a refused first message): keep what was typed
        return gr.update(), gr.update()
    age = "" if result.age is None else str(result.age)
    return gr.update(value=age, interactive=False), gr.update(value=result.sex, interactive=False)


def _turn_outputs(
    history: History, session_id: str | None, result: TurnResult | None, *, reset: bool = False
) -> tuple[Any, ...]:
    follow_up = result.follow_up if result else None
    # Yes / No only fit a yes-or-no question; a location or a 0-10 scale is answered in the
    # chat box, and "Don't know" fits every question.
    yes_no = follow_up is not None and follow_up.choices[:2] == list(QUICK_ANSWERS[:2])
    return (
        history,
        session_id,
        differential_html(result.differential if result else []),
        evidence_html(result),
        urgent_html(result),
        follow_up_markdown(follow_up),
        gr.update(visible=follow_up is not None),
        result.model_dump(mode="json") if result else None,
        *demographics_updates(result, reset=reset),
        gr.update(visible=yes_no),
        gr.update(visible=yes_no),
    )


def parse_age(value: str | float | None) -> int | None:
    """The Age box: empty is unknown, else whole years 0-130 (0: under one year)."""
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        number = -1.0
    if not number.is_integer() or not 0 <= number <= MAX_AGE:
        raise UserFacingError(
            f"Age is a whole number of years from 0 to {MAX_AGE} (0: under one year);"
            " leave it empty if unknown."
        )
    return int(number)


class ConsultationCallbacks:
    """Gradio event handlers; each turn holds the session's lock like the API does."""

    def __init__(self, services: AppServices) -> None:
        self.services = services

    def _consultation(self) -> Any:
        if self.services.consultation is None:
            raise UserFacingError("The consultation service is not running.")
        return self.services.consultation

    def submit(
        self,
        message: dict[str, Any] | None,
        history: History,
        session_id: str | None,
        age: str | float | None,
        sex: str | None,
        last: dict[str, Any] | None,
        progress: gr.Progress = gr.Progress(),
    ) -> tuple[Any, ...]:
        message = message or {}
        text = str(message.get("text") or "").strip()
        history = list(history or [])
        previous = TurnResult.model_validate(last) if last else None
        try:
            image_path = _first_file(message.get("files"))
            try:
                image = _read_image(image_path, self.services.settings.vision)
            finally:
                _forget_upload(image_path)
            if not text and image is None:
                raise UserFacingError("Type a message or attach an image.")
            if len(text) > MAX_MESSAGE_CHARS:
                raise UserFacingError(f"Messages are limited to {MAX_MESSAGE_CHARS} characters.")
            progress(0.1, desc="Reading your message…")
            consultation = self._consultation()
            if session_id is None:
                result = consultation.start(
                    text or None,
                    age=parse_age(age),
                    sex=sex if sex in ("M", "F") else None,
                    image=image,
                )
            else:
                result = consultation.send(session_id, text or "(image)", image=image)
        except UserFacingError as exc:
            gr.Warning(str(exc))
            return (gr.update(), *_turn_outputs(history, session_id, previous))
        except (ImageError, VisionUnavailableError) as exc:
            gr.Warning(f"The image could not be used: {exc}")
            return (gr.update(), *_turn_outputs(history, session_id, previous))
        except DependencyUnavailableError as exc:  # nothing was recorded: the text stays to resend
            gr.Warning(f"{exc.detail} Please send it again in a few seconds.")
            return (gr.update(), *_turn_outputs(history, session_id, previous))
        if text:
            history.append({"role": "user", "content": text})
        if image is not None:
            history.append({"role": "user", "content": "📎 image attached"})
        history.append({"role": "assistant", "content": assistant_message(result)})
        return (gr.update(value=None), *_turn_outputs(history, result.session_id, result))

    def answer(
        self,
        answer: str,
        history: History,
        session_id: str | None,
        last: dict[str, Any] | None,
        progress: gr.Progress = gr.Progress(),
    ) -> tuple[Any, ...]:
        history = list(history or [])
        previous = TurnResult.model_validate(last) if last else None
        if session_id is None or previous is None or previous.follow_up is None:
            gr.Warning("There is no question to answer.")
            return _turn_outputs(history, session_id, previous)
        progress(0.1, desc="Updating the differential…")
        try:
            result = self._consultation().answer(session_id, answer)
        except DependencyUnavailableError as exc:
            gr.Warning(f"{exc.detail} Please answer again in a few seconds.")
            return _turn_outputs(history, session_id, previous)
        history.append({"role": "user", "content": answer})
        history.append({"role": "assistant", "content": assistant_message(result)})
        return _turn_outputs(history, session_id, result)

    def new_session(self) -> tuple[Any, ...]:
        return (gr.update(value=None), *_turn_outputs([], None, None, reset=True), gr.update(value=None))

    def export(self, session_id: str | None) -> Any:
        if session_id is None:
            gr.Warning("Nothing to export yet.")
            return gr.update(value=None, visible=False)
        data = self._consultation().export(session_id)
        path = _write_download(
            f"medkg-consultation-{session_id}.json", data, self.services.settings.server.ui_file_ttl_s
        )
        return gr.update(value=path, visible=True)


class ReportCallbacks:
    def __init__(self, services: AppServices) -> None:
        self.services = services

    def draft(
        self,
        image_path: str | None,
        indication: str,
        progress: gr.Progress = gr.Progress(),
    ) -> tuple[Any, ...]:
        reports = self.services.reports
        try:
            if reports is None:
                raise UserFacingError("Report drafting is not configured (no image encoder).")
            # Kept until the TTL (the clinician may draft again from the same upload).
            image = _read_image(image_path, self.services.settings.vision)
            if image is None:
                raise UserFacingError("Upload an image first.")
            progress(0.2, desc="Encoding the image and drafting…")
            draft = reports.draft(image, (indication or "").strip()[:MAX_INDICATION_CHARS])
        except UserFacingError as exc:
            gr.Warning(str(exc))
            return gr.update(), None, gr.update(visible=False), str(exc)
        except (ImageError, VisionUnavailableError, ReportUnavailableError) as exc:
            gr.Warning(str(exc))
            return gr.update(), None, gr.update(visible=False), f"Could not draft a report: {exc}"
        return draft_text(draft), draft.model_dump(mode="json"), gr.update(visible=False), "Draft ready."

    def fhir(self, edited: str, draft: dict[str, Any] | None) -> Any:
        reports = self.services.reports
        if reports is None or draft is None:
            gr.Warning("Draft a report first.")
            return gr.update(value=None, visible=False)
        updated: BaseModel = edited_draft(draft, edited, reports)
        path = _write_download(
            "medkg-report-fhir.json", reports.to_fhir(updated), self.services.settings.server.ui_file_ttl_s
        )
        return gr.update(value=path, visible=True)


DOWNLOAD_PREFIX = "medkg-download-"


def _write_download(name: str, data: Any, ttl_s: int) -> str:
    """An owner-only file for a download (Gradio serves a copy from its cache, which
    ``delete_cache`` empties); downloads older than the TTL are deleted on each new one."""
    sweep_downloads(ttl_s)
    folder = Path(tempfile.mkdtemp(prefix=DOWNLOAD_PREFIX))  # 0700
    path = folder / name
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(data, indent=2, ensure_ascii=False))
    return str(path)


def sweep_downloads(ttl_s: int, root: Path | None = None) -> int:
    """Delete download folders older than ``ttl_s``; returns how many went."""
    root = root or Path(tempfile.gettempdir())
    cutoff = time.time() - ttl_s
    removed = 0
    for folder in root.glob(f"{DOWNLOAD_PREFIX}*"):
        try:
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed


def build_blocks(services: AppServices) -> gr.Blocks:
    chat = ConsultationCallbacks(services)
    reports = ReportCallbacks(services)
    ttl = max(1, services.settings.server.ui_file_ttl_s)
    # Uploaded images and served downloads in Gradio's cache: deleted once older than the TTL
    # (checked every ttl/2 s) and all of them when the server stops.
    with gr.Blocks(title="medkg", analytics_enabled=False, delete_cache=(max(1, ttl // 2), ttl)) as blocks:
        gr.Markdown("## medkg — knowledge-graph-grounded diagnostic assistant")
        gr.Markdown(PAGE_DISCLAIMER, elem_id="disclaimer")
        session_id = gr.State(None)
        last_result = gr.State(None)
        with gr.Tabs():
            with gr.Tab("Consultation", id="consultation", elem_id="tab-consultation"), gr.Row():
                with gr.Column(scale=3):
                    with gr.Row(equal_height=True):
                        # Sent with the first message (demographics shape the priors), then
                        # filled from the consultation: what the patient says in the chat.
                        # A text box, not gr.Number: an empty gr.Number shows and sends 0 (a
                        # newborn's age) in Gradio 6; here empty is unknown.
                        age = gr.Textbox(
                            "",
                            label="Age (years)",
                            info="Empty: unknown · 0: under one year",
                            placeholder="unknown",
                            max_lines=1,
                            max_length=3,
                            elem_id="age",
                        )
                        sex = gr.Radio(
                            [("Female", "F"), ("Male", "M")],
                            value=None,
                            label="Sex",
                            info="Filled from the chat when the patient says it",
                            elem_id="sex",
                        )
                    urgent = gr.HTML("", elem_id="urgent-banner", js_on_load=None)
                    chatbot = gr.Chatbot(
                        elem_id="chat", label="Consultation", height=420, feedback_options=None
                    )
                    with gr.Group(visible=False, elem_id="follow-up-box") as follow_box:
                        follow_up = gr.Markdown("", elem_id="follow-up")
                        with gr.Row():
                            answer_buttons = [
                                gr.Button(label, elem_id=f"answer-{slug}", size="sm")
                                for label, slug in zip(QUICK_ANSWERS, ("yes", "no", "dontknow"), strict=True)
                            ]
                    chat_input = gr.MultimodalTextbox(
                        elem_id="chat-input",
                        placeholder="Describe the symptoms (you can attach an image)…",
                        file_types=IMAGE_TYPES,
                        file_count="single",
                        show_label=False,
                    )
                    with gr.Row():
                        new_button = gr.Button("New session", elem_id="new-session", size="sm")
                        export_button = gr.Button("Export transcript", elem_id="export-transcript", size="sm")
                    export_file = gr.File(label="Transcript", visible=False, elem_id="export-file")
                with gr.Column(scale=2):
                    gr.Markdown("### Differential")
                    chart = gr.HTML(differential_html([]), elem_id="differential-chart", js_on_load=None)
                    gr.Markdown("### Evidence")
                    evidence = gr.HTML(evidence_html(None), elem_id="evidence", js_on_load=None)
            with gr.Tab("Report draft", id="report", elem_id="tab-report"), gr.Row():
                with gr.Column():
                    report_image = gr.File(
                        label="Image (PNG, JPEG, DICOM)",
                        file_types=IMAGE_TYPES,
                        type="filepath",
                        elem_id="report-image",
                    )
                    indication = gr.Textbox(
                        label="Indication",
                        lines=2,
                        max_length=MAX_INDICATION_CHARS,
                        elem_id="report-indication",
                    )
                    draft_button = gr.Button("Draft report", variant="primary", elem_id="report-draft-button")
                    report_status = gr.Markdown("", elem_id="report-status")
                    reach = getattr(services.reports, "reach", "no image model is configured")
                    gr.Markdown(f"**What the image model can see:** {reach}", elem_id="report-reach")
                with gr.Column():
                    draft_box = gr.Textbox(
                        label="Draft (editable)", lines=14, interactive=True, elem_id="report-draft"
                    )
                    draft_state = gr.State(None)
                    fhir_button = gr.Button("Download FHIR DiagnosticReport", elem_id="report-fhir-button")
                    fhir_file = gr.File(label="FHIR R4 JSON", visible=False, elem_id="report-fhir-file")

        turn_outputs = [
            chatbot,
            session_id,
            chart,
            evidence,
            urgent,
            follow_up,
            follow_box,
            last_result,
            age,
            sex,
            *answer_buttons[:2],  # Yes, No
        ]
        # A turn updates many components; its one progress indicator sits on the chat (Gradio
        # would otherwise cover every output with its own bar).
        chat_input.submit(
            chat.submit,
            [chat_input, chatbot, session_id, age, sex, last_result],
            [chat_input, *turn_outputs],
            show_progress="full",
            show_progress_on=[chatbot],
        )
        for button, label in zip(answer_buttons, QUICK_ANSWERS, strict=True):
            button.click(
                chat.answer,
                [gr.State(label), chatbot, session_id, last_result],
                turn_outputs,
                show_progress="full",
                show_progress_on=[chatbot],
            )
        new_button.click(
            chat.new_session, None, [chat_input, *turn_outputs, export_file], show_progress="hidden"
        )
        export_button.click(chat.export, [session_id], [export_file])
        draft_button.click(
            reports.draft,
            [report_image, indication],
            [draft_box, draft_state, fhir_file, report_status],
            show_progress="full",
            show_progress_on=[draft_box],
        )
        fhir_button.click(reports.fhir, [draft_box, draft_state], [fhir_file])
    # Gradio runs one event of a kind at a time by default: one user's slow turn would block
    # everyone. Turns of the same session are serialised by the session lock instead.
    blocks.queue(default_concurrency_limit=UI_CONCURRENCY)
    return blocks
