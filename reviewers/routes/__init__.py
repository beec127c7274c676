"""The app's routers, as data: each entry names a module exposing
``router = APIRouter()``.  ``reviewers.app.create_app`` includes them in this
order.  Modules owned by other parts of the service (lookup, jobs,
subscribers) are listed already; until such a module exists it is skipped.
"""

ROUTERS: tuple[str, ...] = (
    "reviewers.routes.session",        # login / logout
    "reviewers.routes.ops",            # /, /healthz, /metrics
    "reviewers.routes.queue",          # the review queue
    "reviewers.routes.consultation",   # detail page and its actions
    "reviewers.routes.admin",          # quarantine, outbox, code sets, accounts, metrics
    "reviewers.routes.macros",         # canned responses (admin)
    "reviewers.routes.account",        # one's own settings (notification mail)
    "reviewers.routes.reports",        # volume, reply/answer times, SLA; CSV
    "reviewers.routes.lookup",         # code lookup pages (commands part)
    "reviewers.routes.jobs",           # job board admin (jobs part)
    "reviewers.routes.subscribers",    # public subscriber endpoints (jobs part)
)

# Listed modules that may be absent while their part is being built.
OPTIONAL: frozenset[str] = frozenset({
    "reviewers.routes.lookup", "reviewers.routes.jobs", "reviewers.routes.subscribers",
})
