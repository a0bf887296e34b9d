"""The committed GX project gx/: one copy of each suite, and every reference in it resolves (no drift)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from strseq_tasks.data.gx_project import project_dir, suites_dir, template_dir

ROOT = Path(__file__).resolve().parents[2]
GX = ROOT / "gx"
SUITES = ("records", "string_pairs")


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_projects_suites_are_the_reviewed_files_themselves():
    """One copy: gx/expectations is a link to the reviewed expectations/, and the package reaches both."""
    assert (GX / "expectations").is_symlink() and (GX / "expectations").resolve() == (ROOT / "expectations")
    assert template_dir().resolve() == GX and suites_dir().resolve() == ROOT / "expectations"
    assert sorted(p.stem for p in (GX / "expectations").glob("*.json")) == list(SUITES)


@pytest.mark.parametrize("name", SUITES)
def test_each_suite_has_a_validation_definition_and_a_checkpoint_whose_ids_resolve(name):
    config = yaml.safe_load((GX / "great_expectations.yml").read_text(encoding="utf-8"))
    suite = _json(GX / "expectations" / f"{name}.json")
    definition = _json(GX / "validation_definitions" / f"{name}.json")
    checkpoint = _json(GX / "checkpoints" / f"{name}.json")
    assert definition["suite"] == {"name": suite["name"], "id": suite["id"]}
    data = definition["data"]
    source = config["fluent_datasources"][data["datasource"]["name"]]
    asset = source["assets"][data["asset"]["name"]]
    batch = asset["batch_definitions"][data["batch_definition"]["name"]]
    ids = [data[k]["id"] for k in ("datasource", "asset", "batch_definition")]
    assert [source["id"], asset["id"], batch["id"]] == ids
    assert checkpoint["validation_definitions"] == [{"name": definition["name"], "id": definition["id"]}]
    assert [a["type"] for a in checkpoint["actions"]] == ["update_data_docs"]


def test_results_and_data_docs_are_stored_under_uncommitted_which_git_ignores():
    config = yaml.safe_load((GX / "great_expectations.yml").read_text(encoding="utf-8"))
    assert config["stores"]["validation_results_store"]["store_backend"]["base_directory"].startswith("uncommitted/")
    assert config["data_docs_sites"]["local_site"]["store_backend"]["base_directory"].startswith("uncommitted/")
    assert (GX / ".gitignore").read_text().split() == ["uncommitted/"]
    assert "/gx/uncommitted/" in (ROOT / ".gitignore").read_text().split()


@pytest.mark.parametrize("name", SUITES)
def test_every_expectation_says_why_in_gx_notes_and_keeps_its_severity(name):
    suite = _json(ROOT / "expectations" / f"{name}.json")
    assert suite["notes"]
    for expectation in suite["expectations"]:
        assert isinstance(expectation["notes"], str) and expectation["notes"], expectation
        assert "why" not in expectation.get("meta", {})
        assert expectation.get("severity", "critical") in ("critical", "warning")


def test_the_records_source_stores_no_url_and_reads_the_view_strseq_creates():
    from strseq_tasks.data.validation import QUERY

    config = yaml.safe_load((GX / "great_expectations.yml").read_text(encoding="utf-8"))
    source = config["fluent_datasources"]["records"]
    assert source["connection_string"] == "sqlite://"  # a dialect placeholder; strseq connects at run time
    assert source["assets"]["column"]["query"] == QUERY


def test_the_project_folder_is_chosen_by_argument_then_environment_then_working_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("STRSEQ_GX_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert project_dir() == tmp_path / "gx"
    monkeypatch.setenv("STRSEQ_GX_DIR", str(tmp_path / "elsewhere"))
    assert project_dir() == tmp_path / "elsewhere"
    assert project_dir(tmp_path / "given") == tmp_path / "given"
    monkeypatch.setenv("STRSEQ_GX_DIR", "ephemeral")
    assert project_dir() is None
