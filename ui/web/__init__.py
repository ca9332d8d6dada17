"""The Gradio web UI, mounted at / of the API app."""

from __future__ import annotations

from fastapi import FastAPI

from ui.services import AppServices


def mount_ui(app: FastAPI, services: AppServices) -> FastAPI:
    import gradio as gr

    from ui.api.auth import key_matches
    from ui.web.app import build_blocks
    from ui.web.render import CSS

    keys = [key for key in services.settings.server.api_keys if key.get_secret_value()]

    def login(_username: str, password: str) -> bool:
        # With API keys configured the UI is behind them too: any user name, a key as password.
        return key_matches(password, keys)

    return gr.mount_gradio_app(
        app,
        build_blocks(services),
        path="/",
        auth=login if keys else None,
        auth_message="Sign in with any user name and an API key as the password." if keys else None,
        footer_links=["api"],
        css=CSS,
        max_file_size=services.settings.vision.max_upload_bytes,
        show_error=False,
    )
