"""Where one decoder step spends its time: onnxruntime's profiler, operation by operation.

    .venv/bin/python benchmarks/step_profile.py --model models/names@production
    .venv/bin/python benchmarks/step_profile.py                    # trains a names model on 200 pairs

Runs the bundle's exported decoder step (``decoder_step.onnx``) on one thread at a fixed batch
(default 64 rows of names, 17 characters each, as the cleaning job batches them) ``--runs``
times with profiling on, then prints each operation's mean time per run and its share. Profiling
adds its own overhead per operation, so read the shares, not the absolute times (the plain
per-step time, measured without the profiler, is printed first).
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

from benchmarks.tasks import names  # noqa: E402
from strseq_tasks.core.batching import encode_sources  # noqa: E402
from strseq_tasks.serve.bundle import DECODER_FILE  # noqa: E402
from strseq_tasks.serve.runtime import Normalizer, session_options  # noqa: E402


def step_inputs(normalizer: Normalizer, texts: list[str]) -> dict[str, np.ndarray]:
    """The decoder step's inputs at its first step for ``texts`` (after the real encoder)."""
    source = encode_sources(normalizer.vocab, texts)
    enc_out, keys, mask, hidden = normalizer.encoder.run(None, {"src_ids": source.ids,
                                                                "src_lengths": source.lengths})
    batch, src_len = source.ids.shape
    return {"prev_ids": np.full(batch, 5, np.int64), "hidden": hidden,
            "prev_attn": np.zeros((batch, src_len), np.float32),
            "feed": np.zeros((batch, hidden.shape[1]), np.float32), "enc_out": enc_out, "enc_keys": keys,
            "src_mask": mask, "copy_map": source.copy_map}


def profile(folder: Path, feeds: dict[str, np.ndarray], runs: int) -> tuple[float, dict[str, float]]:
    """Per-run microseconds without the profiler, and each operation's mean microseconds with it."""
    plain = ort.InferenceSession(str(folder / DECODER_FILE), session_options(1), providers=["CPUExecutionProvider"])
    for _ in range(20):
        plain.run(None, feeds)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(runs // 5):
            plain.run(None, feeds)
        times.append((time.perf_counter() - started) / (runs // 5))
    options = session_options(1)
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp(prefix="strseq-profile-")) / "step")
    session = ort.InferenceSession(str(folder / DECODER_FILE), options, providers=["CPUExecutionProvider"])
    for _ in range(runs):
        session.run(None, feeds)
    events = json.loads(Path(session.end_profiling()).read_text())
    per_op: collections.Counter = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            name = event["name"].removesuffix("_kernel_time")
            per_op[f"{event['args']['op_name']} {name}"] += event["dur"]
    return statistics.median(times) * 1e6, {k: v / runs for k, v in per_op.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model folder or REGISTRY/NAME@alias (default: train one)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--length", type=int, default=17, help="characters per input")
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--top", type=int, default=25, help="operations to list")
    args = parser.parse_args()
    train, test = names(200, 20_000, 0)
    texts = [a for a, _ in test if len(a) == args.length][: args.batch]
    if len(texts) < args.batch:
        raise SystemExit(f"only {len(texts)} test names have {args.length} characters; choose another --length")
    with tempfile.TemporaryDirectory(prefix="strseq-step-profile-") as tmp:
        if args.model:
            from strseq_tasks.serve.loading import resolve_model

            folder = Path(resolve_model(args.model)[0])
        else:
            from strseq_tasks.learn.build import train_bundle
            from strseq_tasks.learn.training import TrainConfig

            print("training a names model on 200 pairs ...", flush=True)
            folder = Path(train_bundle(train, Path(tmp) / "model", TrainConfig(seed=0)).path)
        normalizer = Normalizer(folder, threads=1)
        plain_us, per_op = profile(folder, step_inputs(normalizer, texts), args.runs)
    total = sum(per_op.values())
    by_type: collections.Counter = collections.Counter()
    for name, us in per_op.items():
        by_type[name.split(" ")[0]] += us
    print(f"decoder step, batch {args.batch} x {args.length} characters, one thread: {plain_us:,.0f} us per step "
          f"without the profiler; {len(per_op)} operations, {total:,.0f} us with it\n")
    print("| operation | us per step (profiled) | share |\n|---|---:|---:|")
    for name, us in sorted(per_op.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"| {name} | {us:,.1f} | {us / total:.1%} |")
    print("\n| operation type | share |\n|---|---:|")
    for kind, us in by_type.most_common():
        print(f"| {kind} | {us / total:.1%} |")


if __name__ == "__main__":
    main()
