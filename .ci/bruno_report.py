"""Sum up the Bruno CLI's JSON reports (one per folder) for .ci/conformance.sh.

    python .ci/bruno_report.py FLOOR REPORT.json [REPORT.json ...]

A request counts as failed when anything about it failed: the request itself
(``error``), an ``assert`` line, a ``tests`` block, or a pre/post-response
script. The last matters: a bare ``expect(...)`` in ``script:post-response``
(how most of the RealWorld suite checks bodies) shows up only as a
``postResponseTestResults`` entry with ``isScriptError``; the request's own
``status`` stays "pass" and the summary's test counters stay at zero.

Exit status 0 only when nothing failed, every report could be read, and the
number of passed requests is at least FLOOR (the suite may only grow).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RESULT_LISTS = (
    "assertionResults",
    "testResults",
    "preRequestTestResults",
    "postResponseTestResults",
)


def problems(result: dict[str, Any]) -> list[str]:
    """What went wrong with one request, as readable lines (empty: it passed)."""
    found = []
    if result.get("error"):
        found.append(f"error: {result['error']}")
    if result.get("status") != "pass":  # "fail", "error", or "skipped": not a pass
        found.append(f"status: {result.get('status')}")
    for key in RESULT_LISTS:
        for item in result.get(key) or []:
            if item.get("status") != "pass":
                label = item.get("description") or (
                    f"{item.get('lhsExpr')} {item.get('rhsExpr')}".strip()
                )
                found.append(f"{label}: {item.get('error') or item.get('status')}")
    return found


def main(argv: list[str]) -> int:
    floor = int(argv[0])
    passed = failed = unreadable = 0
    for path in map(Path, argv[1:]):
        try:
            iterations = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"  {path.stem}: no readable report ({exc})")
            unreadable += 1
            continue
        folder_passed = folder_failed = 0
        lines = []
        for iteration in iterations:
            summary = iteration.get("summary", {})
            results = iteration.get("results", [])
            bad = 0
            for result in results:
                found = problems(result)
                if found:
                    bad += 1
                    name = result.get("test", {}).get("filename") or result.get("path")
                    lines.append(f"    FAILED {name}")
                    lines.extend(f"      {line}" for line in found)
            # Trust the runner's own count too, should it see a failure that
            # the per-request fields above do not show.
            counted = ("failedRequests", "errorRequests", "skippedRequests")
            bad = max(bad, sum(summary.get(key, 0) for key in counted))
            folder_failed += bad
            folder_passed += len(results) - bad
        print(f"  {path.stem}: {folder_passed} passed, {folder_failed} failed")
        for line in lines:
            print(line)
        passed += folder_passed
        failed += folder_failed
    ok = failed == 0 and unreadable == 0 and passed >= floor
    if passed < floor:
        print(f"  only {passed} requests passed: the recorded floor is {floor} (.ci/bruno-floor)")
    if unreadable:
        print(f"  {unreadable} folder(s) left no readable report")
    print(f"Bruno: {passed} passed, {failed + unreadable} failed")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
