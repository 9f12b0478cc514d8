"""api: the golfcheck HTTP service (FastAPI), its settings, database layer and command line."""
