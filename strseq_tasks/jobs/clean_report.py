"""What a cleaning run reports: the model it used (``ModelIdentity``), its counts and sample
(``RunReport``), and the run's markdown report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from strseq_tasks.core.shapes import Familiar
from strseq_tasks.jobs.clean_params import CleanParams


@dataclass(frozen=True)
class ModelIdentity:
    name: str
    version: int | None
    sha: str  # the bundle's content identity (serve/identity.py): "the same model" for the processed markers
    # what the model learned from (its bundle's shapes, characters and decoding.words): a review row
    # records the words of its value the pairs never showed (``WordTreatment.new_words``) and what set
    # it apart from them (``clean_plan.signals``); None: not known
    familiar: Familiar | None = None


@dataclass
class RunReport:
    run_id: str
    dry_run: bool
    rows_read: int = 0
    changed: int = 0
    unchanged: int = 0
    review: int = 0
    skipped: int = 0  # NULL or empty values
    already_done: int = 0  # handled by this model version in an earlier run
    conflicts: int = 0  # changed by someone else between read and write: left alone
    decided: int = 0  # a person decided the row, or typed its value into the column: left alone
    by_program: int = 0  # rows a verified layout program answered, not the model itself (serve/runtime.py)
    sample: list[dict] = field(default_factory=list)  # some changes, with character diffs
    workers: list[str] = field(default_factory=list)  # host:pid of each process that cleaned a partition
    # the layout programs of the process(es) that cleaned (ProgramBook.summary()["shown"]): what answered rows
    programs: list[dict] = field(default_factory=list)

    def counts(self) -> dict:
        return {k: v for k, v in asdict(self).items() if isinstance(v, int) and not isinstance(v, bool)}

    def add(self, other: RunReport, sample_size: int = 20) -> None:
        """Count in a range of the same run (a partition)."""
        for key, value in other.counts().items():
            setattr(self, key, getattr(self, key) + value)
        self.sample.extend(other.sample[:max(0, sample_size - len(self.sample))])
        self.workers.extend(w for w in other.workers if w not in self.workers)
        self.programs.extend(other.programs)


def _md(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", "\\n")


def clean_report_markdown(params: CleanParams, model: ModelIdentity, report: RunReport) -> str:
    """What a person reads after a run (a Prefect artifact)."""
    where = f"{params.table}.{params.column}" + ("" if params.in_place else f" -> {params.target_column()}")
    title = "Dry run (nothing written)" if report.dry_run else f"Run `{report.run_id}`"
    version = f" version {model.version}" if model.version is not None else ""
    lines = [f"## {title}: {where}", "", f"Model {model.name}{version}; confidence threshold {params.threshold}.",
             "", "| rows | count |", "|---|---:|"]
    lines += [f"| {k.replace('_', ' ')} | {v} |" for k, v in report.counts().items()]
    if report.sample:
        lines += ["", "### Sample of changes" + (" that would be made" if report.dry_run else ""), "",
                  "| key | before | after | confidence | diff |", "|---|---|---|---:|---|"]
        lines += [f"| {_md(s['key'])} | {_md(s['before'])} | {_md(s['after'])} | {s['confidence']} | "
                  f"`{_md(s['diff'])}` |" for s in report.sample]
    if report.programs:
        lines += ["", f"### Layout programs: {report.by_program} of the rows read were answered by one", "",
                  "A program is read off the model's own outputs on rows of one layout (shape) and used only after it "
                  "reproduced every one of 24 more (`$3` is the input's third token); the counts are distinct values "
                  "it answered since the model was loaded.", "",
                  "| shape | program | values |", "|---|---|---:|"]
        shown: dict[tuple, int] = {}  # partitions on threads share one model, and so its programs
        for p in report.programs:
            shown[p["shape"], p["program"]] = max(shown.get((p["shape"], p["program"]), 0), p["covered"])
        lines += [f"| `{_md(shape)}` | `{_md(program)}` | {covered} |"
                  for (shape, program), covered in sorted(shown.items(), key=lambda kv: -kv[1])[:10]]
    if report.review:
        lines += ["", f"{report.review} row(s) wait in `strseq_review` (`strseq review list --db ...`)."]
    if not report.dry_run and report.changed:
        lines += ["", f"Undo with `strseq revert --db ... --run-id {report.run_id}`."]
    return "\n".join(lines)
