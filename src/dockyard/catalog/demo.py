"""A small sample catalog for `dockyard serve --demo`, loaded only into an empty database.

The tools are real images with hand-written descriptors; their image digests and platforms
are left for a registry refresh to fill in rather than invented here.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dockyard.accounts import services as accounts
from dockyard.catalog import contents, services
from dockyard.catalog.models import Tool
from dockyard.registries.catalog import Catalog

DEMO_USER = "demo"


@dataclass(frozen=True)
class DemoTool:
    image: str
    description: str
    versions: tuple[str, ...]
    files: tuple[tuple[str, str, str | None, str], ...]
    private: bool = False


SAMTOOLS_CWL = """cwlVersion: v1.2
class: CommandLineTool
label: samtools view
doc: Convert a SAM file to BAM.
requirements:
  DockerRequirement:
    dockerPull: quay.io/biocontainers/samtools:1.17--h00cdaf9_0
baseCommand: [samtools, view, -b]
inputs:
  alignments:
    type: File
    inputBinding: {position: 1}
outputs:
  bam:
    type: stdout
stdout: out.bam
"""

BWA_WDL = """version 1.0

task bwa_index {
  input {
    File reference
  }
  command <<<
    bwa index ~{reference}
  >>>
  runtime {
    docker: "quay.io/biocontainers/bwa:0.7.17--h7132678_9"
  }
  output {
    Array[File] index = glob("~{basename(reference)}.*")
  }
}
"""

FASTQC_CWL = """cwlVersion: v1.2
class: CommandLineTool
label: FastQC
requirements:
  DockerRequirement:
    dockerPull: quay.io/biocontainers/fastqc:0.12.1--hdfd78af_0
baseCommand: [fastqc, --outdir, .]
inputs:
  reads:
    type: File[]
    inputBinding: {position: 1}
outputs:
  reports:
    type: File[]
    outputBinding: {glob: "*_fastqc.html"}
"""

DEMO_TOOLS = (
    DemoTool(
        image="quay.io/biocontainers/samtools",
        description="Reading, writing and converting SAM, BAM and CRAM alignment files.",
        versions=("1.17--h00cdaf9_0", "1.16.1--h6899075_1"),
        files=(
            ("samtools-view.cwl", "PRIMARY_DESCRIPTOR", "CWL", SAMTOOLS_CWL),
            (
                "test/view.json",
                "TEST_FILE",
                "CWL",
                '{"alignments": {"class": "File", "path": "in.sam"}}\n',
            ),
        ),
    ),
    DemoTool(
        image="quay.io/biocontainers/bwa",
        description="Burrows-Wheeler Aligner for short reads against a large reference genome.",
        versions=("0.7.17--h7132678_9",),
        files=(("bwa-index.wdl", "PRIMARY_DESCRIPTOR", "WDL", BWA_WDL),),
    ),
    DemoTool(
        image="quay.io/biocontainers/fastqc",
        description="Quality control checks on raw sequence data.",
        versions=("0.12.1--hdfd78af_0",),
        files=(
            ("fastqc.cwl", "PRIMARY_DESCRIPTOR", "CWL", FASTQC_CWL),
            (
                "Dockerfile",
                "CONTAINERFILE",
                None,
                "FROM quay.io/biocontainers/fastqc:0.12.1--hdfd78af_0\n",
            ),
        ),
    ),
    DemoTool(
        image="docker.io/library/ubuntu",
        description="Ubuntu base image, for tools that need a shell and coreutils.",
        versions=("24.04", "22.04"),
        files=(),
    ),
    DemoTool(
        image="312767926603.dkr.ecr.us-west-2.amazonaws.com/test_namespace/test_image",
        description="A private image in Amazon ECR: request access to pull it.",
        versions=("latest",),
        files=(),
        private=True,
    ),
)


def load_demo(session: Session, catalog: Catalog) -> int:
    """Add the demo tools to an empty catalog; the number added (0 if there were tools)."""
    if session.scalar(select(func.count()).select_from(Tool)):
        return 0
    user = accounts.find_user(session, DEMO_USER) or accounts.create_user(
        session, username=DEMO_USER, email="demo@example.org"
    )
    for demo in DEMO_TOOLS:
        tool = services.register_tool(
            session,
            catalog,
            user,
            services.Registration(
                image=demo.image,
                private=demo.private,
                maintainer_email="demo@example.org",
                description=demo.description,
            ),
        )
        for name in demo.versions:
            contents.add_version(session, user, tool.id, name)
        if demo.files:
            contents.replace_files(session, user, tool.id, demo.versions[0], list(demo.files))
        services.publish(session, user, tool.id)
    return len(DEMO_TOOLS)
