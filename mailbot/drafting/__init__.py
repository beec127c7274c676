"""Drafting an answer to a coding question.

The steps, one module each: ``redact`` (PHI out before any text leaves),
``context`` (what the knowledge base knows about the question), ``llm`` (an
OpenAI-compatible endpoint) or ``offline`` (a deterministic drafter from the
knowledge base), and ``verify`` (every code the draft cites, checked against
the code sets for the date of service).  Nothing here sends mail or touches
the queue; ``mailbot.services.consultations`` orchestrates.
"""
