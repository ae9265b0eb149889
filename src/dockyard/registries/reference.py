"""Image references, parsed and normalized the way `docker pull` does it.

The grammar is distribution/reference's (`regexp.go`), the normalization its `normalize.go`
(`ParseNormalizedNamed`): no domain means `docker.io`, a single component on `docker.io` gets
`library/`, and the first component is a domain only when it contains `.` or `:`, is
`localhost`, or has an uppercase letter. Unlike Docker, which answers most mistakes with
"invalid reference format", every error here names the part that is wrong.

One deliberate difference: a first component that Docker takes for a domain but that is not
a valid host (`foo_bar.com/x`) is refused here, where Docker would quietly accept it as a
domain-less name that no registry can serve.

Pure functions only: no framework or database import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockyard.errors import InvalidReference

DEFAULT_DOMAIN = "docker.io"
OFFICIAL_PREFIX = "library/"
NAME_TOTAL_LENGTH_MAX = 255
TAG_LENGTH_MAX = 128

#: Hosts that are Docker Hub under another name; `index.docker.io` is Docker's own legacy alias.
DOCKER_HUB_ALIASES = frozenset(
    {"index.docker.io", "registry.hub.docker.com", "registry-1.docker.io"}
)

_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
PATH_COMPONENT = rf"{_ALPHANUMERIC}(?:{_SEPARATOR}{_ALPHANUMERIC})*"
_DOMAIN_NAME_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_NAME_COMPONENT}(?:\.{_DOMAIN_NAME_COMPONENT})*"
_IPV6_ADDRESS = r"\[(?:[a-fA-F0-9:]+)\]"
DOMAIN_AND_PORT = rf"(?:{_DOMAIN_NAME}|{_IPV6_ADDRESS})(?::[0-9]+)?"
TAG = r"[\w][\w.-]{0,127}"
DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_path_component_re = re.compile(PATH_COMPONENT)
_domain_re = re.compile(DOMAIN_AND_PORT)
_tag_re = re.compile(TAG, re.ASCII)
_tag_char_re = re.compile(r"[\w.-]", re.ASCII)
_digest_re = re.compile(DIGEST)
_identifier_re = re.compile(r"[a-f0-9]{64}")

#: go-digest's registered algorithms and the length of their lowercase hex encoding.
DIGEST_ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}

_EXAMPLE = "quay.io/biocontainers/samtools:1.17--h00cdaf9_0"


@dataclass(frozen=True, slots=True)
class ImageReference:
    """A normalized image reference: `domain/path[:tag][@digest]`."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The repository with its domain, as Docker's `Name()`."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        return self.name + _suffix(self.tag, self.digest)

    @property
    def familiar(self) -> str:
        """The short form Docker prints: no `docker.io/`, no `library/` for official images.

        Unlike Docker, the full form is kept where the short one would read back differently.
        """
        if self.domain != DEFAULT_DOMAIN:
            return str(self)
        path = self.path
        if path.startswith(OFFICIAL_PREFIX) and "/" not in path[len(OFFICIAL_PREFIX) :]:
            path = path[len(OFFICIAL_PREFIX) :]
        if split_domain(path)[0] is not None:
            # Docker would print `0.0/x` for docker.io/0.0/x, which reads back as host 0.0.
            return str(self)
        return path + _suffix(self.tag, self.digest)


