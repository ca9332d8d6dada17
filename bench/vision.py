"""Vision benchmark: image throughput and report-draft latency.

1. Images/s for load + preprocess + embed (PNG/JPEG sample X-rays from the shared data) with a
   ViT-B-16 open_clip model (random weights: none ship here; speed does not depend on them),
   at batch 1 and batch 16. Ratio: batch 16 vs batch 1 throughput.
2. Report-draft latency split into load, encoder (embedding + zero-shot scoring), retrieval
   (report bank) and LLM time, with the embedded llama.cpp SmolLM2 server started here through
   assistant.services. Baseline in the same run: the template-only draft (no LLM).

    .venv/bin/python bench/vision.py [--architecture ViT-B-16] [--rounds 3] [--drafts 2]

Writes bench/results/vision.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "bench" / "results" / "vision.json"
SHARED = Path(os.environ.get("MEDKG_SHARED_DATA", REPO.parent / "shared" / "data"))
BATCH = 16


def sample_uploads() -> list[tuple[str, bytes]]:
    folders = [SHARED / "images" / "torchxrayvision_tests", SHARED / "images" / "covid_cxr" / "images"]
    files = sorted(
        p for folder in folders for p in folder.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"}
    )
    if not files:
        raise SystemExit(f"no sample images under {SHARED} (set MEDKG_SHARED_DATA)")
    uploads = [(p.name, p.read_bytes()) for p in files]
    while len(uploads) < BATCH:
        uploads += uploads
    return uploads[:BATCH]


def throughput(encoder: Any, uploads: list[tuple[str, bytes]], rounds: int) -> dict[str, Any]:
    from vlm.image_io import load_image

    def batch1() -> None:
        for name, data in uploads:
            encoder.encode_images([load_image(data, filename=name).image])

    def batch16() -> None:
        encoder.encode_images([load_image(data, filename=name).image for name, data in uploads])

    batch1()  # warm-up (allocator, thread pools)
    out: dict[str, Any] = {}
    for label, run in (("batch_1", batch1), ("batch_16", batch16)):
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        out[label] = {
            "images": len(uploads),
            "rounds": rounds,
            "median_s": round(median, 3),
            "images_per_s": round(len(uploads) / median, 2),
        }
    out["ratio_batch16_vs_batch1"] = round(
        out["batch_16"]["images_per_s"] / out["batch_1"]["images_per_s"], 2
    )
    return out


def draft_latency(
    encoder: Any, uploads: list[tuple[str, bytes]], drafts: int, bank_limit: int
) -> dict[str, Any]:
    from assistant.llm import OpenAIChatModel
    from assistant.reports import draft_report
    from assistant.services import embedded_llm_service, llm_base_url
    from assistant.settings import Settings
    from vlm.report_bank import ReportBank

    data_dir = Path(tempfile.mkdtemp(prefix="medkg-bench-vision-"))
    start = time.perf_counter()
    bank = ReportBank.build_or_load(encoder, data_dir, limit=bank_limit)
    bank_build_s = time.perf_counter() - start
    name, image = uploads[0]
    indication = "Cough and fever for three days."

    def summarize(runs: list[Any]) -> dict[str, Any]:
        keys = ("load_s", "encoder_s", "retrieval_s", "llm_s", "total_s")
        return {
            "runs": len(runs),
            **{f"median_{k}": round(statistics.median(getattr(r.timings, k) for r in runs), 4) for k in keys},
            "generated_by": [r.generated_by for r in runs],
        }

    cold = draft_report(image, indication, encoder=encoder, chat_model=None, report_bank=bank, filename=name)
    template_runs = [
        draft_report(image, indication, encoder=encoder, chat_model=None, report_bank=bank, filename=name)
        for _ in range(max(drafts, 2))
    ]
    settings = Settings(data_dir=data_dir)
    with embedded_llm_service(settings) as service:
        chat = OpenAIChatModel(llm_base_url(service), timeout_s=300, max_tokens=256, max_retries=0)
        try:
            llm_runs = [
                draft_report(
                    image, indication, encoder=encoder, chat_model=chat, report_bank=bank, filename=name
                )
                for _ in range(drafts)
            ]
        finally:
            chat.close()
    template, llm = summarize(template_runs), summarize(llm_runs)
    return {
        "bank_reports": len(bank),
        "bank_build_s": round(bank_build_s, 2),
        "first_draft_encoder_s": round(cold.timings.encoder_s, 3),  # includes the prompt ensemble
        "template_only": template,
        "with_llm": llm,
        "llm_model": chat.model,
        "ratio_llm_draft_vs_template_draft": round(
            llm["median_total_s"] / max(template["median_total_s"], 1e-9), 1
        ),
        "llm_share_of_draft": round(llm["median_llm_s"] / max(llm["median_total_s"], 1e-9), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--architecture", default="ViT-B-16")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--drafts", type=int, default=2)
    parser.add_argument("--bank-limit", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    import torch

    from vlm.encoder import create_random_encoder

    uploads = sample_uploads()
    load_before = os.getloadavg()
    encoder = create_random_encoder(args.architecture)
    params = sum(p.numel() for p in encoder.model.parameters())
    result: dict[str, Any] = {
        "benchmark": "vision",
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "loadavg_at_start": [round(x, 2) for x in load_before],
        },
        "encoder": {
            "architecture": args.architecture,
            "weights": "random",
            "parameters": params,
            "device": "cpu",
        },
        "throughput": throughput(encoder, uploads, args.rounds),
    }
    result["report_draft"] = draft_latency(encoder, uploads, args.drafts, args.bank_limit)
    result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
