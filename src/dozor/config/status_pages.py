"""What a person writes to describe a public status page and its notes, validated.

A page is a slug, a title, a description, an optional custom domain, whether it is
published, and groups of the organisation's monitors, each with an optional public name:

>>> page = PageSpec.model_validate({"slug": "acme", "title": "Acme", "groups": [
...     {"name": "Web", "monitors": [{"monitor_id": 1, "display_name": "Website"}]}]})
>>> page.groups[0].monitors[0].display_name
'Website'
>>> PageSpec.model_validate({"slug": "acme", "title": "Acme",
...                          "custom_domain": "Status.Example.COM."}).custom_domain
'status.example.com'

Which monitors exist is the store's business; :func:`placement_problems` finds what the
model alone can see (a monitor twice on a page, too many monitors), by field path.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from dozor.checks.domain import normalize_domain
from dozor.core.statuspage import slug_problem

MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL (as api.deps.MAX_ID)
MAX_GROUPS = 50
MAX_MONITORS = 200  # on one page: bounds what the public answer reads and sends


def _storable(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refused here, it is a 422 instead of an error.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _slug(value: str) -> str:
    problem = slug_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _domain(value: str) -> str:
    try:
        ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return normalize_domain(value)
    raise ValueError("must be a host name such as status.example.com, not an IP address")


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
                 AfterValidator(_storable)]
Slug = Annotated[str, Field(max_length=63), AfterValidator(_slug)]
Domain = Annotated[str, Field(max_length=253), AfterValidator(_domain)]
NoteStatus = Literal["investigating", "identified", "monitoring", "resolved", "maintenance",
                     "info"]
NoteText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                            max_length=5000), AfterValidator(_storable)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000),
                        AfterValidator(_storable)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ItemSpec(_Strict):
    """A monitor shown on a page; visitors read ``display_name`` (or the monitor's name)."""

    monitor_id: Id
    display_name: Name | None = None


class GroupSpec(_Strict):
    name: Name
    monitors: list[ItemSpec] = Field(default_factory=list, max_length=MAX_MONITORS)


class PageSpec(_Strict):
    slug: Slug
    title: Name
    description: Description = ""
    custom_domain: Domain | None = None
    published: bool = False
    groups: list[GroupSpec] = Field(default_factory=list, max_length=MAX_GROUPS)

    def monitor_paths(self) -> list[tuple[str, int]]:
        """Each monitor on the page with the path of its field, in page order."""
        return [(f"groups.{g}.monitors.{i}.monitor_id", item.monitor_id)
                for g, group in enumerate(self.groups)
                for i, item in enumerate(group.monitors)]


class NoteSpec(_Strict):
    """An update for visitors, optionally about one of the organisation's incidents."""

    status: NoteStatus
    text: NoteText
    incident_id: Id | None = None


def placement_problems(page: PageSpec) -> list[tuple[str, str]]:
    """(field path, message) for a monitor shown twice and for a page over the limit.

    >>> placement_problems(PageSpec.model_validate({"slug": "acme", "title": "A", "groups": [
    ...     {"name": "a", "monitors": [{"monitor_id": 1}]},
    ...     {"name": "b", "monitors": [{"monitor_id": 2}, {"monitor_id": 1}]}]}))
    [('groups.1.monitors.1.monitor_id', 'monitor 1 is already on this page')]
    """
    paths = page.monitor_paths()
    if len(paths) > MAX_MONITORS:
        return [("groups", f"a page shows at most {MAX_MONITORS} monitors")]
    seen: set[int] = set()
    problems = []
    for path, monitor_id in paths:
        if monitor_id in seen:
            problems.append((path, f"monitor {monitor_id} is already on this page"))
        seen.add(monitor_id)
    return problems