def _suffix(tag: str | None, digest: str | None) -> str:
    return (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def split_domain(text: str) -> tuple[str | None, str]:
    """Split off the domain by Docker's rule; `None` when the text names no domain."""
    first, slash, rest = text.partition("/")
    if not slash:
        return None, text
    if first == "localhost" or any(c in first for c in ".:") or first.lower() != first:
        return first, rest
    return None, text


def parse_reference(text: str) -> ImageReference:
    """Parse and normalize an image reference, or raise `InvalidReference` naming the problem."""
    if text == "":
        raise InvalidReference(
            f"the image reference is empty: give one such as {_EXAMPLE}", kind="name_empty"
        )
    if text != text.strip() or any(c.isspace() for c in text):
        raise InvalidReference(
            f"image reference {text!r} contains whitespace: remove it", kind="invalid_format"
        )
    if _identifier_re.fullmatch(text):
        raise InvalidReference(
            f"{text!r} is a 64-character image id, not a repository name: give the repository "
            f"(for example {_EXAMPLE}) and pin it with @sha256:<id> if you want that image",
            kind="identifier",
        )
    domain, remainder = split_domain(text)
    if domain is None or domain.lower() in DOCKER_HUB_ALIASES:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    _check_domain(domain, text)

    name_and_tag, at, digest = remainder.partition("@")
    if at and "@" in digest:
        raise InvalidReference(
            f"image reference {text!r} has more than one '@': a reference carries at most one "
            "digest",
            kind="invalid_format",
        )
    path, tag = _split_tag(name_and_tag)
    _check_path(path, text)
    if tag is not None:
        _check_tag(tag)
    if at:
        _check_digest(digest)
    name = f"{domain}/{path}"
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(
            f"repository name {name[:60]}... is {len(name)} characters long; at most "
            f"{NAME_TOTAL_LENGTH_MAX} are allowed (registry host included)",
            kind="name_too_long",
        )
    return ImageReference(domain=domain, path=path, tag=tag, digest=digest if at else None)


def _split_tag(name_and_tag: str) -> tuple[str, str | None]:
    head, slash, last = name_and_tag.rpartition("/")
    component, colon, tag = last.partition(":")
    return head + slash + component, (tag if colon else None)


def _check_domain(domain: str, text: str) -> None:
    if _domain_re.fullmatch(domain):
        return
    host = domain
    if domain.startswith("["):
        problem = "an IPv6 host must be hex digits and colons in brackets, with no zone, as [::1]"
    elif ":" in domain and not re.fullmatch(r"[0-9]+", domain.rpartition(":")[2]):
        host, problem = domain, "the port after ':' must be digits"
    elif "_" in domain:
        problem = "host names cannot contain '_'"
    else:
        problem = (
            "a host is dot-separated labels of letters, digits and inner hyphens, "
            "with an optional :port"
        )
    raise InvalidReference(
        f"{host!r} in {text!r} is not a valid registry host: {problem}", kind="invalid_domain"
    )


def _check_path(path: str, text: str) -> None:
    if path.lower() != path:
        raise InvalidReference(
            f"repository name {path!r} must be lowercase: write {path.lower()!r}",
            kind="name_contains_uppercase",
        )
    for component in path.split("/"):
        if _path_component_re.fullmatch(component):
            continue
        if component == "":
            what = "has an empty component (a leading, trailing or doubled '/')"
        elif bad := sorted({c for c in component if not re.fullmatch(r"[a-z0-9._-]", c)}):
            what = f"has {', '.join(repr(c) for c in bad)} in {component!r}"
        else:
            what = (
                f"has component {component!r}, which must start and end with a letter or digit "
                "and separate words with one '.', one or two '_', or any number of '-'"
            )
        raise InvalidReference(
            f"repository name in {text!r} {what}: repository components are lowercase letters "
            "and digits with single '.', '_', '__' or '-' separators",
            kind="invalid_repository",
        )


def _check_tag(tag: str) -> None:
    if tag == "":
        raise InvalidReference(
            "the tag after ':' is empty: give a tag such as 'latest' or leave out the ':'",
            kind="invalid_tag",
        )
    if len(tag) > TAG_LENGTH_MAX:
        raise InvalidReference(
            f"tag {tag[:40]!r}... is {len(tag)} characters long; at most {TAG_LENGTH_MAX} are "
            "allowed",
            kind="tag_too_long",
        )
    if _tag_re.fullmatch(tag):
        return
    if tag[0] in ".-":
        what = f"starts with {tag[0]!r}; it must start with a letter, digit or '_'"
    else:
        bad = sorted({c for c in tag if not _tag_char_re.fullmatch(c)})
        what = (
            f"contains {', '.join(repr(c) for c in bad)}; only ASCII letters, digits, '_', '.' "
            "and '-' are allowed"
        )
    raise InvalidReference(f"tag {tag!r} {what}", kind="invalid_tag")


def _check_digest(digest: str) -> None:
    algorithm, colon, encoded = digest.partition(":")
    if not colon or not algorithm or not encoded:
        raise InvalidReference(
            f"digest {digest!r} must be <algorithm>:<hex>, as sha256:<64 hex digits>",
            kind="invalid_digest",
        )
    expected = DIGEST_ALGORITHMS.get(algorithm)
    if expected is None:
        if _digest_re.fullmatch(digest):
            raise InvalidReference(
                f"digest algorithm {algorithm!r} is not supported: use "
                f"{', '.join(DIGEST_ALGORITHMS)}",
                kind="unsupported_digest",
            )
        raise InvalidReference(
            f"digest {digest!r} must be <algorithm>:<hex>, as sha256:<64 hex digits>",
            kind="invalid_digest",
        )
    if not re.fullmatch(r"[0-9a-fA-F]+", encoded):
        raise InvalidReference(
            f"digest {digest!r} must be hexadecimal after '{algorithm}:'", kind="invalid_digest"
        )
    if len(encoded) != expected:
        raise InvalidReference(
            f"{algorithm} digest has {len(encoded)} hex digits; it must have exactly {expected}",
            kind="invalid_digest_length",
        )
    if encoded.lower() != encoded:
        raise InvalidReference(
            f"digest {digest!r} must use lowercase hex digits", kind="invalid_digest"
        )
