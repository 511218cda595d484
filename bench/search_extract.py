"""Times `fhir_server.search.extract` per resource type over the official R4 examples.

    python bench/search_extract.py [TYPE...]

Prints, per resource type, the examples timed and the mean microseconds per extraction
(best of several rounds, after a warm-up that builds the per-type plans).
"""

from __future__ import annotations

import gzip
import sys
import time
from collections import defaultdict
from pathlib import Path

import orjson

from fhir_server.search.extract import extract

EXAMPLES = Path(__file__).resolve().parent.parent / "tests" / "data" / "r4-examples.ndjson.gz"
ROUNDS = 5


def main(types: list[str]) -> None:
    by_type: dict[str, list[dict]] = defaultdict(list)
    for line in gzip.decompress(EXAMPLES.read_bytes()).splitlines():
        if line:
            resource = orjson.loads(line)
            by_type[resource["resourceType"]].append(resource)
    selected = types or sorted(by_type, key=lambda t: -len(by_type[t]))[:15]
    for resource in (r for t in selected for r in by_type[t]):
        extract(resource["resourceType"], resource)
    print(f"{'type':<24}{'n':>5}{'us/resource':>14}")
    for rtype in selected:
        resources = by_type[rtype]
        repeat = max(1, 2000 // len(resources))
        best = float("inf")
        for _ in range(ROUNDS):
            start = time.perf_counter()
            for _ in range(repeat):
                for resource in resources:
                    extract(rtype, resource)
            best = min(best, (time.perf_counter() - start) / (repeat * len(resources)))
        print(f"{rtype:<24}{len(resources):>5}{best * 1e6:>14.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])
