"""The operator's registries file: valid entries extend the catalog, bad ones name the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.errors import ConfigurationError
from dockyard.registries.catalog import HOSTED_IN_FLIGHT, OPERATOR_IN_FLIGHT
from dockyard.registries.config import load_catalog

LAB = """
[[registry]]
id = "lab"
name = "Lab registry"
host = "registry.lab.example.org:5000"
site = "https://registry.lab.example.org/{repository}"
private_only = false
needs_registry_path = false
insecure = false
username = "robot$sync"
password_env = "LAB_REGISTRY_PASSWORD"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "registries.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_contract_example_adds_an_operator_registry(tmp_path: Path) -> None:
    catalog = load_catalog(write(tmp_path, LAB), environ={"LAB_REGISTRY_PASSWORD": "s3cret"})
    lab = catalog.match("registry.lab.example.org:5000")
    assert lab.id == "lab"
    assert lab.source.value == "operator"
    assert lab.site_url(lab.hosts[0], "group/tool") == "https://registry.lab.example.org/group/tool"
    assert lab.as_dict()["has_operator_credentials"] is True
    assert "s3cret" not in repr(lab.as_dict())
    assert lab.as_dict()["counts_pulls"] is False
    assert catalog.match("docker.io").as_dict()["counts_pulls"] is True


def test_an_operator_registry_can_say_its_gets_count_as_pulls(tmp_path: Path) -> None:
    text = LAB + "counts_pulls = true\n"
    catalog = load_catalog(write(tmp_path, text), environ={"LAB_REGISTRY_PASSWORD": "s3cret"})
    assert catalog.match("registry.lab.example.org:5000").counts_pulls is True
    with pytest.raises(ConfigurationError, match="counts_pulls"):
        load_catalog(
            write(tmp_path, LAB + 'counts_pulls = "yes"\n'),
            environ={"LAB_REGISTRY_PASSWORD": "s3cret"},
        )


def test_requests_in_flight_are_set_per_registry_with_defaults_for_each_kind(
    tmp_path: Path,
) -> None:
    text = LAB + "max_in_flight = 64\n[[registry]]\nid = 'quay'\nmax_in_flight = 4\n"
    catalog = load_catalog(write(tmp_path, text), environ={"LAB_REGISTRY_PASSWORD": "s3cret"})
    assert catalog.match("registry.lab.example.org:5000").max_in_flight == 64
    assert catalog.match("quay.io").max_in_flight == 4
    assert catalog.match("quay.io").username is None  # no credentials came with it
    assert catalog.match("docker.io").max_in_flight == HOSTED_IN_FLIGHT
    assert catalog.match("docker.io").as_dict()["max_in_flight"] == HOSTED_IN_FLIGHT
    bare = load_catalog(write(tmp_path, LAB), environ={"LAB_REGISTRY_PASSWORD": "s3cret"})
    assert bare.match("registry.lab.example.org:5000").max_in_flight == OPERATOR_IN_FLIGHT >= 32
    for wrong in ("0", "1000", '"8"'):
        with pytest.raises(ConfigurationError, match="max_in_flight"):
            load_catalog(
                write(tmp_path, LAB + f"max_in_flight = {wrong}\n"),
                environ={"LAB_REGISTRY_PASSWORD": "s3cret"},
            )


def test_a_host_pattern_registry_can_require_a_registry_path(tmp_path: Path) -> None:
    text = """
[[registry]]
id = "harbor"
name = "Institute Harbor"
host_pattern = "[a-z]+\\\\.harbor\\\\.example\\\\.org"
private_only = true
needs_registry_path = true
registry_path_example = "genomics.harbor.example.org"
"""
    catalog = load_catalog(write(tmp_path, text), environ={})
    harbor = catalog.match("genomics.harbor.example.org")
    assert harbor.id == "harbor"
    assert harbor.private_only and harbor.needs_registry_path
    assert catalog.match("genomics.harbor.example.org.evil.com").id == "generic"


def test_an_entry_with_a_builtin_id_gives_it_operator_credentials(tmp_path: Path) -> None:
    text = '[[registry]]\nid = "dockerhub"\nusername = "mirror"\npassword_env = "HUB_TOKEN"\n'
    catalog = load_catalog(write(tmp_path, text), environ={"HUB_TOKEN": "t"})
    assert catalog.get("dockerhub").username == "mirror"
    assert catalog.match("docker.io").id == "dockerhub"


