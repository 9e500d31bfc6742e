"""Detection benchmark: run the lab, score the fleet with connhunt, and report what was found and what was not.

Prints per scenario found / technique / risk / rank, precision and recall over the malicious pairs, and the benign
pairs at High or Critical; writes results.json and results.md. Exit 0 when every target is met, 1 when one is
missed, 3 when the lab itself failed.

    sudo /work/venv/bin/python bench/detection/run.py --minutes 3
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from orchestrator.lab import groundtruth  # noqa: E402
from orchestrator.lab.evaluate import evaluate, table  # noqa: E402
from orchestrator.lab.netns import LabError  # noqa: E402
from orchestrator.lab.runner import LabConfig, run_lab  # noqa: E402
from orchestrator.lab.score import score_files, write_hunt_config  # noqa: E402

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--hosts", type=int, default=8)
    p.add_argument("--out", type=Path, help="lab output directory (default: a new temporary directory)")
    p.add_argument("--results", type=Path, default=HERE, help="where results.json / results.md go")
    args = p.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="connhunt-bench-"))
    try:
        lab = run_lab(LabConfig(minutes=args.minutes, hosts=args.hosts, out=out),
                      echo=lambda line: print(line, file=sys.stderr))
        started = time.monotonic()
        report = score_files(lab.agent_files, write_hunt_config(out))
        scoring_seconds = time.monotonic() - started
    except LabError as exc:
        print(f"bench: lab failed: {exc}", file=sys.stderr)
        return 3
    (out / "hunt_report.json").write_text(json.dumps(report, indent=2) + "\n")
    evaluation = evaluate(report, groundtruth.read(lab.ground_truth))
    rendered = table(evaluation)
    print(rendered, end="")
    meta = {"minutes": args.minutes, "hosts": args.hosts, "lab_seconds": round(lab.seconds, 1),
            "scoring_seconds": round(scoring_seconds, 1), "findings": len(report.get("findings") or []),
            "records": lab.records, "out": str(out)}
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "results.json").write_text(json.dumps({"run": meta, **evaluation.as_dict()}, indent=2) + "\n")
    (args.results / "results.md").write_text(
        f"# Detection benchmark — {args.hosts} hosts, {args.minutes:g} min of lab traffic\n\n{rendered}")
    return 0 if evaluation.targets_met else 1


if __name__ == "__main__":
    sys.exit(main())
