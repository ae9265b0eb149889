"""Workflows from git (CWL, WDL, Nextflow, Snakemake, Galaxy) and the container images they run."""
