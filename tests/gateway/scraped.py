"""A /metrics answer read with prometheus_client's own parser (label order is free)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of the exposition, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float | None:
    """The sample ``name`` with exactly ``labels``, or ``None`` if there is none."""
    return samples(text).get((name, frozenset(labels.items())))


def types(text: str) -> dict[str, str]:
    """Each metric family's type, by the name it is exposed under."""
    return {family.name: family.type for family in text_string_to_metric_families(text)}
