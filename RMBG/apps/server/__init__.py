"""The HTTP server: routes, the work pool, the page, and a small stdlib client."""
