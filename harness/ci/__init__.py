"""Files for an engine's CI: github-actions.yml, which `gradspec ci-workflow` writes out."""
