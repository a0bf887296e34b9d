"""One source for every parameter: the job records, the commands' options and TrainConfig take
their names, defaults, bounds and help from ``strseq_tasks.params``, and nothing restates them."""

from __future__ import annotations

import pytest
import typer
from pydantic import ValidationError

from strseq_tasks import params as P
from strseq_tasks.cli import app
from strseq_tasks.cli.common import option_error
from strseq_tasks.jobs.clean_params import CleanParams
from strseq_tasks.jobs.retrain import Gates, RetrainParams
from strseq_tasks.learn.training import TrainConfig

COMMANDS = typer.main.get_command(app).commands
CLI_ONLY = {"quiet"}  # options that are not a field of the job's record


def _bounds(field) -> dict:
    found = {}
    for item in field.metadata:
        for name in ("ge", "gt", "le", "lt"):
            if getattr(item, name, None) is not None:
                found[name] = getattr(item, name)
    return found


@pytest.mark.parametrize("record, specs", [(RetrainParams, P.RETRAIN), (CleanParams, P.CLEAN), (Gates, P.GATES)])
def test_every_record_field_is_its_spec(record, specs):
    fields = {k: v for k, v in record.model_fields.items() if k != "gates"}
    assert set(fields) == set(specs), "a field without a spec in params.py, or a spec without a field"
    for name, field in fields.items():
        spec = specs[name]
        assert field.description == spec.help, name
        if spec.default is ...:
            assert field.is_required(), name
        elif field.default_factory is None:
            assert field.default == spec.default, name
        want = {k: getattr(spec, k) for k in ("ge", "gt", "le", "lt") if getattr(spec, k) is not None}
        assert _bounds(field) == want, name


@pytest.mark.parametrize("command, specs", [("retrain", {**P.RETRAIN, **P.GATES}), ("clean", P.CLEAN)])
def test_every_option_is_a_field_under_the_same_name(command, specs):
    """Each option of `strseq retrain` / `strseq clean` is its record's field: same spelling (or the
    spec's), same default, same help; and every field a user may set has its option."""
    options = {p.name: p for p in COMMANDS[command].params if p.name not in CLI_ONLY}
    by_field = {("promote" if name == "no_promote" else name): p for name, p in options.items()}
    settable = {k for k in specs if k != "model_sizes"}  # a dict: the flow's parameters only
    assert set(by_field) == settable
    for name, param in by_field.items():
        spec = specs[name]
        assert param.help == spec.help, name
        assert [*param.opts, *param.secondary_opts] == list(spec.flags or [spec.flag(name)]), name
        if name == "promote":
            assert param.default is False  # --no-promote off: promote
        elif spec.default is not ...:
            assert param.default == spec.default, name


def test_train_and_trainconfig_share_the_defaults():
    options = {p.name: p for p in COMMANDS["train"].params}
    config = TrainConfig()
    for name, spec in [("seed", P.SEED), ("max_epochs", P.MAX_EPOCHS), ("threads", P.TRAIN_THREADS),
                       ("precision", P.TRAIN_PRECISION), ("int8_max_changed", P.INT8_MAX_CHANGED)]:
        assert getattr(config, name) == spec.default, name
        assert options[name].default == spec.default, name
        assert options[name].help == spec.help, name
    assert options["max_len"].default == P.MAX_LEN.default == RetrainParams.model_fields["max_len"].default
    assert options["max_epochs"].opts == ["--max-epochs"]  # --epochs: a hidden alias (cli/vocabulary.py)


@pytest.mark.parametrize("record, specs, given, option", [
    (RetrainParams, P.RETRAIN, {"max_epochs": 0}, "--max-epochs"),
    (RetrainParams, P.RETRAIN, {"gates": {"max_harm": 2}}, "--max-harm"),
    (RetrainParams, P.RETRAIN, {"heldout_fraction": 0.7}, "--heldout-fraction"),
    (CleanParams, P.CLEAN, {"db_schema": 3}, "--schema"),
    (CleanParams, P.CLEAN, {"threshold": 1.5}, "--threshold"),
])
def test_a_records_error_names_the_option_a_user_typed(record, specs, given, option):
    base = ({"pairs": "p.csv", "name": "m"} if record is RetrainParams
            else {"db": "sqlite://", "table": "t", "key": "id", "column": "c", "model": "m"})
    with pytest.raises(ValidationError) as caught:
        record(**base, **given)
    assert option_error(caught.value.errors()[0], specs).startswith(f"{option}: ")
