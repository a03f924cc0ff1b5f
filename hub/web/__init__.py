"""The web edge: a FastAPI app serving the JSON API and server-rendered pages.

Build it with :func:`hub.web.app.create_app`; serve it with `evi web serve`. Importing this
package imports nothing else: `evi users …` uses :mod:`hub.web.users` without FastAPI.
"""
