"""The Sales Ops console: the whole operation on one screen, behind a login.

A part of the Flask app ``tasuki serve`` runs (:func:`tasuki.console.app.init_app`), with its
own blueprint: overview, boundaries, handoffs, people; every table as CSV; Japanese and
English (Flask-Babel); sign-in with local accounts or OpenID Connect (Authlib), CSRF on every
POST (Flask-WTF), the login rate-limited (``limits``, :mod:`tasuki.console.throttle`). Its
figures are read with grouped, indexed queries (:mod:`tasuki.console.figures`); ``tasuki
report`` renders the same templates into one self-contained file (:mod:`tasuki.console.report`).

This package's ``__init__`` imports nothing: :mod:`tasuki.settings` reads
:mod:`tasuki.signin` at start.
"""
