"""The benchmark harness (scripts/benchmarks/harness.py) on toy functions, and the declaration
every benchmark module makes. Imports only: no bench database is made here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from benchmarks import MODULES, benchmark  # noqa: E402
from benchmarks.harness import Benchmark, Ratio, best_of, clock, print_ratios  # noqa: E402


def test_best_of_keeps_the_fastest_run_and_its_result(capsys):
    times = iter([0.3, 0.1, 0.2])
    results = iter("abc")

    best, result, all_times = best_of(3, lambda: (next(times), next(results)), "toy")

    assert (best, result, all_times) == (0.1, "b", [0.3, 0.1, 0.2])
    assert capsys.readouterr().out.splitlines() == [
        "  toy run 1/3: 0.300 s", "  toy run 2/3: 0.100 s", "  toy run 3/3: 0.200 s"]


def test_clock_times_the_whole_call():
    calls = []
    seconds, result = clock(lambda: calls.append(1) or "done")()
    assert result == "done" and calls == [1] and 0 <= seconds < 1


def test_ratio_table(capsys):
    print_ratios([
        Ratio("path / floor", 1.234, target=1.5),
        Ratio("path / serial floor", 2.0, target=1.5),
        Ratio("peer / path", 25.0, target=20.0, at_least=True, suffix=" (extrapolated)"),
        Ratio("join / pieces", 3.14159, fmt="7.1f", note="(reference, no target)"),
        Ratio("plain", 4.0),
    ], width=20)
    assert capsys.readouterr().out.splitlines() == [
        "ratios",
        "  path / floor         =   1.23x   target <= 1.5x   PASS",
        "  path / serial floor  =   2.00x   target <= 1.5x   MISS",
        "  peer / path          =  25.00x   target >= 20x   PASS (extrapolated)",
        "  join / pieces        =     3.1x   (reference, no target)",
        "  plain                =   4.00x",
    ]


def test_ratio_verdict():
    assert Ratio("a", 1.5, target=1.5).passed is True
    assert Ratio("a", 19.9, target=20, at_least=True).passed is False
    assert Ratio("a", 3.0).passed is None


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_benchmark_declares_load_floor_path_and_peer(name):
    bench = benchmark(name)
    assert isinstance(bench, Benchmark) and bench.name == name
    assert bench.database.startswith("chacra_bench")
    assert callable(bench.load) and callable(bench.path) and callable(bench.rows)
    # floor and peer are declared even where there is none (None: load-mix has an absolute target).
    assert bench.floor is None or callable(bench.floor)
    assert bench.peer is None or callable(bench.peer)
    if name != "load-mix":
        assert callable(bench.floor)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_benchmark_parses_its_defaults(name):
    parser = benchmark(name).parser()
    assert parser.prog == f"scripts/bench {name}"
    assert "Run through the dispatcher" in parser.description
    args = benchmark(name).parse_args([])
    assert args.repeat >= 1 if hasattr(args, "repeat") else args.seconds > 0
