"""Outbound HTTP: the one place clients are made (:mod:`calflow.net.clients`) and the
SSRF guard every connection goes through (:mod:`calflow.net.guard`)."""
