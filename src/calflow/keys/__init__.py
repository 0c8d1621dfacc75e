"""The encryption keys of the vault and their rotation while processes run.

- :mod:`calflow.keys.keyfile`: the key file ``CALFLOW_HOME/secret.key`` (read, create,
  rewrite under a lock); every problem is a ``ConfigError`` naming the file and line.
- :mod:`calflow.keys.ring`: the keys one process holds (``KeyRing``), their ids, which
  one encrypts, and re-reading a changed key file.
- :mod:`calflow.keys.registry`: what the database records: each running process's keys
  (a heartbeat) and each key's state (staged, primary, old, retired).
- :mod:`calflow.keys.watch`: the heartbeat thread of ``calflow serve`` and ``worker``.
- :mod:`calflow.keys.stored`: the encrypted columns, counted per key and re-encrypted.
- :mod:`calflow.keys.rotation`: ``calflow keys add / rotate / reencrypt / retire /
  status``, each refusing what would leave a running process unable to decrypt.
"""
