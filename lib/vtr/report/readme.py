"""Write the README's results table from ``reports/run.json``, so no figure in it is typed by hand.

    python -m vtr.report.readme                                   # reports/run.json into README.md
    python -m vtr.report.readme --run other/run.json --readme README.md --metrics 4

The table replaces whatever lies between the two marker comments :data:`BEGIN` and :data:`END` in the
README; the rest of the file is left byte for byte. Each row is one notebook of the run: its status,
its duration and its first headline metrics, in the order the notebook named them
(:func:`vtr.report.outputs.ordered_metrics`, the order ``reports/index.html`` uses).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vtr.atomic import write_text
from vtr.paths import project_root
from vtr.report.outputs import format_value, ordered_metrics
from vtr.report.records import STATUS_NOT_RUN, STATUS_SKIPPED

BEGIN = "<!-- results:begin (written by `python -m vtr.report.readme` from reports/run.json; do not edit) -->"
END = "<!-- results:end -->"
_BEGIN_WORDS = "<!-- results:begin"
DEFAULT_METRICS = 5


class ReadmeError(ValueError):
    """A run.json or README that cannot be used; the message names the file and the field."""


def _cell(text: Any) -> str:
    """Markdown table cell text: pipes escaped, newlines flattened."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _status(row: dict[str, Any]) -> str:
    if row["status"] == STATUS_NOT_RUN and row.get("this_run"):
        # How run.json records the notebook that was executing when a run was interrupted.
        return "running, or the run was interrupted"
    status = "skipped (resumed)" if row["status"] == STATUS_SKIPPED else row["status"]
    if not row.get("this_run") and row["status"] != STATUS_NOT_RUN:
        status += ", previous run"
    return status


def _metrics(row: dict[str, Any], limit: int) -> str:
    shown, _ = ordered_metrics(row.get("metrics") or {})
    if not shown:
        return "none"
    return "; ".join(f"`{_cell(key)}` {_cell(format_value(value))}" for key, value in shown[:limit])


def _checked(run: Any, source: str) -> dict[str, Any]:
    """``run`` if it has the fields the table reads; else a ReadmeError naming the first bad one."""
    if not isinstance(run, dict):
        raise ReadmeError(f"{source}: expected a JSON object, got {type(run).__name__}")
    for field in ("profile", "environment", "started_at", "notebooks"):
        if field not in run:
            raise ReadmeError(f"{source}: missing field {field!r}")
    if not isinstance(run["notebooks"], list):
        raise ReadmeError(f"{source}: field 'notebooks' must be a list")
    for i, row in enumerate(run["notebooks"]):
        for field in ("stem", "status", "duration_s"):
            if not isinstance(row, dict) or field not in row:
                raise ReadmeError(f"{source}: notebooks[{i}] has no field {field!r}")
    return run


def results_section(run: dict[str, Any], *, metrics: int = DEFAULT_METRICS) -> str:
    """The markdown between the markers: a one-line provenance note, then one row per notebook."""
    env = run["environment"]
    finished = run.get("finished_at") or "not finished (still running, or interrupted)"
    lines = [
        f"Profile `{run['profile'].get('name', '?')}`, started {run['started_at']}, finished {finished}; "
        f"commit `{env.get('git_commit', '?')}`, {env.get('device', '?')}, torch {env.get('torch', '?')}.",
        "",
        "| notebook | status | time | headline metrics |",
        "|---|---|---:|---|",
    ]
    for row in run["notebooks"]:
        lines.append(
            f"| `{_cell(row['stem'])}` | {_cell(_status(row))} | {_duration(row['duration_s'])} "
            f"| {_metrics(row, metrics)} |"
        )
    return "\n".join(lines)


def replace_section(text: str, section: str, source: str = "README") -> str:
    """``text`` with the lines between :data:`BEGIN` and :data:`END` replaced by ``section``."""
    lines = text.splitlines(keepends=True)
    # The begin marker is found by its opening words and rewritten whole, so a README whose marker
    # names an older command still updates (and then names the current one).
    begins = [i for i, line in enumerate(lines) if line.strip().startswith(_BEGIN_WORDS)]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    if len(begins) != 1 or len(ends) != 1 or begins[0] > ends[0]:
        raise ReadmeError(
            f"{source}: expected one line {BEGIN!r} followed by one line {END!r}; "
            f"found {len(begins)} begin and {len(ends)} end markers"
        )
    return "".join([*lines[: begins[0]], BEGIN + "\n", section.rstrip("\n") + "\n", *lines[ends[0] :]])


def load_run(path: Path) -> dict[str, Any]:
    """Read and check ``run.json``; a missing or malformed file raises :class:`ReadmeError`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReadmeError(f"{path}: cannot read ({exc.strerror}); run `make reports` first") from exc
    except ValueError as exc:
        raise ReadmeError(f"{path}: not valid JSON ({exc})") from exc
    return _checked(data, str(path))


def update_readme(run_json: Path, readme: Path, *, metrics: int = DEFAULT_METRICS) -> bool:
    """Rewrite ``readme``'s results section from ``run_json`` (atomically); True when it changed."""
    section = results_section(load_run(run_json), metrics=metrics)
    try:
        old = readme.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReadmeError(f"{readme}: cannot read ({exc.strerror})") from exc
    new = replace_section(old, section, str(readme))
    if new != old:
        write_text(readme, new)
    return new != old


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vtr.report.readme``: returns 0 on success, 2 on a bad run.json or README."""
    root = project_root()
    parser = argparse.ArgumentParser(prog="python -m vtr.report.readme", description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=root / "reports" / "run.json", help="the run record")
    parser.add_argument("--readme", type=Path, default=root / "README.md", help="the file to update")
    parser.add_argument(
        "--metrics", type=int, default=DEFAULT_METRICS, help="headline metrics per notebook (default 5)"
    )
    args = parser.parse_args(argv)
    try:
        changed = update_readme(args.run, args.readme, metrics=args.metrics)
    except ReadmeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.readme}: results table {'updated' if changed else 'already up to date'} from {args.run}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
