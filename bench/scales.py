"""Benchmark scales: how many entities, rows and entity-table rows each one generates."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    name: str
    entities: int
    rows_per_entity: int
    features: int
    entity_df_sizes: tuple[int, ...]
    """Training-retrieval sizes; each is a prefix of the same seeded entity table."""

    @property
    def source_rows(self) -> int:
        return self.entities * self.rows_per_entity


SCALES = {
    "small": Scale("small", 10_000, 10, 20, (1_000, 10_000, 30_000)),
    "default": Scale("default", 100_000, 10, 20, (10_000, 100_000, 300_000)),
    "large": Scale("large", 300_000, 10, 20, (30_000, 300_000, 600_000)),
}
