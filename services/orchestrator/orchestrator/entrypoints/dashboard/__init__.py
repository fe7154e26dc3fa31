"""The web dashboard, served by the orchestrator at /dashboard/ (same origin as the API).

Server-rendered pages (Jinja2) kept live by htmx polling. Every page reads, and every button
acts, through the REST API with the signed-in person's own token (`loopback.py`): one source of
truth, one set of role checks, one audit trail.
"""

from fastapi import APIRouter

from orchestrator.entrypoints.dashboard import actions, pages, signin

router = APIRouter(prefix="/dashboard", include_in_schema=False)
router.include_router(signin.router)
router.include_router(pages.router)
router.include_router(actions.router)
