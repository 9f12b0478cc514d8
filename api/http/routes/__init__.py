"""HTTP routes, one module per resource; `api.http.app.create_http_app` includes them."""
