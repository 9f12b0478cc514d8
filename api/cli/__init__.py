"""The `golfcheck` command line: the dispatcher (`api.cli.main`) and the service commands."""
