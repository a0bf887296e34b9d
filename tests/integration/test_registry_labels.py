"""`strseq models tag`, `describe` and `show` on a real registry folder: labels set at publish time
and afterwards, each version's lineage, a registry written the old way, and bad input refused
with one error line."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from campaign import sampled  # tests/ is on sys.path

from integration.cli_harness import hidden_entries, run_strseq, snapshot, write_csv  # tests/ is on sys.path
from strseq_tasks import __version__
from strseq_tasks.jobs.retrain import Gates
from strseq_tasks.serve.gates import decide
from strseq_tasks.serve.refs import PRODUCTION
from strseq_tasks.serve.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-pw"


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-1000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return errors[0]


def test_tags_and_description_set_at_publish_and_afterwards_show_in_list_and_show(tmp_path, tiny_bundle):
    registry = Registry(tmp_path / "registry")
    assert registry.publish("names", tiny_bundle, tags={"owner": "data-team"}, description="first cut") == 1
    registry.publish("names", tiny_bundle)
    registry.set_alias("names", PRODUCTION, 2, "second")
    ref = f"{registry.url}/names"
    tagged = run_strseq("models", "tag", f"{ref}@2", "ticket=CRM-12", "owner=ml")
    assert tagged.returncode == 0, tagged.stderr
    assert "names version 2 tags: owner=ml, ticket=CRM-12" in tagged.stdout
    described = run_strseq("models", "describe", f"{ref}@production", "retrained after the March import\nby hand")
    assert described.returncode == 0, described.stderr
    removed = run_strseq("models", "tag", f"{ref}@latest", "--remove", "ticket")
    assert removed.returncode == 0 and "tags: owner=ml" in removed.stdout, removed.stderr
    assert registry.labels("names", 1).tags == {"owner": "data-team"}
    labels = registry.labels("names", 2)
    assert labels.tags == {"owner": "ml"} and labels.description == "retrained after the March import\nby hand"
    assert labels.updated and hidden_entries(tmp_path / "registry" / "names" / "versions" / "2") == []
    listed = run_strseq("models", "list", "--registry", registry.url, "--name", "names").stdout.splitlines()
    assert listed[0].split()[-1] == "tags"
    assert listed[1].split()[0] == "1" and listed[1].endswith("owner=data-team")
    assert listed[2].strip() == "first cut"  # the description under its version
    assert listed[3].split()[0] == "2" and "production" in listed[3] and listed[3].endswith("owner=ml")
    assert listed[4].strip() == "retrained after the March import..."  # its first line
    shown = run_strseq("models", "show", f"{ref}@2")
    assert shown.returncode == 0, shown.stderr
    assert "description: retrained after the March import" in shown.stdout and "tags: owner=ml" in shown.stdout
    record = json.loads(run_strseq("models", "show", f"{ref}@production", "--json").stdout)
    assert record["version"] == 2 and record["aliases"] == [PRODUCTION] and record["tags"] == {"owner": "ml"}
    assert record["description"].startswith("retrained") and record["lineage"]["data"]["fingerprint"]
    # the older spelling of show still works, on the same version
    old = json.loads(run_strseq("models", "show", "--registry", registry.url, "--name", "names", "--json").stdout)
    assert old["version"] == 2 and old["tags"] == record["tags"]


def _code_version() -> str:
    if not (ROOT / ".git").exists():
        return f"strseq=={__version__}"
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    return f"git:{commit.stdout.strip()}"


def test_each_version_records_its_lineage_without_a_password(tmp_path, tiny_bundle):
    registry = Registry(tmp_path / "registry")
    source = f"postgresql+psycopg://etl:{SECRET}@db.example/crm (table name_fixes)"
    version = registry.publish("names", tiny_bundle, {"data": {"source": source, "rows": 80}})
    lineage = registry.publication("names", version)["lineage"]
    manifest = registry.manifest("names", version)
    assert lineage["data"] == {"fingerprint": manifest["data"]["fingerprint"], "pairs": manifest["data"]["pairs"],
                               "source": "postgresql+psycopg://etl:***@db.example/crm (table name_fixes)"}
    assert lineage["base_model"] is None  # the tiny bundle trains from random weights
    assert lineage["flow_run"] is None  # published outside a Prefect flow run
    assert lineage["user"] and lineage["host"] and lineage["strseq_version"] == __version__
    assert lineage["code_version"].removesuffix("-dirty") == _code_version()
    assert lineage["published"] == registry.publication("names", version)["published"]
    record = (tmp_path / "registry" / "names" / "versions" / str(version) / "publication.json").read_text()
    assert SECRET not in record and str(tiny_bundle) not in record  # not the folder it was copied from
    shown = run_strseq("models", "show", f"{registry.url}/names@{version}")
    assert "data: 80 pairs from postgresql+psycopg://etl:***@db.example/crm" in shown.stdout
    assert f"strseq {__version__} ({lineage['code_version']})" in shown.stdout and SECRET not in shown.stdout


def _old_version(root: Path, bundle: Path, version: int, publication: dict) -> None:
    """A version as strseq wrote it before labels, lineage and gate records."""
    folder = root / "names" / "versions" / str(version)
    shutil.copytree(bundle, folder)
    (folder / "publication.json").write_text(json.dumps({"published": "2024-05-01T03:00:00+00:00", "name": "names",
                                                         "source": f"/tmp/strseq-retrain-4242-x{version}/names",
                                                         **publication, "publish_id": None}))


def test_a_registry_written_the_old_way_still_lists_shows_labels_promotes_and_prunes(tmp_path, tiny_bundle):
    root = tmp_path / "registry"
    passed = {"decision": {"promote": True, "reasons": ["pass: exact match 0.950 >= minimum 0.500"]}}
    failed = {"decision": {"promote": False, "reasons": ["pass: exact match 0.950 >= minimum 0.500",
                                                         "FAIL: harm 0.040 > maximum 0.020"]}}
    for version, record in ((1, passed), (2, passed), (3, failed)):
        _old_version(root, tiny_bundle, version, record)
    aliases = root / "names" / "aliases"
    aliases.mkdir()
    (aliases / "production.json").write_text(json.dumps({"version": 2, "history": [1], "updated": "", "reason": ""}))
    ref = f"{root}/names"
    listed = run_strseq("models", "list", "--registry", root, "--name", "names")
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[5] for line in listed.stdout.splitlines()[1:]] == ["passed", "passed", "FAILED"]
    shown = run_strseq("models", "show", f"{ref}@production")
    assert shown.returncode == 0 and "lineage: not recorded" in shown.stdout, shown.stderr
    assert json.loads(run_strseq("models", "show", f"{ref}@1", "--json").stdout)["lineage"] is None
    refused = _one_error_line(run_strseq("models", "promote", "--registry", root, "--name", "names"))
    assert "version 3 failed its promotion gates" in refused and "harm 0.040 > maximum 0.020" in refused
    assert run_strseq("models", "tag", f"{ref}@1", "owner=old").returncode == 0
    pruned = run_strseq("models", "prune", ref, "--keep", "1")
    assert pruned.returncode == 0, pruned.stderr
    assert Registry(root).versions("names") == [1, 2, 3]  # 3 newest, 2 production, 1 what it rolls back to
    inputs = write_csv(tmp_path / "in.csv", ["input"], [["ANN LEE"]])
    predicted = run_strseq("predict", "--model", f"{ref}@production", "--input", inputs, "--out", tmp_path / "o.csv")
    assert predicted.returncode == 0, predicted.stderr


def test_promote_reads_the_gates_a_retrain_recorded(tmp_path, tiny_bundle):
    registry = Registry(tmp_path / "registry")
    gates = Gates(min_exact_match=0.5, max_harm=0.02, max_regression=0.005)
    good = decide({"exact_match": 0.95, "harm": 0.0, "clean_rows": 40}, None, gates)
    harmful = decide({"exact_match": 0.96, "harm": 0.05, "clean_rows": 40}, {"exact_match": 0.95}, gates)
    registry.publish("names", tiny_bundle, {"decision": good.record()})
    registry.publish("names", tiny_bundle, {"decision": harmful.record()})
    registry.set_alias("names", PRODUCTION, 1, "first")
    reg = ["--registry", registry.url, "--name", "names"]
    error = _one_error_line(run_strseq("models", "promote", *reg, "--model-version", "2"))
    assert "harm 0.050 (2 of 40 clean held-out values changed) > maximum 0.020" in error
    forced = run_strseq("models", "promote", *reg, "--model-version", "2", "--force")
    assert forced.returncode == 0 and registry.resolve("names", PRODUCTION) == 2, forced.stderr
    gate = {g["name"]: g for g in json.loads(run_strseq("models", "show", f"{registry.url}/names@2",
                                                          "--json").stdout)["gates"]}["max_harm"]
    assert gate == {"name": "max_harm", "passed": False, "measured": 0.05, "threshold": 0.02,
                    "detail": "harm 0.050 (2 of 40 clean held-out values changed) > maximum 0.020"}


BAD_INPUT = {
    "unknown version": (["models", "tag", "{ref}@9", "owner=x"], "no version 9"),
    "unknown alias": (["models", "describe", "{ref}@staging", "text"], "no alias 'staging'"),
    "unknown model": (["models", "show", "{root}/nope@1"], "no model 'nope'"),
    "no version in the reference": (["models", "tag", "{ref}", "owner=x"], "REGISTRY/NAME@VERSION"),
    "a tag without a value": (["models", "tag", "{ref}@1", "owner"], "not KEY=VALUE"),
    "a bad tag key": (["models", "tag", "{ref}@1", "1x=y"], "invalid tag key"),
    "a tag value with a control character": (["models", "tag", "{ref}@1", "owner=a\x1bb"], "U+001B"),
    "a tag value too long": (["models", "tag", "{ref}@1", "note=" + "x" * 300], "at most 256"),
    "no tag at all": (["models", "tag", "{ref}@1"], "KEY=VALUE"),
    "removing a tag it lacks": (["models", "tag", "{ref}@1", "--remove", "ticket"], "no tag 'ticket'"),
    "a description too long": (["models", "describe", "{ref}@1", "x" * 2001], "at most 2000"),
    "show given a reference and --name": (["models", "show", "{ref}@1", "--name", "names"], "one of the two"),
    "prune --keep 0": (["models", "prune", "{ref}", "--keep", "0"], "keep at least 1"),
    "prune of a version": (["models", "prune", "{ref}@1", "--keep", "1"], "without @VERSION"),
    "prune of an unknown model": (["models", "prune", "{root}/nope", "--keep", "1"], "no model 'nope'"),
}


@pytest.mark.parametrize("case", sampled(BAD_INPUT, "labels-bad-input", share=3))
def test_bad_input_is_one_error_line_and_changes_nothing(tmp_path, tiny_bundle, case):
    registry = Registry(tmp_path / "registry")
    registry.publish("names", tiny_bundle, tags={"owner": "data"})
    registry.publish("names", tiny_bundle)
    before = _files(tmp_path / "registry")
    argv, message = BAD_INPUT[case]
    root, ref = str(tmp_path / "registry"), f"{tmp_path / 'registry'}/names"
    error = _one_error_line(run_strseq(*[a.format(root=root, ref=ref) for a in argv]))
    assert message in error, error
    assert _files(tmp_path / "registry") == before


def _files(root: Path) -> dict:
    """Every file but lock files (created empty by the first command that locks, and kept)."""
    return {k: v for k, v in snapshot(root).items() if not k.endswith(".lock")}
