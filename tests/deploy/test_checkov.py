"""The checks a security team runs: checkov on template.yaml as written and on
the resources that would exist for the parameter sets with the most of them.
Every finding is fixed, or suppressed in the resource's Metadata with the
reason (checkov: skip: id, comment). checkov is installed in .venv/checkov/ by
scripts/test.sh (apart from the SAM CLI's dependencies)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import tempfile

import pytest

from stack import ROOT, TEMPLATE, Stack
from test_stack import MATRIX

CHECKOV = ROOT / ".venv" / "checkov" / "bin" / "checkov"

# As written (checkov evaluates the conditions for the defaults), and as
# deployed: the public URL alone, and CloudFront with every resource the
# template can make.
STACKS = {
    "template.yaml": None,
    "samples-only": MATRIX["samples-only"],
    "existing-bucket-nested-prefix-index": MATRIX["existing-bucket-nested-prefix-index"],
    "cloudfront-everything": {
        **MATRIX["cloudfront-created-bucket-signed-index"],
        "AlarmEmail": "ops@example.com",
        "ReservedConcurrency": "50",
    },
}


def checkov(path: pathlib.Path) -> list[dict]:
    if not CHECKOV.exists():
        pytest.fail(f"checkov is missing at {CHECKOV}: scripts/test.sh installs it")
    run = subprocess.run(
        [str(CHECKOV), "-f", str(path), "--framework", "cloudformation", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    reports = json.loads(run.stdout)
    return reports if isinstance(reports, list) else [reports]


@pytest.mark.parametrize("name", list(STACKS), ids=list(STACKS))
def test_checkov_finds_nothing_unanswered(name: str) -> None:
    overrides = STACKS[name]
    with tempfile.TemporaryDirectory() as scratch:
        if overrides is None:
            path = TEMPLATE
        else:
            path = pathlib.Path(scratch) / f"{name}.json"
            path.write_text(json.dumps(Stack(overrides, metadata=True).as_template()))
        reports = checkov(path)
    results = [r["results"] for r in reports if r.get("check_type") == "cloudformation"]
    assert results, f"checkov reported nothing on {name}: {reports}"
    failed = [
        f"{c['check_id']} {c['check_name']} ({c['resource']})" for r in results for c in r["failed_checks"]
    ]
    assert not failed, f"{name}: findings with neither a fix nor a reason: {failed}"
    passed = sum(len(r["passed_checks"]) for r in results)
    assert passed > 0, f"{name}: checkov passed no check"
    for r in results:
        for c in r["skipped_checks"]:
            reason = (c.get("check_result") or {}).get("suppress_comment", "")
            assert len(reason.split()) >= 8, f"{name}: {c['check_id']} on {c['resource']} is skipped without a reason"
