"""A value up to a model's max_len never costs gigabytes: long rows are decoded in batches small
enough that their copy maps stay within ``runtime.BATCH_BYTES``, and max_len itself has a ceiling
(``bundle_schema.MAX_LEN_CEILING``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

from fixtures.data import lowercase_pairs

from strseq_tasks.core.vocab import CharVocab
from strseq_tasks.serve.bundle_schema import MAX_LEN_CEILING
from strseq_tasks.serve.runtime import BATCH_BYTES, batch_groups, copy_map_bytes

from .cli_harness import ONE_THREAD
from .test_bundle_sense import reseal

UNSEEN_SCRIPT = [("".join(chr(0x4E00 + (r * 7919 + i * 31) % 20000) for i in range(MAX_LEN_CEILING)))
                 for r in range(64)]


def test_batches_of_long_rows_stay_within_the_budget():
    vocab = CharVocab.build(t for pair in lowercase_pairs() for t in pair)
    names = [a for a, _ in lowercase_pairs()]
    groups = batch_groups(names + UNSEEN_SCRIPT, vocab, 64)
    assert groups[64] == names  # short rows keep the batch size asked for
    assert sorted(t for group in groups.values() for t in group) == sorted(names + UNSEEN_SCRIPT)
    for size, group in groups.items():
        assert size == 64 or size * max(copy_map_bytes(t, vocab) for t in group) <= BATCH_BYTES
    assert max(groups) == 64 and min(groups) < 8
    many = batch_groups(UNSEEN_SCRIPT, vocab, 64, copies=17)  # 16 known values scored per row
    assert list(many) == [1]


def test_a_batch_of_rows_at_the_ceiling_costs_megabytes_not_gigabytes(tiny_bundle, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_bundle, folder)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["model_config"]["max_len"] = MAX_LEN_CEILING
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    reseal(folder)
    (tmp_path / "texts.json").write_text(json.dumps(UNSEEN_SCRIPT), encoding="utf-8")
    script = textwrap.dedent(f"""
        import json, resource
        from strseq_tasks.serve.runtime import Normalizer
        normalizer = Normalizer({str(folder)!r})
        texts = json.load(open({str(tmp_path / "texts.json")!r}, encoding="utf-8"))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        predictions = normalizer.normalize(texts)
        assert {{p.status for p in predictions}} == {{"ok"}}
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                          env={**ONE_THREAD, "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    grown_mb = int(proc.stdout.split()[-1])
    assert grown_mb < 400, f"64 rows of {MAX_LEN_CEILING} characters took {grown_mb} MB more"  # 1,160 MB before
