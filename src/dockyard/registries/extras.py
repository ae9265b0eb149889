"""When tags were pushed, from Docker Hub's, Quay's and GitLab's own web APIs.

The OCI Distribution API has no push dates; these registries' own APIs do. They are extras:
any failure (a private repository, an API that changed, rate limits) gives {} and the
refresh goes on without them. Docker Hub and Quay list every tag's date in pages; GitLab
answers one tag at a time, so only the tags that are new or moved are asked there. The
requests go through the registry client (its limits, redirects and guard), without the
registry's credentials.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import quote

from dockyard.errors import RegistryError
from dockyard.registries.repository import Answer, Repository

HUB_TAGS = "https://hub.docker.com/v2/namespaces/{namespace}/repositories/{name}/tags?page_size=100"
QUAY_TAGS = "https://{host}/api/v1/repository/{namespace}/{name}/tag/?onlyActiveTags=true&limit=100"
GITLAB_API = "https://gitlab.com/api/v4"
MAX_PAGES = 50
MAX_PAGE_BYTES = 8 * 1024 * 1024
MAX_ITEM_BYTES = 1024 * 1024
#: GitLab has one request per tag for dates: at most this many tags per refresh ask it.
MAX_GITLAB_TAGS = 100
log = logging.getLogger("dockyard.registries")


class RegistryClient(Protocol):
    """What the extras need of `dockyard.registries.oci.RegistryClient`: a GET without
    credentials through its limits, redirects and guard."""

    async def get_plain(
        self, repository: Repository, url: str, kind: str, limit: int
    ) -> Answer: ...


async def push_dates(
    client: RegistryClient, repository: Repository, registry_id: str, tags: list[str]
) -> dict[str, datetime]:
    """When tags were last pushed, as far as the registry's own API tells; {} otherwise."""
    try:
        if registry_id == "dockerhub":
            return await _hub(client, repository)
        if registry_id == "quay":
            return await _quay(client, repository)
        if registry_id == "gitlab" and tags:
            return await _gitlab(client, repository, tags[:MAX_GITLAB_TAGS])
    except RegistryError as error:
        log.info(
            "push dates unavailable",
            extra={"repository": repository.name, "reason": error.message},
        )
    return {}


async def _hub(client: RegistryClient, repository: Repository) -> dict[str, datetime]:
    namespace, _, name = repository.name.partition("/")
    url: str | None = HUB_TAGS.format(namespace=namespace, name=name)
    dates: dict[str, datetime] = {}
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        if url is None or url in seen:
            break
        seen.add(url)
        answer = await client.get_plain(repository, url, "GET hub tags", MAX_PAGE_BYTES)
        if answer.status != 200:
            raise RegistryError(f"Docker Hub answered {answer.status}", **repository.where())
        body = answer.json("Docker Hub's tag list", repository)
        for item in body.get("results") or [] if isinstance(body, dict) else []:
            if not isinstance(item, dict):
                continue
            moment = timestamp(item.get("tag_last_pushed") or item.get("last_updated"))
            if isinstance(item.get("name"), str) and moment is not None:
                dates[item["name"]] = moment
        following = body.get("next") if isinstance(body, dict) else None
        url = following if isinstance(following, str) and following else None
    return dates


async def _quay(client: RegistryClient, repository: Repository) -> dict[str, datetime]:
    namespace, _, name = repository.name.partition("/")
    base = QUAY_TAGS.format(host=repository.host, namespace=namespace, name=name)
    dates: dict[str, datetime] = {}
    for page in range(1, MAX_PAGES + 1):
        answer = await client.get_plain(
            repository, f"{base}&page={page}", "GET quay tags", MAX_PAGE_BYTES
        )
        if answer.status != 200:
            raise RegistryError(f"Quay's API answered {answer.status}", **repository.where())
        body = answer.json("Quay's tag list", repository)
        if not isinstance(body, dict):
            break
        for item in body.get("tags") or []:
            if not isinstance(item, dict):
                continue
            started = item.get("start_ts")
            if isinstance(item.get("name"), str) and isinstance(started, int | float):
                dates[item["name"]] = datetime.fromtimestamp(started, UTC)
        if not body.get("has_additional"):
            break
    return dates


async def _gitlab(
    client: RegistryClient, repository: Repository, tags: list[str]
) -> dict[str, datetime]:
    found = await _gitlab_repository(client, repository)
    if found is None:
        return {}
    project, registry_repository = found
    dates: dict[str, datetime] = {}
    for tag in tags:
        url = (
            f"{GITLAB_API}/projects/{project}/registry/repositories/{registry_repository}"
            f"/tags/{quote(tag, safe='')}"
        )
        answer = await client.get_plain(repository, url, "GET gitlab tag", MAX_ITEM_BYTES)
        if answer.status != 200:
            continue
        body = answer.json("GitLab's tag", repository)
        moment = timestamp(body.get("created_at")) if isinstance(body, dict) else None
        if moment is not None:
            dates[tag] = moment
    return dates


async def _gitlab_repository(
    client: RegistryClient, repository: Repository
) -> tuple[int, int] | None:
    """The GitLab project and registry repository ids of an image path, if public."""
    parts = repository.name.split("/")
    for cut in range(len(parts), 1, -1):  # the project is the longest prefix that exists
        project = quote("/".join(parts[:cut]), safe="")
        url = f"{GITLAB_API}/projects/{project}/registry/repositories?per_page=100"
        answer = await client.get_plain(repository, url, "GET gitlab project", MAX_PAGE_BYTES)
        if answer.status == 404:
            continue
        if answer.status != 200:
            raise RegistryError(f"GitLab's API answered {answer.status}", **repository.where())
        listed = answer.json("GitLab's registry repositories", repository)
        for item in listed if isinstance(listed, list) else []:
            if isinstance(item, dict) and item.get("path") == repository.name:
                project_id, repository_id = item.get("project_id"), item.get("id")
                if isinstance(project_id, int) and isinstance(repository_id, int):
                    return project_id, repository_id
        return None
    return None


def timestamp(value: object) -> datetime | None:
    """An RFC 3339 time as registries write it (nanoseconds, `Z`), in UTC; None if it is not."""
    if not isinstance(value, str) or not value:
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip()).replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
