"""The job board ("CareerCenter") and the digest emails.

- ``fields``: normalising what people and files write (credentials, states,
  work modes, salaries) and the duplicate keys;
- ``importers``: CSV, JSON, RSS/Atom and schema.org JobPosting -> ``JobInput``;
- ``board``: creating, merging, editing, approving and expiring postings;
- ``criteria``: "remote CPC jobs in Texas, daily" -> subscription criteria;
- ``matching``: does a job match a subscription (one at a time, or a whole
  run through a bitset index);
- ``links``: signed, expiring links for confirm / manage / unsubscribe;
- ``subscriptions``: subscribe, confirm, pause, resume, unsubscribe, bounces;
- ``schedule``: when digests are due and claiming them exactly once;
- ``digest`` and ``code_updates``: building and queueing the emails.

Nothing here imports the queue or the web app; services return pokes.
"""
