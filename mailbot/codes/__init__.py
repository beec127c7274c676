"""The code knowledge base ("Case2Code"): import, look up, search, verify, check edits.

Modules: ``normalize`` and ``extract`` (code shapes, no database), ``importers``
(one per official file format), ``knowledge`` (every code row in memory, loaded
once per imported version set), ``history`` (dated verdicts: valid / billable on
a date, naming the fiscal year or release), ``successors`` (what to report
instead of a header, deleted or terminated code), ``lookup`` (code cards), ``search`` with its
``index`` and ``synonyms``, ``validate`` (verify cited codes for a date of
service), ``edits`` (NCCI pairs and MUEs), ``modifiers`` (plain-language
guidance) and ``catalogue`` (loaded versions and citations).  Every function
takes a SQLModel ``Session`` first; nothing here imports mail, queue or web code.
"""

from mailbot.codes.catalogue import versions  # noqa: F401
