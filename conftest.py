"""Root pytest configuration: each area owns one fixture module under tests/fixtures/."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest_plugins = [
    "tests.fixtures.shared_data",
    "tests.fixtures.servers",
    "tests.fixtures.llm",
    "tests.fixtures.kg",
    "tests.fixtures.retrieval",
    "tests.fixtures.vlm",
    "tests.fixtures.eval",
    "tests.fixtures.ddx",
    "tests.fixtures.agent",
    "tests.fixtures.ui",
    "tests.fixtures.postgres",
]
