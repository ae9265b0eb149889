"""Image references: table tests from distribution/reference and properties against its grammar."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dockyard.errors import InvalidReference
from dockyard.registries.reference import ImageReference, parse_reference

SHA = "sha256:" + "f" * 64
SHA512 = "sha512:" + "f" * 128


@pytest.mark.parametrize(
    ("text", "normalized", "familiar"),
    [
        ("ubuntu", "docker.io/library/ubuntu", "ubuntu"),
        ("ubuntu:22.04", "docker.io/library/ubuntu:22.04", "ubuntu:22.04"),
        ("library/ubuntu", "docker.io/library/ubuntu", "ubuntu"),
        ("docker.io/ubuntu", "docker.io/library/ubuntu", "ubuntu"),
        ("docker.io/library/ubuntu", "docker.io/library/ubuntu", "ubuntu"),
        ("index.docker.io/debian", "docker.io/library/debian", "debian"),
        ("index.docker.io/docker/docker", "docker.io/docker/docker", "docker/docker"),
        ("registry.hub.docker.com/library/ubuntu", "docker.io/library/ubuntu", "ubuntu"),
        ("registry.hub.docker.com/ubuntu", "docker.io/library/ubuntu", "ubuntu"),
        (
            "registry-1.docker.io/biocontainers/samtools",
            "docker.io/biocontainers/samtools",
            "biocontainers/samtools",
        ),
        ("fooo/bar", "docker.io/fooo/bar", "fooo/bar"),
        ("library/foo/bar", "docker.io/library/foo/bar", "library/foo/bar"),
        ("store/foo/bar", "docker.io/store/foo/bar", "store/foo/bar"),
        ("other/library", "docker.io/other/library", "other/library"),
        (
            "quay.io/biocontainers/samtools:1.17--h00cdaf9_0",
            "quay.io/biocontainers/samtools:1.17--h00cdaf9_0",
            "quay.io/biocontainers/samtools:1.17--h00cdaf9_0",
        ),
        ("localhost/foo", "localhost/foo", "localhost/foo"),
        ("localhost:5000/foo/bar:tag", "localhost:5000/foo/bar:tag", "localhost:5000/foo/bar:tag"),
        ("localhost:5000", "docker.io/library/localhost:5000", "localhost:5000"),
        (
            "127.0.0.1:5000/docker/docker",
            "127.0.0.1:5000/docker/docker",
            "127.0.0.1:5000/docker/docker",
        ),
        ("192.168.0.1", "docker.io/library/192.168.0.1", "192.168.0.1"),
        ("192.168.0.1:80", "docker.io/library/192.168.0.1:80", "192.168.0.1:80"),
        ("[::1]:5000/repo", "[::1]:5000/repo", "[::1]:5000/repo"),
        ("[2001:db8::1]/repo", "[2001:db8::1]/repo", "[2001:db8::1]/repo"),
        (
            "[2001:db8:1:2:3:4:5:6]/repo:tag",
            "[2001:db8:1:2:3:4:5:6]/repo:tag",
            "[2001:db8:1:2:3:4:5:6]/repo:tag",
        ),
        (
            f"[2001:db8::1]:5000/repo:tag@{SHA}",
            f"[2001:db8::1]:5000/repo:tag@{SHA}",
            f"[2001:db8::1]:5000/repo:tag@{SHA}",
        ),
        ("Foo/bar", "Foo/bar", "Foo/bar"),
        ("DOCKER/docker", "DOCKER/docker", "DOCKER/docker"),
        (
            "xn--n3h.com/myimage:xn--n3h.com",
            "xn--n3h.com/myimage:xn--n3h.com",
            "xn--n3h.com/myimage:xn--n3h.com",
        ),
        (
            f"xn--7o8h.com/myimage:xn--7o8h.com@{SHA512}",
            f"xn--7o8h.com/myimage:xn--7o8h.com@{SHA512}",
            f"xn--7o8h.com/myimage:xn--7o8h.com@{SHA512}",
        ),
        (
            "b.gcr.io/test.example.com/my-app:test.example.com",
            "b.gcr.io/test.example.com/my-app:test.example.com",
            "b.gcr.io/test.example.com/my-app:test.example.com",
        ),
        (
            f"busybox:latest@{SHA}",
            f"docker.io/library/busybox:latest@{SHA}",
            f"busybox:latest@{SHA}",
        ),
        (f"redis@{SHA}", f"docker.io/library/redis@{SHA}", f"redis@{SHA}"),
        ("lowercase:Uppercase", "docker.io/library/lowercase:Uppercase", "lowercase:Uppercase"),
        ("docker---rules/docker", "docker.io/docker---rules/docker", "docker---rules/docker"),
        ("dock__er/docker", "docker.io/dock__er/docker", "dock__er/docker"),
        ("d/docker", "docker.io/d/docker", "d/docker"),
        ("test_com/foo", "docker.io/test_com/foo", "test_com/foo"),
        ("foo/foo_bar.com:8080", "docker.io/foo/foo_bar.com:8080", "foo/foo_bar.com:8080"),
        ("foo_bar.com:8080", "docker.io/library/foo_bar.com:8080", "foo_bar.com:8080"),
        (
            "docker.io/" + "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            "docker.io/library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
        ),
        (
            "312767926603.dkr.ecr.us-west-2.amazonaws.com/test_namespace/test_image:latest",
            "312767926603.dkr.ecr.us-west-2.amazonaws.com/test_namespace/test_image:latest",
            "312767926603.dkr.ecr.us-west-2.amazonaws.com/test_namespace/test_image:latest",
        ),
    ],
)
def test_valid_references_normalize_as_docker_does(
    text: str, normalized: str, familiar: str
) -> None:
    reference = parse_reference(text)
    assert str(reference) == normalized
    assert reference.familiar == familiar


def test_parts_of_a_reference_are_separated() -> None:
    reference = parse_reference(f"test:5000/repo:tag@{SHA}")
    assert reference == ImageReference(domain="test:5000", path="repo", tag="tag", digest=SHA)
    assert reference.name == "test:5000/repo"


@pytest.mark.parametrize(
    ("text", "kind", "says"),
    [
        ("", "name_empty", "empty"),
        (":justtag", "invalid_repository", "empty component"),
        (f"@{SHA}", "invalid_repository", "empty component"),
        ("Uppercase:tag", "name_contains_uppercase", "must be lowercase"),
        ("docker/Docker", "name_contains_uppercase", "'docker/docker'"),
        ("test:5000/Uppercase/lowercase:tag", "name_contains_uppercase", "lowercase"),
        ("docker.io/docker/Docker", "name_contains_uppercase", "lowercase"),
        ("a/" * 128 + "a:tag", "name_too_long", "at most 255"),
        ("x" * 250, "name_too_long", "268 characters"),
        ("aa/asdf$$^/aa", "invalid_repository", "'$'"),
        ("-docker", "invalid_repository", "'-docker'"),
        ("docker-/docker", "invalid_repository", "'docker-'"),
        ("____/____", "invalid_repository", "'____'"),
        ("dock..er/docker", "invalid_domain", "dock..er"),
        ("dock_.er/docker", "invalid_domain", "'_'"),
        ("docker/dock..er", "invalid_repository", "dock..er"),
        ("docker///docker", "invalid_repository", "empty component"),
        ("docker/", "invalid_repository", "empty component"),
        ("-docker.io/docker/docker", "invalid_domain", "not a valid registry host"),
        ("https://github.com/docker/docker", "invalid_domain", "port"),
        ("fc00::1:5000/debian", "invalid_domain", "not a valid registry host"),
        ("[fe80::1%eth0]:5000/repo", "invalid_domain", "IPv6"),
        ("[2001:db8:3:4::192.0.2.33]:5000/debian", "invalid_domain", "IPv6"),
        ("[2001:db8::1]", "invalid_repository", None),
        ("[2001:db8::1]:5000", "invalid_repository", None),
        ("foo_bar.com/x", "invalid_domain", "'_'"),
        ("repo:", "invalid_tag", "empty"),
        ("repo:-tag", "invalid_tag", "starts with '-'"),
        ("repo:.tag", "invalid_tag", "starts with '.'"),
        ("repo:tåg", "invalid_tag", "'å'"),
        ("repo:" + "t" * 129, "tag_too_long", "129 characters"),
        ("repo:a:b", "invalid_tag", "':'"),
        ("repo@sha256:" + "f" * 34, "invalid_digest_length", "exactly 64"),
        ("repo@sha256:" + "F" * 64, "invalid_digest", "lowercase"),
        ("repo@sha256:" + "g" * 64, "invalid_digest", "hexadecimal"),
        ("validname@invaliddigest:" + "f" * 64, "unsupported_digest", "not supported"),
        ("repo@sha256", "invalid_digest", "<algorithm>:<hex>"),
        (f"repo@{SHA}@{SHA}", "invalid_format", "more than one '@'"),
        (
            "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            "identifier",
            "image id",
        ),
        ("ubuntu latest", "invalid_format", "whitespace"),
        ("ubuntu\n", "invalid_format", "whitespace"),
    ],
)
def test_invalid_references_name_their_problem(text: str, kind: str, says: str | None) -> None:
    with pytest.raises(InvalidReference) as caught:
        parse_reference(text)
    assert caught.value.kind == kind
    if says is not None:
        assert says in caught.value.message


def test_longest_valid_name_is_accepted_and_one_more_character_is_not() -> None:
    path = "a" * (255 - len("docker.io/library/"))
    assert len(parse_reference(path).name) == 255
    with pytest.raises(InvalidReference, match="256 characters"):
        parse_reference(path + "a")


def test_tag_of_128_characters_is_the_longest_allowed() -> None:
    assert parse_reference("repo:" + "t" * 128).tag == "t" * 128


# --- Docker's grammar as an oracle (distribution/reference regexp.go and normalize.go) -------

_ALNUM = r"[a-z0-9]+"
_SEP = r"(?:[._]|__|[-]+)"
_COMPONENT = rf"{_ALNUM}(?:{_SEP}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[(?:[a-fA-F0-9:]+)\])"
_DOMAIN_AND_PORT = rf"{_HOST}(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN_AND_PORT}/)?{_COMPONENT}(?:/{_COMPONENT})*"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
GO_REFERENCE = re.compile(rf"({_NAME})(?::([\w][\w.-]{{0,127}}))?(?:@({_DIGEST}))?", re.ASCII)
EXTRA_HUB_ALIASES = {"registry.hub.docker.com", "registry-1.docker.io"}


def docker_normalized(text: str) -> str | None:
    """What `ParseNormalizedNamed` makes of `text`, or None where Docker refuses it.

    Two documented extensions of dockyard are applied: Docker Hub's other host names are
    aliases of docker.io, and a first component taken for a domain must be a valid host.
    """
    if re.fullmatch(r"[a-f0-9]{64}", text):
        return None
    first, slash, rest = text.partition("/")
    if not slash:
        domain, remainder = "docker.io", "library/" + text
    elif first == "localhost" or any(c in first for c in ".:") or first.lower() != first:
        domain, remainder = first, rest
    else:
        domain, remainder = "docker.io", text
    if domain in {"index.docker.io", *EXTRA_HUB_ALIASES}:
        domain = "docker.io"
    if domain == "docker.io" and "/" not in remainder:
        remainder = "library/" + remainder
    remote = remainder.partition(":")[0]
    if remote.lower() != remote:
        return None
    full = f"{domain}/{remainder}"
    match = GO_REFERENCE.fullmatch(full)
    if match is None or not re.fullmatch(_DOMAIN_AND_PORT, domain):
        return None
    name, _tag, digest = match.groups()
    if len(name) > 255:
        return None
    if digest is not None:
        algorithm, _, encoded = digest.partition(":")
        lengths = {"sha256": 64, "sha384": 96, "sha512": 128}
        if lengths.get(algorithm) != len(encoded) or not re.fullmatch(r"[a-f0-9]+", encoded):
            return None
    return full


def ours(text: str) -> str | None:
    try:
        return str(parse_reference(text))
    except InvalidReference:
        return None


_pieces = st.sampled_from(
    [
        "a",
        "b",
        "z",
        "0",
        "9",
        "A",
        "Z",
        ".",
        "_",
        "__",
        "-",
        "--",
        ":",
        "/",
        "@",
        "[",
        "]",
        "::1",
        "localhost",
        "docker.io",
        "index.docker.io",
        "registry.hub.docker.com",
        "quay.io",
        ":5000",
        "library",
        "sha256:",
        "f" * 64,
        "F" * 32,
        "sha512:",
        "é",
        " ",
        "latest",
    ]
)
_structured = st.builds(
    lambda domain, path, tag, digest: domain + "/".join(path) + tag + digest,
    st.sampled_from(
        [
            "",
            "quay.io/",
            "localhost:5000/",
            "[::1]:5000/",
            "Foo/",
            "a_b.c/",
            "docker.io/",
            "127.0.0.1/",
        ]
    ),
    st.lists(
        st.from_regex(r"[a-z0-9]{1,3}(?:[._-]{1,2}[a-z0-9]{1,3}){0,2}", fullmatch=True),
        min_size=1,
        max_size=4,
    ),
    st.sampled_from(["", ":1.0", ":latest", ":-bad", ":" + "t" * 128, ":" + "t" * 129, ":"]),
    st.sampled_from(
        ["", "@" + SHA, "@sha256:" + "f" * 63, "@md5:" + "f" * 32, "@sha256:" + "F" * 64]
    ),
)


@settings(max_examples=800, deadline=None)
@given(st.one_of(st.lists(_pieces, max_size=10).map("".join), _structured, st.text(max_size=30)))
@example("a" * 237)
@example("a" * 238)
@example("registry.hub.docker.com/ubuntu")
def test_acceptance_and_normalization_agree_with_dockers_grammar(text: str) -> None:
    assert ours(text) == docker_normalized(text)


@settings(max_examples=300, deadline=None)
@given(_structured)
def test_normalized_form_parses_back_to_itself(text: str) -> None:
    normalized = ours(text)
    if normalized is not None:
        assert str(parse_reference(normalized)) == normalized
        assert str(parse_reference(parse_reference(normalized).familiar)) == normalized
