"""The slow jobs, run outside the request by myapp.tasks.

* ``notify``   follower notifications: fan-out in batches, one e-mail per
  follower per article, exactly once in effect;
* ``export``   "export my data": a zip of the user's articles, comments and
  favourites, with progress, downloadable by its owner only;
* ``periodic`` warm the hot caches, remove expired exports, resend jobs whose
  message was lost.

Support modules: ``records`` (the ``jobs`` table: status and progress),
``steps`` (what a running job calls: checkpoint, progress),
``mail`` (SMTP or an outbox folder), ``embedded`` (the in-process runner used
when no broker is configured). Jobs register at ``config.scan("myapp.jobs")``.
"""
