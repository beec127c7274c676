"""The answer engine: what a coding question asks, and the answer the code sets give.

Domain layer only (no mail, queue or web imports).  The steps, one module each:

- :mod:`.facts` -- what the question states: codes (also written loosely),
  date of service, setting, payer, laterality, encounter, age / sex, doses;
- :mod:`.intents` -- an ordered table of what is asked, each intent with its
  triggers and its resolver (one file per resolver in :mod:`.resolvers`);
- :mod:`.kb` -- small adapters over ``mailbot.codes`` (lookup cards, search,
  NCCI / MUE check, fee-schedule indicators), and :mod:`.successors` for what
  replaces a deleted, terminated or header code;
- :mod:`.model` -- the structured :class:`~.model.Answer` every resolver adds to;
- :mod:`.engine` -- runs it all; :mod:`.compose` turns an answer into draft text.

The offline drafter, the LLM drafter (as the proposed answer and as tools),
the acknowledgement's instant facts and the bench all use :func:`answer`.
"""

def answer(*args, **kwargs):  # noqa: D103 -- imported lazily: engine imports the code knowledge base
    from mailbot.answers.engine import answer as run

    return run(*args, **kwargs)

__all__ = ["answer"]
