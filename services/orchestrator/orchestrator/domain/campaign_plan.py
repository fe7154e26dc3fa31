"""A campaign's plan: the waves of sites, from explicit waves or generated, tags resolved."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class InvalidPlanError(ValueError):
    """A plan that cannot be run as given (HTTP 422)."""


TAG_PREFIX = "tag:"


class PlanAsked(BaseModel):
    """The plan as the request gave it: explicit waves, or sites to cut into waves; either may
    name `tag:<tag>` for every site carrying the tag when the campaign is created."""

    model_config = ConfigDict(extra="ignore")

    waves: list[list[str]] | None = None
    sites: list[str] | None = None
    canary: int = 1
    wave_size: int = 5


def tags_asked(plan: PlanAsked) -> list[str]:
    entries = [e for w in plan.waves or [] for e in w] + list(plan.sites or [])
    return sorted({e.removeprefix(TAG_PREFIX) for e in entries if e.startswith(TAG_PREFIX)})


def resolve_plan(plan: PlanAsked, tagged: dict[str, list[str]]) -> list[list[str]]:
    """The waves of sites, tags expanded. A site named explicitly keeps its named place; a site
    carrying several tags asked goes where its first tag is; a wave left empty is dropped."""
    missing = sorted(tag for tag in tags_asked(plan) if not tagged.get(tag))
    if missing:
        raise UnknownTagError(missing)
    asked = plan.waves if plan.waves is not None else [list(plan.sites or [])]
    named = {e for w in asked for e in w if not e.startswith(TAG_PREFIX)}
    placed: set[str] = set()
    waves: list[list[str]] = []
    for wave in asked:
        sites: list[str] = []
        for entry in wave:
            if not entry.startswith(TAG_PREFIX):
                sites.append(entry)
                continue
            for site in tagged[entry.removeprefix(TAG_PREFIX)]:
                if site not in named and site not in placed:
                    sites.append(site)
                    placed.add(site)
        waves.append(sites)
    if plan.waves is None:
        return generate_waves(waves[0], plan.canary, plan.wave_size)
    return [w for w in waves if w]


class UnknownTagError(InvalidPlanError):
    def __init__(self, tags: list[str]) -> None:
        super().__init__(
            f"no site carries the tag(s) {', '.join(tags)}: tag sites in the inventory "
            "(tags on POST/PUT /v1/sites, or `certrotate sites add --tag`) or fix the plan"
        )


def generate_waves(sites: list[str], canary: int, size: int) -> list[list[str]]:
    """A canary wave of `canary` sites first, then waves of `size`, in the order given."""
    if canary < 0 or size < 1:
        raise InvalidPlanError("canary must be >= 0 and wave_size >= 1")
    waves = [sites[:canary]] if canary else []
    rest = sites[canary:]
    waves += [rest[i : i + size] for i in range(0, len(rest), size)]
    return [w for w in waves if w]


def check_waves(waves: list[list[str]]) -> list[str]:
    """Every site once, no empty wave; the sites in campaign order."""
    if not waves or any(not w for w in waves):
        raise InvalidPlanError("a plan needs at least one wave and no empty wave")
    ordered = [site for wave in waves for site in wave]
    repeated = sorted({s for s in ordered if ordered.count(s) > 1})
    if repeated:
        raise InvalidPlanError(f"sites listed more than once: {', '.join(repeated)}")
    return ordered


def farm_order(
    waves: list[list[str]], farms: dict[str, str], partners: dict[str, set[str]]
) -> list[list[str]]:
    """Within each wave, the sites of one farm take their places in the farm's order: fewest
    partnerships first, the hub last (ties by name). `farms`: site -> its farm's name;
    `partners`: site -> its direct partners.

    Why: a farm rotates one site at a time anyway (a site re-adds its partners at its step 7,
    which must never happen to a partner mid-rotation); leaves first means a rotation that goes
    wrong does so where it breaks the fewest partnerships, before the hub breaks them all."""

    def rank(site: str) -> tuple[int, str]:
        return len(partners.get(site, set())), site

    ordered: list[list[str]] = []
    for wave in waves:
        members: dict[str, list[str]] = {}
        for site in wave:
            members.setdefault(farms[site], []).append(site)
        queues = {farm: sorted(sites, key=rank) for farm, sites in members.items()}
        ordered.append([queues[farms[site]].pop(0) for site in wave])
    return ordered
