"""Developer tooling of the botstate monorepo (not shipped in any distribution)."""
