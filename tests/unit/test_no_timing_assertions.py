"""No test asserts on how long something took: these machines are shared and noisy, so speed is
measured by the benchmarks in bench/, never asserted. A comparison in an `assert` of a clock read
(time.monotonic, time.time, perf_counter, ...) or of a duration computed from one is refused; a
polling loop's give-up guard (`time.monotonic() < deadline`) is not a measurement and is allowed."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
CLOCKS = {"monotonic", "monotonic_ns", "time", "time_ns", "perf_counter", "perf_counter_ns", "process_time"}


def _measures(node: ast.AST, durations: set[str]) -> bool:
    """A clock read, a name holding a duration, or arithmetic on them (not inside other calls)."""
    if isinstance(node, ast.Call):
        func = node.func
        return (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")) in CLOCKS
    if isinstance(node, ast.Name):
        return node.id in durations
    if isinstance(node, ast.BinOp):
        return _measures(node.left, durations) or _measures(node.right, durations)
    return False


def _is_deadline(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and "deadline" in node.id


def timing_assertions(source: str, filename: str = "<test>") -> list[str]:
    """`file:line` of each assert that compares a measured time."""
    found = []
    for function in ast.walk(ast.parse(source)):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        durations: set[str] = set()
        for node in ast.walk(function):  # assignments first: a later assert may use them
            if isinstance(node, ast.Assign) and _measures(node.value, durations):
                durations |= {t.id for t in node.targets if isinstance(t, ast.Name) and not _is_deadline(t)}
        for node in ast.walk(function):
            if not isinstance(node, ast.Assert):
                continue
            for compare in (n for n in ast.walk(node.test) if isinstance(n, ast.Compare)):
                operands = [compare.left, *compare.comparators]
                if any(_measures(o, durations) for o in operands) and not any(map(_is_deadline, operands)):
                    found.append(f"{filename}:{node.lineno}")
                    break
    return found


def test_no_test_asserts_on_elapsed_time():
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        found += timing_assertions(path.read_text(), str(path.relative_to(TESTS)))
    assert found == []


def test_the_check_finds_what_it_refuses():
    source = (
        "import time\n"
        "def test_a():\n    started = time.monotonic()\n    work()\n"
        "    assert time.monotonic() - started >= 0.9\n"
        "def test_b():\n    t0 = time.perf_counter()\n    work()\n    took = time.perf_counter() - t0\n"
        "    assert took < 5\n"
        "def test_c(api):\n    deadline = time.monotonic() + 5\n    assert api.call(deadline) == 'ok'\n"
        "    assert api.state() == 'queued' and time.monotonic() < deadline\n"
    )
    assert timing_assertions(source) == ["<test>:5", "<test>:10"]
