"""Prediction never needs torch: a CPU server installs strseq without it.

A fresh interpreter blocks torch (``sys.modules["torch"] = None`` makes every ``import torch``
fail) before importing strseq, then loads a bundle, normalizes strings and runs the CLI's
``predict`` and ``evaluate`` through ``main()``, as the ``strseq`` script does.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import builtins, json, sys
    sys.modules["torch"] = None  # any `import torch` now raises ImportError
    attempts = []
    _import = builtins.__import__

    def spy(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            attempts.append(name)
        return _import(name, *args, **kwargs)

    builtins.__import__ = spy

    import strseq_tasks.serve.runtime
    import strseq_tasks.cli
    from strseq_tasks.serve.runtime import Normalizer

    bundle, inputs, output, pairs, metrics = sys.argv[1:6]
    normalizer = Normalizer(bundle)
    predictions = normalizer.normalize(["SMITH, John", "", "Zoë 李"], beam=2)
    codes = []
    for argv in (["predict", "--model", bundle, "--input", inputs, "--out", output, "--quiet"],
                 ["evaluate", "--model", bundle, "--pairs", pairs, "--json-out", metrics, "--quiet"]):
        sys.argv = ["strseq", *argv]
        try:
            strseq_tasks.cli.main()
        except SystemExit as exc:
            codes.append(exc.code)
        else:
            codes.append(0)
    print(json.dumps({
        "predictions": [[p.text, p.confidence, p.status] for p in predictions],
        "precision": normalizer.precision,
        "exit_codes": codes,
        "torch_entry": repr(sys.modules.get("torch", "absent")),
        "torch_modules": sorted(m for m in sys.modules if m.startswith("torch")),
        "attempts": attempts,
        "strseq_modules": sorted(m for m in sys.modules if m.startswith("strseq_tasks")),
    }))
    """
)

def test_runtime_and_cli_predict_without_torch(tiny_bundle, tmp_path):
    inputs = tmp_path / "inputs.csv"
    inputs.write_text('input,id\n"SMITH, John",1\n,2\nmary o\'neil,3\n', encoding="utf-8")
    pairs = tmp_path / "pairs.csv"
    pairs.write_text('input,target\n"SMITH, John",John Smith\nmary o\'neil,Mary O\'Neil\n', encoding="utf-8")
    output, metrics = tmp_path / "out.csv", tmp_path / "metrics.json"

    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tiny_bundle), str(inputs), str(output), str(pairs),
                           str(metrics)], capture_output=True, text=True, encoding="utf-8", timeout=300)

    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["exit_codes"] == [0, 0], proc.stderr
    assert [status for *_, status in report["predictions"]] == ["ok", "empty", "ok"]
    assert report["precision"] == "int8"  # the int8 graphs the bundle serves by default need no torch either
    assert output.read_text(encoding="utf-8").splitlines()[0] == "input,id,prediction,confidence,status"
    assert json.loads(metrics.read_text(encoding="utf-8"))["metrics"]["rows"] == 2
    # torch was never imported, not even attempted (an attempt would be a crash on a CPU server)
    assert report["torch_entry"] == "None"
    assert report["torch_modules"] == ["torch"]
    assert report["attempts"] == []
    # nor any module of the training side (strseq_tasks.learn: torch, ONNX export, int8 quantization)
    assert not [m for m in report["strseq_modules"] if m.startswith("strseq_tasks.learn")]
