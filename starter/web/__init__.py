"""The browser's side of the desk: support's console under `/console` and the customer's page under `/my`.

Server-rendered (Jinja2) pages served by the API app, with a few lines of the project's own JavaScript
(local times, the queue's refresh) and nothing loaded from elsewhere. Both sides act through the same
`ComplaintDesk` calls as the API's routes, so a refusal reads the same here as there. Signing in turns a
token into a session cookie (`sessions`); every form carries a CSRF token bound to that session (`csrf`).
"""
