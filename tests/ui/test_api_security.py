"""Issue 15: ownership across API keys, rate limits, the decoded-size bound of uploads, files on
disk. Logic on the fake consultation; the proofs again on the real stack (embedded llama.cpp,
the full graph on ArcadeDB, the real Consultation and Gradio UI)."""

from __future__ import annotations

import base64
import os
import stat
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from assistant.settings import RateLimitSettings, ServerSettings, Settings
from ui.api.images import DecodedSize, ImageTooLargeError, check_decoded_size, decoded_size
from ui.api.limits import RateLimiter

KEY_A = "key-a-0123456789abcdef"
KEY_B = "key-b-fedcba9876543210"
PROBLEM = "application/problem+json"


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["type"].startswith("https://")
    return body


def big_png(width: int = 7000, height: int = 7000, color_type: int = 2) -> bytes:
    """A valid all-black PNG that is small on disk (~143 KB) but 147 MB of RGB pixels, written
    row block by row block so that the test itself never holds the pixels."""
    channels = {0: 1, 2: 3, 6: 4}[color_type]
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + width * channels)
    data = b"".join(compressor.compress(row * 100) for _ in range(height // 100))
    data += compressor.compress(row * (height % 100)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def keyed(settings: Settings, **limits: Any) -> Settings:
    server = ServerSettings(
        api_keys=[SecretStr(KEY_A), SecretStr(KEY_B)], rate_limits=RateLimitSettings(**limits)
    )
    return settings.model_copy(update={"server": server})


@pytest.fixture
def two_key_client(api_app_factory: Any, ui_settings: Settings) -> Iterator[TestClient]:
    with TestClient(api_app_factory(keyed(ui_settings))) as client:
        yield client


def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# --------------------------------------------------------------------------- ownership


def test_another_key_gets_404_not_403(two_key_client: TestClient) -> None:
    a = {"X-API-Key": KEY_A}
    b = {"Authorization": f"Bearer {KEY_B}"}
    opened = two_key_client.post("/v1/consultations", json={"message": "fever"}, headers=a)
    assert opened.status_code == 201
    sid = opened.json()["session_id"]
    assert two_key_client.get(f"/v1/consultations/{sid}", headers=a).status_code == 200
    other = problem(two_key_client.get(f"/v1/consultations/{sid}", headers=b), 404)
    unknown = problem(two_key_client.get("/v1/consultations/no-such-id", headers=b), 404)
    assert other["type"] == unknown["type"]  # indistinguishable from an id that does not exist
    problem(two_key_client.post(f"/v1/consultations/{sid}/messages", json={"answer": "Yes"}, headers=b), 404)
    problem(two_key_client.post(f"/v1/consultations/{sid}/messages", json={"text": "hi"}, headers=b), 404)
    assert (
        two_key_client.post(
            f"/v1/consultations/{sid}/messages", json={"answer": "Yes"}, headers=a
        ).status_code
        == 200
    )


def test_a_consultation_not_made_through_the_api_belongs_to_no_key(
    two_key_client: TestClient, fake_consultation: Any
) -> None:
    """The UI's or the CLI's consultations carry no owner: no API key reads them."""
    sid = fake_consultation.start("fever").session_id
    problem(two_key_client.get(f"/v1/consultations/{sid}", headers={"X-API-Key": KEY_A}), 404)


def test_owner_is_stored_as_a_hash_never_the_key(two_key_client: TestClient, ui_settings: Settings) -> None:
    opened = two_key_client.post("/v1/consultations", json={"message": "fever"}, headers={"X-API-Key": KEY_A})
    assert opened.status_code == 201
    raw = ui_settings.sessions_path.read_bytes()
    assert KEY_A.encode() not in raw and b"key:" in raw
    assert stat.S_IMODE(ui_settings.sessions_path.stat().st_mode) == 0o600


def test_keyless_api_stays_single_tenant(client_open: TestClient) -> None:
    sid = client_open.post("/v1/consultations", json={"message": "fever"}).json()["session_id"]
    assert client_open.get(f"/v1/consultations/{sid}").status_code == 200


@pytest.fixture
def client_open(api_app_factory: Any, ui_settings: Settings) -> Iterator[TestClient]:
    with TestClient(api_app_factory(ui_settings)) as client:
        yield client


# --------------------------------------------------------------------------- rate limits


def test_per_key_rate_limit_answers_429_with_retry_after(api_app_factory: Any, ui_settings: Settings) -> None:
    app = api_app_factory(keyed(ui_settings, per_key_per_minute=6, per_key_burst=3))
    with TestClient(app) as client:
        codes = [
            client.post(
                "/v1/consultations", json={"message": "fever"}, headers={"X-API-Key": KEY_A}
            ).status_code
            for _ in range(3)
        ]
        assert codes == [201, 201, 201]
        limited = client.post("/v1/consultations", json={"message": "fever"}, headers={"X-API-Key": KEY_A})
        body = problem(limited, 429)
        assert body["type"].endswith("rate-limited") and int(limited.headers["retry-after"]) >= 1
        # Another key has its own bucket.
        ok = client.post("/v1/consultations", json={"message": "fever"}, headers={"X-API-Key": KEY_B})
        assert ok.status_code == 201


def test_per_address_rate_limit(api_app_factory: Any, ui_settings: Settings) -> None:
    settings = ui_settings.model_copy(
        update={"server": ServerSettings(rate_limits=RateLimitSettings(per_address_burst=5))}
    )
    with TestClient(api_app_factory(settings)) as client:
        codes = [client.get("/v1/consultations/nope").status_code for _ in range(8)]
    assert codes[:5] == [404] * 5 and codes[5:] == [429] * 3


def test_failed_authentications_lock_the_address_out(two_key_client: TestClient) -> None:
    """The issue's probe: 50 wrong keys. After the burst every answer is 429, a right key too."""
    codes = [
        two_key_client.get("/v1/consultations/x", headers={"X-API-Key": f"wrong-{i}"}).status_code
        for i in range(50)
    ]
    assert codes[:10] == [401] * 10 and set(codes[10:]) == {429}
    locked = two_key_client.get("/v1/consultations/x", headers={"X-API-Key": KEY_A})
    assert problem(locked, 429)["detail"].startswith("Too many failed authentications")
    assert int(locked.headers["retry-after"]) >= 1


def test_ui_login_is_throttled_per_address(api_app_factory: Any, ui_settings: Settings) -> None:
    """The issue's probe: 50 wrong UI logins. Gradio answers the first ones, then 429."""
    with TestClient(api_app_factory(keyed(ui_settings), with_ui=True)) as client:
        responses = [client.post("/login", data={"username": "u", "password": f"bad-{i}"}) for i in range(50)]
    codes = [r.status_code for r in responses]
    assert codes[:10] == [400] * 10, codes
    assert set(codes[10:]) == {429}
    assert int(responses[-1].headers["retry-after"]) >= 1
    assert responses[-1].headers["content-type"].startswith(PROBLEM)


def test_rate_limiter_refills_and_stays_bounded() -> None:
    now = [0.0]
    limiter = RateLimiter(60, 2, max_keys=100, clock=lambda: now[0])
    assert limiter.take("a") == 0 and limiter.take("a") == 0
    assert limiter.take("a") == pytest.approx(1.0)
    now[0] += 1.0
    assert limiter.take("a") == 0
    for i in range(5000):
        limiter.take(f"addr-{i}")
    assert len(limiter) <= 100


# --------------------------------------------------------------------------- uploads


def test_header_gives_the_decoded_size() -> None:
    assert decoded_size(big_png(7000, 7000)) == DecodedSize(7000, 7000, 3, 1, 1)
    assert decoded_size(big_png(300, 200, 0)) == DecodedSize(300, 200, 1, 1, 1)


def test_7000_square_png_is_refused_before_decoding(
    api_app_factory: Any, ui_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = big_png()
    assert len(data) < 400_000  # small on the wire, 147 MB decoded
    import PIL.Image

    def no_decoding(*_a: Any, **_k: Any) -> None:
        raise AssertionError("the image was opened for decoding")

    monkeypatch.setattr(PIL.Image, "open", no_decoding)
    before = rss_bytes()
    with TestClient(api_app_factory(ui_settings)) as client:
        opened = client.post(
            "/v1/consultations", json={"message": "cough", "image_base64": base64.b64encode(data).decode()}
        )
        body = problem(opened, 413)
        assert body["type"].endswith("image-too-large") and "max_decoded_bytes" not in body["detail"]
        assert "147,000,000 bytes once decoded" in body["detail"]
        report = client.post("/v1/reports", files={"image": ("big.png", data, "image/png")})
        problem(report, 413)
    assert rss_bytes() - before < 60 * 1024 * 1024


def test_decoded_bound_is_the_configured_one() -> None:
    limits = Settings().vision
    with pytest.raises(ImageTooLargeError):
        check_decoded_size(big_png(7000, 7000, 0), limits)  # 49 MB of grey: over 40 MiB
    assert check_decoded_size(big_png(2000, 2000), limits) is not None
    tight = limits.model_copy(update={"max_decoded_bytes": 1000})
    with pytest.raises(ImageTooLargeError):
        check_decoded_size(big_png(100, 100), tight)


# --------------------------------------------------------------------------- files on disk


def test_data_dir_and_sessions_are_owner_only(tmp_path: Path, fake_runtime_factory: Any) -> None:
    from assistant.consultation import Consultation

    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir)
    with Consultation(fake_runtime_factory(), settings) as consultation:
        consultation.start("fever and cough")
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        for path in data_dir.glob("sessions.sqlite*"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    # An existing world-readable database is tightened when opened again.
    settings.sessions_path.chmod(0o644)
    with Consultation(fake_runtime_factory(), settings):
        assert stat.S_IMODE(settings.sessions_path.stat().st_mode) == 0o600


def test_session_locks_do_not_pile_up(tmp_path: Path, fake_runtime_factory: Any) -> None:
    from assistant.consultation import Consultation

    with Consultation(fake_runtime_factory(), Settings(data_dir=tmp_path)) as consultation:
        for _ in range(30):
            consultation.start("fever")
        assert len(consultation._locks) <= 1


def test_downloads_are_private_and_swept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    from ui.web import app as web

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    path = Path(web._write_download("t.json", {"a": 1}, ttl_s=600))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    os.utime(path.parent, (0, 0))
    assert web.sweep_downloads(600, tmp_path) == 1 and not path.exists()


def test_gradio_deletes_its_cache_on_the_ttl(ui_settings: Settings, fake_consultation: Any) -> None:
    from ui.services import AppServices
    from ui.web.app import build_blocks

    settings = ui_settings.model_copy(update={"server": ServerSettings(ui_file_ttl_s=120)})
    blocks = build_blocks(AppServices(settings=settings, consultation=fake_consultation, reports=None))
    assert blocks.delete_cache == (60, 120)


def test_gradio_uploads_land_in_an_owner_only_folder() -> None:
    import ui.web.app  # noqa: F401  (sets the folder before Gradio is imported)

    folder = Path(os.environ["GRADIO_TEMP_DIR"])
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and folder.stat().st_uid == os.geteuid()


def test_chat_upload_is_deleted_after_reading(
    tmp_path: Path, ui_settings: Settings, fake_consultation: Any
) -> None:
    from ui.services import AppServices
    from ui.web.app import ConsultationCallbacks

    upload = tmp_path / "x.png"
    upload.write_bytes(big_png(64, 64))
    chat = ConsultationCallbacks(
        AppServices(settings=ui_settings, consultation=fake_consultation, reports=None)
    )
    no_progress: Any = lambda *a, **k: None  # noqa: E731
    chat.submit({"text": "cough", "files": [str(upload)]}, [], None, "", None, None, progress=no_progress)
    assert not upload.exists()


# --------------------------------------------------------------------------- real stack


@pytest.fixture(scope="module")
def real_app(
    agent_runtime: Any, live_settings: Settings, tiny_encoder: Any, tmp_path_factory: Any
) -> Iterator[tuple[TestClient, Settings]]:
    """The real Consultation (embedded llama.cpp, the full graph) and the real report service
    behind two API keys, with the Gradio UI mounted."""
    from assistant.consultation import Consultation
    from ui.reporting import DraftReportService
    from ui.server import create_app

    settings = keyed(live_settings.model_copy(update={"data_dir": tmp_path_factory.mktemp("security")}))
    consultation = Consultation(agent_runtime, settings)
    reports = DraftReportService(tiny_encoder, agent_runtime.chat_model, settings)
    app = create_app(settings, consultation=consultation, report_service=reports, with_ui=True)
    with TestClient(app) as client:
        yield client, settings
    consultation.close()


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_real_stack_ownership_limits_and_files(real_app: tuple[TestClient, Settings]) -> None:
    client, settings = real_app
    a, b = {"X-API-Key": KEY_A}, {"X-API-Key": KEY_B}
    opened = client.post("/v1/consultations", json={"message": "I have a fever and a cough"}, headers=a)
    assert opened.status_code == 201, opened.text
    sid = opened.json()["session_id"]
    assert client.get(f"/v1/consultations/{sid}", headers=a).status_code == 200
    problem(client.get(f"/v1/consultations/{sid}", headers=b), 404)
    problem(
        client.post(f"/v1/consultations/{sid}/messages", json={"text": "also a headache"}, headers=b), 404
    )
    # Files: owner-only data dir and session database.
    assert stat.S_IMODE(settings.data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(settings.sessions_path.stat().st_mode) == 0o600
    # The 7000 x 7000 PNG: refused from its header on both image paths, memory flat.
    data = big_png()
    before = rss_bytes()
    body = {"message": "cough", "image_base64": base64.b64encode(data).decode()}
    problem(client.post("/v1/consultations", json=body, headers=a), 413)
    problem(client.post("/v1/reports", files={"image": ("big.png", data, "image/png")}, headers=a), 413)
    assert rss_bytes() - before < 60 * 1024 * 1024
    # UI login throttle on the real Gradio mount.
    codes = [
        client.post("/login", data={"username": "u", "password": f"bad-{i}"}).status_code for i in range(15)
    ]
    assert codes[:10] == [400] * 10 and set(codes[10:]) == {429}
