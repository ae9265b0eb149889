"""A workflow's page in a real browser: the Images panel with each image's file and line,
digest and platforms, the engine alternatives and what only a run knows; freezing; the pinned
bundle link; search by kind and language. Takes docs/screenshots/workflow.png."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
from playwright.sync_api import Browser, expect

from tests.support.app import MakeUser, bearer
from tests.support.axe import serious_violations
from tests.support.browser import CHROMIUM_MISSING, PASSWORD, shoot, sign_in
from tests.support.git_repos import Repo
from tests.support.registry import LocalRegistry
from tests.support.workflows import register_workflow

pytestmark = CHROMIUM_MISSING

CONFIG = """\
params {{
    multiqc_image = 'biocontainers/multiqc:1.21--pyhdfd78af_0'
}}
docker.registry = '{registry}'
process {{
    withName: 'MULTIQC' {{
        container = params.multiqc_image
    }}
}}
"""

MAIN = """\
include { FASTQC } from './modules/fastqc'
process MULTIQC {
    container 'ubuntu:22.04'
    script:
    "multiqc ."
}
process CUSTOM {
    container task.ext.image
    script:
    "custom"
}
workflow {
    FASTQC(Channel.fromPath(params.input))
}
"""

FASTQC = """\
process FASTQC {
    container "${ workflow.containerEngine == 'singularity' ?
        'https://depot.galaxyproject.org/singularity/fastqc:0.12.1--hdfd78af_0' :
        'biocontainers/fastqc:0.12.1--hdfd78af_0' }"
    script:
    "fastqc"
}
"""


def test_a_pipelines_page_shows_its_images_and_a_maintainer_freezes_a_version(
    browser: Browser,
    server: str,
    make_user: MakeUser,
    database_url: str,
    tmp_path: Path,
    open_registry: LocalRegistry,
) -> None:
    _, token = make_user("maria", password=PASSWORD)
    make_user("bob", password=PASSWORD)
    fastqc = open_registry.push_image("biocontainers/fastqc", "0.12.1--hdfd78af_0", salt="fq")
    open_registry.push_index(
        "biocontainers/multiqc",
        "1.21--pyhdfd78af_0",
        [("linux", "amd64", None), ("linux", "arm64", "v8")],
        salt="mq",
    )
    name = f"rnaseq-{uuid.uuid4().hex[:6]}"
    repo = Repo(tmp_path / "lab" / name)
    repo.commit(
        {
            "nextflow.config": CONFIG.format(registry=open_registry.host),
            "main.nf": MAIN,
            "modules/fastqc.nf": FASTQC,
        }
    )
    with httpx.Client(base_url=server, headers=bearer(token), timeout=120) as http:
        (workflow,) = register_workflow(
            http,
            git_url=repo.url,
            descriptor_type="NFL",
            primary_descriptor_path="/nextflow.config",
            description="RNA-seq, nf-core style",
        )["items"]
        assert http.patch(f"/api/workflows/{workflow['id']}", json={"published": True}).is_success

    context, maria = sign_in(browser, server, "maria")
    maria.goto(f"/workflows/{workflow['path']}")
    panel = maria.get_by_role("region", name="Images of version main")
    expect(panel.get_by_role("cell", name="/modules/fastqc.nf:2 docker")).to_be_visible()
    expect(panel).to_contain_text(f"{open_registry.host}/biocontainers/fastqc:0.12.1--hdfd78af_0")
    expect(panel).to_contain_text(fastqc[:19])
    expect(panel).to_contain_text("linux/amd64, linux/arm64/v8")
    expect(panel).to_contain_text("a Singularity image file")
    expect(panel).to_contain_text("task.ext.image is set per process")
    shoot(maria, "workflow", database_url)

    maria.get_by_role("button", name="Freeze version main").click()
    expect(maria.get_by_role("status")).to_contain_text("Version main is frozen")
    link = maria.get_by_role("link", name="download the pinned bundle")
    with maria.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == f"{name}-main-pinned.zip"
    context.close()

    bob_context, bob = sign_in(browser, server, "bob")
    bob.goto("/search?kind=workflow&descriptor_type=NFL&q=rna-seq")
    expect(bob.get_by_role("link", name=f"#workflow/{workflow['path']}")).to_be_visible()
    bob.goto("/search?kind=workflow&descriptor_type=CWL")
    expect(bob.get_by_text("No workflows match.")).to_be_visible()
    bob.goto(f"/workflows/{workflow['path']}")
    expect(bob.get_by_role("button", name="Refresh now")).to_have_count(0)
    bob_context.close()

    # The page passes axe-core (tests/web/test_accessibility.py checks the others).
    checking = browser.new_context(base_url=server, bypass_csp=True)
    anonymous = checking.new_page()
    anonymous.goto(f"/workflows/{workflow['path']}")
    assert serious_violations(anonymous) == []
    run = anonymous.get_by_role("region", name=re.compile(r"^Run version "))
    expect(run.locator("#run-nextflow")).to_contain_text(f"nextflow run {workflow['git_url']} -r ")
    expect(run.get_by_role("link", name="Seqera Platform")).to_be_visible()
    checking.close()
