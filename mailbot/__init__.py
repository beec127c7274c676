"""mailbot: an email-driven medical coding consultation service.

This package is the domain: configuration, storage, mail I/O, the code
knowledge base and drafting.  It imports neither ``workflows`` (the queue)
nor ``reviewers`` (the web app); those import it.
"""

__version__ = "0.1.0"
