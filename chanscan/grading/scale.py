"""The grade scale: the letters and their order. It belongs to grading, which makes the
letters; the gate, the reports and ``diff`` consume it."""

from __future__ import annotations

__all__ = ["GRADES", "grade_rank", "worse_grade"]

# Best first, as in the SSL Labs rating guide (A+ above A; E is ours, between D and F).
GRADES = ("A+", "A", "A-", "B", "C", "D", "E", "F")


def grade_rank(grade: str) -> int:
    """0 for A+, larger is worse; unknown grades rank worst so they never pass a gate."""
    try:
        return GRADES.index(grade)
    except ValueError:
        return len(GRADES)


def worse_grade(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if grade_rank(a) >= grade_rank(b) else b
