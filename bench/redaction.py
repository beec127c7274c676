"""PHI redaction benchmark: recall and precision on synthetic coding questions.

Run: ``.venv/bin/python bench/redaction.py [--cases N]``

Scoring (kind-agnostic, because what matters is that PHI is hidden):

- recall: a gold PHI span counts as found when every non-space character of
  it is covered by some redaction;
- precision: a redaction is correct when at least half of its characters lie
  inside gold spans;
- codes kept: every medical code token and every labelled date of service
  must survive untouched (a damaged code is counted as an error).

A baseline is measured in the same run: the four "obvious" patterns
(e-mail, SSN, phone, any full date) that a quick script would use.  Results
go to ``bench/results/redaction.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from redaction_cases import CODE_TOKEN, Case, cases, fresh_cases, hard_cases, reported_cases  # noqa: E402

from mailbot.drafting.redact import DATE, redact  # noqa: E402

_BASELINE = [re.compile(p, re.I) for p in (
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", r"\b\d{3}-\d{2}-\d{4}\b", r"\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b", DATE)]


def baseline(text: str) -> list[tuple[int, int]]:
    return [m.span() for p in _BASELINE for m in p.finditer(text)]


def ours(text: str) -> list[tuple[int, int]]:
    return [(s.start, s.end) for s in redact(text).spans]


def score(all_cases: list[Case], detector) -> dict:
    found = gold_total = correct = predicted = damaged = kept_total = 0
    misses: list[str] = []
    start = time.perf_counter()
    for case in all_cases:
        spans = detector(case.text)
        covered = set()
        for s, e in spans:
            covered.update(range(s, e))
        for s, e, kind in case.gold:
            gold_total += 1
            if all(i in covered or case.text[i].isspace() for i in range(s, e)):
                found += 1
            else:
                misses.append(f"{kind}: {case.text[s:e]!r}")
        gold_chars = {i for s, e, _ in case.gold for i in range(s, e)}
        for s, e in spans:
            predicted += 1
            if sum(1 for i in range(s, e) if i in gold_chars) * 2 >= (e - s):
                correct += 1
        protected = [(m.start(), m.end()) for m in CODE_TOKEN.finditer(case.text)]
        protected += [(s, e) for s, e, _ in case.keep]
        for s, e in protected:
            if any(i in gold_chars for i in range(s, e)):
                continue  # a code-shaped piece of PHI (e.g. inside an MRN)
            kept_total += 1
            if any(i in covered for i in range(s, e)):
                damaged += 1
    elapsed = time.perf_counter() - start
    return {
        "recall": round(found / gold_total, 4),
        "precision": round(correct / predicted, 4) if predicted else 0.0,
        "gold_spans": gold_total,
        "predicted_spans": predicted,
        "protected_tokens": kept_total,
        "protected_damaged": damaged,
        "ms_per_case": round(1000 * elapsed / len(all_cases), 3),
        "misses": misses[:25],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=126)
    args = parser.parse_args()
    all_cases = cases(args.cases)
    base = score(all_cases, baseline)
    mine = score(all_cases, ours)
    hard = score(hard_cases(), ours)
    fresh = score(fresh_cases(), ours)
    reported = score(reported_cases(), ours)
    result = {
        "cases": len(all_cases),
        "recall": mine["recall"],
        "precision": mine["precision"],
        "codes_or_dos_damaged": mine["protected_damaged"],
        "ms_per_case": mine["ms_per_case"],
        "baseline_recall": base["recall"],
        "baseline_precision": base["precision"],
        "held_out_cases": len(hard_cases()),
        "held_out_recall": hard["recall"],
        "held_out_precision": hard["precision"],
        "held_out_note": ("first measured recall 0.865; then general rules were added after seeing its misses "
                          "(lower-case names after a cue or a name label, 'Surname, Given' opening a line, "
                          "headings only at line start), so it is no longer strictly held out"),
        "baseline": "four obvious patterns (e-mail, SSN, phone, any full date), same cases, same run",
        "fresh_held_out_cases": len(fresh_cases()),
        "fresh_held_out_recall": fresh["recall"],
        "fresh_held_out_precision": fresh["precision"],
        "fresh_held_out_codes_damaged": fresh["protected_damaged"],
        "fresh_held_out": fresh,
        "reported_cases": len(reported_cases()),
        "reported_recall": reported["recall"],
        "reported_precision": reported["precision"],
        "reported_note": ("phrasings from issue 15 (acct #A99812, lower-case mrs. garcia), written before the fix; "
                          "recall before the fix 0.143 (same cases)"),
        "reported_phrasings": reported,
        "ours": mine,
        "held_out_hard_phrasings": hard,
        "baseline_simple_patterns": base,
        "recall_ratio_vs_baseline": round(mine["recall"] / base["recall"], 3) if base["recall"] else None,
        "target_recall": 0.98,
        "meets_target": mine["recall"] >= 0.98 and mine["protected_damaged"] == 0,
    }
    out = HERE / "results" / "redaction.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"cases: {len(all_cases)}  gold PHI spans: {mine['gold_spans']}")
    for name, r in (("ours", mine), ("baseline", base)):
        print(f"{name:9s} recall {r['recall']:.3f}  precision {r['precision']:.3f}  "
              f"codes/DOS damaged {r['protected_damaged']}/{r['protected_tokens']}  {r['ms_per_case']} ms/case")
    print(f"recall ratio ours/baseline: {result['recall_ratio_vs_baseline']}")
    print(f"held-out hard phrasings ({len(hard_cases())} cases): recall {hard['recall']:.3f}  "
          f"precision {hard['precision']:.3f}  codes damaged {hard['protected_damaged']}/{hard['protected_tokens']}")
    if hard["misses"]:
        print("held-out missed:", *hard["misses"], sep="\n  ")
    print(f"fresh held-out ({len(fresh_cases())} cases, never used for tuning): recall {fresh['recall']:.3f}  "
          f"precision {fresh['precision']:.3f}  codes damaged {fresh['protected_damaged']}/{fresh['protected_tokens']}")
    if fresh["misses"]:
        print("fresh held-out missed:", *fresh["misses"], sep="\n  ")
    print(f"reported phrasings ({len(reported_cases())} cases, issue 15): recall {reported['recall']:.3f} "
          f"(0.143 before the fix)  precision {reported['precision']:.3f}  "
          f"codes damaged {reported['protected_damaged']}/{reported['protected_tokens']}")
    if mine["misses"]:
        print("missed:", *mine["misses"], sep="\n  ")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
