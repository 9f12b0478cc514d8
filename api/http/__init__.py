"""The HTTP layer: the FastAPI app (`api.http.app`), JSON routes, HTML pages, the streaming upload
parser, OpenAPI and problem+json errors, on top of `api.core`. Never imported by the worker."""
