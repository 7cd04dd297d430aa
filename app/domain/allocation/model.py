"""What a dispatch run splits: one product's supply, its destinations' demand, and the rules."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction


class Policy(StrEnum):
    """How the tier that cannot be served in full shares what is left (a site or run setting)."""

    PROPORTIONAL = "proportional"  # to the weight, the need by default
    MINIMUMS_FIRST = "minimums_first"  # every minimum, then the rest proportionally on top
    QUOTA = "quota"  # to each destination's quota percent
    EVEN = "even"  # the same for everyone
    STRICT_PRIORITY = "strict_priority"  # greedy in priority order, the classic behaviour


class Rounding(StrEnum):
    """How exact quotas become whole packs."""

    LARGEST_REMAINDER = "largest_remainder"
    SAINTE_LAGUE = "sainte_lague"  # a divisor method: more supply never takes a pack away


@dataclass(frozen=True, slots=True)
class Demand:
    """One destination's net need of one product, with its tier and limits (units, not packs)."""

    destination_code: str
    tier: int  # 1 is served first
    need_units: int
    min_units: int | None = None
    max_units: int | None = None
    weight: int | Fraction | None = None  # proportional weight; None means the need
    quota_percent: int | Fraction | None = None  # the share under the quota policy; None means 0

    def __post_init__(self) -> None:
        # Each field spelled out, not a loop over their names: a run builds one demand per product and
        # destination, and reading fields by name through getattr was a fifth of the cost.
        if self.need_units < 0:
            raise ValueError(f"{self.destination_code}: a need cannot be negative")
        if self.min_units is not None and self.min_units < 0:
            raise ValueError(f"{self.destination_code}: min_units cannot be negative")
        if self.max_units is not None and self.max_units < 0:
            raise ValueError(f"{self.destination_code}: max_units cannot be negative")
        if self.weight is not None and self.weight < 0:
            raise ValueError(f"{self.destination_code}: weight cannot be negative")
        if self.quota_percent is not None and self.quota_percent < 0:
            raise ValueError(f"{self.destination_code}: quota_percent cannot be negative")


@dataclass(frozen=True, slots=True)
class Supply:
    """One product's stock at the site for a run, and how it may be handed out."""

    product: str
    pack_size: int
    available_units: int
    round_up: bool = False  # may a destination's last pack exceed its need?
    allow_eaches: bool = False  # may loose units (less than a pack) be sent?
    expiry_tracked: bool = False
    holdback: int = 0  # units kept back from every run (safety stock)

    def __post_init__(self) -> None:
        if self.pack_size < 1:
            raise ValueError(f"{self.product}: a pack holds at least one unit")
        if self.available_units < 0 or self.holdback < 0:
            raise ValueError(f"{self.product}: stock and holdback cannot be negative")

    @property
    def distributable_units(self) -> int:
        return max(self.available_units - self.holdback, 0)

    @property
    def packs(self) -> int:
        """P: the whole packs a run may hand out."""
        return self.distributable_units // self.pack_size

    @property
    def loose_units(self) -> int:
        return self.distributable_units % self.pack_size


@dataclass(frozen=True, slots=True)
class ProductRequest:
    """One product of a batch: its supply and every destination's demand for it."""

    supply: Supply
    demands: tuple[Demand, ...]
