"""pytest imports test modules by basename (no __init__.py in tests/): two test files with one name in different
folders stop the whole collection ("import file mismatch"), which a run of only one folder never shows."""

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_module_has_a_name_of_its_own():
    names = Counter(p.name for p in TESTS.rglob("test_*.py") if "fixtures" not in p.parts)
    assert not [name for name, n in names.items() if n > 1], sorted(
        str(p.relative_to(TESTS)) for p in TESTS.rglob("test_*.py") if names[p.name] > 1
    )