@pytest.mark.parametrize(
    ("text", "environ", "says"),
    [
        ("[[registry]\nid='x'", {}, "is not valid TOML"),
        ("registry = 'lab'", {}, "must be an array of tables"),
        ("[lab]\nhost='a.b'", {}, "unknown top-level key 'lab'"),
        ("[[registry]]\nname='Lab'\nhost='a.b'", {}, "registry #1: field 'id' is required"),
        (
            "[[registry]]\nid='Lab'\nname='Lab'\nhost='a.b'",
            {},
            "field 'id' must be lowercase letters",
        ),
        (
            "[[registry]]\nid='lab'\nname='Lab'\nhost='https://a.b'",
            {},
            "(id 'lab'): field 'host' must be a host name",
        ),
        (
            "[[registry]]\nid='lab'\nname='Lab'\nhost='a.b'\nhots='c'",
            {},
            "field 'hots' is not a known field",
        ),
        (
            "[[registry]]\nid='lab'\nname='Lab'\nhost='a.b'\nprivate_only='yes'",
            {},
            "field 'private_only'",
        ),
        (
            "[[registry]]\nid='lab'\nname='Lab'\nhost_pattern='(['",
            {},
            "field 'host_pattern' is not a valid regular expression",
        ),
        (
            "[[registry]]\nid='lab'\nname='Lab'\nhost='a.b'\nsite='ftp://a.b'",
            {},
            "field 'site' must be an http",
        ),
        (
            "[[registry]]\nid='lab'\nname='Lab'\nhost='a.b'\nsite='https://a.b/{name}'",
            {},
            "may use only {repository} and {host}",
        ),
        ("[[registry]]\nid='lab'\nname='Lab'", {}, "exactly one of 'host' and 'host_pattern'"),
        ("[[registry]]\nid='lab'\nname='Lab'\nhost='a.b'\nhost_pattern='a'", {}, "exactly one of"),
        ("[[registry]]\nid='lab'\nhost='a.b'", {}, "field 'name' is required"),
        (
            "[[registry]]\nid='lab'\nname='Lab'\nhost='a.b'\nneeds_registry_path=true",
            {},
            "needs a 'host_pattern'",
        ),
        (
            "[[registry]]\nid='lab'\nname='Lab'\nhost='a.b'\nusername='u'",
            {},
            "both 'username' and 'password_env'",
        ),
        (
            "[[registry]]\nid='lab'\nname='Lab'\nhost='a.b'\nusername='u'\npassword_env='LAB_PW'",
            {},
            "LAB_PW, which is not set",
        ),
        (
            "[[registry]]\nid='lab'\nname='A'\nhost='a.b'\n[[registry]]\nid='lab'\nname='B'\nhost='c.d'",
            {},
            "registry #2 (id 'lab'): id 'lab' is defined twice",
        ),
        ("[[registry]]\nid='generic'\nname='G'\nhost='a.b'", {}, "reserved"),
        (
            "[[registry]]\nid='myquay'\nname='Q'\nhost='quay.io'",
            {},
            "claims host 'quay.io', which belongs to the built-in registry 'quay'",
        ),
        (
            "[[registry]]\nid='quay'\nname='Q'\nusername='u'\npassword_env='P'",
            {"P": "x"},
            "may only set 'username', 'password_env' and 'max_in_flight', not name",
        ),
        ("[[registry]]\nid='quay'", {}, "must give 'username' and 'password_env'"),
    ],
)
def test_bad_registries_files_give_one_line_naming_file_entry_and_field(
    tmp_path: Path, text: str, environ: dict[str, str], says: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigurationError) as caught:
        load_catalog(path, environ=environ)
    message = caught.value.message
    assert says in message
    assert str(path) in message
    assert "\n" not in message


def test_a_missing_registries_file_is_reported_with_its_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="DOCKYARD_REGISTRIES_FILE"):
        load_catalog(tmp_path / "nope.toml", environ={})


def test_the_secret_never_appears_in_errors(tmp_path: Path) -> None:
    text = LAB.replace('name = "Lab registry"', 'name = "Lab registry"\nbogus = 1')
    with pytest.raises(ConfigurationError) as caught:
        load_catalog(write(tmp_path, text), environ={"LAB_REGISTRY_PASSWORD": "s3cret-value"})
    assert "s3cret-value" not in caught.value.message
