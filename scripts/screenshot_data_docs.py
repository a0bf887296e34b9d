"""Two nights of validations in a GX project folder, and screenshots of its Data Docs in headless Chromium.

    .venv/bin/python scripts/screenshot_data_docs.py                 # writes docs/gx-data-docs.png and
                                                                      # docs/gx-data-docs-failed.png
    .venv/bin/python scripts/screenshot_data_docs.py --out /tmp/shots --keep /tmp/gx

GX's Data Docs load Bootstrap, jQuery and bootstrap-table from CDNs. On a machine without
internet, install those npm packages once and pass their folder: the browser is then served
the same files from there (``--assets``)::

    npm install --legacy-peer-deps --prefix /tmp/gx-assets bootstrap@4.3.1 bootstrap-table@1.19.1 \
        jquery@3.7.1 popper.js@1.12.9 @fortawesome/fontawesome-free@6.6.0 bootstrap-datepicker@1.9.0 \
        @forevolve/bootstrap-dark@1.1.0
    .venv/bin/python scripts/screenshot_data_docs.py --assets /tmp/gx-assets

Night 1: the names pairs pass and the cleaning job's column passes; night 2: two pairs give one
input two targets and a target holds a tab, so the retrain would stop there. The validations
run as the jobs run them (``validate_pairs``, ``validate_column`` through the project's
Checkpoints); Chromium (Debian's ``chromium``, driven by Playwright: no browser download) opens
the Data Docs index (every validation, newest first) and the failed night's page.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from strseq_tasks.data.validation import validate_column, validate_pairs  # noqa: E402

PAIRS = [("SMITH, John", "John Smith"), ("mary o'neil", "Mary O'Neil"), ("Dr. Ann Lee", "Ann Lee"),
         ("José  García", "José García"), ("BROWN Zoë", "Zoë Brown"), ("lee, ann", "Ann Lee")]
NIGHT_2 = [("o'neil peter", "Peter O'Neil"), ("o'neil peter", "Peter Oneil"), ("RAY, Bob", "Bob\tRay")]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def frame(pairs) -> pd.DataFrame:
    return pd.DataFrame({"row": range(1, len(pairs) + 1), "input": [a for a, _ in pairs],
                         "target": [b for _, b in pairs]})


def two_nights(folder: Path, work: Path) -> list:
    """Validations as two nights of retrain (model ``names``) and cleaning (``customers.name``) leave them."""
    engine = sa.create_engine(f"sqlite:///{work / 'crm.db'}")
    customers = sa.Table("customers", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                         sa.Column("name", sa.Text))
    customers.create(engine)
    with engine.begin() as conn:
        conn.execute(customers.insert(), [{"id": i, "name": name} for i, (name, _) in enumerate(PAIRS, 1)])
    reports = []
    try:
        for pairs in (PAIRS, PAIRS + NIGHT_2):
            reports.append(validate_pairs(frame(pairs), max_len=64, gx_dir=folder, run_name="names"))
            reports.append(validate_column(engine, customers, customers.c.name, max_len=64, gx_dir=folder))
    finally:
        engine.dispose()
    return reports


# a CDN address of the Data Docs' assets -> its file in the npm packages (node_modules/...)
CDN = [(r"https://(?:unpkg\.com|cdn\.jsdelivr\.net/npm)/(@?[^@]+)@[^/]+/(.*)", r"\1/\2"),
       (r"https://cdnjs\.cloudflare\.com/ajax/libs/font-awesome/[^/]+/(.*)", r"@fortawesome/fontawesome-free/\1"),
       (r"https://cdnjs\.cloudflare\.com/ajax/libs/([^/]+)/[^/]+/(.*)", r"\1/dist/\2"),
       (r"https://(?:maxcdn|stackpath)\.bootstrapcdn\.com/bootstrap/[^/]+/(.*)", r"bootstrap/dist/\1"),
       (r"https://code\.jquery\.com/jquery-[\d.]+\.min\.js", "jquery/dist/jquery.min.js")]


def serve_from(assets: Path):
    """A Playwright route handler: CDN requests answered from ``assets/node_modules``, the rest refused."""
    def handle(route):
        url = route.request.url.split("?")[0]
        for pattern, path in CDN:
            if re.fullmatch(pattern, url):
                local = assets / "node_modules" / re.sub(pattern, path, url)
                if local.is_file():
                    return route.fulfill(path=str(local))
        return route.abort()
    return handle


def screenshot(url: str, out: Path, height: int, assets: Path | None = None, failed_only: bool = False) -> str:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = chromium.new_page(viewport={"width": 1280, "height": height})
            if assets:
                page.route(re.compile(r"^https://"), serve_from(assets))
            page.goto(url)
            page.wait_for_load_state("networkidle")
            if failed_only:  # the page's own filter: the failed expectations and their rows
                page.get_by_text("Failed Only").click()
                page.get_by_text("input", exact=True).last.scroll_into_view_if_needed()
            page.screenshot(path=str(out))
            return page.inner_text("body")
        finally:
            chromium.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="folder for the two PNG files")
    parser.add_argument("--keep", type=Path, help="make the GX project here (an empty or new folder) and keep it")
    parser.add_argument("--assets", type=Path, help="npm packages of the CDN files (offline; see above)")
    args = parser.parse_args(argv)
    if CHROMIUM is None:
        print("error: no chromium on this machine (apt-get install chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="strseq-data-docs-") as tmp:
        folder = args.keep or Path(tmp) / "gx"
        reports = two_nights(folder, Path(tmp))
        failed = next(r for r in reports if not r.success)
        args.out.mkdir(parents=True, exist_ok=True)
        screenshot(reports[-1].stored.index, args.out / "gx-data-docs.png", 640, args.assets)
        screenshot(failed.stored.page, args.out / "gx-data-docs-failed.png", 900, args.assets, failed_only=True)
    print(f"{len(reports)} validations in {folder}; screenshots in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
