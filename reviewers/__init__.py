"""The reviewer web queue: an ASGI app (FastAPI) with server-rendered pages.

``reviewers.app.create_app(ctx)`` builds it; every route needs a logged-in
reviewer unless it is marked with :func:`reviewers.auth.public`.
"""
