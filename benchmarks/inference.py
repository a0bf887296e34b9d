"""Inference speed of one model: torch eager against onnxruntime fp32 and int8, batch by batch.

    .venv/bin/python benchmarks/inference.py                         # names model trained on 200 pairs
    .venv/bin/python benchmarks/inference.py --model models/names@production --batches 1 32 256

Every engine decodes the same inputs through the shared decoder (``transduce``: greedy, the
identity check, known values), on one thread, at each batch size; runs are interleaved (batch
by batch, engine by engine) and medians are reported. Also measured in the same run:

- FLOPs per row, counted call by call on a real run (``model_cost.model_work``), and
  onnxruntime's one-thread fp32 GEMM peak: each engine's fraction of that peak;
- the time to load a bundle into onnxruntime sessions (median of 5), and the peak memory of a
  fresh process that loads the bundle and normalizes the rows at batch 256 (torch-free);
- int8: the bundle's own int8 graphs (``strseq_tasks.learn.int8``: static quantization, written
  and gated at training), or, when its gate refused them (or it was trained fp32), the same
  quantization done here, calibrated on the training pairs (on the inputs with ``--model``), so
  their speed is still measured (``int8_served`` says which); how many predictions they change
  against fp32, exact match of both on the task's test pairs, and how many int8 outputs change
  between batch 1 and batch 32 (fixed activation ranges: a row's output must not depend on its
  batch).

Prints a markdown table; writes benchmarks/results/inference.json (``rows_per_s``: engine ->
batch -> rows/s, ``ort_over_torch``: batch -> ratio, ``peak_gflops``, ``flop_fraction``:
engine -> batch -> share of the peak, and the rest).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.model_cost import gemm_peak, model_work  # noqa: E402
from benchmarks.tasks import TASKS, benchmark_model  # noqa: E402
from strseq_tasks.serve.bundle import GRAPH_FILES, MANIFEST, read_manifest  # noqa: E402
from strseq_tasks.serve.runtime import Normalizer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
ENGINES = ("torch", "ort-fp32", "ort-int8")


def torch_predict(bundle: Path):
    import torch
    from safetensors.torch import load_model

    from strseq_tasks.core.vocab import CharVocab
    from strseq_tasks.learn.decoding_choices import predict_torch
    from strseq_tasks.learn.model import ModelConfig, Seq2Seq

    torch.set_num_threads(1)
    manifest = read_manifest(bundle)
    vocab = CharVocab.from_json((bundle / "vocab.json").read_text(encoding="utf-8"))
    model = Seq2Seq(vocab, ModelConfig(**manifest["model_config"]))
    load_model(model, str(bundle / "weights.safetensors"))
    model.eval()
    reference = Normalizer(bundle, threads=1, precision="fp32")  # the decoding settings the bundle was trained with

    def predict(texts: list[str], batch_size: int) -> list[str]:
        with torch.inference_mode():
            outputs, _, _ = predict_torch(model, vocab, texts, batch_size=batch_size,
                                          identity_margin=reference.identity_margin, known=reference.known or None,
                                          known_prior=reference.known_prior)
        return outputs

    return predict


def ort_predict(bundle: Path, precision: str):
    normalizer = Normalizer(bundle, threads=1, precision=precision)
    return lambda texts, batch_size: [p.text for p in normalizer.normalize(texts, batch_size=batch_size)]


def unserved_int8_predict(bundle: Path, folder: Path, calibration_texts: list[str]):
    """int8 graphs for a bundle that does not serve them (its gate refused them, or it was trained
    fp32): quantized into ``folder`` as training does, decoded the way ``Normalizer`` decodes."""
    import shutil

    from strseq_tasks.core.transduce import transduce
    from strseq_tasks.learn.int8 import quantize_graphs
    from strseq_tasks.serve.runtime import OrtStepper, open_sessions

    reference = Normalizer(bundle, threads=1, precision="fp32")
    decoding = {"identity_margin": reference.identity_margin, "known": reference.known or None,
                "known_prior": reference.known_prior}
    shutil.copytree(bundle, folder)
    quantize_graphs(folder, calibration_texts, reference.max_len, **decoding)
    encoder, decoder = open_sessions(folder, 1, "int8")

    def predict(texts: list[str], batch_size: int) -> list[str]:
        return transduce(texts, reference.vocab, lambda source: OrtStepper(encoder, decoder, source),
                         reference.max_len, batch_size=batch_size, **decoding)[0]

    return predict


def load_seconds(bundle: Path, precision: str, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        Normalizer(bundle, threads=1, precision=precision)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def peak_memory_mb(bundle: Path, precision: str, texts: list[str]) -> float:
    """Peak RSS (MB) of a fresh, torch-free process that loads ``bundle`` and normalizes ``texts``
    at batch 256 (Linux)."""
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the (large) parent
    # across fork and exec, while VmHWM belongs to the new process's own memory
    script = ("import json, sys; sys.modules['torch'] = None\n"
              "from strseq_tasks.serve.runtime import Normalizer\n"
              "texts = json.loads(sys.stdin.read())\n"
              "Normalizer(sys.argv[1], threads=1, precision=sys.argv[2]).normalize(texts, batch_size=256)\n"
              "hwm = [line for line in open('/proc/self/status') if line.startswith('VmHWM')][0]\n"
              "print(int(hwm.split()[1]) / 1024)")
    done = subprocess.run([sys.executable, "-c", script, str(bundle), precision], input=json.dumps(texts), text=True,
                          capture_output=True, check=True, cwd=Path(__file__).resolve().parents[1])
    return round(float(done.stdout.strip().splitlines()[-1]), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="names", choices=sorted(TASKS))
    parser.add_argument("--pairs", type=int, default=200, help="training pairs (when no --model is given)")
    parser.add_argument("--model", default=None, help="model folder or REGISTRY/NAME@alias (default: train one)")
    parser.add_argument("--rows", type=int, default=2000, help="inputs per timing (batch 1: at most 300)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32, 256, 1024])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "inference.json")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    train, test = TASKS[args.task](args.pairs, max(args.rows, 1000), 0)
    texts = [a for a, _ in test][: args.rows]
    with tempfile.TemporaryDirectory(prefix="strseq-inference-bench-") as tmp:
        bundle = benchmark_model(args.model, train, Path(tmp), f"a {args.task} model on {args.pairs} pairs")
        int8_info = (read_manifest(bundle).get("precision") or {})
        int8_folder = bundle
        if int8_info.get("int8"):
            int8 = ort_predict(bundle, "int8")
        else:
            refused = (int8_info.get("int8_refused") or {}).get("reason") or "trained fp32"
            print(f"the model does not serve int8 ({refused}); measuring int8 graphs quantized here", flush=True)
            int8_folder = Path(tmp) / "int8"
            calibration = [t for pair in train for t in pair] if not args.model else texts
            int8 = unserved_int8_predict(bundle, int8_folder, list(dict.fromkeys(calibration)))
        engines = {"torch": torch_predict(bundle), "ort-fp32": ort_predict(bundle, "fp32"), "ort-int8": int8}
        times: dict[str, dict[int, list[float]]] = {e: {b: [] for b in args.batches} for e in engines}
        for _ in range(args.repeats):
            for batch in args.batches:
                rows = texts[: min(len(texts), 300)] if batch == 1 else texts
                for name, predict in engines.items():
                    started = time.perf_counter()
                    predict(rows, batch)
                    times[name][batch].append((time.perf_counter() - started) / len(rows))
            print(".", end="", flush=True)
        print()
        rates = {e: {b: round(1 / statistics.median(ts), 1) for b, ts in per.items()} for e, per in times.items()}
        work = model_work(Normalizer(bundle, threads=1, precision="fp32"), texts, batch_size=32)
        peak = gemm_peak()
        flops = work["mflop_per_row"] * 1e6
        fraction = {e: {b: round(r * flops / peak, 3) for b, r in per.items()} for e, per in rates.items()}
        fp32, quantized = engines["ort-fp32"](texts, 32), engines["ort-int8"](texts, 32)
        alone = engines["ort-int8"](texts, 1)
        scored = test[: len(texts)]  # the pairs whose inputs are ``texts``
        exact = {name: round(sum(o == t for o, (_, t) in zip(outputs, scored)) / len(scored), 4)
                 for name, outputs in (("ort-fp32", fp32), ("ort-int8", quantized))}
        result = {
            "task": args.task, "rows": len(texts), "repeats": args.repeats, "cpu_count": os.cpu_count(),
            "rows_per_s": rates,
            "ort_over_torch": {b: round(rates["ort-fp32"][b] / rates["torch"][b], 2) for b in args.batches},
            "int8_over_fp32": {b: round(rates["ort-int8"][b] / rates["ort-fp32"][b], 2) for b in args.batches},
            "peak_gflops": round(peak / 1e9, 1), "flop_fraction": fraction, "model_work": work,
            "int8_changed_predictions": sum(a != b for a, b in zip(fp32, quantized)),
            "int8_batch_1_vs_32_changed": sum(a != b for a, b in zip(alone, quantized)),
            "int8_served": bool(int8_info.get("int8")),
            "int8_gate": (int8_info.get("int8") or {}).get("gate") or int8_info.get("int8_refused"),
            "exact_match": exact,
            "load_seconds": {f"ort-{p}": round(load_seconds(bundle, p), 3) for p in ("fp32", "int8")
                             if p == "fp32" or int8_folder == bundle},
            "peak_memory_mb": {f"ort-{p}": peak_memory_mb(bundle, p, texts) for p in ("fp32", "int8")
                               if p == "fp32" or int8_folder == bundle},
            "graphs_mb": {f"ort-{p}": round(sum((folder / f).stat().st_size for f in GRAPH_FILES[p]) / 2**20, 2)
                          for p, folder in (("fp32", bundle), ("int8", int8_folder))},
            "bundle_mb": round(sum(p.stat().st_size for p in bundle.iterdir() if p.name != MANIFEST) / 2**20, 2),
            "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        }
    print(f"\n{work['mflop_per_row']} MFLOP per row; onnxruntime fp32 GEMM peak on one thread "
          f"{result['peak_gflops']} GFLOP/s\n")
    print("| engine | " + " | ".join(f"batch {b}: rows/s (share of peak)" for b in args.batches) + " |")
    print("|---|" + "---:|" * len(args.batches))
    for name in engines:
        print(f"| {name} | " + " | ".join(f"{rates[name][b]:,.0f} ({fraction[name][b]:.0%})" for b in args.batches)
              + " |")
    print(f"\nort-fp32 / torch: {result['ort_over_torch']}; int8 / fp32: {result['int8_over_fp32']}")
    print(f"int8 changed {result['int8_changed_predictions']} of {len(texts)} predictions; exact match on "
          f"{len(scored)} test pairs: {exact}; int8 outputs changed between batch 1 and 32: "
          f"{result['int8_batch_1_vs_32_changed']}")
    print(f"load: {result['load_seconds']} s; peak memory: {result['peak_memory_mb']} MB; "
          f"graphs: {result['graphs_mb']} MB; whole bundle {result['bundle_mb']} MB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
